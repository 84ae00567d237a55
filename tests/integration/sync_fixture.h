#pragma once
// SyncFixture: the world of an end-to-end test: a real PostgreSQL, the Typesense test server,
// a state directory and a config file, plus helpers to run the `searchsync` binary against
// them and to compare the index with the table.
//
//   SyncFixture world;
//   world.CreateProductsTable();
//   world.Exec("INSERT INTO products ...");
//   const auto run = world.RunSearchsync({"run", "--once"});
//   CHECK(run.exit_code == 0);
//   CHECK(world.IndexMatchesProducts() == "");

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/postgres_server.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

struct SyncFixtureOptions {
  bool discard = false;  // Typesense test server in benchmark mode
  std::string api_key = "test-key";
  std::string pg_time_zone = "UTC";  // the PostgreSQL server's TimeZone
  std::string pg_encoding;           // see PostgresServerOptions::encoding
};

class SyncFixture {
 public:
  explicit SyncFixture(SyncFixtureOptions options = {});

  PostgresServer& pg() { return *pg_; }
  TypesenseServer& typesense() { return *typesense_; }
  const TempDir& dir() const { return dir_; }
  std::string config_path() const { return dir_ / "pipelines.yaml"; }

  // Runs SQL; fails the test on error.
  void Exec(const std::string& sql);

  // products(id text primary key, name, price numeric, tags text[], popularity int,
  // is_deleted bool, updated_at timestamptz default now() kept by a trigger) and its tombstone
  // table deleted_products(id, deleted_at).
  void CreateProductsTable();
  // Inserts rows "p-<first>".."p-<first+count-1>" with deterministic values.
  void InsertProducts(int first, int count);

  // Writes the products pipeline config. `extra_pipeline_yaml` is appended inside the
  // pipeline mapping (indented 4 spaces), `typesense_yaml` replaces the default typesense keys.
  void WriteProductsConfig(
      const std::string& sink_batch_yaml = "{ max_events: 500, flush_interval: 200ms }",
      const std::string& poll_interval = "200ms",
      const std::string& api_key = "${TYPESENSE_API_KEY}");
  void WriteConfig(const std::string& yaml);
  std::string ReadConfig() const;
  // Replaces the one occurrence of `from` in the written config (REQUIREs it is there).
  void ReplaceInConfig(const std::string& from, const std::string& to);

  // Appends `admin: { listen: 127.0.0.1:0 }` to the config (call after Write*Config): a daemon
  // then serves its admin API on a port of its choosing and logs it; see AdminPort().
  void EnableAdmin();

  // Environment for searchsync: PG_DSN, TYPESENSE_URL, TYPESENSE_API_KEY.
  std::vector<std::string> Env() const;
  // Runs `searchsync <args> -c <config>` to completion.
  CommandResult RunSearchsync(std::vector<std::string> args,
                              std::chrono::milliseconds timeout = std::chrono::minutes(10));
  // Starts `searchsync run -c <config>` in the background.
  std::unique_ptr<ServerProcess> StartDaemon(std::vector<std::string> extra_args = {});

  // The live documents behind the `products` alias, keyed by id.
  std::map<std::string, nlohmann::json> IndexDocuments();
  // "" when the index holds exactly the rows of products that are not soft-deleted, field by
  // field; otherwise a description of the first differences.
  std::string IndexMatchesProducts();

 private:
  SyncFixtureOptions options_;
  TempDir dir_;
  std::unique_ptr<PostgresServer> pg_;
  std::unique_ptr<TypesenseServer> typesense_;
};

// The admin API port a daemon started after EnableAdmin() logged; fails the test without it.
int AdminPort(ServerProcess& daemon);
// One sample of the daemon's GET /metrics (no token: loopback), e.g.
// "searchsync_events_read_total{pipeline=\"products\"}"; -1 when absent or unreachable.
double AdminMetric(int port, const std::string& key);

// Peak resident set of a running process in KiB (VmHWM), or its current RSS (VmRSS).
int64_t ProcessRssKiB(int pid, bool peak = false);

}  // namespace searchsync::test
