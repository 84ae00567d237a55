#include "pipeline/runner.h"

#include <catch2/catch.hpp>
#include <climits>
#include <future>
#include <random>
#include <thread>

#include "tests/support/fakes.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::Delete;
using test::FakeSink;
using test::FakeSource;
using test::Upsert;
using test::WaitUntil;

// Runs `runner` on its own thread. Destroying it stops the runner without a grace period and
// waits for Run, so a failed check ends the test instead of hanging it.
class BackgroundRun {
 public:
  explicit BackgroundRun(PipelineRunner& runner)
      : runner_(runner),
        result_(std::async(std::launch::async, [&runner] { return runner.Run(); })) {}
  ~BackgroundRun() { runner_.StopNow(); }  // then result_'s destructor waits for Run
  BackgroundRun(const BackgroundRun&) = delete;
  BackgroundRun& operator=(const BackgroundRun&) = delete;

  // True once Run returned, within a generous deadline.
  bool Returns() { return result_.wait_for(test::ScaledTimeout(60s)) == std::future_status::ready; }
  Status Get() { return result_.get(); }

 private:
  PipelineRunner& runner_;
  std::future<Status> result_;
};

PipelineConfig TestPipeline(size_t max_events = 10, int concurrency = 2) {
  PipelineConfig config{.name = "products"};
  config.sink.batch = {.max_events = max_events, .max_bytes = 1 << 20, .flush_interval = 1h};
  config.sink.concurrency = concurrency;
  config.queue = {.max_events = 100, .max_bytes = 1 << 20};
  return config;
}

constexpr RetryOptions kFastRetry{.initial_backoff = 1ms, .max_backoff = 5ms};

struct Harness {
  test::TempDir dir;
  std::unique_ptr<StateStore> state = std::move(StateStore::Open(dir.path()).value());

  Status RunOnce(PipelineConfig config, std::vector<Event> events,
                 std::shared_ptr<FakeSink::Shared>* sink_view = nullptr,
                 std::shared_ptr<FakeSink::Shared> sink_shared = nullptr) {
    auto sink = std::make_unique<FakeSink>();
    if (sink_shared) {
      // Reuse an index across runs by copying it in.
      std::lock_guard lock(sink_shared->mutex);
      sink->shared()->index = sink_shared->index;
    }
    if (sink_view) *sink_view = sink->shared();
    PipelineRunner runner(std::move(config), kFastRetry,
                          std::make_unique<FakeSource>(std::move(events)), std::move(sink), *state,
                          {.once = true, .poll_batch = 7});
    return runner.Run();
  }
};

TEST_CASE("Runner in once mode writes every event and checkpoints the last position", "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 95; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  std::shared_ptr<FakeSink::Shared> sink;
  REQUIRE(harness.RunOnce(TestPipeline(), events, &sink).ok());
  CHECK(sink->index.size() == 95);
  const PipelineState state = harness.state->Load("products").value();
  CHECK(state.checkpoint.token == "95");
  CHECK(state.counters.events_acked == 95);

  // A second run resumes from the checkpoint and sends nothing.
  std::shared_ptr<FakeSink::Shared> second;
  REQUIRE(harness.RunOnce(TestPipeline(), events, &second).ok());
  CHECK(second->batch_sizes.empty());
}

TEST_CASE("Runner keeps per-id order across concurrent lanes", "[runner]") {
  Harness harness;
  std::mt19937_64 rng(42);
  std::vector<Event> events;
  std::map<std::string, std::optional<std::string>> expected;
  for (int i = 0; i < 3000; ++i) {
    const std::string id = "id-" + std::to_string(rng() % 40);
    if (rng() % 4 == 0) {
      events.push_back(Delete(id));
      expected[id] = std::nullopt;
    } else {
      const std::string value = std::to_string(i);
      events.push_back(Upsert(id, value));
      expected[id] = value;
    }
  }
  std::shared_ptr<FakeSink::Shared> sink;
  REQUIRE(harness.RunOnce(TestPipeline(/*max_events=*/5, /*concurrency=*/4), events, &sink).ok());
  CHECK_FALSE(sink->same_id_in_two_writes);
  for (const auto& [id, value] : expected) {
    INFO(id);
    if (value) {
      REQUIRE(sink->index.count(id));
      CHECK(sink->index.at(id) == *value);
    } else {
      CHECK(sink->index.count(id) == 0);
    }
  }
}

TEST_CASE("Runner never checkpoints past an event the sink did not acknowledge", "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 200; ++i) events.push_back(Upsert("id-" + std::to_string(i)));

  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->fail_after_batches = 7;  // then "API key refused" for good
  PipelineRunner runner(TestPipeline(/*max_events=*/10, /*concurrency=*/3), kFastRetry,
                        std::make_unique<FakeSource>(events), std::move(sink), *harness.state,
                        {.once = true});
  const Status status = runner.Run();
  CHECK(status.code() == StatusCode::kFailedPrecondition);

  const PipelineState state = harness.state->Load("products").value();
  CHECK(state.state == RunState::kFailed);
  // The 7 acknowledged batches were checkpointed before the failure, so the check below covers
  // something.
  REQUIRE_FALSE(state.checkpoint.empty());
  const size_t checkpoint = std::stoul(state.checkpoint.token);
  CHECK(checkpoint > 0);
  // Every event up to the checkpoint is in the index.
  for (size_t i = 0; i < checkpoint; ++i) CHECK(view->index.count("id-" + std::to_string(i)));
  CHECK(checkpoint < 200);

  // After the sink is fixed, a new run converges.
  std::shared_ptr<FakeSink::Shared> second;
  REQUIRE(harness.RunOnce(TestPipeline(), events, &second, view).ok());
  CHECK(second->index.size() == 200);
}

TEST_CASE("Runner retries an unavailable sink and loses nothing", "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 50; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->unavailable_writes = 12;
  PipelineRunner runner(TestPipeline(), kFastRetry, std::make_unique<FakeSource>(events),
                        std::move(sink), *harness.state, {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(view->index.size() == 50);
  CHECK(view->unavailable_writes == 0);
}

TEST_CASE("Runner dead-letters rejected documents and transform failures and goes on", "[runner]") {
  Harness harness;
  PipelineConfig config = TestPipeline();
  config.transforms.push_back([](Event event) -> Result<Event> {
    if (event.id == "bad-transform") return InvalidArgument("cast: field `v`: not a number");
    return event;
  });
  std::vector<Event> events = {Upsert("a"), Upsert("rejected"), Upsert("bad-transform"),
                               Upsert("b")};
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->reject_ids = {"rejected"};
  PipelineRunner runner(config, kFastRetry, std::make_unique<FakeSource>(events), std::move(sink),
                        *harness.state, {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(view->index.size() == 2);
  CHECK(runner.Report().dead_lettered_this_run == 2);
  const auto letters = harness.state->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 2);
  std::set<std::string> ids;
  for (const DeadLetter& letter : letters) {
    ids.insert(letter.document_id);
    CHECK_FALSE(letter.error.empty());
    CHECK(letter.document.find("\"id\":") != std::string::npos);
  }
  CHECK(ids == std::set<std::string>{"rejected", "bad-transform"});
  const PipelineState state = harness.state->Load("products").value();
  CHECK(state.checkpoint.token == "4");
  CHECK(state.counters.dead_lettered == 2);
}

TEST_CASE(
    "Runner dead-letters events a source marks as bad, never sends them, and checkpoints "
    "past them",
    "[runner]") {
  Harness harness;
  Event bad = Upsert("orders/3/17", "\"not json\"");
  bad.dead_letter_reason = "maxwell message orders/3/17: not JSON";
  std::vector<Event> events = {Upsert("a"), bad, Upsert("b")};
  std::shared_ptr<FakeSink::Shared> sink;
  REQUIRE(harness.RunOnce(TestPipeline(), events, &sink).ok());
  CHECK(sink->index.size() == 2);
  CHECK_FALSE(sink->index.contains("orders/3/17"));
  const auto letters = harness.state->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "orders/3/17");
  CHECK(letters[0].error == "maxwell message orders/3/17: not JSON");
  CHECK(letters[0].position == "2");
  CHECK(letters[0].document.find("not json") != std::string::npos);
  const PipelineState state = harness.state->Load("products").value();
  CHECK(state.checkpoint.token == "3");
  CHECK(state.counters.dead_lettered == 1);
  CHECK(state.counters.events_acked == 3);
}

TEST_CASE("Runner pauses the source while the sink is blocked: memory stays bounded", "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 5000; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  auto source = std::make_unique<FakeSource>(events);
  auto source_view = source->shared();
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->blocked = true;
  PipelineConfig config = TestPipeline(/*max_events=*/10, /*concurrency=*/2);
  PipelineRunner runner(config, kFastRetry, std::move(source), std::move(sink), *harness.state,
                        {.once = true, .poll_batch = 50});
  std::thread run([&] { REQUIRE(runner.Run().ok()); });
  // Wait until the pipeline has filled up and stalled.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  size_t last = 0;
  for (int stable = 0; stable < 20 && std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(10ms);
    const size_t now = source_view->polled;
    stable = (now == last && now > 0) ? stable + 1 : 0;
    last = now;
  }
  // queue (100) + dispatcher chunk (256) + two full lanes and a batch in each write (4 x 10)
  // + the poll the source holds while it waits (50).
  CHECK(source_view->polled <= 100 + 256 + 40 + 50);
  CHECK(source_view->polled < 5000);
  CHECK(runner.Report().queue_events <= 100);
  view->blocked = false;
  run.join();
  CHECK(view->index.size() == 5000);
}

TEST_CASE(
    "Runner dead-letters a document the sink keeps failing alone, stores the rest, and a "
    "later change of that document still wins",
    "[runner]") {
  Harness harness;
  const std::vector<Event> events = {
      Upsert("a"), Upsert("poison", "1"), Upsert("b"),           Upsert("c"),
      Upsert("d"), Upsert("e"),           Upsert("poison", "2"), Upsert("f")};
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  // A per-line 500 for "poison" in its first batch, then in the five writes of it alone; the
  // later change of it is stored.
  view->retryable_ids["poison"] = 6;
  PipelineRunner runner(TestPipeline(/*max_events=*/3, /*concurrency=*/1), kFastRetry,
                        std::make_unique<FakeSource>(events), std::move(sink), *harness.state,
                        {.once = true, .poll_batch = 7});
  REQUIRE(runner.Run().ok());
  for (const char* id : {"a", "b", "c", "d", "e", "f"}) CHECK(view->index.count(id) == 1);
  REQUIRE(view->index.count("poison") == 1);
  CHECK(view->index.at("poison") == "2");
  CHECK(view->writes_of_id.at("poison") == 7);
  const auto letters = harness.state->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "poison");
  CHECK(letters[0].document == R"({"id":"poison","v":1})");
  CHECK(letters[0].error ==
        "HTTP 500: Could not write to on-disk storage. (failed 5 times, written alone)");
  const PipelineState state = harness.state->Load("products").value();
  CHECK(state.checkpoint.token == "8");
  CHECK(state.state == RunState::kCaughtUp);
}

TEST_CASE("Runner stores a document that fails alone fewer times than the bound", "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->retryable_ids["slow"] = 4;
  PipelineRunner runner(
      TestPipeline(/*max_events=*/10, /*concurrency=*/1), kFastRetry,
      std::make_unique<FakeSource>(std::vector<Event>{Upsert("slow"), Upsert("ok")}),
      std::move(sink), *harness.state, {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(view->index.count("slow") == 1);
  CHECK(view->index.count("ok") == 1);
  CHECK(harness.state->CountDeadLetters("products").value() == 0);
}

TEST_CASE(
    "Runner retries, and never dead-letters, a batch of one document the sink keeps failing "
    "(a trickle of changes during an outage)",
    "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->retryable_ids["lonely"] = 12;  // more than the bound for a document narrowed to alone
  PipelineRunner runner(TestPipeline(/*max_events=*/1, /*concurrency=*/1), kFastRetry,
                        std::make_unique<FakeSource>(std::vector<Event>{Upsert("lonely")}),
                        std::move(sink), *harness.state, {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(view->index.count("lonely") == 1);
  CHECK(view->writes_of_id.at("lonely") == 13);
  CHECK(harness.state->CountDeadLetters("products").value() == 0);
  CHECK(harness.state->Load("products").value().checkpoint.token == "1");
}

TEST_CASE(
    "Runner retries, and never dead-letters, when the sink fails every document of a "
    "batch (the server, not the documents)",
    "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  std::vector<Event> events;
  for (const char* id : {"a", "b", "c", "d"}) {
    events.push_back(Upsert(id));
    view->retryable_ids[id] = 12;  // more than the bound for one document alone
  }
  PipelineRunner runner(TestPipeline(/*max_events=*/10, /*concurrency=*/1), kFastRetry,
                        std::make_unique<FakeSource>(events), std::move(sink), *harness.state,
                        {.once = true});
  REQUIRE(runner.Run().ok());
  CHECK(view->index.size() == 4);
  CHECK(harness.state->CountDeadLetters("products").value() == 0);
  CHECK(harness.state->Load("products").value().checkpoint.token == "4");
}

TEST_CASE("Runner gives up at start-up after retry.max_elapsed when the sink cannot be prepared",
          "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  sink->shared()->prepare_unavailable = true;
  RetryOptions retry = kFastRetry;
  retry.max_elapsed = 50ms;
  PipelineRunner runner(TestPipeline(), retry,
                        std::make_unique<FakeSource>(std::vector<Event>{Upsert("a")}),
                        std::move(sink), *harness.state, {.once = true});
  BackgroundRun run(runner);
  if (!run.Returns()) FAIL("start-up was retried past retry.max_elapsed");
  const Status status = run.Get();
  CHECK(status.code() == StatusCode::kUnavailable);
  CHECK_THAT(status.message(), Catch::Contains("HTTP 503") &&
                                   Catch::Contains("gave up after retry.max_elapsed 0.1s"));
  CHECK(harness.state->Load("products").value().state == RunState::kFailed);
}

TEST_CASE(
    "Runner says retrying while the sink fails, even with the source caught up, and "
    "clears last_error once it recovers",
    "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->unavailable_writes = INT_MAX;
  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  PipelineConfig config = TestPipeline();
  config.sink.batch.flush_interval = 1ms;
  PipelineRunner runner(config, kFastRetry, std::make_unique<FakeSource>(events), std::move(sink),
                        *harness.state, {});
  BackgroundRun run(runner);
  REQUIRE(WaitUntil([&] { return runner.Report().retries >= 20; }, 60s));
  // The source polls (and finds nothing) every 10 ms meanwhile.
  for (int sample = 0; sample < 100; ++sample) {
    const PipelineReport report = runner.Report();
    REQUIRE(report.state == RunState::kRetrying);
    CHECK_THAT(report.last_error, Catch::Contains("HTTP 503"));
    std::this_thread::sleep_for(2ms);  // spreads the samples over source polls
  }
  {
    std::lock_guard lock(view->mutex);
    view->unavailable_writes = 0;
  }
  REQUIRE(WaitUntil([&] { return runner.Report().state == RunState::kCaughtUp; }, 60s));
  CHECK(runner.Report().last_error.empty());
  CHECK(view->index.size() == 5);
  runner.Stop();
  REQUIRE(run.Returns());
  CHECK(run.Get().ok());
  CHECK(harness.state->Load("products").value().last_error.empty());
}

TEST_CASE("Runner stopped while a poll is under way flushes and acknowledges what that poll read",
          "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 5; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  auto source = std::make_unique<FakeSource>(events);
  auto source_view = source->shared();
  auto sink = std::make_unique<FakeSink>();
  auto sink_view = sink->shared();
  PipelineRunner runner(TestPipeline(), kFastRetry, std::move(source), std::move(sink),
                        *harness.state, {});
  source_view->during_poll = [&] { runner.Stop(); };  // SIGTERM while the rows are in hand
  REQUIRE(runner.Run().ok());
  const PipelineReport report = runner.Report();
  CHECK(report.counters.events_read == 5);
  CHECK(report.counters.events_acked == 5);
  CHECK(sink_view->index.size() == 5);
  CHECK(harness.state->Load("products").value().checkpoint.token == "5");
}

TEST_CASE(
    "Runner with a source that never answers says retrying, and a stopped --once run is "
    "stopped, not caught_up",
    "[runner]") {
  Harness harness;
  auto source = std::make_unique<FakeSource>(std::vector<Event>{Upsert("a")});
  source->shared()->unavailable = true;
  PipelineRunner runner(TestPipeline(), kFastRetry, std::move(source), std::make_unique<FakeSink>(),
                        *harness.state, {.once = true});
  BackgroundRun run(runner);
  REQUIRE(WaitUntil([&] { return runner.Report().retries >= 3; }, 60s));
  CHECK(runner.Report().state == RunState::kRetrying);
  CHECK_THAT(runner.Report().last_error, Catch::Contains("connection refused"));
  runner.Stop();
  REQUIRE(run.Returns());
  CHECK(run.Get().ok());
  CHECK(runner.Report().state == RunState::kStopped);
  CHECK(harness.state->Load("products").value().state == RunState::kStopped);
}

TEST_CASE(
    "Runner stopped with events unacknowledged stores counters that agree with its "
    "checkpoint, so a restart shows no false backlog",
    "[runner]") {
  Harness harness;
  std::vector<Event> events;
  for (int i = 0; i < 200; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  auto sink = std::make_unique<FakeSink>();
  auto view = sink->shared();
  view->unavailable_ids = {"id-120"};  // its batch is retried until the stop gives up on it
  PipelineRunner runner(TestPipeline(/*max_events=*/10, /*concurrency=*/2), kFastRetry,
                        std::make_unique<FakeSource>(events), std::move(sink), *harness.state,
                        {.once = true, .shutdown_grace = 100ms, .poll_batch = 50});
  BackgroundRun run(runner);
  REQUIRE(WaitUntil(
      [&] {
        const PipelineReport report = runner.Report();
        return report.counters.events_read == 200 && report.retries >= 3;
      },
      60s));
  runner.Stop();
  REQUIRE(run.Returns());
  CHECK(run.Get().ok());
  const PipelineReport stopped = runner.Report();
  CHECK(stopped.state == RunState::kStopped);
  CHECK(stopped.in_flight > 0);
  const PipelineState first = harness.state->Load("products").value();
  CHECK(first.state == RunState::kStopped);
  const uint64_t checkpoint = std::stoull(first.checkpoint.token);
  CHECK(checkpoint <= 120);
  CHECK(first.counters.events_read == checkpoint);
  CHECK(first.counters.events_acked == checkpoint);

  // The restart reads from the checkpoint again and counts each event once.
  view->unavailable_ids.clear();
  std::shared_ptr<FakeSink::Shared> second;
  REQUIRE(harness.RunOnce(TestPipeline(), events, &second).ok());
  const PipelineState after = harness.state->Load("products").value();
  CHECK(after.checkpoint.token == "200");
  CHECK(after.counters.events_read == 200);
  CHECK(after.counters.events_acked == 200);
}

TEST_CASE("Runner StopNow ends the shutdown grace period at once", "[runner]") {
  Harness harness;
  auto sink = std::make_unique<FakeSink>();
  sink->shared()->unavailable_writes = INT_MAX;
  PipelineRunner runner(
      TestPipeline(), kFastRetry, std::make_unique<FakeSource>(std::vector<Event>{Upsert("a")}),
      std::move(sink), *harness.state, {.once = true, .shutdown_grace = std::chrono::hours(1)});
  BackgroundRun run(runner);
  REQUIRE(WaitUntil([&] { return runner.Report().retries >= 3; }, 60s));
  runner.Stop();
  runner.StopNow();
  REQUIRE(run.Returns());
  CHECK(run.Get().ok());
  CHECK(runner.Report().in_flight == 1);
  CHECK(harness.state->Load("products").value().state == RunState::kStopped);
}

}  // namespace
}  // namespace searchsync
