#pragma once
// Retrying transient failures: the one policy of every loop that retries (the runner's sink
// writes, shadow writes, source polls, start-up and full reads; backups, restores and their S3
// calls; dropping an unfinished collection). A caller only says what it attempts; this module
// decides whether, when and how loudly to try again.
//
//   attempt --fails--> retryable? --no---------------------------------------> end: the error
//                         | yes (kUnavailable, see IsRetryable)
//                         v
//                      give up? --yes (failing longer than max_elapsed, or -> end: kUnavailable
//                         | no        max_attempts made)                       "(gave up ...)"
//                         v
//                      wait = Backoff::Next (full jitter); log (throttled); sleep --woken--> end:
//                         |                                                        kCancelled
//                         v
//                      attempt again
//
// Full jitter: the n-th wait is uniform in [0, min(max_backoff, initial_backoff * 2^n)], so the
// retries of many clients spread out and a recovering server is not hit in lockstep.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "pipeline/config.h"  // RetryOptions: the typesense.retry keys, the defaults of every loop
#include "pipeline/status.h"

namespace searchsync {

// Whether a failure is worth another attempt: kUnavailable (STYLE §3: transient, back off and
// retry). Anything else needs someone to act, is a bug, or is a shutdown.
bool IsRetryable(const Status& status);
// HTTP statuses that say "try again later": 429 and every 5xx.
bool IsRetryableHttpStatus(long http_status);

// A duration in a message, in seconds with one decimal: "0.1s", "30.0s".
std::string FormatMillis(Millis duration);

// Exponential backoff with full jitter (above). A value type; the caller owns the random
// generator and the sleeping.
class Backoff {
 public:
  Backoff(Millis initial, Millis max) : initial_(initial), max_(max) {}

  Millis Next(std::mt19937_64& rng);
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }
  // The upper bound of the next wait, before jitter.
  Millis Ceiling() const;

 private:
  Millis initial_;
  Millis max_;
  int attempts_ = 0;
};

// Logs a repeating problem at WARN once per interval, with how many times it happened since
// the last report. Thread safety: any thread.
class ThrottledLog {
 public:
  static constexpr Millis kDefaultInterval{10'000};
  explicit ThrottledLog(Millis interval = kDefaultInterval) : interval_(interval) {}

  // Logs `message` when no report was made in the last interval; otherwise counts it.
  // Returns whether it logged.
  bool Warn(const std::string& component, const std::string& message,
            std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  const Millis interval_;
  std::mutex mutex_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t suppressed_ = 0;
};

// A sleep that ends early when its loop must stop: SleepFor waits on a condition variable that
// WakeAll notifies, so a shutdown ends every retry's wait at once instead of after its backoff.
// The loop's stop conditions are its own (atomics it sets before WakeAll, or a predicate nobody
// notifies, which SleepFor re-checks every `recheck`). Thread safety: any thread.
class Waker {
 public:
  // Wakes every sleeper, which re-checks its `stop` predicate.
  void WakeAll();
  // Sleeps up to `wait`. True when the whole wait passed; false as soon as `stop()` holds
  // (checked first, at every WakeAll, and every `recheck` when one is given).
  bool SleepFor(Millis wait, const std::function<bool()>& stop,
                std::optional<Millis> recheck = std::nullopt);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
};

// One retry loop's state: the backoff, the give-up clock, the throttled log.
//
//   Retrier retrier(options, {.component = component_, .what = "import"});
//   for (;;) {
//     Status status = Attempt();
//     if (status.ok()) break;
//     if (std::optional<Status> end = retrier.Failed(status)) return *end;
//   }
//
// A Retrier may outlive one operation (a source's polls, a full read's pages): Succeeded() ends
// a failure streak, so the next one starts from the first backoff and a fresh give-up clock.
// Thread safety: one thread at a time.
class Retrier {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  struct Settings {
    std::string component;  // names the instance in log lines, e.g. "pipeline=products"
    // Starts each log line and the give-up message, e.g. "full read" ("" for none).
    std::string what;
    // Also give up after this many attempts in all (the first one included); 0: no limit.
    int max_attempts = 0;
    // How the give-up message names max_elapsed, e.g. "retry.max_elapsed ".
    std::string max_elapsed_name;
    // Shared by loops that should be throttled together (e.g. one lane's writes); unset: the
    // Retrier's own.
    ThrottledLog* log = nullptr;
    // Sleeps a backoff; false when the loop must stop (the Retrier then ends with kCancelled).
    // Unset: an uninterruptible sleep.
    std::function<bool(Millis)> sleep;
    // Called before each backoff with the failure and the wait (status bookkeeping).
    std::function<void(const Status&, Millis)> on_retry;
    // Tests: the clock and the random source.
    std::function<TimePoint()> now;
    std::optional<uint64_t> seed;
  };

  Retrier(RetryOptions options, Settings settings);

  // After a failed attempt: sleeps a backoff and returns nullopt, meaning "attempt again". Or
  // returns how the loop ends: `failure` itself when it is not retryable; kUnavailable with
  // "(gave up after ...)" appended once max_elapsed or max_attempts is reached; kCancelled
  // when the sleep was cut short.
  std::optional<Status> Failed(const Status& failure);
  // The last attempt succeeded: the failure streak (if any) is over.
  void Succeeded();

  // Failed attempts in the current streak.
  int failures() const { return backoff_.attempts(); }

 private:
  TimePoint Now() const;

  const RetryOptions options_;
  Settings settings_;
  ThrottledLog own_log_;
  Backoff backoff_;
  std::mt19937_64 rng_;
  // When the give-up clock started: the Retrier's creation, then the first failure after each
  // success (nullopt until then).
  std::optional<TimePoint> streak_started_;
};

}  // namespace searchsync
