#include "pipeline/cron.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <span>
#include <vector>

namespace searchsync {
namespace {

using std::chrono::days;
using std::chrono::sys_days;
using std::chrono::year_month_day;

constexpr int64_t kSecondsPerDay = 86'400;
// The largest difference between two UTC offsets of one zone around a transition (real zones
// shift by 30 minutes to 2 hours); bounds how far wall-clock order and instant order can differ.
constexpr int64_t kMaxShiftSeconds = 3 * 3600;
constexpr int kSearchYears = 30;

constexpr std::array<std::string_view, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"SUN", "MON", "TUE", "WED",
                                                           "THU", "FRI", "SAT"};

struct FieldSpec {
  std::string_view name;
  int min;
  int max;
  std::span<const std::string_view> names;  // names[i] means first_name_value + i
  int first_name_value;
  std::string_view names_hint;
};

constexpr FieldSpec kMinute{"minute", 0, 59, {}, 0, ""};
constexpr FieldSpec kHour{"hour", 0, 23, {}, 0, ""};
constexpr FieldSpec kDayOfMonth{"day-of-month", 1, 31, {}, 0, ""};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, 1, " or JAN..DEC"};
constexpr FieldSpec kDayOfWeek{"day-of-week", 0, 7, kWeekdayNames, 0, " or SUN..SAT"};

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// One value of a field: a number or a name.
Result<int> ParseValue(const FieldSpec& spec, std::string_view text, std::string_view field) {
  const auto fail = [&](const std::string& why) -> Status {
    return InvalidArgument(std::string(spec.name) + " field '" + std::string(field) + "': " + why);
  };
  if (text.empty()) return fail("empty value");
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc() && end == text.data() + text.size()) {
    if (value < spec.min || value > spec.max) {
      return fail(std::to_string(value) + " is out of range " + std::to_string(spec.min) + "-" +
                  std::to_string(spec.max));
    }
    return value;
  }
  const std::string upper = Upper(text);
  for (size_t i = 0; i < spec.names.size(); ++i) {
    if (spec.names[i] == upper) return spec.first_name_value + static_cast<int>(i);
  }
  return fail("'" + std::string(text) + "' is not a number " + std::to_string(spec.min) + "-" +
              std::to_string(spec.max) + std::string(spec.names_hint));
}

// A whole field: comma-separated items, each `*`, `a`, `a-b`, with an optional `/step`.
// Returns the set as a vector of flags indexed by value.
Result<std::vector<bool>> ParseField(const FieldSpec& spec, std::string_view field) {
  std::vector<bool> values(static_cast<size_t>(spec.max) + 1, false);
  const auto fail = [&](const std::string& why) -> Status {
    return InvalidArgument(std::string(spec.name) + " field '" + std::string(field) + "': " + why);
  };
  size_t begin = 0;
  while (begin <= field.size()) {
    const size_t comma = std::min(field.find(',', begin), field.size());
    const std::string_view item = field.substr(begin, comma - begin);
    begin = comma + 1;
    if (item.empty()) return fail("empty list item");

    std::string_view range = item;
    int step = 1;
    bool has_step = false;
    if (const size_t slash = item.find('/'); slash != std::string_view::npos) {
      range = item.substr(0, slash);
      const std::string_view step_text = item.substr(slash + 1);
      const auto [end, error] =
          std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || error != std::errc() || end != step_text.data() + step_text.size() ||
          step < 1) {
        return fail("step '" + std::string(step_text) + "' must be a positive number");
      }
      has_step = true;
    }
    int low = spec.min;
    int high = spec.max;
    if (range != "*") {
      const size_t dash = range.find('-');
      Result<int> first = ParseValue(spec, range.substr(0, dash), field);
      if (!first.ok()) return first.status();
      low = *first;
      if (dash != std::string_view::npos) {
        Result<int> last = ParseValue(spec, range.substr(dash + 1), field);
        if (!last.ok()) return last.status();
        high = *last;
        if (high < low) {
          return fail("range " + std::string(range) + " runs backwards; write it as two ranges");
        }
      } else if (!has_step) {
        high = low;  // `a/n` means a-max/n; plain `a` is the value alone
      }
    }
    for (int value = low; value <= high; value += step) values[static_cast<size_t>(value)] = true;
    if (comma == field.size()) break;
  }
  return values;
}

template <size_t N>
void Assign(std::bitset<N>& bits, const std::vector<bool>& values) {
  for (size_t i = 0; i < values.size() && i < N; ++i) bits[i] = values[i];
}

constexpr int MaxDaysOfMonth(int month) {  // leap years included
  constexpr std::array<int, 13> kDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return kDays[static_cast<size_t>(month)];
}

// The UTC offset in seconds of the local time zone at instant `t` (Unix seconds).
int64_t UtcOffsetAt(int64_t t) {
  const time_t instant = static_cast<time_t>(t);
  tm local{};
  localtime_r(&instant, &local);
  return local.tm_gmtoff;
}

std::string_view Macro(std::string_view expression) {
  static constexpr std::pair<std::string_view, std::string_view> kMacros[] = {
      {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  for (const auto& [name, expansion] : kMacros) {
    if (expression == name) return expansion;
  }
  return {};
}

}  // namespace

Result<CronSchedule> CronSchedule::Parse(std::string_view expression) {
  CronSchedule schedule;
  schedule.expression_ = std::string(expression);
  std::string_view text = expression;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.starts_with('@')) {
    const std::string_view expansion = Macro(text);
    if (expansion.empty()) {
      return InvalidArgument("unknown macro '" + std::string(text) +
                             "' (use @yearly, @monthly, @weekly, @daily or @hourly)");
    }
    text = expansion;
  }
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
    size_t end = pos;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    if (end > pos) fields.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  if (fields.size() != 5) {
    return InvalidArgument(
        "expected 5 fields (minute hour day-of-month month day-of-week) like "
        "\"0 3 * * *\", got " +
        std::to_string(fields.size()));
  }
  const FieldSpec* specs[] = {&kMinute, &kHour, &kDayOfMonth, &kMonth, &kDayOfWeek};
  std::vector<bool> parsed[5];
  for (size_t i = 0; i < 5; ++i) {
    Result<std::vector<bool>> field = ParseField(*specs[i], fields[i]);
    if (!field.ok()) return field.status();
    parsed[i] = std::move(*field);
  }
  Assign(schedule.minutes_, parsed[0]);
  Assign(schedule.hours_, parsed[1]);
  Assign(schedule.days_of_month_, parsed[2]);
  Assign(schedule.months_, parsed[3]);
  Assign(schedule.days_of_week_, parsed[4]);
  if (parsed[4][7]) schedule.days_of_week_[0] = true;  // 7 is Sunday too
  schedule.day_of_month_star_ = fields[2].starts_with('*');
  schedule.day_of_week_star_ = fields[4].starts_with('*');
  schedule.follows_clock_ = fields[0].starts_with('*') || fields[1].starts_with('*');

  // With day-of-month and month both deciding (Vixie's AND case), make sure some month of the
  // set has one of the days; "0 0 30 2 *" would otherwise wait forever.
  if (schedule.day_of_month_star_ || schedule.day_of_week_star_) {
    bool possible = false;
    for (int month = 1; month <= 12 && !possible; ++month) {
      if (!schedule.months_[static_cast<size_t>(month)]) continue;
      for (int day = 1; day <= MaxDaysOfMonth(month); ++day) {
        if (schedule.days_of_month_[static_cast<size_t>(day)]) possible = true;
      }
    }
    if (!possible) {
      return InvalidArgument("day-of-month field '" + std::string(fields[2]) +
                             "' never occurs in month field '" + std::string(fields[3]) + "'");
    }
  }
  return schedule;
}

bool CronSchedule::DayMatches(int month, int day_of_month, int day_of_week) const {
  if (!months_[static_cast<size_t>(month)]) return false;
  const bool dom = days_of_month_[static_cast<size_t>(day_of_month)];
  const bool dow = days_of_week_[static_cast<size_t>(day_of_week)];
  return (day_of_month_star_ || day_of_week_star_) ? (dom && dow) : (dom || dow);
}

std::optional<WallTime> CronSchedule::Next(WallTime after) const {
  const int64_t after_s =
      std::chrono::floor<std::chrono::seconds>(after.time_since_epoch()).count();

  // The instants at which local wall-clock time `wall` (seconds since the epoch, as if the
  // local zone were UTC) fires. The offsets in effect a day before and a day after bracket any
  // transition near `wall`; an offset is right if applying it lands where it is in effect.
  const auto fire_instants = [&](int64_t wall, std::vector<int64_t>& out) {
    out.clear();
    const int64_t offset_before = UtcOffsetAt(wall - kSecondsPerDay);
    const int64_t offset_after = UtcOffsetAt(wall + kSecondsPerDay);
    for (const int64_t offset : {offset_before, offset_after}) {
      const int64_t instant = wall - offset;
      if (UtcOffsetAt(instant) == offset &&
          std::find(out.begin(), out.end(), instant) == out.end()) {
        out.push_back(instant);
      }
    }
    std::sort(out.begin(), out.end());
    if (out.size() > 1 && !follows_clock_) out.resize(1);  // repeated hour: first occurrence
    if (out.empty() && !follows_clock_ && offset_after > offset_before) {
      // Skipped by a forward jump: fire at the jump, the first instant of the new offset.
      int64_t low = wall - offset_after;    // still the old offset
      int64_t high = wall - offset_before;  // already the new one
      while (high - low > 1) {
        const int64_t mid = low + (high - low) / 2;
        (UtcOffsetAt(mid) == offset_before ? low : high) = mid;
      }
      out.push_back(high);
    }
  };

  // Scan wall-clock minutes in order from a little before `after` (wall order and instant order
  // differ by at most one DST shift), keeping the earliest instant after `after`; stop once the
  // wall clock is a full shift past the best found.
  const int64_t start_wall = after_s + UtcOffsetAt(after_s) - kMaxShiftSeconds;
  const int64_t first_day = start_wall >= 0
                                ? start_wall / kSecondsPerDay
                                : -((-start_wall + kSecondsPerDay - 1) / kSecondsPerDay);
  std::optional<int64_t> best;
  int64_t best_wall = 0;
  std::vector<int64_t> instants;
  for (int64_t day = first_day; day < first_day + 366 * kSearchYears; ++day) {
    if (best && day * kSecondsPerDay > best_wall + kMaxShiftSeconds) break;
    const sys_days date{days{day}};
    const year_month_day ymd{date};
    const int weekday = static_cast<int>(std::chrono::weekday{date}.c_encoding());
    if (!DayMatches(static_cast<int>(static_cast<unsigned>(ymd.month())),
                    static_cast<int>(static_cast<unsigned>(ymd.day())), weekday)) {
      continue;
    }
    for (int hour = 0; hour < 24; ++hour) {
      if (!hours_[static_cast<size_t>(hour)]) continue;
      for (int minute = 0; minute < 60; ++minute) {
        if (!minutes_[static_cast<size_t>(minute)]) continue;
        const int64_t wall = day * kSecondsPerDay + hour * 3600 + minute * 60;
        if (wall < start_wall) continue;
        if (best && wall > best_wall + kMaxShiftSeconds) break;
        fire_instants(wall, instants);
        for (const int64_t instant : instants) {
          if (instant > after_s && (!best || instant < *best)) {
            best = instant;
            best_wall = wall;
          }
        }
      }
    }
  }
  if (!best) return std::nullopt;
  return WallTime(std::chrono::seconds(*best));
}

std::string FormatLocalTime(WallTime time) {
  const time_t instant = WallClock::to_time_t(time);
  tm local{};
  localtime_r(&instant, &local);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M:%S %z", &local);
  return buffer;
}

}  // namespace searchsync
