#include "tests/support/postgres_server.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <pqxx/pqxx>

namespace searchsync::test {
namespace {

constexpr int kMaxPortAttempts = 3;
constexpr auto kToolTimeout = 120s;
constexpr auto kStopTimeout = 30s;

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

std::string PgConfigBinDir() {
  FILE* pipe = ::popen("pg_config --bindir 2>/dev/null", "r");
  if (pipe == nullptr) return "";
  char buffer[512] = {};
  std::string out;
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  ::pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string FindBinDir() {
  if (const char* env = std::getenv("SEARCHSYNC_PG_BIN"); env != nullptr && *env != '\0') {
    return env;
  }
  if (std::string dir = PgConfigBinDir(); !dir.empty() && IsExecutable(dir + "/postgres")) {
    return dir;
  }
  for (int version = 17; version >= 13; --version) {
    const std::string dir = "/usr/lib/postgresql/" + std::to_string(version) + "/bin";
    if (IsExecutable(dir + "/postgres")) return dir;
  }
  return "";
}

bool KeepTempDirs() {
  const char* keep = std::getenv("SEARCHSYNC_TEST_KEEP_TMP");
  return keep != nullptr && *keep != '\0' && std::string(keep) != "0";
}

// One line: libpq and server messages span several lines.
std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

bool CanConnect(const std::string& dsn) {
  try {
    pqxx::connection connection(dsn);
    return connection.is_open();
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start(PostgresServerOptions options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer(std::move(options)));
  server->bin_dir_ = FindBinDir();
  if (server->bin_dir_.empty()) {
    return FailedPrecondition("PostgresServer: no PostgreSQL binaries (set SEARCHSYNC_PG_BIN)");
  }
  server->dir_ = MakeTempDir("searchsync-pg-");
  if (server->dir_.empty()) return Internal("PostgresServer: mkdtemp failed");
  if (::geteuid() == 0) {
    // PostgreSQL refuses to run as root.
    const passwd* user = ::getpwnam("postgres");
    if (user == nullptr) {
      return FailedPrecondition("PostgresServer: running as root needs a 'postgres' user");
    }
    server->run_as_ = "postgres";
    if (::chown(server->dir_.c_str(), user->pw_uid, user->pw_gid) != 0) {
      return Internal("PostgresServer: chown " + server->dir_ + " failed");
    }
  }

  if (Status status =
          server->RunTool("initdb", {"-D", server->dir_ + "/data", "-A", "trust", "-U", "postgres",
                                     "--no-sync", "-E", "UTF8", "--locale=C"});
      !status.ok()) {
    return status;
  }
  if (Status status = server->StartServer(); !status.ok()) return status;
  const std::string& encoding = server->options_.encoding;
  if (Status status = server->Exec("CREATE DATABASE \"" + server->options_.database + "\"" +
                                   (encoding.empty() ? ""
                                                     : " ENCODING '" + encoding +
                                                           "' LC_COLLATE 'C' LC_CTYPE 'C' "
                                                           "TEMPLATE template0"));
      !status.ok()) {
    return status;
  }
  server->database_created_ = true;
  return server;
}

PostgresServer::~PostgresServer() {
  process_.reset();  // fast shutdown, SIGKILL if it hangs
  if (!dir_.empty() && !KeepTempDirs()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

Status PostgresServer::RunTool(const std::string& tool,
                               const std::vector<std::string>& args) const {
  ProcessOptions options{.argv = {bin_dir_ + "/" + tool},
                         .env = {"LC_ALL=C", "TZ=UTC"},
                         .run_as_user = run_as_,
                         .working_dir = dir_,
                         .stdout_path = dir_ + "/" + tool + ".out",
                         .stderr_path = dir_ + "/" + tool + ".log"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  auto process = ServerProcess::Start(std::move(options));
  if (!process.ok()) return process.status();
  const std::optional<int> exit_code = (*process)->Wait(kToolTimeout);
  if (exit_code != 0) {
    return Internal("PostgresServer: " + tool + " failed: " + (*process)->Describe());
  }
  return Status::Ok();
}

Status PostgresServer::StartServer() {
  const bool keep_port = port_ != 0;
  Status last = Status::Ok();
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    if (!keep_port) port_ = PickFreePort();
    if (port_ == 0) return Internal("PostgresServer: no free port");
    ProcessOptions options{
        .argv = {bin_dir_ + "/postgres", "-D", dir_ + "/data", "-p", std::to_string(port_), "-c",
                 "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c",
                 "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                 "max_connections=60", "-c", "TimeZone=" + options_.time_zone},
        .env = {"LC_ALL=C"},
        .run_as_user = run_as_,
        .working_dir = dir_,
        .stdout_path = dir_ + "/server.out",
        .stderr_path = dir_ + "/server.log",
        .stop_signal = SIGINT,  // fast shutdown: SIGTERM would wait for clients to disconnect
        .stop_timeout = kStopTimeout};
    for (const std::string& setting : options_.settings) {
      options.argv.push_back("-c");
      options.argv.push_back(setting);
    }
    auto process = ServerProcess::Start(std::move(options));
    if (!process.ok()) return process.status();
    // PostgreSQL cannot listen on port 0, so the port picked free may be taken before it binds.
    // Probe through its own Unix socket: over TCP another server on the port could answer. It
    // accepts connections only once it holds its TCP port (it exits when the bind fails).
    const std::string probe_dsn = "postgresql://postgres@/postgres?host=" + dir_ +
                                  "&port=" + std::to_string(port_) + "&connect_timeout=2";
    last = (*process)->WaitReady([&] { return CanConnect(probe_dsn); }, options_.start_timeout);
    if (last.ok()) {
      process_ = std::move(*process);
      return Status::Ok();
    }
    const std::string log = (*process)->ReadStderr();
    const bool port_taken = log.find("could not bind") != std::string::npos ||
                            log.find("already in use") != std::string::npos;
    if (keep_port || !port_taken) break;
  }
  return Unavailable("PostgresServer: " + last.message());
}

std::string PostgresServer::dsn() const { return DsnFor(options_.database); }

std::string PostgresServer::DsnFor(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

Status PostgresServer::Exec(const std::string& sql) const {
  try {
    pqxx::connection connection(DsnFor(database_created_ ? options_.database : "postgres"));
    pqxx::nontransaction tx(connection);
    tx.exec(sql);
    return Status::Ok();
  } catch (const std::exception& e) {
    return Unavailable("PostgresServer: " + OneLine(e.what()) + " in: " + sql);
  }
}

Result<PostgresServer::Rows> PostgresServer::Query(const std::string& sql) const {
  try {
    pqxx::connection connection(dsn());
    pqxx::nontransaction tx(connection);
    const pqxx::result result = tx.exec(sql);
    Rows rows;
    for (const pqxx::row& row : result) {
      std::vector<std::optional<std::string>>& out = rows.emplace_back();
      for (const pqxx::field& field : row) {
        out.push_back(field.is_null() ? std::nullopt : std::optional<std::string>(field.c_str()));
      }
    }
    return rows;
  } catch (const std::exception& e) {
    return Unavailable("PostgresServer: " + OneLine(e.what()) + " in: " + sql);
  }
}

Status PostgresServer::Stop() {
  if (process_ == nullptr) return Status::Ok();
  const std::optional<int> exit_code = process_->Stop();
  process_.reset();
  if (exit_code != 0)
    return Internal("PostgresServer: stopped with exit code " +
                    std::to_string(exit_code.value_or(-1)));
  return Status::Ok();
}

Status PostgresServer::Restart() {
  if (process_ != nullptr) {
    if (Status status = Stop(); !status.ok()) return status;
  }
  return StartServer();
}

}  // namespace searchsync::test
