#include "pipeline/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "pipeline/json.h"

namespace searchsync {
namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::mutex g_write_mutex;
std::function<void(std::string_view)> g_test_output;  // guarded by g_write_mutex

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[96];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(millis));
  return buffer;
}

}  // namespace

void SetLogFormat(LogFormat format) { g_format = format; }
void SetLogLevel(LogLevel level) { g_level = level; }
bool LogEnabled(LogLevel level) { return level >= g_level.load(); }

void Log(LogLevel level, std::string_view component, std::string_view message) {
  if (!LogEnabled(level)) return;
  std::string line;
  if (g_format == LogFormat::kJson) {
    line = DumpJson({{"ts", Timestamp()},
                     {"level", LevelName(level)},
                     {"component", component},
                     {"msg", message}}) +
           "\n";
  } else {
    line = Timestamp() + " " + LevelName(level) + " [" + std::string(component) + "] " +
           std::string(message) + "\n";
  }
  std::lock_guard lock(g_write_mutex);
  if (g_test_output) return g_test_output(line);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void SetLogOutputForTest(std::function<void(std::string_view line)> output) {
  std::lock_guard lock(g_write_mutex);
  g_test_output = std::move(output);
}

}  // namespace searchsync
