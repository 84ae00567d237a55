// End-to-end: the searchsync binary syncing a real PostgreSQL into the Typesense test server.
// Each test proves one guarantee of the product contract; see the test names.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <csignal>
#include <fstream>
#include <map>
#include <numeric>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "pipeline/state_store.h"
#include "sinks/typesense_client.h"
#include "tests/integration/sync_fixture.h"

namespace searchsync::test {
namespace {

using namespace std::chrono_literals;

TEST_CASE("run --once syncs 100,000 rows and the collection equals the table field by field",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100'000);
  world.WriteProductsConfig("{ max_events: 5000, flush_interval: 1s }");

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexDocuments().size() == 100'000);
  CHECK(world.IndexMatchesProducts() == "");
  // The collection is a real one behind the alias.
  const auto aliases = world.typesense().Aliases();
  REQUIRE(aliases.count("products"));
  CHECK(aliases.at("products").rfind("products_", 0) == 0);

  // A second run right after sends nothing.
  world.typesense().ResetCounters();
  const CommandResult again = world.RunSearchsync({"run", "--once"});
  REQUIRE(again.exit_code == 0);
  CHECK(world.typesense().Counters().Requests(TypesenseRoute::kImport) == 0);
  CHECK(world.typesense().Counters().Requests(TypesenseRoute::kDeleteByFilter) == 0);
}

TEST_CASE("updates, soft deletes and tombstone deletes propagate, also for awkward ids",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.WriteProductsConfig();
  const std::vector<std::string> ids = {"a,b",   "x y", "ü-1",    "(a)",    "&&",     "50%",  "+1",
                                        "tick`", "*",   "keep-1", "keep-2", "back\\", " lead"};
  pqxx::connection connection(world.pg().dsn());
  for (const std::string& id : ids) {
    pqxx::work tx(connection);
    tx.exec_params("INSERT INTO products (id, name, price, popularity) VALUES ($1, $2, 1.5, 1)", id,
                   "name of " + id);
    tx.commit();
  }
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.IndexDocuments().size() == ids.size());
  CHECK(world.IndexMatchesProducts() == "");

  // Update one, soft-delete some, hard-delete (tombstone) the others; `*` must delete only
  // itself.
  world.Exec("UPDATE products SET name = 'renamed' WHERE id = 'keep-1'");
  {
    pqxx::work tx(connection);
    for (const std::string id : {"a,b", "&&", "+1", "*"}) {
      tx.exec_params("UPDATE products SET is_deleted = true WHERE id = $1", id);
    }
    for (const std::string id : {"x y", "ü-1", "(a)", "50%", "tick`", "back\\", " lead"}) {
      tx.exec_params("DELETE FROM products WHERE id = $1", id);
    }
    tx.commit();
  }
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const auto documents = world.IndexDocuments();
  CHECK(documents.size() == 2);
  CHECK(documents.count("keep-1"));
  CHECK(documents.count("keep-2"));
  CHECK(world.IndexMatchesProducts() == "");

  // A deleted id that comes back is present again: the last change wins.
  {
    pqxx::work tx(connection);
    tx.exec_params("INSERT INTO products (id, name, price, popularity) VALUES ($1, 'back', 2, 2)",
                   std::string("x y"));
    tx.exec_params("UPDATE products SET is_deleted = false WHERE id = $1", std::string("*"));
    tx.commit();
  }
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
  CHECK(world.IndexDocuments().size() == 4);
}

TEST_CASE("a transaction open across two polls that commits late still reaches the index",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);

  // The late transaction: its now() - and so the row's updated_at - is older than the rows
  // committed after it started.
  pqxx::connection late_connection(world.pg().dsn());
  pqxx::work late(late_connection);
  late.exec("UPDATE products SET name = 'committed late' WHERE id = 'p-3'");
  world.InsertProducts(11, 5);  // committed right away, with a newer updated_at
  world.Exec("UPDATE products SET name = 'updated after' WHERE id = 'p-4'");

  // Two polls while the transaction stays open.
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexDocuments().at("p-3")["name"] == "product 3");

  late.commit();
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexDocuments().at("p-3")["name"] == "committed late");
  CHECK(world.IndexDocuments().at("p-4")["name"] == "updated after");
  CHECK(world.IndexMatchesProducts() == "");
}

std::string CheckpointToken(StateStore& store) {
  return store.Load("products").value().checkpoint.token;
}

TEST_CASE("kill -9 at random moments, with an import in flight, loses nothing",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 30'000);
  world.WriteProductsConfig("{ max_events: 300, flush_interval: 100ms }");
  world.typesense().SetLatency(5ms);
  // Read beside the daemon (SQLite in WAL mode): what it checkpointed so far.
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  std::mt19937_64 rng(2026);
  std::string previous_checkpoint;
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    auto daemon = world.StartDaemon();
    // This run acknowledged work and checkpointed it before it dies.
    REQUIRE(WaitUntil(
        [&] {
          const std::string token = CheckpointToken(*store);
          return !token.empty() && token != previous_checkpoint;
        },
        60s, 5ms));
    // Changes land while it runs; at a random moment the next import is held open.
    world.Exec("UPDATE products SET name = name || ' r" + std::to_string(round) +
               "' WHERE id IN (SELECT id FROM products ORDER BY random() LIMIT 200)");
    world.Exec(
        "DELETE FROM products WHERE id IN (SELECT id FROM products ORDER BY random() "
        "LIMIT 50)");
    world.Exec(
        "UPDATE products SET is_deleted = true WHERE id IN (SELECT id FROM products "
        "ORDER BY random() LIMIT 50)");
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 500));  // the random moment
    world.typesense().HoldImports(true);
    // One more change, so an import comes even if everything before was already sent.
    world.Exec("UPDATE products SET popularity = popularity + 1 WHERE id = 'p-" +
               std::to_string(30'000 - round) + "'");
    REQUIRE(WaitUntil([&] { return world.typesense().HeldImports() > 0; }, 60s, 1ms));
    CHECK_FALSE(CheckpointToken(*store).empty());
    daemon->Kill9();
    // The import was still open when the process died: it took effect, never acknowledged.
    CHECK(world.typesense().HeldImports() > 0);
    world.typesense().HoldImports(false);
    previous_checkpoint = CheckpointToken(*store);
  }
  world.typesense().SetLatency(0ms);
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("503s on 30% of writes and 5% cut connections: the index still equals the table",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 20'000);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }");
  world.typesense().SetWriteUnavailableRate(0.30);
  world.typesense().SetDropRate(0.05);
  world.Exec("UPDATE products SET is_deleted = true WHERE id IN ('p-1', 'p-2', 'p-3')");
  world.Exec("DELETE FROM products WHERE id IN ('p-4', 'p-5')");

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
  const auto counters = world.typesense().Counters();
  CHECK(counters.unavailable > 0);
  CHECK(counters.dropped_before_apply + counters.dropped_after_apply > 0);
}

TEST_CASE("while Typesense refuses imports, retries back off instead of looping hot",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 1000);
  world.WriteProductsConfig();
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().size() == 1000; }, 60s));

  // The sync is running; now Typesense's write queue backs up (other clients' writes) and it
  // refuses writes for a window of seconds, as the real server does while its queue drains.
  world.typesense().SetWriteQueueModel(TypesenseWriteQueueModel{
      .drained_per_second = 50, .healthy_write_lag = 10, .refresh_interval = 500ms});
  world.typesense().AddPendingWriteBatches(400);  // about 8 s of refusals
  REQUIRE(WaitUntil([&] { return world.typesense().WritesRefusedForLag(); }, 10s, 5ms));
  world.typesense().ResetCounters();
  world.Exec("UPDATE products SET name = 'during the refusals' WHERE id = 'p-7'");
  // Wait until the import path has been refused, then watch a 4-second window.
  auto refused_imports = [&] {
    int64_t refused = 0;
    for (const TypesenseWriteAttempt& attempt : world.typesense().WriteAttempts()) {
      refused += attempt.route == TypesenseRoute::kImport && attempt.status == 503;
    }
    return refused;
  };
  REQUIRE(WaitUntil([&] { return refused_imports() > 0; }, 60s, 5ms));
  const int64_t window_start = refused_imports();
  std::this_thread::sleep_for(4s);  // the window being measured, not a wait for a condition
  const int64_t attempts_in_window = refused_imports() - window_start;
  INFO("import attempts refused in 4 s: " << attempts_in_window);
  // With backoff (50ms doubling to 1s, full jitter) a lane makes a handful of attempts in 4s;
  // a hot loop would make thousands.
  CHECK(attempts_in_window > 0);  // the window was inside the refusals
  CHECK(attempts_in_window < 40);

  // Once the queue drained, the change arrives.
  CHECK(WaitUntil([&] { return world.IndexDocuments().at("p-7")["name"] == "during the refusals"; },
                  60s));
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("a row Typesense rejects is dead-lettered with its error, the rest sync",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  // A null inside string[] passes the transforms but Typesense rejects it.
  world.Exec("UPDATE products SET tags = ARRAY['a', NULL] WHERE id = 'p-42'");
  world.WriteProductsConfig();

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("dead-letter") != std::string::npos);
  const auto documents = world.IndexDocuments();
  CHECK(documents.size() == 99);
  CHECK_FALSE(documents.count("p-42"));

  const CommandResult status = world.RunSearchsync({"status", "--json"});
  REQUIRE(status.exit_code == 0);
  const auto json = nlohmann::json::parse(status.out);
  CHECK(json["pipelines"][0]["dead_lettered"] == 1);
  CHECK(json["pipelines"][0]["events_acked"] == 100);

  // The dead letter keeps the document and Typesense's error; the pipeline went on.
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  const auto letters = store->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "p-42");
  CHECK(letters[0].error.find("tags") != std::string::npos);
  CHECK(letters[0].document.find("\"p-42\"") != std::string::npos);

  // Fixing the row brings it in; the dead letter stays for the record.
  world.Exec("UPDATE products SET tags = ARRAY['a'] WHERE id = 'p-42'");
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("check reports every config error as file:line:col and exits 2", "[integration][e2e]") {
  SyncFixture world;
  world.WriteConfig(R"(typesense:
  nodes: ["${TYPESENSE_URL}"]
  api_key: ${TYPESENSE_API_KEY}
pipelines:
  - name: products
    source:
      type: postgres
      dsn: ${PG_DSN}
      table: products
      primary_key: id
      updated_at: updated_at
      pol_interval: 5s
    sink:
      collection: products
      schema: { fields: [ { name: name, type: string } ] }
      batch: { flush_interval: soon }
)");
  const CommandResult check = world.RunSearchsync({"check"});
  CHECK(check.exit_code == 2);
  const std::string path = world.config_path();
  CHECK(
      check.err.find(path + ":12:7: unknown key 'pol_interval' (did you mean 'poll_interval'?)") !=
      std::string::npos);
  CHECK(check.err.find(path + ":16:32: pipelines[0].sink.batch.flush_interval") !=
        std::string::npos);
  CHECK(check.err.find("flush_interval") != std::string::npos);
}

TEST_CASE("a wrong API key gives a clear error and the key appears in no output",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  const std::string wrong_key = "wrong-key-5f3c9e";
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 200ms }", "200ms", wrong_key);

  const CommandResult check = world.RunSearchsync({"check"});
  CHECK(check.exit_code == 1);
  CHECK((check.out + check.err).find("API key") != std::string::npos);
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("API key") != std::string::npos);
  const CommandResult status = world.RunSearchsync({"status", "--json"});
  for (const CommandResult* result : {&check, &run, &status}) {
    CHECK(result->out.find(wrong_key) == std::string::npos);
    CHECK(result->err.find(wrong_key) == std::string::npos);
  }
}

TEST_CASE(
    "Typesense down for 30s in the middle of a sync, 1,000,000 rows waiting: memory "
    "stays bounded",
    "[integration][e2e][memory]") {
  // The limit: the change queue (64 MiB by default) bounds what waits; the process must stay
  // well under 256 MiB resident however many rows are pending.
  constexpr int64_t kRssLimitKiB = 256 * 1024;
  constexpr int64_t kRows = 1'000'000;
  SyncFixture world({.discard = true});
  world.CreateProductsTable();
  world.InsertProducts(1, kRows);
  world.WriteProductsConfig("{ max_events: 10000, flush_interval: 1s }");
  world.EnableAdmin();
  const std::string read_total = "searchsync_events_read_total{pipeline=\"products\"}";

  auto daemon = world.StartDaemon();
  const int admin = AdminPort(*daemon);
  // Typesense goes down once the sync is under way: the first documents are written, most rows
  // still wait in the table.
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().documents_written > 0; }, 120s, 1ms));
  world.typesense().SetUnavailable(true);
  const int64_t written_before = world.typesense().Counters().documents_written;
  INFO("written before the outage: " << written_before);
  REQUIRE(written_before < kRows / 2);

  int64_t peak_kib = 0;
  const auto outage_end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < outage_end) {
    peak_kib = std::max(peak_kib, ProcessRssKiB(daemon->pid()));
    std::this_thread::sleep_for(200ms);  // sampling interval
  }
  // The source went on reading into the queue (100,000 events by default) during the outage,
  // so the samples measured a process holding a backlog, not an idle one.
  const double read = AdminMetric(admin, read_total);
  INFO("events read by the end of the outage: " << read);
  // (Imports already past Typesense's gate when it went down may still have landed.)
  const int64_t written = world.typesense().Counters().documents_written;
  INFO("written by the end of the outage: " << written);
  CHECK(read >= written + 50'000);
  CHECK(read < kRows);
  INFO("peak RSS during the outage: " << peak_kib / 1024 << " MiB");
  CHECK(peak_kib > 0);
  CHECK(peak_kib < kRssLimitKiB);

  world.typesense().SetUnavailable(false);
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().documents_written >= kRows; }, 600s));
  const int64_t final_peak = ProcessRssKiB(daemon->pid(), /*peak=*/true);
  INFO("peak RSS over the whole sync: " << final_peak / 1024 << " MiB");
  CHECK(final_peak < kRssLimitKiB);
  CHECK(daemon->Stop() == 0);
}

TEST_CASE(
    "the same ids changing many times with concurrent imports in flight: the index holds "
    "each id's last value and never goes back to an older one",
    "[integration][e2e][order]") {
  // Few ids, each changed in its own transaction as fast as the writer can: consecutive versions
  // of one id are read a few events apart, so when the daemon is behind they sit in batches
  // that are in flight at the same time, unless every version of an id goes to the same lane.
  constexpr int kIds = 8;
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, kIds);
  world.Exec("UPDATE products SET popularity = 0");
  world.WriteProductsConfig("{ max_events: 2, flush_interval: 5ms }", "5ms");
  world.ReplaceInConfig("concurrency: 2", "concurrency: 4");  // the fixture's 2
  // Each request waits up to 40 ms on its way in and on its way back; writes are applied in the
  // order they arrive: requests sent together are applied in either order.
  world.typesense().SetJitter(40ms);
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().size() == kIds; }, 60s));

  // Watches the index: `popularity` is the version of the row, which only grows, so an id whose
  // popularity goes down was overwritten by an older change.
  std::atomic<bool> watching{true};
  std::atomic<bool> regressed{false};
  std::string went_back;  // written by the watcher until `regressed`, read after it joined
  std::thread watcher([&] {
    std::map<std::string, int64_t> highest;
    while (watching && !regressed) {
      for (const auto& [id, document] : world.IndexDocuments()) {
        const int64_t version = document.value("popularity", int64_t{0});
        int64_t& seen = highest[id];
        if (version < seen) {
          went_back = id + " went from version " + std::to_string(seen) + " back to " +
                      std::to_string(version);
          regressed = true;
        }
        seen = std::max(seen, version);
      }
      std::this_thread::sleep_for(1ms);
    }
  });

  // Rounds of a burst of single-row updates, then the index must settle on the last values.
  pqxx::connection connection(world.pg().dsn());
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> pick(1, kIds);
  int version = 0;
  for (int round = 0; round < 5 && !regressed; ++round) {
    const auto burst_end = std::chrono::steady_clock::now() + 600ms;
    while (std::chrono::steady_clock::now() < burst_end) {
      pqxx::work tx(connection);
      ++version;
      tx.exec_params("UPDATE products SET name = $1, popularity = $2 WHERE id = $3",
                     "v" + std::to_string(version), version, "p-" + std::to_string(pick(rng)));
      tx.commit();
    }
    INFO("round " << round);
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 30s, 50ms));
  }
  watching = false;
  watcher.join();
  CHECK(went_back == "");
  // Several imports were in flight at once.
  CHECK(world.typesense().Counters().writes_in_flight_peak > 1);
  world.typesense().SetJitter(0ms);
  CHECK(daemon->Stop() == 0);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE(
    "two daemons of one pipeline started at the same moment against an empty Typesense "
    "create one collection and one alias",
    "[integration][e2e][two-daemons]") {
  constexpr int kRows = 200;
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, kRows);
  world.WriteProductsConfig();
  const std::string yaml = world.ReadConfig();
  const std::string state_path = world.dir() / "state";
  REQUIRE(yaml.find(state_path) != std::string::npos);
  TypesenseClient admin(
      {.nodes = {world.typesense().url()}, .api_key = Secret(world.typesense().api_key())}, "test");

  for (int repetition = 0; repetition < 5; ++repetition) {
    INFO("repetition " << repetition);
    // Two machines: the same pipeline, each daemon with its own state directory.
    std::vector<std::unique_ptr<ServerProcess>> daemons;
    std::vector<std::string> configs;
    for (const std::string machine : {"a", "b"}) {
      std::string config = yaml;
      config.replace(config.find(state_path), state_path.size(),
                     world.dir() / ("state-" + machine + std::to_string(repetition)));
      configs.push_back(world.dir() / (machine + ".yaml"));
      std::ofstream(configs.back()) << config;
    }
    // Each request waits up to 400 ms each way: the two start-ups interleave their requests,
    // and what one daemon looked at has changed by the time it acts on it.
    world.typesense().SetJitter(400ms);
    for (const std::string& config : configs) {
      auto process = ServerProcess::Start(
          {.argv = {SEARCHSYNC_BINARY, "run", "-c", config}, .env = world.Env()});
      REQUIRE(process.ok());
      daemons.push_back(std::move(*process));
    }
    for (auto& daemon : daemons) {
      const bool prepared = WaitUntil(
          [&] { return daemon->ReadStderr().find("alias products") != std::string::npos; }, 60s);
      INFO(daemon->ReadStderr());
      REQUIRE(prepared);
    }
    world.typesense().SetJitter(0ms);
    std::vector<std::string> collections;
    for (const std::string& name : world.typesense().CollectionNames()) {
      if (name.rfind("products_", 0) == 0) collections.push_back(name);
    }
    REQUIRE(collections.size() == 1);
    CHECK(world.typesense().Aliases() ==
          std::map<std::string, std::string>{{"products", collections.front()}});
    // Both daemons write into the collection searches see.
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
    world.Exec("UPDATE products SET name = 'changed " + std::to_string(repetition) +
               "' WHERE id = 'p-1'");
    CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
    for (auto& daemon : daemons) {
      const std::optional<int> exit_code = daemon->Stop();
      INFO(daemon->ReadStderr());
      CHECK(exit_code == 0);
    }

    // An empty Typesense again for the next repetition.
    REQUIRE(admin.Send("DELETE", "/aliases/products").ok());
    for (const std::string& name : collections) REQUIRE(admin.DropCollection(name).ok());
  }
}

TEST_CASE(
    "the sink lowers the writes it keeps in flight while Typesense's write queue lags "
    "and refuses writes, and raises them back once it recovered",
    "[integration][e2e][overload]") {
  constexpr int kRows = 200;
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, kRows);
  world.WriteProductsConfig("{ max_events: 10, flush_interval: 20ms }", "20ms");
  world.ReplaceInConfig("concurrency: 2", "concurrency: 4");
  world.EnableAdmin();
  world.typesense().SetWriteQueueModel(TypesenseWriteQueueModel{.drained_per_second = 400,
                                                                .healthy_write_lag = 500,
                                                                .healthy_read_lag = 1'000'000,
                                                                .refresh_interval = 500ms});
  auto daemon = world.StartDaemon();
  const int port = AdminPort(*daemon);
  const std::string limit = "searchsync_sink_in_flight_limit{pipeline=\"products\"}";
  REQUIRE(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
  CHECK(AdminMetric(port, limit) == 4);

  // The application keeps changing rows all along, so the daemon keeps writing.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    pqxx::connection connection(world.pg().dsn());
    for (int version = 1; !stop; ++version) {
      pqxx::work tx(connection);
      tx.exec_params("UPDATE products SET popularity = $1 WHERE id = $2", version,
                     "p-" + std::to_string(1 + version % kRows));
      tx.commit();
      std::this_thread::sleep_for(2ms);
    }
  });
  // Other clients' writes: 8,000 chunks drain in 20 s, refused with 503 until under 500.
  world.typesense().AddPendingWriteBatches(8'000);
  REQUIRE(WaitUntil([&] { return world.typesense().WritesRefusedForLag(); }, 30s));
  const bool lowered = WaitUntil([&] { return AdminMetric(port, limit) == 1; }, 30s);
  const bool still_refusing = world.typesense().WritesRefusedForLag();
  CHECK(lowered);
  CHECK(still_refusing);  // lowered within the 503 window, not after it
  // Recovered: raised back, one step at a time, to sink.concurrency.
  CHECK(WaitUntil([&] { return !world.typesense().WritesRefusedForLag(); }, 2min));
  CHECK(WaitUntil([&] { return AdminMetric(port, limit) == 4; }, 60s));
  stop = true;
  writer.join();
  CHECK(WaitUntil([&] { return world.IndexMatchesProducts().empty(); }, 60s));
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("SIGTERM flushes what the daemon holds and checkpoints every event it read",
          "[integration][e2e]") {
  constexpr int kRows = 5'000;
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, kRows);
  // Batches that only fill up or drain, never time out.
  world.WriteProductsConfig("{ max_events: 1000, flush_interval: 1h }");
  world.EnableAdmin();
  // Typesense takes the first imports and does not answer them yet: the daemon holds the rest
  // in its queue and batches.
  world.typesense().HoldImports(true);
  auto daemon = world.StartDaemon();
  const int admin = AdminPort(*daemon);
  const std::string products = "{pipeline=\"products\"}";
  REQUIRE(WaitUntil(
      [&] { return AdminMetric(admin, "searchsync_events_read_total" + products) == kRows; }, 60s,
      50ms));
  REQUIRE(WaitUntil([&] { return world.typesense().HeldImports() == 2; }, 60s));  // 2 lanes
  CHECK(AdminMetric(admin, "searchsync_events_acked_total" + products) == 0);

  // SIGTERM while imports are open and most events wait; then Typesense answers again.
  daemon->Signal(SIGTERM);
  world.typesense().HoldImports(false);
  const std::optional<int> exit_code = daemon->Wait(60s);
  INFO(daemon->Describe());
  REQUIRE(exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  const PipelineState state = store->Load("products").value();
  CHECK(state.counters.events_read == kRows);
  CHECK(state.counters.events_acked == kRows);
  // The checkpoint covers every event read: a run after it finds nothing to send.
  world.typesense().ResetCounters();
  const CommandResult again = world.RunSearchsync({"run", "--once"});
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(world.typesense().Counters().Requests(TypesenseRoute::kImport) == 0);
}

}  // namespace
}  // namespace searchsync::test
