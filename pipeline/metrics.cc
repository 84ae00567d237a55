#include "pipeline/metrics.h"

#include <cmath>
#include <cstdio>

namespace searchsync {

void HttpStatusCounter::Count(long status) {
  const size_t index = status >= 100 && status < kMaxStatus ? static_cast<size_t>(status) : 0;
  counts_[index].fetch_add(1, std::memory_order_relaxed);
}

std::vector<std::pair<int, uint64_t>> HttpStatusCounter::Snapshot() const {
  std::vector<std::pair<int, uint64_t>> out;
  for (size_t status = 0; status < counts_.size(); ++status) {
    const uint64_t count = counts_[status].load(std::memory_order_relaxed);
    if (count > 0) out.emplace_back(static_cast<int>(status), count);
  }
  return out;
}

HttpStatusCounter& TypesenseResponses() {
  static HttpStatusCounter counter;
  return counter;
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void PrometheusText::Family(std::string_view name, std::string_view type, std::string_view help) {
  if (!families_.emplace(name).second) return;
  // HELP text escapes backslash and line feed only.
  std::string escaped;
  for (const char c : help) {
    if (c == '\\') {
      escaped += "\\\\";
    } else if (c == '\n') {
      escaped += "\\n";
    } else {
      escaped += c;
    }
  }
  text_.append("# HELP ").append(name).append(" ").append(escaped).append("\n");
  text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void PrometheusText::SampleText(std::string_view name, Labels labels, std::string_view value) {
  text_.append(name);
  if (labels.size() > 0) {
    text_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      if (!first) text_ += ',';
      first = false;
      text_.append(label).append("=\"").append(EscapeLabelValue(label_value)).append("\"");
    }
    text_ += '}';
  }
  text_.append(" ").append(value).append("\n");
}

void PrometheusText::Sample(std::string_view name, Labels labels, uint64_t value) {
  SampleText(name, labels, std::to_string(value));
}

void PrometheusText::Sample(std::string_view name, Labels labels, double value) {
  if (std::isnan(value)) return SampleText(name, labels, "NaN");
  if (std::isinf(value)) return SampleText(name, labels, value > 0 ? "+Inf" : "-Inf");
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.15g", value);
  SampleText(name, labels, buffer);
}

void ScheduledBackupCounter::Register(const std::string& job) {
  std::lock_guard lock(mutex_);
  counts_[job];
}

void ScheduledBackupCounter::Record(const std::string& job, bool ok, int64_t now_unix) {
  std::lock_guard lock(mutex_);
  Counts& counts = counts_[job];
  if (ok) {
    ++counts.succeeded;
    counts.last_success_unix = now_unix;
  } else {
    ++counts.failed;
  }
}

std::map<std::string, ScheduledBackupCounter::Counts> ScheduledBackupCounter::Snapshot() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

ScheduledBackupCounter& ScheduledBackups() {
  static ScheduledBackupCounter counter;
  return counter;
}

}  // namespace searchsync
