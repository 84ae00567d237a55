#pragma once
// Metrics: the few process-wide counters no single object owns, and a writer of the Prometheus
// text exposition format (version 0.0.4) for the admin API's /metrics.

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace searchsync {

// Responses by HTTP status code. Lock-free; any thread.
class HttpStatusCounter {
 public:
  // `status` 100..599; anything else (0: no response, e.g. a connection error or a timeout)
  // is counted as a transport error.
  void Count(long status);
  // (status, count) for every status seen, ascending; status 0 is the transport errors.
  std::vector<std::pair<int, uint64_t>> Snapshot() const;

 private:
  static constexpr int kMaxStatus = 600;
  std::array<std::atomic<uint64_t>, kMaxStatus> counts_{};
};

// Every call searchsync made to Typesense, by response status.
HttpStatusCounter& TypesenseResponses();

// Scheduled backups and snapshots run by this process, by job: a pipeline's name, or
// "snapshot". Any thread.
class ScheduledBackupCounter {
 public:
  struct Counts {
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    int64_t last_success_unix = 0;  // 0: none yet
  };
  void Register(const std::string& job);  // shows the job with zero counts
  void Record(const std::string& job, bool ok, int64_t now_unix);
  std::map<std::string, Counts> Snapshot() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, Counts> counts_;
};
ScheduledBackupCounter& ScheduledBackups();

// Builds a Prometheus text exposition: one HELP and TYPE line per family, then its samples.
//
//   PrometheusText out;
//   out.Family("searchsync_events_read_total", "counter", "Events read from the source.");
//   out.Sample("searchsync_events_read_total", {{"pipeline", "products"}}, 42);
//   std::string body = out.text();
class PrometheusText {
 public:
  using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;
  // `type`: counter | gauge. Repeated calls for one name write nothing.
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, double value);
  const std::string& text() const { return text_; }

 private:
  void SampleText(std::string_view name, Labels labels, std::string_view value);
  std::string text_;
  std::set<std::string, std::less<>> families_;
};

// A label value escaped for the text format: backslash, double quote and line feed.
std::string EscapeLabelValue(std::string_view value);

}  // namespace searchsync
