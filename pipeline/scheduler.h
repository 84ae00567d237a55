#pragma once
// Scheduler: fires named jobs at the times of their cron schedules (reindexes, backups).
//
//   Scheduler scheduler({{.name = "reindex products", .schedule = *cron,
//                         .fire = [&] { return coordinator.Start("products").status(); }}});
//   scheduler.Start();   // a thread that ticks at each due time (and every second)
//   ...
//   scheduler.Stop();
//
// Semantics, per job:
//   - at each due time, `fire` runs once, on the scheduler thread (it should start the work
//     elsewhere and return);
//   - never two at once: when `fire` answers kFailedPrecondition (the previous run still goes
//     on), the run is skipped and logged as missed;
//   - due times that passed while the scheduler could not fire them (the machine slept, the
//     clock jumped) are logged as missed and only the latest one runs;
//   - due times that passed while the daemon was down (known from `last_fire`, see Options) are
//     logged as missed at start and are not caught up: the next run is the next due time.
//
// Time is injected (Options::now) so tests drive Tick() through any date without waiting.
//
// Thread safety: Tick() and NextFire() may be called from any thread (internal mutex); `fire`
// callbacks run with that mutex released. Start()/Stop() from the owning thread.

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/cron.h"
#include "pipeline/status.h"

namespace searchsync {

struct ScheduledJob {
  std::string name;  // names the job in logs, e.g. "reindex pipeline=products"
  CronSchedule schedule;
  // kFailedPrecondition: busy (skipped, logged as missed); any other error is logged.
  std::function<Status()> fire;
};

struct SchedulerOptions {
  std::function<WallTime()> now = [] { return WallClock::now(); };
  // The due time of the job's last run before this process started, to log runs missed while
  // the daemon was down; unset or nullopt: nothing known. Called once per job, on first Tick.
  std::function<std::optional<WallTime>(const std::string& job)> last_fire;
  // Records each due time handled (fired or skipped); pairs with `last_fire`.
  std::function<void(const std::string& job, WallTime due)> record_fire;
};

class Scheduler {
 public:
  explicit Scheduler(std::vector<ScheduledJob> jobs, SchedulerOptions options = {});
  ~Scheduler();  // Stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Fires every job due at now(). The first call only computes each job's next due time (and
  // logs runs missed while the daemon was down).
  void Tick();
  // The next due time of a job; nullopt for an unknown job, before the first Tick, or when the
  // schedule never fires again.
  std::optional<WallTime> NextFire(const std::string& job) const;

  // Ticks on a thread at each due time, and every second to follow clock changes.
  void Start();
  void Stop();

 private:
  struct Entry {
    ScheduledJob job;
    std::optional<WallTime> next;
    bool started = false;
  };
  void FirstLook(Entry& entry, WallTime now);

  const SchedulerOptions options_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace searchsync
