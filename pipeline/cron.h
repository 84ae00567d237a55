#pragma once
// CronSchedule: a 5-field cron expression (Vixie cron syntax) and the next time it fires in the
// process's local time zone (TZ, else /etc/localtime).
//
//   minute hour day-of-month month day-of-week
//   0-59   0-23 1-31         1-12  0-7 (0 and 7 are Sunday)
//
// Each field is `*` or a comma-separated list of values, ranges `a-b` and steps `*/n`, `a-b/n`
// or `a/n` (= a-max/n). Months and weekdays also take names: JAN..DEC, SUN..SAT (any case).
// @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly stand for their usual
// expressions.
//
// Day-of-month and day-of-week follow Vixie cron: when both are restricted (neither starts with
// `*`), a day matches if EITHER matches ("0 0 13 * FRI" fires on every 13th and every Friday);
// otherwise both must match.
//
// Daylight saving time, as Vixie cron does it:
//   - a local time that does not exist (the clock jumps from 02:00 to 03:00) fires at the jump
//     for schedules with a fixed minute and hour ("30 2 * * *" runs at 03:00 that day); a
//     schedule whose minute or hour field starts with `*` simply has no run in the gap;
//   - a local time that exists twice (the clock goes back from 03:00 to 02:00) fires once, at
//     its first occurrence, for fixed schedules; schedules whose minute or hour field starts with
//     `*` fire at both occurrences (they follow the clock).
//
// Thread safety: a CronSchedule is immutable; Next may be called from any thread (it uses
// localtime_r).

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/status.h"

namespace searchsync {

using WallClock = std::chrono::system_clock;
using WallTime = WallClock::time_point;

class CronSchedule {
 public:
  // kInvalidArgument with a message naming the field and the fix, e.g.
  // "minute field '75': 75 is out of range 0-59". Also refuses expressions that can never fire
  // (e.g. "0 0 30 2 *").
  static Result<CronSchedule> Parse(std::string_view expression);

  // The first time strictly after `after` at which the schedule fires, whole minutes in local
  // time (or a DST jump, see above). nullopt only if none within the next 10 years.
  std::optional<WallTime> Next(WallTime after) const;

  const std::string& expression() const { return expression_; }

 private:
  CronSchedule() = default;
  bool DayMatches(int month, int day_of_month, int day_of_week) const;

  std::string expression_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_of_month_;  // 1..31
  std::bitset<13> months_;         // 1..12
  std::bitset<7> days_of_week_;    // 0..6, Sunday = 0
  bool day_of_month_star_ = false;
  bool day_of_week_star_ = false;
  // Minute or hour starts with `*`: the schedule follows the clock through DST changes.
  bool follows_clock_ = false;
};

// "2026-11-21 03:00:00 +0100" in local time, for logs.
std::string FormatLocalTime(WallTime time);

}  // namespace searchsync
