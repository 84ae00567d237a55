#include "pipeline/cron.h"

#include <stdlib.h>
#include <time.h>

#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"

namespace searchsync {
namespace {

using std::chrono::days;
using std::chrono::sys_days;

// Sets TZ for the scope of a test (POSIX rule strings, so no tzdata is needed) and restores it.
class ScopedTimeZone {
 public:
  explicit ScopedTimeZone(const char* zone) {
    if (const char* old = getenv("TZ")) previous_ = old;
    setenv("TZ", zone, 1);
    tzset();
  }
  ~ScopedTimeZone() {
    if (previous_) {
      setenv("TZ", previous_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> previous_;
};

constexpr const char* kNewYork = "EST5EDT,M3.2.0,M11.1.0";  // 2026: Mar 8 and Nov 1, at 02:00
constexpr const char* kLordHowe = "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0";  // 30-minute shift

WallTime Utc(int year, unsigned month, unsigned day, int hour, int minute, int second = 0) {
  const sys_days date{std::chrono::year{year} / std::chrono::month{month} / std::chrono::day{day}};
  return WallTime(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

CronSchedule Cron(const char* expression) {
  Result<CronSchedule> schedule = CronSchedule::Parse(expression);
  INFO(expression << ": " << schedule.status().message());
  REQUIRE(schedule.ok());
  return *schedule;
}

std::string NextAfter(const char* expression, WallTime after) {
  const std::optional<WallTime> next = Cron(expression).Next(after);
  return next ? FormatLocalTime(*next) : "never";
}

std::string ParseError(const char* expression) {
  Result<CronSchedule> schedule = CronSchedule::Parse(expression);
  return schedule.ok() ? "parsed" : schedule.status().message();
}

TEST_CASE("Cron fields: values, lists, ranges, steps and names", "[cron]") {
  ScopedTimeZone utc("UTC0");
  const WallTime saturday = Utc(2026, 11, 21, 10, 7, 30);  // Saturday 10:07:30
  struct Case {
    const char* expression;
    const char* next;
  };
  const Case cases[] = {
      {"* * * * *", "2026-11-21 10:08:00 +0000"},
      {"0 3 * * *", "2026-11-22 03:00:00 +0000"},
      {"*/15 * * * *", "2026-11-21 10:15:00 +0000"},
      {"5/20 * * * *", "2026-11-21 10:25:00 +0000"},  // 5,25,45
      {"0 9,17 * * *", "2026-11-21 17:00:00 +0000"},
      {"30 8 * * MON-FRI", "2026-11-23 08:30:00 +0000"},
      {"30 8 * * mon-fri", "2026-11-23 08:30:00 +0000"},
      {"0 0 * * 7", "2026-11-22 00:00:00 +0000"},  // 7 is Sunday
      {"0 0 * * 0", "2026-11-22 00:00:00 +0000"},
      {"0 0 1 JAN *", "2027-01-01 00:00:00 +0000"},
      {"0 12 * jul,Aug *", "2027-07-01 12:00:00 +0000"},
      {"0 0 29 2 *", "2028-02-29 00:00:00 +0000"},
      {"59 23 31 12 *", "2026-12-31 23:59:00 +0000"},
      {"@daily", "2026-11-22 00:00:00 +0000"},
      {"@hourly", "2026-11-21 11:00:00 +0000"},
      {"@weekly", "2026-11-22 00:00:00 +0000"},
      {"@monthly", "2026-12-01 00:00:00 +0000"},
      {"@yearly", "2027-01-01 00:00:00 +0000"},
      {"  0   3  *  *  *  ", "2026-11-22 03:00:00 +0000"},
  };
  for (const Case& c : cases) {
    INFO(c.expression);
    CHECK(NextAfter(c.expression, saturday) == c.next);
  }
}

TEST_CASE("Cron step on a range includes only its own values", "[cron]") {
  ScopedTimeZone utc("UTC0");
  // 3-9/3 is 3,6,9: after 10:07:30 the next is 10:09.
  CHECK(NextAfter("3-9/3 * * * *", Utc(2026, 11, 21, 10, 7, 30)) == "2026-11-21 10:09:00 +0000");
  CHECK(NextAfter("3-9/3 * * * *", Utc(2026, 11, 21, 10, 9)) == "2026-11-21 11:03:00 +0000");
}

TEST_CASE("Cron Next is strictly after its argument", "[cron]") {
  ScopedTimeZone utc("UTC0");
  CHECK(NextAfter("0 3 * * *", Utc(2026, 11, 21, 3, 0)) == "2026-11-22 03:00:00 +0000");
  CHECK(NextAfter("0 3 * * *", Utc(2026, 11, 21, 2, 59, 59)) == "2026-11-21 03:00:00 +0000");
  CHECK(NextAfter("0 3 * * *", Utc(2026, 11, 21, 3, 0) - std::chrono::milliseconds(1)) ==
        "2026-11-21 03:00:00 +0000");
  CHECK(NextAfter("* * * * *", Utc(2026, 12, 31, 23, 59, 30)) == "2027-01-01 00:00:00 +0000");
}

TEST_CASE("Cron day-of-month and day-of-week: OR when both are restricted, as Vixie cron",
          "[cron]") {
  ScopedTimeZone utc("UTC0");
  const WallTime saturday = Utc(2026, 11, 21, 10, 0);
  // Both restricted: the 13th or any Friday; the next Friday (27th) comes first.
  CHECK(NextAfter("0 0 13 * FRI", saturday) == "2026-11-27 00:00:00 +0000");
  // Both restricted: days 1-7 or Mondays; Monday the 23rd.
  CHECK(NextAfter("0 0 1-7 * MON", saturday) == "2026-11-23 00:00:00 +0000");
  // Day-of-week `*`: only the day of the month counts.
  CHECK(NextAfter("0 0 1-7 * *", saturday) == "2026-12-01 00:00:00 +0000");
  // A field starting with `*` (here `*/2`) makes it AND: odd days that are Fridays.
  CHECK(NextAfter("0 0 */2 * FRI", saturday) == "2026-11-27 00:00:00 +0000");
  CHECK(NextAfter("0 0 */2 * THU", saturday) == "2026-12-03 00:00:00 +0000");
  // Day-of-month `*` with a weekday: only weekdays count.
  CHECK(NextAfter("0 0 * * SAT", saturday) == "2026-11-28 00:00:00 +0000");
}

TEST_CASE("Cron refuses malformed expressions and says why", "[cron]") {
  CHECK(ParseError("") ==
        "expected 5 fields (minute hour day-of-month month day-of-week) like "
        "\"0 3 * * *\", got 0");
  CHECK(ParseError("* * * *") ==
        "expected 5 fields (minute hour day-of-month month day-of-week) like \"0 3 * * *\", got 4");
  CHECK(ParseError("0 3 * * * *").find("got 6") != std::string::npos);
  CHECK(ParseError("61 * * * *") == "minute field '61': 61 is out of range 0-59");
  CHECK(ParseError("0 24 * * *") == "hour field '24': 24 is out of range 0-23");
  CHECK(ParseError("0 0 0 * *") == "day-of-month field '0': 0 is out of range 1-31");
  CHECK(ParseError("0 0 * 13 *") == "month field '13': 13 is out of range 1-12");
  CHECK(ParseError("0 0 * * 8") == "day-of-week field '8': 8 is out of range 0-7");
  CHECK(ParseError("0 0 * * FRU") ==
        "day-of-week field 'FRU': 'FRU' is not a number 0-7 or SUN..SAT");
  CHECK(ParseError("0 0 * JUNE *") ==
        "month field 'JUNE': 'JUNE' is not a number 1-12 or JAN..DEC");
  CHECK(ParseError("5-1 * * * *") ==
        "minute field '5-1': range 5-1 runs backwards; write it as two ranges");
  CHECK(ParseError("*/0 * * * *") == "minute field '*/0': step '0' must be a positive number");
  CHECK(ParseError("*/x * * * *") == "minute field '*/x': step 'x' must be a positive number");
  CHECK(ParseError("1,,2 * * * *") == "minute field '1,,2': empty list item");
  CHECK(ParseError("1, * * * *").find("empty list item") != std::string::npos);
  CHECK(ParseError("-5 * * * *") == "minute field '-5': empty value");
  CHECK(ParseError("0 0 30 2 *") == "day-of-month field '30' never occurs in month field '2'");
  CHECK(ParseError("0 0 31 APR,JUN *") ==
        "day-of-month field '31' never occurs in month field 'APR,JUN'");
  CHECK(ParseError("@reboot") ==
        "unknown macro '@reboot' (use @yearly, @monthly, @weekly, @daily or @hourly)");
  // Feb 30 with a restricted weekday is fine: the OR rule fires on the weekday.
  CHECK(ParseError("0 0 30 2 MON") == "parsed");
}

TEST_CASE("Cron across a DST spring-forward: fixed times in the gap fire at the jump", "[cron]") {
  ScopedTimeZone zone(kNewYork);
  // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
  const WallTime before = Utc(2026, 3, 8, 5, 0);  // 00:00 EST
  CHECK(NextAfter("30 2 * * *", before) == "2026-03-08 03:00:00 -0400");
  CHECK(NextAfter("30 2 * * *", Utc(2026, 3, 8, 7, 0)) == "2026-03-09 02:30:00 -0400");
  CHECK(NextAfter("0 2 * * *", before) == "2026-03-08 03:00:00 -0400");
  CHECK(NextAfter("0 3 * * *", before) == "2026-03-08 03:00:00 -0400");
  CHECK(NextAfter("0 4 * * *", before) == "2026-03-08 04:00:00 -0400");
  // Two fixed times in the gap fire once, at the jump.
  CHECK(NextAfter("0,30 2 * * *", Utc(2026, 3, 8, 7, 0)) == "2026-03-09 02:00:00 -0400");
  // Schedules that follow the clock have no run in the gap.
  const WallTime quarter_to_two = Utc(2026, 3, 8, 6, 45);  // 01:45 EST
  CHECK(NextAfter("*/30 * * * *", quarter_to_two) == "2026-03-08 03:00:00 -0400");
  CHECK(NextAfter("30 * * * *", quarter_to_two) == "2026-03-08 03:30:00 -0400");
  CHECK(NextAfter("15 * * * *", quarter_to_two) == "2026-03-08 03:15:00 -0400");
}

TEST_CASE("Cron across a DST fall-back: a repeated time fires once unless it follows the clock",
          "[cron]") {
  ScopedTimeZone zone(kNewYork);
  // 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:00-01:59 happens twice.
  const WallTime before = Utc(2026, 11, 1, 4, 0);  // 00:00 EDT
  CHECK(NextAfter("30 1 * * *", before) == "2026-11-01 01:30:00 -0400");
  // The second 01:30 (EST) is not a second run.
  CHECK(NextAfter("30 1 * * *", Utc(2026, 11, 1, 5, 30)) == "2026-11-02 01:30:00 -0500");
  CHECK(NextAfter("0 2 * * *", before) == "2026-11-01 02:00:00 -0500");
  // Following the clock: both passes through 01:xx fire.
  CHECK(NextAfter("*/30 * * * *", Utc(2026, 11, 1, 5, 45)) == "2026-11-01 01:00:00 -0500");
  CHECK(NextAfter("*/30 * * * *", Utc(2026, 11, 1, 6, 0)) == "2026-11-01 01:30:00 -0500");
  CHECK(NextAfter("*/30 * * * *", Utc(2026, 11, 1, 6, 30)) == "2026-11-01 02:00:00 -0500");
  CHECK(NextAfter("30 * * * *", Utc(2026, 11, 1, 5, 30)) == "2026-11-01 01:30:00 -0500");
}

TEST_CASE("Cron with a 30-minute DST shift (Lord Howe)", "[cron]") {
  ScopedTimeZone zone(kLordHowe);
  // 2026-10-04: 02:00 +1030 becomes 02:30 +11 (2026-10-03 15:30 UTC).
  const WallTime before = Utc(2026, 10, 3, 13, 30);  // 00:00 +1030
  CHECK(NextAfter("15 2 * * *", before) == "2026-10-04 02:30:00 +1100");
  CHECK(NextAfter("45 2 * * *", before) == "2026-10-04 02:45:00 +1100");
  CHECK(NextAfter("*/10 * * * *", Utc(2026, 10, 3, 15, 25)) == "2026-10-04 02:30:00 +1100");
}

TEST_CASE("Cron Next walks a busy schedule through a DST day in strictly increasing order",
          "[cron]") {
  ScopedTimeZone zone(kNewYork);
  for (const char* expression : {"*/7 * * * *", "0,20,40 0-3 * * *", "17 1 * * *"}) {
    INFO(expression);
    const CronSchedule schedule = Cron(expression);
    WallTime at = Utc(2026, 10, 31, 0, 0);
    int fires = 0;
    while (at < Utc(2026, 11, 3, 0, 0)) {
      const std::optional<WallTime> next = schedule.Next(at);
      REQUIRE(next);
      REQUIRE(*next > at);
      REQUIRE(*next - at <= std::chrono::hours(25));
      at = *next;
      ++fires;
    }
    CHECK(fires > 0);
  }
  // Every 7 minutes of the clock: 24*60/7 rounded per hour is 9 per hour (0..56), and the
  // repeated hour adds its 9 again.
  const CronSchedule every7 = Cron("*/7 * * * *");
  int fires_on_fall_back_day = 0;
  for (WallTime at = Utc(2026, 11, 1, 4, 0) - std::chrono::seconds(1);;) {
    at = *every7.Next(at);
    if (at >= Utc(2026, 11, 2, 5, 0)) break;  // local midnight Nov 2 (EST)
    ++fires_on_fall_back_day;
  }
  CHECK(fires_on_fall_back_day == 25 * 9);
}

TEST_CASE("A bad reindex.schedule is a config error at its line and column", "[cron]") {
  const std::string text = R"(typesense:
  nodes: ["http://127.0.0.1:8108"]
  api_key: k
pipelines:
  - name: products
    source: { type: postgres, dsn: "dbname=x", table: products, primary_key: id, updated_at: u }
    sink: { collection: products, schema: { fields: [{ name: n, type: string }] } }
    reindex:
      schedule: "0 25 * * MON"
  - name: orders
    source: { type: postgres, dsn: "dbname=x", table: orders, primary_key: id, updated_at: u }
    sink: { collection: orders, schema: { fields: [{ name: n, type: string }] } }
    reindex: { schedule: "@daily" }
)";
  Result<Config> config = ParseConfig(text, "pipelines.yaml");
  REQUIRE_FALSE(config.ok());
  CHECK(config.status().message() ==
        "pipelines.yaml:9:17: pipelines[0].reindex.schedule: cron expression \"0 25 * * MON\": "
        "hour field '25': 25 is out of range 0-23");
}

}  // namespace
}  // namespace searchsync
