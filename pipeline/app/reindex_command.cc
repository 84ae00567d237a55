#include "pipeline/app/reindex_command.h"

#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "pipeline/app/admin_client.h"
#include "pipeline/app/cli.h"
#include "pipeline/log.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr auto kPollInterval = 500ms;
// Plain (non-terminal) progress lines: at most one per interval, plus one per phase change.
constexpr auto kPlainLineInterval = 5s;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Duration(double seconds) {
  const auto total = static_cast<int64_t>(seconds + 0.5);
  char buffer[32];
  if (total >= 3600) {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld:%02lld",
                  static_cast<long long>(total / 3600), static_cast<long long>(total / 60 % 60),
                  static_cast<long long>(total % 60));
  } else {
    std::snprintf(buffer, sizeof(buffer), "%lld:%02lld", static_cast<long long>(total / 60),
                  static_cast<long long>(total % 60));
  }
  return buffer;
}

// Rows per second since the reindex started; < 0 while too early to say.
double RowsPerSecond(const ReindexProgress& progress) {
  if (progress.started_unix_ms <= 0) return -1;
  const int64_t end = progress.finished_unix_ms > 0 ? progress.finished_unix_ms : NowUnixMs();
  const double seconds = static_cast<double>(end - progress.started_unix_ms) / 1000.0;
  if (seconds < 0.5) return -1;
  return static_cast<double>(progress.rows_written) / seconds;
}

// Shows progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter() : terminal_(isatty(STDERR_FILENO) == 1) {}

  void Update(const ReindexProgress& progress) {
    const auto now = std::chrono::steady_clock::now();
    if (terminal_) {
      const std::string line = FormatReindexProgress(progress, RowsPerSecond(progress), true);
      std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
      std::fflush(stderr);
      drawn_ = true;
      return;
    }
    if (progress.phase == last_phase_ && now - last_line_ < kPlainLineInterval) return;
    last_phase_ = progress.phase;
    last_line_ = now;
    std::fprintf(stderr, "%s\n",
                 FormatReindexProgress(progress, RowsPerSecond(progress), false).c_str());
  }

  // Ends the bar's line and prints the outcome.
  void Finish(const ReindexProgress& progress) {
    if (drawn_)
      std::fprintf(stderr, "\r%s\x1b[K\n",
                   FormatReindexProgress(progress, RowsPerSecond(progress), true).c_str());
    drawn_ = false;
  }

 private:
  const bool terminal_;
  bool drawn_ = false;
  std::string last_phase_;
  std::chrono::steady_clock::time_point last_line_{};
};

int Outcome(const ReindexProgress& progress) {
  if (progress.state == "succeeded") {
    std::fprintf(stderr, "reindex %s succeeded: %s rows; the alias now points at %s\n",
                 progress.id.c_str(), Grouped(progress.rows_written).c_str(),
                 progress.collection.c_str());
    return kExitOk;
  }
  std::fprintf(stderr, "reindex %s %s%s%s; the alias was left where it was\n", progress.id.c_str(),
               progress.state.c_str(), progress.error.empty() ? "" : ": ", progress.error.c_str());
  return kExitRuntime;
}

int ViaDaemon(const AdminClient& client, const std::string& pipeline, bool wait) {
  const std::string path = "/pipelines/" + pipeline + "/reindex";
  Result<AdminClient::Response> started = client.Post(path);
  if (!started.ok()) {
    std::fprintf(stderr, "%s\n", started.status().message().c_str());
    return kExitRuntime;
  }
  switch (started->status) {
    case 202:
      break;
    case 409: {
      std::string id = "unknown id";
      if (Result<AdminClient::Response> status = client.Get("/status"); status.ok()) {
        if (std::optional<ReindexProgress> running = ReindexFromStatus(status->body, pipeline)) {
          id = running->id;
        }
      }
      std::fprintf(stderr,
                   "a reindex of %s is already running (id %s); follow it with "
                   "`searchsync status` or GET /status\n",
                   pipeline.c_str(), id.c_str());
      return kExitRuntime;
    }
    case 404:
      std::fprintf(stderr,
                   "the daemon at %s has no pipeline named '%s' (does it run this "
                   "config?)\n",
                   client.address().c_str(), pipeline.c_str());
      return kExitUsage;
    case 401:
      std::fprintf(stderr, "the daemon at %s refused the admin token: check admin.token\n",
                   client.address().c_str());
      return kExitRuntime;
    default:
      std::fprintf(stderr, "the daemon at %s could not start the reindex: %s\n",
                   client.address().c_str(), AdminErrorMessage(*started).c_str());
      return kExitRuntime;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view id_view;
  if (parser.parse(started->body).get(root) != simdjson::SUCCESS ||
      root["id"].get_string().get(id_view) != simdjson::SUCCESS) {
    std::fprintf(stderr, "the daemon at %s answered 202 without an id: %s\n",
                 client.address().c_str(), started->body.c_str());
    return kExitRuntime;
  }
  const std::string id(id_view);
  std::fprintf(stderr, "reindex of %s started by the daemon at %s (id %s)\n", pipeline.c_str(),
               client.address().c_str(), id.c_str());
  if (!wait) return kExitOk;

  ProgressPrinter printer;
  for (;;) {
    Result<AdminClient::Response> status = client.Get("/status");
    if (!status.ok()) {
      printer.Finish({});
      std::fprintf(stderr,
                   "lost the daemon at %s while waiting for reindex %s (%s); if it was "
                   "stopped, the reindex was cancelled and the alias left where it was\n",
                   client.address().c_str(), id.c_str(), status.status().message().c_str());
      return kExitRuntime;
    }
    if (status->status != 200) {
      std::fprintf(stderr, "GET /status on %s: %s\n", client.address().c_str(),
                   AdminErrorMessage(*status).c_str());
      return kExitRuntime;
    }
    const std::optional<ReindexProgress> progress = ReindexFromStatus(status->body, pipeline);
    if (progress && progress->id == id) {
      if (progress->state != "running") {
        printer.Finish(*progress);
        return Outcome(*progress);
      }
      printer.Update(*progress);
    } else if (progress) {
      std::fprintf(stderr, "reindex %s was replaced by %s before it could be followed\n",
                   id.c_str(), progress->id.c_str());
      return kExitRuntime;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

}  // namespace

std::string Grouped(uint64_t value) {
  std::string digits = std::to_string(value);
  for (int pos = static_cast<int>(digits.size()) - 3; pos > 0; pos -= 3) {
    digits.insert(static_cast<size_t>(pos), ",");
  }
  return digits;
}

std::string FormatReindexProgress(const ReindexProgress& progress, double rows_per_second, bool bar,
                                  int width) {
  const bool known_total = progress.rows_expected > 0;
  const double fraction = known_total
                              ? std::min(1.0, static_cast<double>(progress.rows_written) /
                                                  static_cast<double>(progress.rows_expected))
                              : 0.0;
  std::string rows = Grouped(progress.rows_written);
  if (known_total) rows += "/" + Grouped(progress.rows_expected);
  rows += " rows";
  std::string rate = rows_per_second >= 0
                         ? Grouped(static_cast<uint64_t>(rows_per_second + 0.5)) + " rows/s"
                         : "- rows/s";
  std::string eta;
  if (progress.state != "running") {
    eta = progress.state;
  } else if (known_total && rows_per_second > 0 && progress.rows_written < progress.rows_expected) {
    eta = "ETA " + Duration(static_cast<double>(progress.rows_expected - progress.rows_written) /
                            rows_per_second);
  } else {
    eta = "ETA -";
  }
  char percent[16] = "";
  if (known_total)
    std::snprintf(percent, sizeof(percent), "%3d%% ", static_cast<int>(fraction * 100));

  if (!bar) {
    return "reindex " + progress.id + ": " + progress.phase + " " + percent + rows + ", " + rate +
           ", " + eta;
  }
  const std::string tail =
      std::string(" ") + percent + rows + "  " + rate + "  " + eta + "  " + progress.phase;
  const int bar_width = std::max(10, width - static_cast<int>(tail.size()) - 2);
  std::string cells(static_cast<size_t>(bar_width), ' ');
  if (known_total) {
    const auto filled = static_cast<size_t>(fraction * bar_width);
    for (size_t i = 0; i < filled; ++i) cells[i] = '#';
  } else {
    // Unknown total: a marker that moves with the rows written.
    const size_t at = static_cast<size_t>(progress.rows_written / 1000) % cells.size();
    cells[at] = '#';
  }
  return "[" + cells + "]" + tail;
}

int RunReindexCommand(const Config& config, const std::string& pipeline, bool wait) {
  const bool known = std::any_of(config.pipelines.begin(), config.pipelines.end(),
                                 [&](const PipelineConfig& p) { return p.name == pipeline; });
  if (!known) {
    std::fprintf(stderr, "%s: no pipeline named '%s'\n", config.file.c_str(), pipeline.c_str());
    return kExitUsage;
  }
  if (!config.admin.listen.empty()) {
    const AdminClient client(config.admin);
    // Any HTTP answer (even 503 or 401) means a daemon listens there.
    if (client.Get("/health").ok()) return ViaDaemon(client, pipeline, wait);
    Log(LogLevel::kInfo, "reindex",
        "no daemon answers on admin.listen " + config.admin.listen +
            ": reindexing in this "
            "process");
  }
  ProgressPrinter printer;
  std::optional<ReindexProgress> last;
  const Status status =
      RunStandaloneReindex(config, pipeline, [&](const ReindexProgress& progress) {
        last = progress;
        if (progress.state == "running") printer.Update(progress);
      });
  if (last) printer.Finish(*last);
  // A source or sink that refused its configuration is the cause, not the reindex it stopped.
  if (status.code() == StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "reindex of %s failed: %s\n", pipeline.c_str(), status.message().c_str());
    return kExitUsage;
  }
  if (last) {
    if (last->state != "running") {
      const int code = Outcome(*last);
      if (code != kExitOk || status.ok()) return code;
    }
  }
  if (!status.ok()) {
    std::fprintf(stderr, "reindex of %s failed: %s\n", pipeline.c_str(), status.message().c_str());
    return status.code() == StatusCode::kNotFound ? kExitUsage : kExitRuntime;
  }
  return kExitOk;
}

}  // namespace searchsync
