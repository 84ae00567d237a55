#include "pipeline/scheduler.h"

#include "pipeline/log.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kComponent = "scheduler";
// How many passed due times are counted when logging missed runs (a schedule that fires every
// minute and a daemon down for a year should not spin).
constexpr int kMaxMissedCounted = 100'000;

std::string NextText(const std::optional<WallTime>& next) {
  return next ? FormatLocalTime(*next) : std::string("never");
}

// Due times in (after, upto]: how many, and the latest.
struct PassedRuns {
  int count = 0;
  std::optional<WallTime> latest;
};

PassedRuns CountPassed(const CronSchedule& schedule, WallTime after, WallTime upto) {
  PassedRuns passed;
  std::optional<WallTime> due = schedule.Next(after);
  while (due && *due <= upto && passed.count < kMaxMissedCounted) {
    ++passed.count;
    passed.latest = due;
    due = schedule.Next(*due);
  }
  return passed;
}

}  // namespace

Scheduler::Scheduler(std::vector<ScheduledJob> jobs, SchedulerOptions options)
    : options_(std::move(options)) {
  for (ScheduledJob& job : jobs) entries_.push_back({.job = std::move(job)});
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::FirstLook(Entry& entry, WallTime now) {
  entry.started = true;
  entry.next = entry.job.schedule.Next(now);
  std::optional<WallTime> last;
  if (options_.last_fire) last = options_.last_fire(entry.job.name);
  if (last) {
    const PassedRuns missed = CountPassed(entry.job.schedule, *last, now);
    if (missed.count > 0) {
      Log(LogLevel::kWarn, kComponent,
          "missed " + std::to_string(missed.count) + " run(s) of " + entry.job.name +
              " while searchsync was not running, the last due at " +
              FormatLocalTime(*missed.latest) + "; not caught up, next run at " +
              NextText(entry.next));
      // Recorded so the next start does not report the same runs again.
      if (options_.record_fire) options_.record_fire(entry.job.name, *missed.latest);
      return;
    }
  }
  Log(LogLevel::kInfo, kComponent,
      entry.job.name + " scheduled \"" + entry.job.schedule.expression() + "\", next run at " +
          NextText(entry.next));
}

void Scheduler::Tick() {
  const WallTime now = options_.now();
  struct Due {
    Entry* entry;
    WallTime due;
  };
  std::vector<Due> due_jobs;
  {
    std::lock_guard lock(mutex_);
    for (Entry& entry : entries_) {
      if (!entry.started) {
        FirstLook(entry, now);
        continue;
      }
      if (!entry.next || *entry.next > now) continue;
      // Every due time up to now: the scheduler fires the latest, the others were missed.
      const PassedRuns passed = CountPassed(entry.job.schedule, *entry.next, now);
      if (passed.count > 0) {
        Log(LogLevel::kWarn, kComponent,
            "missed " + std::to_string(passed.count) + " run(s) of " + entry.job.name + " from " +
                FormatLocalTime(*entry.next) +
                " (the scheduler was held up or the clock jumped); running the one due at " +
                FormatLocalTime(*passed.latest));
      }
      due_jobs.push_back({&entry, passed.latest.value_or(*entry.next)});
      entry.next = entry.job.schedule.Next(now);
    }
  }
  for (const Due& due : due_jobs) {
    // entries_ never changes shape after construction, so the entry outlives the unlocked call.
    const ScheduledJob& job = due.entry->job;
    const Status status = job.fire();
    if (options_.record_fire) options_.record_fire(job.name, due.due);
    const std::string next = NextText(NextFire(job.name));
    if (status.ok()) {
      Log(LogLevel::kInfo, kComponent,
          "started " + job.name + " due at " + FormatLocalTime(due.due) + "; next run at " + next);
    } else if (status.code() == StatusCode::kFailedPrecondition) {
      Log(LogLevel::kWarn, kComponent,
          "missed the run of " + job.name + " due at " + FormatLocalTime(due.due) + ": " +
              status.message() + "; next run at " + next);
    } else {
      Log(LogLevel::kError, kComponent,
          "could not start " + job.name + " due at " + FormatLocalTime(due.due) + ": " +
              status.message() + "; next run at " + next);
    }
  }
}

std::optional<WallTime> Scheduler::NextFire(const std::string& job) const {
  std::lock_guard lock(mutex_);
  for (const Entry& entry : entries_) {
    if (entry.job.name == job) return entry.next;
  }
  return std::nullopt;
}

void Scheduler::Start() {
  if (thread_.joinable() || entries_.empty()) return;
  thread_ = std::thread([this] {
    std::unique_lock lock(wake_mutex_);
    while (!stopping_) {
      lock.unlock();
      Tick();
      // Wake at the next due time, but at least every second: a wall-clock change (NTP step,
      // DST has none in UTC terms, suspend) moves due times relative to the steady clock.
      std::optional<WallTime> soonest;
      {
        std::lock_guard entries_lock(mutex_);
        for (const Entry& entry : entries_) {
          if (entry.next && (!soonest || *entry.next < *soonest)) soonest = entry.next;
        }
      }
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(1s);
      if (soonest) {
        const auto until =
            std::chrono::duration_cast<std::chrono::milliseconds>(*soonest - options_.now());
        wait = std::clamp(until, std::chrono::milliseconds(0), wait);
      }
      lock.lock();
      wake_.wait_for(lock, wait, [this] { return stopping_; });
    }
  });
}

void Scheduler::Stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace searchsync
