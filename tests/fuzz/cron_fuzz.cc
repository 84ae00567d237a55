// Cron expressions: Parse accepts or explains; an accepted schedule fires strictly after the
// time asked, whole minutes later, again and again.
#include <chrono>

#include "pipeline/cron.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void FuzzCron(std::string_view input) {
  Result<CronSchedule> schedule = CronSchedule::Parse(input);
  if (!schedule.ok()) {
    Check(!schedule.status().message().empty(), "a refused expression says why");
    return;
  }
  using std::chrono::sys_days;
  WallTime after = sys_days(std::chrono::year(2026) / 3 / 29) + std::chrono::minutes(7);
  for (int run = 0; run < 3; ++run) {
    const std::optional<WallTime> next = schedule->Next(after);
    Check(next.has_value(), "an accepted schedule fires within ten years");
    Check(*next > after, "the next run is after the time asked");
    after = *next;
  }
}

}  // namespace searchsync::fuzz
