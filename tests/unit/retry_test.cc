#include "pipeline/retry.h"

#include <catch2/catch.hpp>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/log.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

TEST_CASE("Backoff doubles its ceiling up to max and jitters below it", "[retry]") {
  Backoff backoff(100ms, 1s);
  std::mt19937_64 rng(7);
  const std::chrono::milliseconds expected_ceilings[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (const auto ceiling : expected_ceilings) {
    CHECK(backoff.Ceiling() == ceiling);
    const auto wait = backoff.Next(rng);
    CHECK(wait >= 0ms);
    CHECK(wait <= ceiling);
  }
  backoff.Reset();
  CHECK(backoff.Ceiling() == 100ms);
}

TEST_CASE("Backoff waits spread over the whole jitter range", "[retry]") {
  std::mt19937_64 rng(1);
  std::chrono::milliseconds low{1000}, high{0};
  for (int i = 0; i < 1000; ++i) {
    Backoff backoff(1000ms, 1000ms);
    const auto wait = backoff.Next(rng);
    low = std::min(low, wait);
    high = std::max(high, wait);
  }
  CHECK(low < 100ms);
  CHECK(high > 900ms);
}

TEST_CASE("Backoff ceiling never overflows after many attempts", "[retry]") {
  Backoff backoff(100ms, 30s);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) (void)backoff.Next(rng);
  CHECK(backoff.Ceiling() == 30s);
}

TEST_CASE("Only transient failures and transient HTTP statuses are retryable", "[retry]") {
  CHECK(IsRetryable(Unavailable("typesense: HTTP 503")));
  CHECK_FALSE(IsRetryable(InvalidArgument("bad document")));
  CHECK_FALSE(IsRetryable(FailedPrecondition("HTTP 401")));
  CHECK_FALSE(IsRetryable(Cancelled("stopping")));
  CHECK_FALSE(IsRetryable(Status::Ok()));
  for (long status : {429L, 500L, 502L, 503L, 504L}) CHECK(IsRetryableHttpStatus(status));
  for (long status : {200L, 400L, 401L, 403L, 404L, 409L}) {
    CHECK_FALSE(IsRetryableHttpStatus(status));
  }
}

// A Retrier on a simulated clock: each sleep moves the clock by the wait, and is recorded.
struct SimulatedRetrier {
  explicit SimulatedRetrier(RetryOptions options, Retrier::Settings settings = {}) {
    settings.now = [this] { return now; };
    settings.sleep = [this](Millis wait) {
      waits.push_back(wait);
      now += wait;
      return !cancelled;
    };
    if (!settings.seed) settings.seed = 42;
    retrier.emplace(options, std::move(settings));
  }
  std::chrono::steady_clock::time_point now{};
  std::vector<Millis> waits;
  bool cancelled = false;
  std::optional<Retrier> retrier;
};

TEST_CASE("Retrier ends at once on a failure that is not retryable", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 100ms, .max_backoff = 1s});
  const std::optional<Status> end = simulated.retrier->Failed(FailedPrecondition("HTTP 401"));
  REQUIRE(end);
  CHECK(end->code() == StatusCode::kFailedPrecondition);
  CHECK(end->message() == "HTTP 401");
  CHECK(simulated.waits.empty());
}

TEST_CASE("Retrier waits with full jitter under a doubling bound", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 100ms, .max_backoff = 800ms});
  Millis ceiling = 100ms;
  std::set<int64_t> distinct;
  for (int attempt = 0; attempt < 200; ++attempt) {
    REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("HTTP 503")));
    const Millis wait = simulated.waits.back();
    CHECK(wait >= 0ms);
    CHECK(wait <= ceiling);
    distinct.insert(wait.count());
    ceiling = std::min<Millis>(ceiling * 2, 800ms);
  }
  // Jittered, not the bound every time: the waits spread over [0, 800ms].
  CHECK(distinct.size() > 50);
  CHECK(*distinct.begin() < 100);
  CHECK(*distinct.rbegin() > 700);
}

TEST_CASE("Retrier starts from the first backoff again after a success", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 10ms, .max_backoff = 10s});
  for (int attempt = 0; attempt < 10; ++attempt) {
    REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("down")));
  }
  CHECK(simulated.retrier->failures() == 10);
  simulated.retrier->Succeeded();
  CHECK(simulated.retrier->failures() == 0);
  REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("down")));
  CHECK(simulated.waits.back() <= 10ms);
}

TEST_CASE("Retrier gives up once failing longer than max_elapsed, not before", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 100ms, .max_backoff = 1s, .max_elapsed = 5s},
                             {.max_elapsed_name = "retry.max_elapsed "});
  const auto started = simulated.now;
  std::optional<Status> end;
  int retries = 0;
  while (!(end = simulated.retrier->Failed(Unavailable("typesense: HTTP 503")))) {
    ++retries;
    REQUIRE(retries < 1000);
  }
  CHECK(end->code() == StatusCode::kUnavailable);
  CHECK(end->message() == "typesense: HTTP 503 (gave up after retry.max_elapsed 5.0s)");
  // It retried right up to max_elapsed, and gave up at the first failure past it.
  CHECK(simulated.now - started > 5s);
  CHECK(simulated.now - started - simulated.waits.back() <= 5s);
}

TEST_CASE("Retrier's give-up clock starts again with each failure streak", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 1s, .max_backoff = 1s, .max_elapsed = 3s});
  for (int streak = 0; streak < 5; ++streak) {
    // Two failures of up to a second each, then a success: never 3 s of failing in a row.
    REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("down")));
    REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("down")));
    simulated.retrier->Succeeded();
    simulated.now += 10s;  // time passes between streaks: not failing
  }
}

TEST_CASE("Retrier gives up after max_attempts attempts", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 200ms, .max_backoff = 10s},
                             {.what = "s3 PUT b/k", .max_attempts = 5});
  int retries = 0;
  std::optional<Status> end;
  while (!(end = simulated.retrier->Failed(Unavailable("HTTP 503")))) ++retries;
  CHECK(retries == 4);  // 5 attempts: the first and 4 retries
  CHECK(end->message() == "HTTP 503 (s3 PUT b/k gave up after 5 attempts)");
}

TEST_CASE("Retrier ends with kCancelled when its sleep is cut short", "[retry]") {
  SimulatedRetrier simulated({.initial_backoff = 100ms, .max_backoff = 1s}, {.what = "full read"});
  REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("down")));
  simulated.cancelled = true;
  const std::optional<Status> end = simulated.retrier->Failed(Unavailable("down"));
  REQUIRE(end);
  CHECK(end->code() == StatusCode::kCancelled);
}

TEST_CASE("Retrier reports each retry and logs once per throttle window", "[retry]") {
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  SetLogOutputForTest([&](std::string_view line) {
    std::lock_guard lock(lines_mutex);
    lines.emplace_back(line);
  });
  ThrottledLog log(1min);
  std::vector<std::string> reported;
  SimulatedRetrier simulated(
      {.initial_backoff = 1ms, .max_backoff = 1ms},
      {.component = "pipeline=products",
       .what = "source",
       .log = &log,
       .on_retry = [&](const Status& status, Millis) { reported.push_back(status.message()); }});
  for (int attempt = 0; attempt < 5; ++attempt) {
    REQUIRE_FALSE(simulated.retrier->Failed(Unavailable("couchdb: connection refused")));
  }
  SetLogOutputForTest({});
  CHECK(reported.size() == 5);
  REQUIRE(lines.size() == 1);  // the rest fall in the same minute (real clock)
  CHECK_THAT(lines[0], Catch::Contains("[pipeline=products] source: couchdb: connection refused "
                                       "attempt=1 next_in="));
}

TEST_CASE("ThrottledLog reports what it suppressed once the interval passed", "[retry]") {
  std::vector<std::string> lines;
  SetLogOutputForTest([&](std::string_view line) { lines.emplace_back(line); });
  ThrottledLog log(10s);
  const std::chrono::steady_clock::time_point t0{};
  CHECK(log.Warn("c", "down", t0));
  CHECK_FALSE(log.Warn("c", "down", t0 + 1s));
  CHECK_FALSE(log.Warn("c", "down", t0 + 9s));
  CHECK(log.Warn("c", "down", t0 + 10s));
  SetLogOutputForTest({});
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[1], Catch::Contains("down (3 times since last report)"));
}

TEST_CASE("Waker ends a long sleep as soon as its loop stops", "[retry]") {
  Waker waker;
  std::atomic<bool> stop{false};
  std::promise<bool> slept;
  std::thread sleeper([&] { slept.set_value(waker.SleepFor(1h, [&] { return stop.load(); })); });
  std::future<bool> result = slept.get_future();
  stop = true;
  waker.WakeAll();
  // Generous: an hour's sleep that ended within a minute was woken.
  REQUIRE(result.wait_for(60s) == std::future_status::ready);
  CHECK_FALSE(result.get());
  sleeper.join();
}

TEST_CASE("Waker re-checks a predicate nobody notifies", "[retry]") {
  Waker waker;
  std::atomic<bool> stop{false};
  std::promise<bool> slept;
  std::thread sleeper([&] {
    slept.set_value(waker.SleepFor(
        1h, [&] { return stop.load(); }, 10ms));
  });
  std::future<bool> result = slept.get_future();
  stop = true;  // no WakeAll
  REQUIRE(result.wait_for(60s) == std::future_status::ready);
  CHECK_FALSE(result.get());
  sleeper.join();
}

TEST_CASE("Waker sleeps the whole wait when nothing stops it", "[retry]") {
  Waker waker;
  const auto before = std::chrono::steady_clock::now();
  CHECK(waker.SleepFor(20ms, [] { return false; }));
  CHECK(std::chrono::steady_clock::now() - before >= 20ms);
  CHECK_FALSE(waker.SleepFor(1h, [] { return true; }));
}

}  // namespace
}  // namespace searchsync
