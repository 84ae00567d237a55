// Reindex end to end: real PostgreSQL, the Typesense test server, the live runner and the
// reindex coordinator in this process.
#include "pipeline/app/reindex.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"
#include "pipeline/runner.h"
#include "pipeline/state_store.h"
#include "sinks/typesense_client.h"
#include "sinks/typesense_encode.h"
#include "tests/integration/sync_fixture.h"

namespace searchsync::test {
namespace {

// Rows of the concurrent-writes test; SEARCHSYNC_REINDEX_ROWS overrides the default.
int ReindexRows() {
  const char* rows = std::getenv("SEARCHSYNC_REINDEX_ROWS");
  return rows && *rows ? std::atoi(rows) : 200'000;
}

// The live pipeline of `world`'s products config, run in this process, with a coordinator.
class LivePipeline {
 public:
  explicit LivePipeline(SyncFixture& world, ReindexLimits limits = {}) {
    for (const std::string& variable : world.Env()) {
      const size_t equals = variable.find('=');
      setenv(variable.substr(0, equals).c_str(), variable.substr(equals + 1).c_str(), 1);
    }
    Result<Config> config = LoadConfig(world.config_path());
    if (!config.ok()) FAIL(config.status().message());
    config_ = std::move(*config);
    state_ = std::move(StateStore::Open(config_.state.path).value());
    const PipelineConfig& pipeline = config_.pipelines.at(0);
    runner_ =
        std::make_unique<PipelineRunner>(pipeline, config_.typesense.retry, pipeline.make_source(),
                                         MakeSink(config_, pipeline), *state_, RunOptions{});
    thread_ = std::thread([this] { run_status_ = runner_->Run(); });
    coordinator_ = std::make_unique<ReindexCoordinator>(
        config_, std::map<std::string, PipelineRunner*>{{pipeline.name, runner_.get()}}, limits);
  }
  ~LivePipeline() {
    coordinator_.reset();
    runner_->Stop();
    thread_.join();
  }

  PipelineRunner& runner() { return *runner_; }
  ReindexCoordinator& coordinator() { return *coordinator_; }
  const Config& config() const { return config_; }

  void CatchUp() { REQUIRE(runner_->WaitCaughtUp({}, ScaledTimeout(5min)).ok()); }

  // Starts a reindex and waits until it ends; returns its final progress.
  ReindexProgress Reindex() {
    Result<std::string> id = coordinator_->Start("products");
    REQUIRE(id.ok());
    coordinator_->Wait("products");
    return coordinator_->Progress("products").value();
  }

 private:
  Config config_;
  std::unique_ptr<StateStore> state_;
  std::unique_ptr<PipelineRunner> runner_;
  std::thread thread_;
  Status run_status_;
  std::unique_ptr<ReindexCoordinator> coordinator_;
};

std::string AliasTarget(SyncFixture& world) {
  const auto aliases = world.typesense().Aliases();
  const auto found = aliases.find("products");
  return found == aliases.end() ? "" : found->second;
}

bool HasCollection(SyncFixture& world, const std::string& name) {
  const auto names = world.typesense().CollectionNames();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<std::string> ProductCollections(SyncFixture& world) {
  std::vector<std::string> out;
  for (const std::string& name : world.typesense().CollectionNames()) {
    if (name.rfind("products_", 0) == 0) out.push_back(name);
  }
  return out;
}

TEST_CASE(
    "Reindex under concurrent writes: searches through the alias always find every row, "
    "and the new collection equals the table",
    "[integration][reindex]") {
  const int rows = ReindexRows();
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, rows);
  world.WriteProductsConfig("{ max_events: 5000, flush_interval: 200ms }", "100ms");
  LivePipeline live(world);
  live.CatchUp();
  const std::string old_collection = AliasTarget(world);
  REQUIRE(world.IndexDocuments().size() == static_cast<size_t>(rows));

  std::atomic<bool> stop{false};
  // Writer: updates, inserts, soft deletes and hard deletes (tombstones) all through the run.
  // Inserts and deletes are counted before they commit, so at any moment the index (the old
  // collection, or the new one once the alias moved) holds between rows - deletes and
  // rows + inserts documents.
  std::atomic<int> writes{0}, inserts{0}, deletes{0};
  std::thread writer([&] {
    pqxx::connection connection(world.pg().dsn());
    std::mt19937 rng(11);
    for (int i = 0; !stop; ++i) {
      const std::string id = "p-" + std::to_string(1 + rng() % rows);
      pqxx::work tx(connection);
      switch (rng() % 4) {
        case 0:
          tx.exec_params("UPDATE products SET name = $1 WHERE id = $2",
                         "updated " + std::to_string(i), id);
          break;
        case 1:
          ++inserts;
          tx.exec_params(
              "INSERT INTO products (id, name, price, popularity) VALUES ($1, 'new', 2.5, 7)",
              "w-" + std::to_string(i));
          break;
        case 2:
          ++deletes;
          tx.exec_params("UPDATE products SET is_deleted = true WHERE id = $1", id);
          break;
        case 3:
          ++deletes;
          tx.exec_params("DELETE FROM products WHERE id = $1", id);
          break;
      }
      tx.commit();
      ++writes;
      std::this_thread::sleep_for(2ms);
    }
  });
  // Reader: a search through the alias every 20 ms, as an application would, counting every
  // document: an alias moved to a collection still being filled would show too few.
  std::atomic<int> searches{0};
  std::vector<std::string> search_failures;
  const std::string search = "/collections/products/documents/search?q=*&per_page=1";
  std::thread reader([&] {
    TypesenseClient client(
        {.nodes = {world.typesense().url()}, .api_key = Secret(world.typesense().api_key())},
        "reader");
    while (!stop) {
      Result<HttpResponse> response = client.Send("GET", search);
      ++searches;
      if (!response.ok()) {
        search_failures.push_back(response.status().message());
      } else if (response->status != 200) {
        search_failures.push_back("HTTP " + std::to_string(response->status) + " " +
                                  response->body);
      } else {
        const int found = nlohmann::json::parse(response->body).value("found", 0);
        const int at_least = rows - deletes, at_most = rows + inserts;
        if (found < at_least || found > at_most) {
          search_failures.push_back("found " + std::to_string(found) + ", expected " +
                                    std::to_string(at_least) + ".." + std::to_string(at_most));
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  });

  const auto started = std::chrono::steady_clock::now();
  const ReindexProgress progress = live.Reindex();
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("reindex of " << rows << " rows took " << seconds << " s with " << writes
                     << " writes meanwhile, " << searches << " searches");
  stop = true;
  writer.join();
  reader.join();

  INFO(progress.error);
  REQUIRE(progress.state == "succeeded");
  CHECK(progress.rows_written >= static_cast<uint64_t>(rows) / 2);
  CHECK(searches > 0);
  CHECK(search_failures.empty());
  if (!search_failures.empty()) FAIL_CHECK("first search failure: " << search_failures.front());
  CHECK(AliasTarget(world) == progress.collection);
  CHECK(progress.collection != old_collection);
  CHECK(HasCollection(world, old_collection));  // kept for rollback (reindex.keep: 2)
  // The writes made during the reindex, and the ones after the swap, are in the new collection.
  live.CatchUp();
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE(
    "Reindex of a table that is never idle: the full read reads each row once, the "
    "catch-up ends, and the new collection equals the table",
    "[integration][reindex][busy]") {
  constexpr int kRows = 20'000;
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, kRows);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "50ms");
  // Catch-up by silence would wait for ever here; fail within the test's time instead.
  LivePipeline live(world, {.give_up_after = 1min, .catch_up_timeout = 2min});
  live.CatchUp();
  const std::string old_collection = AliasTarget(world);

  // The application: updates rows from two connections as fast as the database commits them,
  // from before the reindex starts until after it ended. Every update moves updated_at (the
  // fixture's trigger), the popularity only grows.
  std::atomic<bool> stop{false};
  std::atomic<int64_t> updates{0};
  std::vector<std::thread> writers;
  for (int writer_idx = 0; writer_idx < 2; ++writer_idx) {
    writers.emplace_back([&, writer_idx] {
      pqxx::connection connection(world.pg().dsn());
      std::mt19937 rng(static_cast<unsigned>(17 + writer_idx));
      while (!stop) {
        pqxx::work tx(connection);
        tx.exec_params("UPDATE products SET popularity = popularity + 1, name = $1 WHERE id = $2",
                       "busy " + std::to_string(updates.load()),
                       "p-" + std::to_string(1 + rng() % kRows));
        tx.commit();
        ++updates;
      }
    });
  }
  REQUIRE(WaitUntil([&] { return updates > 1'000; }, 1min));

  world.typesense().SetLatency(10ms);  // a full read long enough for many rows to change in it
  const int64_t updates_before = updates;
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(live.coordinator().Start("products").ok());
  // Progress never passes 100 % while it runs.
  std::string over_100;
  const bool ended = WaitUntil(
      [&] {
        const ReindexProgress progress = *live.coordinator().Progress("products");
        if (progress.rows_expected > 0 && progress.rows_written > progress.rows_expected) {
          over_100 =
              std::to_string(progress.rows_written) + "/" + std::to_string(progress.rows_expected);
        }
        return progress.state != "running";
      },
      ScaledTimeout(4min), 20ms);
  const ReindexProgress progress = *live.coordinator().Progress("products");
  const int64_t updates_during = updates - updates_before;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  WARN("reindex of " << kRows << " rows took " << seconds << " s with " << updates_during
                     << " updates meanwhile; it read " << progress.rows_written << " rows");
  stop = true;
  for (std::thread& writer : writers) writer.join();
  world.typesense().SetLatency(0ms);

  REQUIRE(ended);
  INFO(progress.error);
  REQUIRE(progress.state == "succeeded");
  CHECK(updates_during > 1'000);  // the table was busy all through the read
  // Each row read once: no update during the read made the full read read a row again.
  CHECK(progress.rows_written == static_cast<uint64_t>(kRows));
  CHECK(progress.rows_expected == static_cast<uint64_t>(kRows));
  CHECK(over_100 == "");
  CHECK(AliasTarget(world) == progress.collection);
  CHECK(progress.collection != old_collection);
  live.CatchUp();
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("kill -9 during a reindex: the next start drops the half-built collection",
          "[integration][reindex][leftovers]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 5'000);
  world.WriteProductsConfig("{ max_events: 100, flush_interval: 100ms }", "100ms");
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  const std::string live_collection = AliasTarget(world);

  // A standalone reindex (no daemon runs), slowed so it is killed while filling the new one.
  world.typesense().SetLatency(30ms);
  auto reindex = ServerProcess::Start(
      {.argv = {SEARCHSYNC_BINARY, "reindex", "-c", world.config_path(), "products"},
       .env = world.Env()});
  REQUIRE(reindex.ok());
  std::string half_built;
  REQUIRE(WaitUntil(
      [&] {
        for (const std::string& name : ProductCollections(world)) {
          if (name != live_collection && world.typesense().Documents(name)->size() > 0) {
            half_built = name;
          }
        }
        return !half_built.empty();
      },
      1min));
  (*reindex)->Kill9();
  world.typesense().SetLatency(0ms);
  REQUIRE(HasCollection(world, half_built));
  CHECK(world.typesense().Documents(half_built)->size() < 5'000);  // killed mid-way
  {
    // The build was recorded before the collection was created.
    auto state = StateStore::Open(world.dir() / "state");
    REQUIRE(state.ok());
    const auto builds = (*state)->ListBuilds();
    REQUIRE(builds.ok());
    REQUIRE(builds->size() == 1);
    CHECK(builds->front().collection == half_built);
    CHECK(builds->front().job == "reindex");
  }

  const CommandResult restart = world.RunSearchsync({"run", "--once"});
  INFO(restart.err);
  REQUIRE(restart.exit_code == 0);
  CHECK_THAT(restart.err, Catch::Contains("dropped collection " + half_built));
  CHECK_FALSE(HasCollection(world, half_built));
  CHECK(ProductCollections(world) == std::vector<std::string>{live_collection});
  CHECK(AliasTarget(world) == live_collection);
  CHECK(world.IndexMatchesProducts() == "");
  auto state = StateStore::Open(world.dir() / "state");
  REQUIRE(state.ok());
  CHECK((*state)->ListBuilds()->empty());
}

TEST_CASE("A start leaves alone the collections a live process is building",
          "[integration][reindex][leftovers]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  const std::string live_collection = AliasTarget(world);

  // Two builds in progress, recorded as a reindex or restore records them: one by a process
  // that is alive (this test process, standing in for a concurrent `searchsync restore`), one
  // by a process on another machine that shares the state directory.
  TypesenseClient client(
      {.nodes = {world.typesense().url()}, .api_key = Secret(world.typesense().api_key())}, "test");
  const std::string schema = R"({"fields":[{"name":"name","type":"string"}]})";
  const std::string by_us = "products_20990101T000000Z";
  const std::string by_other_host = "products_20990102T000000Z";
  {
    auto state = StateStore::Open(world.dir() / "state");
    REQUIRE(state.ok());
    REQUIRE((*state)->RecordBuild(BuildByThisProcess(by_us, "products", "restore")).ok());
    BuildRecord remote = BuildByThisProcess(by_other_host, "products", "reindex");
    remote.host = "another-machine";
    REQUIRE((*state)->RecordBuild(remote).ok());
  }
  for (const std::string& name : {by_us, by_other_host}) {
    REQUIRE(client.CreateCollection(*SchemaWithName(schema, name)).ok());
  }

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(HasCollection(world, by_us));
  CHECK(HasCollection(world, by_other_host));
  CHECK_THAT(run.err, Catch::Contains("left alone"));
  CHECK(AliasTarget(world) == live_collection);
  auto state = StateStore::Open(world.dir() / "state");
  REQUIRE(state.ok());
  CHECK((*state)->ListBuilds()->size() == 2);
}

TEST_CASE(
    "A reindex whose database goes away leaves the alias and the old collection untouched "
    "and drops the new one, the live pipeline goes on",
    "[integration][reindex]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 20'000);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "100ms");
  LivePipeline live(world, {.give_up_after = 2s, .catch_up_timeout = 5min});
  live.CatchUp();
  const std::string old_collection = AliasTarget(world);

  world.typesense().SetLatency(20ms);  // a full read that takes a while
  REQUIRE(live.coordinator().Start("products").ok());
  REQUIRE(
      WaitUntil([&] { return live.coordinator().Progress("products")->rows_written > 0; }, 1min));
  REQUIRE(world.pg().Stop().ok());
  live.coordinator().Wait("products");
  const ReindexProgress progress = *live.coordinator().Progress("products");
  CHECK(progress.state == "failed");
  CHECK_THAT(progress.error, Catch::Contains("postgres"));
  CHECK(AliasTarget(world) == old_collection);
  CHECK(world.typesense().Documents(old_collection)->size() == 20'000);
  CHECK_FALSE(HasCollection(world, progress.collection));

  world.typesense().SetLatency(0ms);
  REQUIRE(world.pg().Restart().ok());
  world.Exec("UPDATE products SET name = 'after the failure' WHERE id = 'p-1'");
  REQUIRE(WaitUntil(
      [&] {
        auto doc = world.typesense().Document("products", "p-1");
        return doc && (*doc)["name"] == "after the failure";
      },
      1min));
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE(
    "A reindex whose new collection refuses writes fails cleanly, the live pipeline goes "
    "on",
    "[integration][reindex]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 20'000);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "100ms");
  LivePipeline live(world, {.give_up_after = 1s, .catch_up_timeout = 5min});
  live.CatchUp();
  const std::string old_collection = AliasTarget(world);

  SECTION("Typesense unavailable longer than the reindex waits") {
    world.typesense().SetLatency(20ms);
    REQUIRE(live.coordinator().Start("products").ok());
    REQUIRE(
        WaitUntil([&] { return live.coordinator().Progress("products")->rows_written > 0; }, 1min));
    world.typesense().SetUnavailable(true);
    world.Exec("UPDATE products SET name = 'during the outage' WHERE id = 'p-2'");
    // The outage lasts until the reindex gave up on it (give_up_after) and tries to drop its
    // collection, then Typesense is back.
    REQUIRE(WaitUntil(
        [&] {
          for (const TypesenseWriteAttempt& attempt : world.typesense().WriteAttempts()) {
            if (attempt.method == "DELETE" && attempt.route == TypesenseRoute::kCollection) {
              return true;
            }
          }
          return false;
        },
        1min));
    world.typesense().SetUnavailable(false);
    world.typesense().SetLatency(0ms);
  }
  SECTION("the new collection dropped underneath (404 on every write)") {
    world.typesense().SetLatency(20ms);
    REQUIRE(live.coordinator().Start("products").ok());
    REQUIRE(
        WaitUntil([&] { return live.coordinator().Progress("products")->rows_written > 0; }, 1min));
    const std::string building = live.coordinator().Progress("products")->collection;
    TypesenseClient client(
        {.nodes = {world.typesense().url()}, .api_key = Secret(world.typesense().api_key())},
        "test");
    REQUIRE(client.Call("DELETE", "/collections/" + building).ok());
    world.typesense().SetLatency(0ms);
  }
  live.coordinator().Wait("products");
  const ReindexProgress progress = *live.coordinator().Progress("products");
  INFO(progress.error);
  CHECK(progress.state == "failed");
  CHECK(AliasTarget(world) == old_collection);
  CHECK_FALSE(HasCollection(world, progress.collection));

  world.Exec("UPDATE products SET name = 'after' WHERE id = 'p-3'");
  live.CatchUp();
  CHECK(world.IndexMatchesProducts() == "");
  CHECK(world.typesense().Documents(old_collection)->size() == 20'000);
}

TEST_CASE(
    "reindex.keep: 2 keeps exactly two old collections and the alias never points at a "
    "dropped one",
    "[integration][reindex]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 1'000);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "100ms");
  LivePipeline live(world);
  live.CatchUp();
  std::vector<std::string> lives = {AliasTarget(world)};

  std::atomic<bool> stop{false};
  std::vector<std::string> dangling;
  std::thread watcher([&] {
    while (!stop) {
      const std::string target = AliasTarget(world);
      if (target.empty() || !HasCollection(world, target)) dangling.push_back(target);
      std::this_thread::sleep_for(2ms);
    }
  });
  for (int round = 0; round < 4; ++round) {
    world.Exec("UPDATE products SET name = 'round " + std::to_string(round) + "' WHERE id = 'p-1'");
    const ReindexProgress progress = live.Reindex();
    INFO(progress.error);
    REQUIRE(progress.state == "succeeded");
    lives.push_back(progress.collection);
    CHECK(AliasTarget(world) == progress.collection);
  }
  stop = true;
  watcher.join();
  CHECK(dangling.empty());
  // The live collection and the two before it; the two oldest are gone.
  const std::vector<std::string> expected = {lives[2], lives[3], lives[4]};
  CHECK(ProductCollections(world) == expected);
  live.CatchUp();
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("Cancelling a reindex (SIGTERM) drops the new collection and leaves the alias",
          "[integration][reindex]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 20'000);
  world.WriteProductsConfig("{ max_events: 500, flush_interval: 100ms }", "100ms");
  LivePipeline live(world);
  live.CatchUp();
  const std::string old_collection = AliasTarget(world);
  world.typesense().SetLatency(20ms);
  REQUIRE(live.coordinator().Start("products").ok());
  REQUIRE(
      WaitUntil([&] { return live.coordinator().Progress("products")->rows_written > 0; }, 1min));
  live.coordinator().CancelAll();
  const ReindexProgress progress = *live.coordinator().Progress("products");
  CHECK(progress.state == "cancelled");
  CHECK(AliasTarget(world) == old_collection);
  CHECK_FALSE(HasCollection(world, progress.collection));
  CHECK(live.coordinator().Start("products").status().code() == StatusCode::kFailedPrecondition);
}

TEST_CASE("A changed schema: run says that a reindex applies it, and the reindex ships it",
          "[integration][reindex]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);

  std::ifstream in(world.config_path());
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string before = "- { name: tags, type: \"string[]\" }";
  REQUIRE(yaml.find(before) != std::string::npos);
  yaml.replace(yaml.find(before), before.size(),
               "- { name: tags, type: \"string[]\", facet: true }");
  world.WriteConfig(yaml);

  const CommandResult changed = world.RunSearchsync({"run", "--once"});
  INFO(changed.err);
  CHECK(changed.exit_code == 0);  // imports go on with the live schema
  CHECK_THAT(changed.err,
             Catch::Contains("the configured schema differs from the live collection"));
  CHECK_THAT(changed.err,
             Catch::Contains("searchsync reindex -c " + world.config_path() + " products"));

  {
    LivePipeline live(world);
    const ReindexProgress progress = live.Reindex();
    INFO(progress.error);
    REQUIRE(progress.state == "succeeded");
    const auto collection = world.typesense().Collection(progress.collection);
    REQUIRE(collection);
    bool tags_facet = false;
    for (const auto& field : (*collection)["fields"]) {
      if (field["name"] == "tags") tags_facet = field.value("facet", false);
    }
    CHECK(tags_facet);
    live.CatchUp();
    CHECK(world.IndexMatchesProducts() == "");
  }
  const CommandResult after = world.RunSearchsync({"run", "--once"});
  CHECK(after.exit_code == 0);
  CHECK_THAT(after.err, !Catch::Contains("schema differs"));
}

}  // namespace
}  // namespace searchsync::test
