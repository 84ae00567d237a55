#include "tests/support/mariadb_server.h"

#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_connection.h>
#include <mysql_driver.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace searchsync::test {
namespace {

constexpr int kMaxPortAttempts = 3;
constexpr auto kInstallTimeout = 120s;
constexpr auto kStopTimeout = 30s;

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

// `name` in $SEARCHSYNC_MARIADB_BIN, PATH, /usr/sbin or /usr/bin; empty when none.
std::string FindBinary(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SEARCHSYNC_MARIADB_BIN"); env != nullptr && *env != '\0') {
    dirs.push_back(env);
  }
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    std::string_view rest(path);
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      dirs.emplace_back(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
    }
  }
  dirs.insert(dirs.end(), {"/usr/sbin", "/usr/bin"});
  for (const std::string& dir : dirs) {
    if (!dir.empty() && IsExecutable(dir + "/" + name)) return dir + "/" + name;
  }
  return "";
}

bool KeepTempDirs() {
  const char* keep = std::getenv("SEARCHSYNC_TEST_KEEP_TMP");
  return keep != nullptr && *keep != '\0' && std::string(keep) != "0";
}

std::unique_ptr<sql::Connection> Connect(const MariadbServerOptions& options, int port) {
  sql::ConnectOptionsMap connect;
  connect["hostName"] = sql::SQLString("127.0.0.1");
  connect["port"] = port;
  connect["userName"] = sql::SQLString(options.user);
  connect["password"] = sql::SQLString(options.password);
  connect["schema"] = sql::SQLString(options.database);
  connect["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  connect["OPT_CONNECT_TIMEOUT"] = 2;
  return std::unique_ptr<sql::Connection>(
      sql::mysql::get_mysql_driver_instance()->connect(connect));
}

std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "'";
}

}  // namespace

Result<std::unique_ptr<MariadbServer>> MariadbServer::Start(MariadbServerOptions options) {
  std::unique_ptr<MariadbServer> server(new MariadbServer(std::move(options)));
  server->mariadbd_ = FindBinary("mariadbd");
  const std::string install_db = FindBinary("mariadb-install-db");
  if (server->mariadbd_.empty() || install_db.empty()) {
    return FailedPrecondition(
        "MariadbServer: no mariadbd/mariadb-install-db (install mariadb-server, or set "
        "SEARCHSYNC_MARIADB_BIN)");
  }
  server->dir_ = MakeTempDir("searchsync-mariadb-");
  if (server->dir_.empty()) return Internal("MariadbServer: mkdtemp failed");

  ProcessOptions install{
      .argv = {install_db, "--no-defaults", "--datadir=" + server->dir_ + "/data",
               "--auth-root-authentication-method=normal", "--skip-test-db"},
      .env = {"LC_ALL=C"},
      .working_dir = server->dir_,
      .stdout_path = server->dir_ + "/install.out",
      .stderr_path = server->dir_ + "/install.log"};
  if (::geteuid() == 0) install.argv.push_back("--user=root");
  auto process = ServerProcess::Start(std::move(install));
  if (!process.ok()) return process.status();
  if ((*process)->Wait(kInstallTimeout) != 0) {
    return Internal("MariadbServer: mariadb-install-db failed: " + (*process)->Describe());
  }

  // Runs at every start, before the server accepts connections.
  const MariadbServerOptions& o = server->options_;
  std::ofstream(server->dir_ + "/init.sql")
      << "CREATE DATABASE IF NOT EXISTS `" << o.database << "` CHARACTER SET utf8mb4;\n"
      << "CREATE USER IF NOT EXISTS " << Quote(o.user) << "@'%' IDENTIFIED BY " << Quote(o.password)
      << ";\n"
      << "GRANT ALL ON *.* TO " << Quote(o.user) << "@'%';\n";
  if (Status status = server->StartServer(); !status.ok()) return status;
  return server;
}

MariadbServer::~MariadbServer() {
  process_.reset();  // SIGTERM, SIGKILL if it hangs
  if (!dir_.empty() && !KeepTempDirs()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

Status MariadbServer::StartServer() {
  const bool keep_port = port_ != 0;
  Status last = Status::Ok();
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    if (!keep_port) port_ = PickFreePort();
    if (port_ == 0) return Internal("MariadbServer: no free port");
    ProcessOptions options{
        .argv = {mariadbd_, "--no-defaults", "--datadir=" + dir_ + "/data",
                 "--socket=" + dir_ + "/mysqld.sock", "--pid-file=" + dir_ + "/mysqld.pid",
                 "--port=" + std::to_string(port_), "--bind-address=127.0.0.1",
                 "--skip-name-resolve", "--init-file=" + dir_ + "/init.sql",
                 "--log-bin=" + dir_ + "/data/binlog", "--binlog-format=ROW", "--server-id=1",
                 "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=64M",
                 "--innodb-flush-log-at-trx-commit=0", "--sync-binlog=0",
                 "--performance-schema=OFF", "--max-connections=60"},
        .env = {"LC_ALL=C", "TZ=UTC"},
        .working_dir = dir_,
        .stdout_path = dir_ + "/server.out",
        .stderr_path = dir_ + "/server.log",
        .stop_timeout = kStopTimeout};
    if (::geteuid() == 0) options.argv.push_back("--user=root");
    auto process = ServerProcess::Start(std::move(options));
    if (!process.ok()) return process.status();
    // MariaDB cannot listen on port 0, so the port picked free may be taken before it binds.
    // Our server's own log must say it is ready (it exits when the bind fails), so that another
    // server on the port cannot pass for it.
    last = (*process)->WaitReady(
        [&] {
          if (FileTail(dir_ + "/server.log").find("ready for connections") == std::string::npos) {
            return false;
          }
          try {
            return Connect(options_, port_) != nullptr;
          } catch (const sql::SQLException&) {
            return false;
          }
        },
        options_.start_timeout);
    if (last.ok()) {
      process_ = std::move(*process);
      return Status::Ok();
    }
    const std::string log = FileTail(dir_ + "/server.log");
    const bool port_taken = log.find("Address already in use") != std::string::npos ||
                            log.find("Can't start server") != std::string::npos;
    if (keep_port || !port_taken) break;
  }
  return Unavailable("MariadbServer: " + last.message() +
                     "; log: " + FileTail(dir_ + "/server.log", 1500));
}

std::string MariadbServer::dsn() const {
  return "tcp://" + options_.user + ":" + options_.password +
         "@127.0.0.1:" + std::to_string(port_) + "/" + options_.database;
}

Status MariadbServer::Exec(const std::string& sql) const {
  try {
    auto connection = Connect(options_, port_);
    std::unique_ptr<sql::Statement> statement(connection->createStatement());
    statement->execute(sql);
    return Status::Ok();
  } catch (const sql::SQLException& e) {
    return Unavailable(std::string("MariadbServer: ") + e.what() + " in: " + sql.substr(0, 300));
  }
}

Result<MariadbServer::Rows> MariadbServer::Query(const std::string& sql) const {
  try {
    auto connection = Connect(options_, port_);
    std::unique_ptr<sql::Statement> statement(connection->createStatement());
    std::unique_ptr<sql::ResultSet> result(statement->executeQuery(sql));
    const unsigned columns = result->getMetaData()->getColumnCount();
    Rows rows;
    while (result->next()) {
      auto& row = rows.emplace_back();
      for (unsigned column = 1; column <= columns; ++column) {
        if (result->isNull(column)) {
          row.push_back(std::nullopt);
        } else {
          row.push_back(std::string(result->getString(column)));
        }
      }
    }
    return rows;
  } catch (const sql::SQLException& e) {
    return Unavailable(std::string("MariadbServer: ") + e.what() + " in: " + sql.substr(0, 300));
  }
}

Status MariadbServer::Stop() {
  if (process_ == nullptr) return Status::Ok();
  const std::optional<int> exit_code = process_->Stop();
  process_.reset();
  if (exit_code != 0) {
    return Internal("MariadbServer: stopped with exit code " +
                    std::to_string(exit_code.value_or(-1)));
  }
  return Status::Ok();
}

Status MariadbServer::Restart() {
  if (Status status = Stop(); !status.ok()) return status;
  return StartServer();
}

}  // namespace searchsync::test
