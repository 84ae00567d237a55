// End-to-end: the searchsync binary syncing a real PostgreSQL into the Typesense test server.
// Each test proves one guarantee of the product contract; see the test names.

#include <catch2/catch.hpp>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "pipeline/state_store.h"
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
  const std::vector<std::string> ids = {"a,b", "x y", "ü-1", "(a)", "&&", "50%", "+1", "tick`",
                                        "*",   "keep-1", "keep-2", "back\\", " lead"};
  pqxx::connection connection(world.pg().dsn());
  for (const std::string& id : ids) {
    pqxx::work tx(connection);
    tx.exec_params("INSERT INTO products (id, name, price, popularity) VALUES ($1, $2, 1.5, 1)",
                   id, "name of " + id);
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

TEST_CASE("kill -9 at random moments during a sync loses nothing", "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 30'000);
  world.WriteProductsConfig("{ max_events: 300, flush_interval: 100ms }");
  world.typesense().SetLatency(5ms);
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 4; ++round) {
    auto daemon = world.StartDaemon();
    // Let it get somewhere, with changes landing meanwhile, then kill it mid-batch.
    const auto written_before = world.typesense().Counters().documents_written;
    WaitUntil([&] { return world.typesense().Counters().documents_written > written_before; },
              60s);
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 900));
    world.Exec("UPDATE products SET name = name || ' r" + std::to_string(round) +
               "' WHERE id IN (SELECT id FROM products ORDER BY random() LIMIT 200)");
    world.Exec("DELETE FROM products WHERE id IN (SELECT id FROM products ORDER BY random() "
               "LIMIT 50)");
    world.Exec("UPDATE products SET is_deleted = true WHERE id IN (SELECT id FROM products "
               "ORDER BY random() LIMIT 50)");
    daemon->Kill9();
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

TEST_CASE("while Typesense is down, retries back off instead of looping hot",
          "[integration][e2e]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 1000);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  world.Exec("UPDATE products SET name = 'during outage' WHERE id = 'p-7'");

  world.typesense().SetUnavailable(true);
  world.typesense().ResetCounters();
  auto daemon = world.StartDaemon();
  // Wait until the outage has been hit, then watch a 4-second window.
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().unavailable > 0; }, 60s));
  const auto window_start = world.typesense().Counters().unavailable;
  std::this_thread::sleep_for(4s);  // the window being measured, not a wait for a condition
  const auto attempts_in_window = world.typesense().Counters().unavailable - window_start;
  // With backoff (50ms doubling to 1s, full jitter) a lane makes a handful of attempts in 4s;
  // a hot loop would make thousands.
  CHECK(attempts_in_window < 40);

  world.typesense().SetUnavailable(false);
  CHECK(WaitUntil([&] { return world.IndexDocuments().at("p-7")["name"] == "during outage"; },
                  60s));
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("a row Typesense rejects is dead-lettered with its error; the rest sync",
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

TEST_CASE("check reports every config error as file:line:col and exits 2",
          "[integration][e2e]") {
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
  CHECK(check.err.find(path + ":12:7: unknown key 'pol_interval' (did you mean 'poll_interval'?)") !=
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

TEST_CASE("Typesense down for 30s while 1,000,000 rows wait: memory stays bounded",
          "[integration][e2e][memory]") {
  // The limit: the change queue (64 MiB by default) bounds what waits; the process must stay
  // well under 256 MiB resident however many rows are pending.
  constexpr int64_t kRssLimitKiB = 256 * 1024;
  SyncFixture world({.discard = true});
  world.CreateProductsTable();
  world.InsertProducts(1, 1'000'000);
  world.WriteProductsConfig("{ max_events: 10000, flush_interval: 1s }");
  world.typesense().SetUnavailable(true);

  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().unavailable > 0; }, 60s));
  int64_t peak_kib = 0;
  const auto outage_end = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < outage_end) {
    peak_kib = std::max(peak_kib, ProcessRssKiB(daemon->pid()));
    std::this_thread::sleep_for(200ms);  // sampling interval
  }
  INFO("peak RSS during the outage: " << peak_kib / 1024 << " MiB");
  CHECK(peak_kib > 0);
  CHECK(peak_kib < kRssLimitKiB);

  world.typesense().SetUnavailable(false);
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().documents_written >= 1'000'000; },
                    600s));
  const int64_t final_peak = ProcessRssKiB(daemon->pid(), /*peak=*/true);
  INFO("peak RSS over the whole sync: " << final_peak / 1024 << " MiB");
  CHECK(final_peak < kRssLimitKiB);
  CHECK(daemon->Stop() == 0);
}

}  // namespace
}  // namespace searchsync::test
