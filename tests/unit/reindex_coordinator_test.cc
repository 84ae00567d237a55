// ReindexCoordinator against an in-memory CollectionAdmin: the interface is all a reindex needs
// (build beside the live collection, count it, make it live, drop it, retire old ones), and the
// crash bookkeeping in the state store brackets every collection it builds.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "pipeline/app/reindex.h"
#include "pipeline/collection_admin.h"
#include "pipeline/runner.h"
#include "pipeline/state_store.h"
#include "tests/support/fakes.h"
#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::FakeSink;
using test::FakeSource;
using test::Upsert;

// Writes into one of FakeCollections' collections.
class SinkInto : public Sink {
 public:
  explicit SinkInto(std::shared_ptr<FakeSink> collection) : collection_(std::move(collection)) {}
  Status HealthCheck() override { return Status::Ok(); }
  Status Prepare() override { return Status::Ok(); }
  Result<WriteReport> Write(const Batch& batch) override { return collection_->Write(batch); }

 private:
  std::shared_ptr<FakeSink> collection_;
};

// Collections in memory (each a FakeSink's index) behind the alias "products", named
// products_1, products_2, ... so that names sort by age. Every call that changes something is
// logged in `calls`.
struct FakeWorld {
  std::mutex mutex;
  std::optional<std::string> live;
  std::map<std::string, std::shared_ptr<FakeSink>> collections;
  int last = 0;  // the number in the newest name
  std::vector<std::string> calls;
  StateStore* state = nullptr;  // to see that each build is recorded before it is created
  bool recorded_before_create = true;

  void Add(bool make_live) {
    const std::string name = "products_" + std::to_string(++last);
    collections[name] = std::make_shared<FakeSink>();
    if (make_live) live = name;
  }
  std::vector<std::string> Names() {
    std::lock_guard lock(mutex);
    std::vector<std::string> names;
    for (const auto& [name, collection] : collections) names.push_back(name);
    return names;
  }
  std::vector<std::string> Calls() {
    std::lock_guard lock(mutex);
    return calls;
  }
};

class FakeCollections : public CollectionAdmin {
 public:
  explicit FakeCollections(std::shared_ptr<FakeWorld> world) : world_(std::move(world)) {}

  const std::string& alias() const override { return alias_; }
  Result<std::optional<std::string>> LiveCollection() override {
    std::lock_guard lock(world_->mutex);
    return world_->live;
  }
  Result<std::string> CreateBeside(
      std::string_view, const std::function<Status(const std::string&)>& before_create) override {
    std::string name;
    {
      std::lock_guard lock(world_->mutex);
      name = "products_" + std::to_string(world_->last + 1);
    }
    if (before_create) {
      if (Status status = before_create(name); !status.ok()) return status;
    }
    const std::vector<BuildRecord> builds = world_->state->ListBuilds().value();
    bool recorded = false;
    for (const BuildRecord& build : builds) {
      recorded = recorded || build.collection == name;
    }
    std::lock_guard lock(world_->mutex);
    world_->recorded_before_create = world_->recorded_before_create && recorded;
    world_->collections[name] = std::make_shared<FakeSink>();
    ++world_->last;
    world_->calls.push_back("create " + name);
    return name;
  }
  Result<std::optional<CollectionFacts>> Describe(const std::string& name) override {
    std::lock_guard lock(world_->mutex);
    const auto found = world_->collections.find(name);
    if (found == world_->collections.end()) return std::optional<CollectionFacts>();
    std::lock_guard index_lock(found->second->shared()->mutex);
    return std::optional<CollectionFacts>(
        CollectionFacts{.name = name, .documents = found->second->shared()->index.size()});
  }
  std::unique_ptr<Sink> OpenSink(const std::string& name, std::string) override {
    std::lock_guard lock(world_->mutex);
    return std::make_unique<SinkInto>(world_->collections.at(name));
  }
  Result<std::optional<std::string>> MakeLive(const std::string& name) override {
    std::lock_guard lock(world_->mutex);
    std::optional<std::string> before = world_->live;
    world_->live = name;
    world_->calls.push_back("live " + name);
    return before;
  }
  Status Drop(const std::string& name) override {
    std::lock_guard lock(world_->mutex);
    world_->collections.erase(name);
    world_->calls.push_back("drop " + name);
    return Status::Ok();
  }
  Result<std::vector<std::string>> RetireOld(size_t keep) override {
    std::lock_guard lock(world_->mutex);
    world_->calls.push_back("retire keep=" + std::to_string(keep));
    std::vector<std::string> older;
    for (const auto& [name, collection] : world_->collections) {
      if (world_->live && name < *world_->live) older.push_back(name);
    }
    std::sort(older.begin(), older.end(), std::greater<>());
    std::vector<std::string> dropped;
    for (size_t i = keep; i < older.size(); ++i) {
      world_->collections.erase(older[i]);
      dropped.push_back(older[i]);
    }
    return dropped;
  }
  Result<std::vector<std::string>> SchemaDifferences(std::string_view) const override {
    return std::vector<std::string>();
  }

 private:
  const std::string alias_ = "products";
  std::shared_ptr<FakeWorld> world_;
};

// One live pipeline (rows a, b, c) whose full read gives the same rows, a coordinator over it
// and a FakeWorld holding products_1 .. products_3 (live).
struct Setup {
  test::TempDir dir;
  std::unique_ptr<StateStore> state = std::move(StateStore::Open(dir.path()).value());
  std::shared_ptr<FakeWorld> world = std::make_shared<FakeWorld>();
  Config config;
  std::atomic<bool> full_read_fails{false};  // full reads of sources made from now on fail
  std::unique_ptr<PipelineRunner> runner;
  std::thread thread;
  std::unique_ptr<ReindexCoordinator> coordinator;

  explicit Setup(ReindexLimits limits = {}) {
    world->state = state.get();
    for (int i = 0; i < 3; ++i) world->Add(/*make_live=*/i == 2);
    PipelineConfig pipeline{.name = "products"};
    pipeline.sink.collection = "products";
    pipeline.sink.batch = {.max_events = 10, .max_bytes = 1 << 20, .flush_interval = 5ms};
    pipeline.sink.concurrency = 2;
    pipeline.queue = {.max_events = 100, .max_bytes = 1 << 20};
    pipeline.reindex.keep = 1;
    pipeline.make_source = [this]() -> std::unique_ptr<Source> {
      auto source =
          std::make_unique<FakeSource>(std::vector<Event>{Upsert("a"), Upsert("b"), Upsert("c")});
      source->SetFullRead({Upsert("a"), Upsert("b"), Upsert("c")}, false);
      if (full_read_fails) source->shared()->full_read_fail_after = 1;
      return source;
    };
    config.pipelines.push_back(pipeline);
    const PipelineConfig& configured = config.pipelines.front();
    runner = std::make_unique<PipelineRunner>(
        configured, RetryOptions{.initial_backoff = 1ms, .max_backoff = 5ms},
        configured.make_source(), std::make_unique<FakeSink>(), *state, RunOptions{});
    thread = std::thread([this] { CHECK(runner->Run().ok()); });
    coordinator = std::make_unique<ReindexCoordinator>(
        config, std::map<std::string, PipelineRunner*>{{"products", runner.get()}}, limits,
        [this](const PipelineConfig&, const std::string&) {
          return std::make_unique<FakeCollections>(world);
        });
  }
  ~Setup() {
    coordinator.reset();
    runner->Stop();
    thread.join();
  }

  ReindexProgress Reindex() {
    REQUIRE(coordinator->Start("products").ok());
    coordinator->Wait("products");
    return coordinator->Progress("products").value();
  }
};

TEST_CASE("A reindex builds beside the live collection, moves the alias, then retires old ones",
          "[reindex_coordinator]") {
  Setup setup;
  // A build whose process is gone (its pid's start time is not this process's): dropped first.
  BuildRecord leftover = BuildByThisProcess("products_4", "products", "reindex");
  leftover.pid_started += 1;
  REQUIRE(setup.state->RecordBuild(leftover).ok());
  setup.world->Add(/*make_live=*/false);

  const ReindexProgress progress = setup.Reindex();
  INFO(progress.error);
  REQUIRE(progress.state == "succeeded");
  CHECK(progress.collection == "products_5");
  CHECK(setup.world->Calls() == std::vector<std::string>{"drop products_4", "create products_5",
                                                         "live products_5", "retire keep=1"});
  CHECK(setup.world->live == "products_5");
  // reindex.keep: 1 keeps products_3 (the one live before) for rollback.
  CHECK(setup.world->Names() == std::vector<std::string>{"products_3", "products_5"});
  {
    const auto& index = setup.world->collections.at("products_5")->shared();
    std::lock_guard lock(index->mutex);
    CHECK(index->index.size() == 3);
  }
  CHECK(setup.world->recorded_before_create);
  CHECK(setup.state->ListBuilds().value().empty());
}

TEST_CASE("A reindex that fails after creating its collection drops it and leaves the alias",
          "[reindex_coordinator]") {
  Setup setup({.give_up_after = 50ms});
  // The database goes away under the full read, which gives up after 50 ms.
  setup.full_read_fails = true;

  const ReindexProgress progress = setup.Reindex();
  CHECK(progress.state == "failed");
  CHECK(progress.collection == "products_4");
  CHECK(setup.world->Calls() == std::vector<std::string>{"create products_4", "drop products_4"});
  CHECK(setup.world->live == "products_3");
  CHECK(setup.world->Names() == std::vector<std::string>{"products_1", "products_2", "products_3"});
  CHECK(setup.world->recorded_before_create);
  CHECK(setup.state->ListBuilds().value().empty());
}

TEST_CASE("A reindex with no alias to move creates nothing", "[reindex_coordinator]") {
  Setup setup;
  setup.world->live.reset();
  const ReindexProgress progress = setup.Reindex();
  CHECK(progress.state == "failed");
  CHECK_THAT(progress.error, Catch::Contains("is not an alias"));
  CHECK(setup.world->Calls().empty());
}

}  // namespace
}  // namespace searchsync
