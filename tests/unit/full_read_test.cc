// Full reads beside the live stream: the delete guard, create-only writes, the backfill on a
// first start, the shadow sink of a reindex and WaitCaughtUp.
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "pipeline/runner.h"
#include "tests/support/fakes.h"
#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::Delete;
using test::FakeSink;
using test::FakeSource;
using test::Upsert;

PipelineConfig TestPipeline(size_t max_events = 10) {
  PipelineConfig config{.name = "products"};
  config.sink.batch = {.max_events = max_events, .max_bytes = 1 << 20, .flush_interval = 5ms};
  config.sink.concurrency = 2;
  config.queue = {.max_events = 100, .max_bytes = 1 << 20};
  return config;
}

constexpr RetryOptions kFastRetry{.initial_backoff = 1ms, .max_backoff = 5ms};

// Polls `condition` until it holds or 30 s pass.
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return condition();
}

std::map<std::string, std::string> IndexOf(const std::shared_ptr<FakeSink::Shared>& sink) {
  std::lock_guard lock(sink->mutex);
  return sink->index;
}

// A live source a test appends to while the runner runs; positions are event counts.
class GrowingSource : public Source {
 public:
  struct Shared {
    std::mutex mutex;
    std::vector<Event> events;
  };
  Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) override {
    const size_t start = from.empty() ? 0 : std::stoul(from.token);
    std::lock_guard lock(shared_->mutex);
    std::vector<Event> out;
    for (size_t i = start; i < shared_->events.size() && out.size() < max_events; ++i) {
      out.push_back(shared_->events[i]);
      out.back().position = {std::to_string(i + 1)};
    }
    return out;
  }
  Status HealthCheck() override { return Status::Ok(); }
  // Long: WaitCaughtUp must wake the source rather than wait this out.
  std::chrono::milliseconds IdleWait() const override { return 10s; }
  void Append(Event event) {
    std::lock_guard lock(shared_->mutex);
    shared_->events.push_back(std::move(event));
  }
  std::shared_ptr<Shared> shared() const { return shared_; }

 private:
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

TEST_CASE("DeleteGuard drops ids deleted before the import and holds deletes behind it",
          "[full_read]") {
  DeleteGuard guard;
  Batch deletes;
  deletes.events = {Delete("b")};
  guard.Record(deletes);

  Batch full;
  full.create_only = true;
  full.events = {Upsert("a"), Upsert("b"), Upsert("c")};
  std::vector<std::string> written;
  Result<WriteReport> report = guard.WriteWithGuardHeld(full, [&](const Batch& batch) {
    for (const Event& event : batch.events) written.push_back(event.id);
    return Result<WriteReport>(WriteReport{});
  });
  REQUIRE(report.ok());
  CHECK(written == std::vector<std::string>{"a", "c"});

  // A Record that arrives while an import holds the guard waits until the import is done.
  std::atomic<bool> importing{false};
  std::atomic<bool> recording{false};
  std::atomic<bool> recorded{false};
  std::atomic<bool> recorded_during_import{false};  // Catch assertions stay on this thread
  std::thread importer([&] {
    Batch batch;
    batch.events = {Upsert("d")};
    (void)guard.WriteWithGuardHeld(batch, [&](const Batch&) {
      importing = true;
      // Once Record has been called, give it 200 ms to return: it must not while we import.
      while (!recording) std::this_thread::yield();
      const auto deadline = std::chrono::steady_clock::now() + 200ms;
      while (!recorded && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      recorded_during_import = recorded.load();
      return Result<WriteReport>(WriteReport{});
    });
  });
  REQUIRE(Eventually([&] { return importing.load(); }));
  Batch later;
  later.events = {Delete("d")};
  recording = true;
  guard.Record(later);
  recorded = true;
  importer.join();
  CHECK_FALSE(recorded_during_import);
  CHECK(guard.size() == 2);
}

TEST_CASE(
    "Backfill on a first start: the live change wins over the full read in every "
    "interleaving",
    "[full_read][backfill]") {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    test::TempDir dir;
    auto state = std::move(StateStore::Open(dir.path()).value());
    // The full read knows ids 0..199 with old values; the live stream updates and deletes
    // some of them, and creates new ones.
    std::vector<Event> full;
    for (int i = 0; i < 200; ++i) full.push_back(Upsert("id-" + std::to_string(i), "\"old\""));
    std::vector<Event> live;
    std::map<std::string, std::optional<std::string>> last_live;
    for (int i = 0; i < 300; ++i) {
      const std::string id = "id-" + std::to_string(rng() % 260);
      if (rng() % 3 == 0) {
        live.push_back(Delete(id));
        last_live[id] = std::nullopt;
      } else {
        const std::string value = "\"live-" + std::to_string(i) + "\"";
        live.push_back(Upsert(id, value));
        last_live[id] = value;
      }
    }
    std::map<std::string, std::string> expected;
    for (const Event& event : full) expected[event.id] = event.document[0].json;
    for (const auto& [id, value] : last_live) {
      if (value) {
        expected[id] = *value;
      } else {
        expected.erase(id);
      }
    }

    auto source = std::make_unique<FakeSource>(live);
    source->SetFullRead(full, /*backfill_on_first_start=*/true);
    auto source_view = source->shared();
    auto sink = std::make_unique<FakeSink>();
    auto sink_view = sink->shared();
    PipelineRunner runner(TestPipeline(1 + rng() % 20), kFastRetry, std::move(source),
                          std::move(sink), *state, {.once = true, .poll_batch = 1 + rng() % 30});
    REQUIRE(runner.Run().ok());
    INFO("round " << round);
    CHECK(IndexOf(sink_view) == expected);
    CHECK(source_view->full_read_polled == full.size());
    CHECK(state->LoadMarker("products", "backfill").value() == "done");
    CHECK_FALSE(sink_view->same_id_in_two_writes);
  }
}

TEST_CASE("Backfill runs only on a first start", "[full_read][backfill]") {
  test::TempDir dir;
  auto state = std::move(StateStore::Open(dir.path()).value());
  auto run_once = [&](bool backfill) {
    auto source = std::make_unique<FakeSource>(std::vector<Event>{Upsert("a")});
    source->SetFullRead({Upsert("b")}, backfill);
    auto view = source->shared();
    PipelineRunner runner(TestPipeline(), kFastRetry, std::move(source),
                          std::make_unique<FakeSink>(), *state, {.once = true});
    REQUIRE(runner.Run().ok());
    return view->full_read_polled.load();
  };
  SECTION("a source without backfill never reads in full") { CHECK(run_once(false) == 0); }
  SECTION("a second start after a complete backfill does not read again") {
    CHECK(run_once(true) == 1);
    CHECK(run_once(true) == 0);
  }
}

TEST_CASE("An interrupted backfill runs again on the next start, though the stream checkpointed",
          "[full_read][backfill]") {
  test::TempDir dir;
  auto state = std::move(StateStore::Open(dir.path()).value());
  std::vector<Event> full;
  for (int i = 0; i < 100; ++i) full.push_back(Upsert("full-" + std::to_string(i)));
  const std::vector<Event> live = {Upsert("live-1"), Upsert("live-2")};
  {
    auto source = std::make_unique<FakeSource>(live);
    source->SetFullRead(full, true);
    source->shared()->full_read_fail_after = 40;  // the snapshot database goes away
    auto source_view = source->shared();
    auto sink = std::make_unique<FakeSink>();
    auto sink_view = sink->shared();
    PipelineRunner runner(TestPipeline(), kFastRetry, std::move(source), std::move(sink), *state,
                          {});
    std::thread run([&] { CHECK(runner.Run().ok()); });
    REQUIRE(Eventually([&] { return runner.Report().checkpoint == "2"; }));
    // The 2 live events and the 40 rows read before the failure are written.
    REQUIRE(Eventually([&] { return IndexOf(sink_view).size() == 42; }));
    runner.Stop();
    run.join();
    CHECK(IndexOf(sink_view).size() == 42);
  }
  CHECK(state->LoadMarker("products", "backfill").value() == "running");
  CHECK(state->Load("products").value().checkpoint.token == "2");

  auto source = std::make_unique<FakeSource>(live);
  source->SetFullRead(full, true);
  auto source_view = source->shared();
  auto sink = std::make_unique<FakeSink>();
  auto sink_view = sink->shared();
  PipelineRunner runner(TestPipeline(), kFastRetry, std::move(source), std::move(sink), *state,
                        {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(source_view->full_read_polled == 100);
  CHECK(IndexOf(sink_view).size() == 100);  // the stream resumed after its checkpoint
  CHECK(state->LoadMarker("products", "backfill").value() == "done");
}

struct LiveRunner {
  test::TempDir dir;
  std::unique_ptr<StateStore> state = std::move(StateStore::Open(dir.path()).value());
  GrowingSource* source = nullptr;
  std::shared_ptr<FakeSink::Shared> sink;
  std::unique_ptr<PipelineRunner> runner;
  std::thread thread;

  LiveRunner() {
    auto owned_source = std::make_unique<GrowingSource>();
    source = owned_source.get();
    auto owned_sink = std::make_unique<FakeSink>();
    sink = owned_sink->shared();
    runner = std::make_unique<PipelineRunner>(TestPipeline(), kFastRetry, std::move(owned_source),
                                              std::move(owned_sink), *state, RunOptions{});
    thread = std::thread([this] { CHECK(runner->Run().ok()); });
  }
  ~LiveRunner() {
    runner->Stop();
    thread.join();
  }
};

TEST_CASE("A shadow gets every live batch until it is promoted, then alone",
          "[full_read][shadow]") {
  LiveRunner live;
  live.source->Append(Upsert("before", "\"1\""));
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(live.sink).count("before") == 1);

  auto shadow = std::make_shared<FakeSink>();
  auto shadow_view = shadow->shared();
  REQUIRE(live.runner->AttachShadow(shadow, 10s).ok());
  CHECK(live.runner->AttachShadow(std::make_shared<FakeSink>(), 10s).code() ==
        StatusCode::kFailedPrecondition);
  for (int i = 0; i < 50; ++i) live.source->Append(Upsert("during-" + std::to_string(i)));
  live.source->Append(Delete("during-7"));
  // WaitCaughtUp wakes the source (its idle wait is 10 s) and returns once all is acknowledged,
  // which includes the shadow.
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(shadow_view).size() == 49);
  CHECK(IndexOf(live.sink).size() == 50);
  const ShadowStats stats = live.runner->ShadowState();
  CHECK(stats.upserts == 50);
  CHECK(stats.deletes == 1);

  // A full read into the shadow (it starts after the shadow was attached, so it cannot see
  // rows deleted before): create-only, so "during-3" keeps its live value.
  test::FakeFullRead full({Upsert("before", "\"1\""), Upsert("during-3", "\"stale\"")});
  Result<FullReadStats> read = live.runner->FullRead(full, *shadow, {});
  REQUIRE(read.ok());
  CHECK(read->read == 2);
  CHECK(read->created == 1);  // "before": written before the shadow was attached
  CHECK(read->already_present == 1);
  CHECK(IndexOf(shadow_view).at("during-3") == "1");
  CHECK(IndexOf(shadow_view).count("during-7") == 0);

  REQUIRE(live.runner->PromoteShadow().ok());
  live.source->Append(Upsert("after"));
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(shadow_view).count("after") == 1);
  CHECK(IndexOf(live.sink).count("after") == 0);
}

TEST_CASE("A failing shadow never stops the live pipeline, promoting it is refused",
          "[full_read][shadow]") {
  LiveRunner live;
  auto shadow = std::make_shared<FakeSink>();
  shadow->shared()->fail_after_batches = 0;
  shadow->shared()->permanent_error = InvalidArgument("collection refused the write");
  REQUIRE(live.runner->AttachShadow(shadow, 10s).ok());
  for (int i = 0; i < 30; ++i) live.source->Append(Upsert("id-" + std::to_string(i)));
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(live.sink).size() == 30);
  CHECK(live.runner->ShadowState().failure.code() == StatusCode::kInvalidArgument);
  CHECK(live.runner->PromoteShadow().code() == StatusCode::kInvalidArgument);
  live.runner->DetachShadow();
  live.source->Append(Upsert("later"));
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(live.sink).size() == 31);
}

TEST_CASE("A shadow unavailable past its limit fails, while the live pipeline goes on",
          "[full_read][shadow]") {
  LiveRunner live;
  auto shadow = std::make_shared<FakeSink>();
  shadow->shared()->unavailable_writes = 1'000'000;
  REQUIRE(live.runner->AttachShadow(shadow, 50ms).ok());
  live.source->Append(Upsert("a"));
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
  CHECK(IndexOf(live.sink).count("a") == 1);
  CHECK(live.runner->ShadowState().failure.code() == StatusCode::kUnavailable);
}

TEST_CASE("WaitCaughtUp ends with kCancelled when cancelled", "[full_read]") {
  LiveRunner live;
  live.sink->blocked = true;
  live.source->Append(Upsert("a"));
  // Cancelled on the third look: WaitCaughtUp was waiting, and the cancel ends it.
  int looks = 0;
  CHECK(live.runner->WaitCaughtUp([&] { return ++looks > 2; }, 30s).code() ==
        StatusCode::kCancelled);
  CHECK(looks == 3);
  live.sink->blocked = false;
  REQUIRE(live.runner->WaitCaughtUp({}, 30s).ok());
}

TEST_CASE("A full read gives up on a source unavailable past its limit", "[full_read]") {
  LiveRunner live;
  FakeSource source({});
  source.SetFullRead({Upsert("a")}, false);
  std::unique_ptr<FullRead> full = std::move(source.OpenFullRead().value());
  source.shared()->full_read_fail_after = 0;
  Result<FullReadStats> read =
      live.runner->FullRead(*full, *std::make_shared<FakeSink>(), {.give_up_after = 50ms});
  CHECK(read.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(read.status().message(), Catch::Contains("gave up"));
}

}  // namespace
}  // namespace searchsync
