#pragma once
// Logging: one line per event on stderr, as text or JSON (--log-format json). Thread-safe.
// Levels ask something of the operator: ERROR data at risk or someone must act; WARN recovered,
// nothing lost; INFO lifecycle; DEBUG never per event on the hot path.
// Messages are "text key=value ..."; callers never pass secrets.

#include <functional>
#include <string_view>

namespace searchsync {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kText, kJson };

void SetLogFormat(LogFormat format);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// `component` names the instance, e.g. "pipeline=products sink=typesense".
void Log(LogLevel level, std::string_view component, std::string_view message);

// Tests: every formatted line (with its newline) goes to `output` instead of stderr; an empty
// function restores stderr.
void SetLogOutputForTest(std::function<void(std::string_view line)> output);

}  // namespace searchsync
