#include "pipeline/retry.h"

#include <algorithm>
#include <cstdio>
#include <thread>

#include "pipeline/log.h"

namespace searchsync {

bool IsRetryable(const Status& status) { return status.code() == StatusCode::kUnavailable; }

bool IsRetryableHttpStatus(long http_status) { return http_status == 429 || http_status >= 500; }

std::string FormatMillis(Millis duration) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1fs", static_cast<double>(duration.count()) / 1000.0);
  return buffer;
}

// ---- Backoff ---------------------------------------------------------------------------------

Millis Backoff::Ceiling() const {
  // Doubling stops once past max_, so the shift never overflows.
  Millis ceiling = initial_;
  for (int i = 0; i < attempts_ && ceiling < max_; ++i) ceiling *= 2;
  return std::min(ceiling, max_);
}

Millis Backoff::Next(std::mt19937_64& rng) {
  const Millis ceiling = Ceiling();
  ++attempts_;
  std::uniform_int_distribution<int64_t> jitter(0, ceiling.count());
  return Millis(jitter(rng));
}

// ---- ThrottledLog ----------------------------------------------------------------------------

bool ThrottledLog::Warn(const std::string& component, const std::string& message,
                        std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  ++suppressed_;
  if (last_ && now - *last_ < interval_) return false;
  Log(LogLevel::kWarn, component,
      suppressed_ > 1 ? message + " (" + std::to_string(suppressed_) + " times since last report)"
                      : message);
  suppressed_ = 0;
  last_ = now;
  return true;
}

// ---- Waker -----------------------------------------------------------------------------------

void Waker::WakeAll() {
  // Taking the mutex orders this wake after a sleeper's check of its stop predicate, so a
  // stop flag set before WakeAll is never missed.
  { std::lock_guard lock(mutex_); }
  wake_.notify_all();
}

bool Waker::SleepFor(Millis wait, const std::function<bool()>& stop,
                     std::optional<Millis> recheck) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  std::unique_lock lock(mutex_);
  for (;;) {
    if (stop && stop()) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    const auto until = recheck ? std::min(deadline, now + *recheck) : deadline;
    wake_.wait_until(lock, until);
  }
}

// ---- Retrier ---------------------------------------------------------------------------------

Retrier::Retrier(RetryOptions options, Settings settings)
    : options_(options),
      settings_(std::move(settings)),
      backoff_(options.initial_backoff, options.max_backoff),
      rng_(settings_.seed ? *settings_.seed : std::random_device{}()),
      streak_started_(Now()) {}

Retrier::TimePoint Retrier::Now() const {
  return settings_.now ? settings_.now() : std::chrono::steady_clock::now();
}

void Retrier::Succeeded() {
  backoff_.Reset();
  streak_started_.reset();
}

std::optional<Status> Retrier::Failed(const Status& failure) {
  if (!IsRetryable(failure)) return failure;
  const TimePoint now = Now();
  if (!streak_started_) streak_started_ = now;
  const std::string prefix = settings_.what.empty() ? "" : settings_.what + ": ";
  const int attempts = backoff_.attempts() + 1;
  if (options_.max_elapsed && now - *streak_started_ > *options_.max_elapsed) {
    return Unavailable(failure.message() + " (" + settings_.what +
                       (settings_.what.empty() ? "" : " ") + "gave up after " +
                       settings_.max_elapsed_name + FormatMillis(*options_.max_elapsed) + ")");
  }
  if (settings_.max_attempts > 0 && attempts >= settings_.max_attempts) {
    return Unavailable(failure.message() + " (" + settings_.what +
                       (settings_.what.empty() ? "" : " ") + "gave up after " +
                       std::to_string(attempts) + " attempts)");
  }
  const Millis wait = backoff_.Next(rng_);
  if (settings_.on_retry) settings_.on_retry(failure, wait);
  ThrottledLog& log = settings_.log != nullptr ? *settings_.log : own_log_;
  log.Warn(settings_.component, prefix + failure.message() + " attempt=" +
                                    std::to_string(attempts) + " next_in=" + FormatMillis(wait));
  if (settings_.sleep) {
    if (!settings_.sleep(wait)) return Cancelled(prefix + "stopped while retrying");
  } else {
    std::this_thread::sleep_for(wait);
  }
  return std::nullopt;
}

}  // namespace searchsync
