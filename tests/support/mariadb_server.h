#pragma once
// MariadbServer: a throwaway MariaDB for integration tests (Debian's mariadb-server).
//
// Start() runs mariadb-install-db in a fresh temp dir, starts mariadbd on a free 127.0.0.1 port
// with its unix socket in that dir, row-format binlogs (as Maxwell needs) and durability off,
// waits until it accepts connections, and creates `database` and a password user for TCP
// logins (an --init-file, so a Restart() finds them too). The destructor stops the server and
// removes the dir.
//
//   auto db = MariadbServer::Start();
//   REQUIRE(db.ok());
//   REQUIRE((*db)->Exec("CREATE TABLE orders (id INT PRIMARY KEY)").ok());
//   snapshot.dsn = Secret((*db)->dsn());   // tcp://searchsync:PASSWORD@127.0.0.1:PORT/DATABASE
//
// The binaries come from $SEARCHSYNC_MARIADB_BIN (a dir), else PATH and /usr/sbin. Set
// SEARCHSYNC_TEST_KEEP_TMP=1 to keep the dir for debugging.
//
// Thread safety: one test thread owns a MariadbServer; Exec and Query may run on any thread
// (each opens its own connection).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/status.h"
#include "tests/support/server_process.h"

namespace searchsync::test {

struct MariadbServerOptions {
  std::string database = "shop";
  std::string user = "searchsync";
  std::string password = "s3cret-pw";
  std::chrono::milliseconds start_timeout = 60s;
};

class MariadbServer {
 public:
  static Result<std::unique_ptr<MariadbServer>> Start(MariadbServerOptions options = {});
  ~MariadbServer();
  MariadbServer(const MariadbServer&) = delete;
  MariadbServer& operator=(const MariadbServer&) = delete;

  // tcp://USER:PASSWORD@127.0.0.1:PORT/DATABASE, the form the maxwell source's snapshot.dsn takes.
  std::string dsn() const;
  int port() const { return port_; }
  const MariadbServerOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }

  // Runs `sql` (one statement, autocommit) on a fresh connection to the database.
  Status Exec(const std::string& sql) const;
  // Runs a query and returns its rows as text; nullopt for SQL NULL.
  using Rows = std::vector<std::vector<std::optional<std::string>>>;
  Result<Rows> Query(const std::string& sql) const;

  // Stops the server (SIGTERM, a clean shutdown); Restart() starts it again on the same port.
  Status Stop();
  Status Restart();

 private:
  explicit MariadbServer(MariadbServerOptions options) : options_(std::move(options)) {}
  Status StartServer();

  MariadbServerOptions options_;
  std::string mariadbd_;
  std::string dir_;  // temp dir: data/, the socket, init.sql, logs
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace searchsync::test
