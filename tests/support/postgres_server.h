#pragma once
// PostgresServer: a throwaway PostgreSQL for integration tests.
//
// Start() runs initdb (trust auth, superuser "postgres") in a fresh temp dir, starts `postgres`
// on a free 127.0.0.1 port with its unix socket in that dir and fsync off, waits until it accepts
// connections and creates `database`. The destructor stops the server (fast shutdown) and
// removes the dir. As root, initdb and postgres run as the `postgres` user, which owns the dir.
//
//   auto pg = PostgresServer::Start();
//   REQUIRE(pg.ok());
//   REQUIRE((*pg)->Exec("CREATE TABLE items (id int PRIMARY KEY)").ok());
//   source_options.dsn = Secret((*pg)->dsn());
//
// The binaries come from $SEARCHSYNC_PG_BIN, else `pg_config --bindir`, else
// /usr/lib/postgresql/{17..13}/bin. Set SEARCHSYNC_TEST_KEEP_TMP=1 to keep the dir for debugging.
//
// Thread safety: one test thread owns a PostgresServer; Exec and Query may run on any thread
// (each opens its own connection).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/status.h"
#include "tests/support/server_process.h"

namespace searchsync::test {

struct PostgresServerOptions {
  std::string database = "searchsync_test";
  // The server's TimeZone: what now() writes into `timestamp` columns, e.g. "Asia/Tokyo".
  std::string time_zone = "UTC";
  // Non-empty: `database` is created with this encoding (e.g. "SQL_ASCII") and the C locale.
  std::string encoding;
  // Extra `-c name=value` server settings, e.g. "max_connections=50".
  std::vector<std::string> settings;
  std::chrono::milliseconds start_timeout = 60s;
};

class PostgresServer {
 public:
  static Result<std::unique_ptr<PostgresServer>> Start(PostgresServerOptions options = {});
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://postgres@127.0.0.1:PORT/DATABASE
  std::string dsn() const;
  std::string DsnFor(const std::string& database) const;
  int port() const { return port_; }
  const std::string& database() const { return options_.database; }
  const std::string& dir() const { return dir_; }

  // Runs `sql` (one or more statements, autocommit) on a fresh connection to `database`.
  Status Exec(const std::string& sql) const;
  // Runs a query and returns its rows as text; nullopt for SQL NULL.
  using Rows = std::vector<std::vector<std::optional<std::string>>>;
  Result<Rows> Query(const std::string& sql) const;

  // Fast shutdown (SIGINT) of the server; the data dir stays. Restart() starts it again on the
  // same port and waits until it accepts connections.
  Status Stop();
  Status Restart();
  bool running() const { return process_ != nullptr && process_->running(); }

 private:
  explicit PostgresServer(PostgresServerOptions options) : options_(std::move(options)) {}
  Status RunTool(const std::string& tool, const std::vector<std::string>& args) const;
  Status StartServer();

  PostgresServerOptions options_;
  std::string bin_dir_;
  std::string dir_;     // temp dir: data/, the unix socket, logs
  std::string run_as_;  // "postgres" when we are root
  int port_ = 0;
  bool database_created_ = false;  // until then Exec connects to "postgres"
  std::unique_ptr<ServerProcess> process_;
};

}  // namespace searchsync::test
