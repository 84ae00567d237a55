#include "pipeline/scheduler.h"

#include <stdlib.h>
#include <time.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/log.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

WallTime Utc(int year, unsigned month, unsigned day, int hour, int minute, int second = 0) {
  const std::chrono::sys_days date{std::chrono::year{year} / std::chrono::month{month} /
                                   std::chrono::day{day}};
  return WallTime(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

// A hand-moved wall clock, log capture and UTC as the local zone for the test's scope.
struct SchedulerWorld {
  SchedulerWorld() {
    if (const char* old = getenv("TZ")) previous_tz = old;
    setenv("TZ", "UTC0", 1);
    tzset();
    SetLogOutputForTest([this](std::string_view line) { logs.emplace_back(line); });
  }
  ~SchedulerWorld() {
    SetLogOutputForTest({});
    if (previous_tz) {
      setenv("TZ", previous_tz->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

  SchedulerOptions Options() {
    return {.now = [this] { return now; },
            .last_fire = [this](const std::string& job) -> std::optional<WallTime> {
              const auto it = recorded.find(job);
              if (it == recorded.end()) return std::nullopt;
              return it->second;
            },
            .record_fire = [this](const std::string& job, WallTime due) { recorded[job] = due; }};
  }
  // Log lines (since the last call) that contain `text`.
  int LogsWith(const std::string& text) const {
    int count = 0;
    for (const std::string& line : logs) count += line.find(text) != std::string::npos;
    return count;
  }

  WallTime now = Utc(2026, 11, 21, 2, 0);
  std::map<std::string, WallTime> recorded;  // the persisted last due times
  std::vector<std::string> logs;             // only written from the test thread
  std::optional<std::string> previous_tz;
};

CronSchedule Cron(const char* expression) {
  Result<CronSchedule> schedule = CronSchedule::Parse(expression);
  REQUIRE(schedule.ok());
  return *schedule;
}

TEST_CASE("Scheduler fires a job at its due time, once", "[scheduler]") {
  SchedulerWorld world;
  int fired = 0;
  Scheduler scheduler({{.name = "reindex pipeline=products",
                        .schedule = Cron("0 3 * * *"),
                        .fire =
                            [&] {
                              ++fired;
                              return Status::Ok();
                            }}},
                      world.Options());
  scheduler.Tick();  // first look: computes the next due time only
  CHECK(fired == 0);
  REQUIRE(scheduler.NextFire("reindex pipeline=products") == Utc(2026, 11, 21, 3, 0));

  world.now = Utc(2026, 11, 21, 2, 59, 59);
  scheduler.Tick();
  CHECK(fired == 0);
  world.now = Utc(2026, 11, 21, 3, 0);
  scheduler.Tick();
  CHECK(fired == 1);
  world.now = Utc(2026, 11, 21, 3, 0, 30);
  scheduler.Tick();
  CHECK(fired == 1);
  CHECK(scheduler.NextFire("reindex pipeline=products") == Utc(2026, 11, 22, 3, 0));
  CHECK(world.recorded.at("reindex pipeline=products") == Utc(2026, 11, 21, 3, 0));
  CHECK(world.LogsWith("started reindex pipeline=products due at 2026-11-21 03:00:00") == 1);

  world.now = Utc(2026, 11, 22, 3, 0, 1);
  scheduler.Tick();
  CHECK(fired == 2);
  CHECK(world.LogsWith("missed") == 0);
}

TEST_CASE("Scheduler skips and logs a run while the previous one still goes on", "[scheduler]") {
  SchedulerWorld world;
  bool running = false;
  int started = 0;
  int refused = 0;
  // Like the reindex coordinator: one run at a time, a second Start is refused (HTTP 409).
  const auto start = [&]() -> Status {
    if (running) {
      ++refused;
      return FailedPrecondition("a reindex of products is already running (id products-1)");
    }
    running = true;
    ++started;
    return Status::Ok();
  };
  Scheduler scheduler(
      {{.name = "reindex pipeline=products", .schedule = Cron("*/10 * * * *"), .fire = start}},
      world.Options());
  scheduler.Tick();
  world.now = Utc(2026, 11, 21, 2, 10);
  scheduler.Tick();
  CHECK(started == 1);
  world.now = Utc(2026, 11, 21, 2, 20);  // still running
  scheduler.Tick();
  CHECK(started == 1);
  CHECK(refused == 1);
  CHECK(world.LogsWith("missed the run of reindex pipeline=products due at 2026-11-21 02:20:00 "
                       "+0000: a reindex of products is already running (id products-1); next "
                       "run at 2026-11-21 02:30:00 +0000") == 1);
  running = false;
  world.now = Utc(2026, 11, 21, 2, 30);
  scheduler.Tick();
  CHECK(started == 2);
}

TEST_CASE("Scheduler logs runs missed while the daemon was down, without catching up",
          "[scheduler]") {
  SchedulerWorld world;
  world.recorded["reindex pipeline=products"] = Utc(2026, 11, 18, 3, 0);  // last run, 3 days ago
  int fired = 0;
  {
    Scheduler scheduler({{.name = "reindex pipeline=products",
                          .schedule = Cron("0 3 * * *"),
                          .fire =
                              [&] {
                                ++fired;
                                return Status::Ok();
                              }}},
                        world.Options());
    world.now = Utc(2026, 11, 21, 9, 0);
    scheduler.Tick();
    CHECK(fired == 0);
    CHECK(world.LogsWith("missed 3 run(s) of reindex pipeline=products while searchsync was not "
                         "running, the last due at 2026-11-21 03:00:00 +0000; not caught up, "
                         "next run at 2026-11-22 03:00:00 +0000") == 1);
    CHECK(world.recorded.at("reindex pipeline=products") == Utc(2026, 11, 21, 3, 0));
  }
  // A restart the same day finds nothing missed.
  world.logs.clear();
  Scheduler again({{.name = "reindex pipeline=products",
                    .schedule = Cron("0 3 * * *"),
                    .fire =
                        [&] {
                          ++fired;
                          return Status::Ok();
                        }}},
                  world.Options());
  world.now = Utc(2026, 11, 21, 10, 0);
  again.Tick();
  CHECK(world.LogsWith("missed") == 0);
  CHECK(world.LogsWith("scheduled \"0 3 * * *\", next run at 2026-11-22 03:00:00 +0000") == 1);
}

TEST_CASE("Scheduler fires the latest of several due times that passed at once, logging the rest",
          "[scheduler]") {
  SchedulerWorld world;
  std::vector<WallTime> fired_at;
  Scheduler scheduler({{.name = "backup",
                        .schedule = Cron("0 * * * *"),
                        .fire =
                            [&] {
                              fired_at.push_back(world.now);
                              return Status::Ok();
                            }}},
                      world.Options());
  scheduler.Tick();
  world.now = Utc(2026, 11, 21, 5, 30);  // 03:00, 04:00 and 05:00 passed (the machine slept)
  scheduler.Tick();
  CHECK(fired_at.size() == 1);
  CHECK(world.recorded.at("backup") == Utc(2026, 11, 21, 5, 0));
  CHECK(world.LogsWith("missed 2 run(s) of backup from 2026-11-21 03:00:00 +0000") == 1);
  CHECK(scheduler.NextFire("backup") == Utc(2026, 11, 21, 6, 0));
}

TEST_CASE("Scheduler runs jobs independently and logs a job that could not start", "[scheduler]") {
  SchedulerWorld world;
  int a = 0;
  int b = 0;
  Scheduler scheduler({{.name = "job-a",
                        .schedule = Cron("0 3 * * *"),
                        .fire =
                            [&] {
                              ++a;
                              return Status::Ok();
                            }},
                       {.name = "job-b",
                        .schedule = Cron("0 3 * * *"),
                        .fire =
                            [&] {
                              ++b;
                              return Unavailable("typesense is down");
                            }}},
                      world.Options());
  scheduler.Tick();
  world.now = Utc(2026, 11, 21, 3, 0);
  scheduler.Tick();
  CHECK(a == 1);
  CHECK(b == 1);
  CHECK(world.LogsWith("could not start job-b due at 2026-11-21 03:00:00 +0000: typesense is "
                       "down") == 1);
  CHECK(scheduler.NextFire("nope") == std::nullopt);
}

TEST_CASE("Scheduler thread fires a due job and stops promptly", "[scheduler]") {
  SchedulerWorld world;
  std::mutex mutex;
  std::condition_variable fired_cv;
  bool fired = false;
  std::atomic<int64_t> offset_seconds{0};
  SchedulerOptions options = world.Options();
  // A clock that jumps to the due time once the scheduler has looked at the schedule.
  options.now = [&] { return Utc(2026, 11, 21, 2, 59, 59) + std::chrono::seconds(offset_seconds); };
  options.last_fire = nullptr;
  options.record_fire = nullptr;
  SetLogOutputForTest([](std::string_view) {});
  Scheduler scheduler({{.name = "job",
                        .schedule = Cron("0 3 * * *"),
                        .fire =
                            [&] {
                              std::lock_guard lock(mutex);
                              fired = true;
                              fired_cv.notify_all();
                              return Status::Ok();
                            }}},
                      options);
  scheduler.Start();
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!scheduler.NextFire("job") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(scheduler.NextFire("job") == Utc(2026, 11, 21, 3, 0));
  offset_seconds = 1;
  std::unique_lock lock(mutex);
  CHECK(fired_cv.wait_for(lock, 30s, [&] { return fired; }));
  lock.unlock();
  scheduler.Stop();
}

}  // namespace
}  // namespace searchsync
