#include "pipeline/reindex_command.h"

#include <httplib.h>
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "pipeline/log.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr auto kPollInterval = 500ms;
// Plain (non-terminal) progress lines: at most one per interval, plus one per phase change.
constexpr auto kPlainLineInterval = 5s;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 1234567 -> "1,234,567"
std::string Grouped(uint64_t value) {
  std::string digits = std::to_string(value);
  for (int pos = static_cast<int>(digits.size()) - 3; pos > 0; pos -= 3) {
    digits.insert(static_cast<size_t>(pos), ",");
  }
  return digits;
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
    if (drawn_) std::fprintf(stderr, "\r%s\x1b[K\n",
                             FormatReindexProgress(progress, RowsPerSecond(progress), true).c_str());
    drawn_ = false;
  }

 private:
  const bool terminal_;
  bool drawn_ = false;
  std::string last_phase_;
  std::chrono::steady_clock::time_point last_line_{};
};

std::string StringField(simdjson::dom::object object, const char* key) {
  std::string_view value;
  if (object[key].get_string().get(value) != simdjson::SUCCESS) return "";
  return std::string(value);
}

uint64_t UintField(simdjson::dom::object object, const char* key) {
  uint64_t value = 0;
  if (object[key].get_uint64().get(value) != simdjson::SUCCESS) return 0;
  return value;
}

int64_t IntField(simdjson::dom::object object, const char* key) {
  int64_t value = 0;
  if (object[key].get_int64().get(value) != simdjson::SUCCESS) return 0;
  return value;
}

// The reindex of `pipeline` in a /status body; nullopt when it has none (or the body is not
// what /status answers).
std::optional<ReindexProgress> ReindexFromStatus(const std::string& body,
                                                 const std::string& pipeline) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(body).get(root) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::array pipelines;
  if (root["pipelines"].get_array().get(pipelines) != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object object;
    if (item.get_object().get(object) != simdjson::SUCCESS) continue;
    if (StringField(object, "name") != pipeline) continue;
    simdjson::dom::object reindex;
    if (object["reindex"].get_object().get(reindex) != simdjson::SUCCESS) return std::nullopt;
    return ReindexProgress{.id = StringField(reindex, "id"),
                           .pipeline = StringField(reindex, "pipeline"),
                           .state = StringField(reindex, "state"),
                           .phase = StringField(reindex, "phase"),
                           .collection = StringField(reindex, "collection"),
                           .rows_written = UintField(reindex, "rows_written"),
                           .rows_expected = UintField(reindex, "rows_expected"),
                           .started_unix_ms = IntField(reindex, "started_unix_ms"),
                           .finished_unix_ms = IntField(reindex, "finished_unix_ms"),
                           .error = StringField(reindex, "error")};
  }
  return std::nullopt;
}

std::string MessageOf(const AdminClient::Response& response) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view message;
  if (parser.parse(response.body).get(root) == simdjson::SUCCESS &&
      root["message"].get_string().get(message) == simdjson::SUCCESS) {
    return std::string(message);
  }
  return "HTTP " + std::to_string(response.status);
}

int Outcome(const ReindexProgress& progress) {
  if (progress.state == "succeeded") {
    std::fprintf(stderr, "reindex %s succeeded: %s rows; the alias now points at %s\n",
                 progress.id.c_str(), Grouped(progress.rows_written).c_str(),
                 progress.collection.c_str());
    return kExitOk;
  }
  std::fprintf(stderr, "reindex %s %s%s%s; the alias was left where it was\n",
               progress.id.c_str(), progress.state.c_str(), progress.error.empty() ? "" : ": ",
               progress.error.c_str());
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
    case 202: break;
    case 409: {
      std::string id = "unknown id";
      if (Result<AdminClient::Response> status = client.Get("/status"); status.ok()) {
        if (std::optional<ReindexProgress> running = ReindexFromStatus(status->body, pipeline)) {
          id = running->id;
        }
      }
      std::fprintf(stderr, "a reindex of %s is already running (id %s); follow it with "
                   "`searchsync status` or GET /status\n",
                   pipeline.c_str(), id.c_str());
      return kExitRuntime;
    }
    case 404:
      std::fprintf(stderr, "the daemon at %s has no pipeline named '%s' (does it run this "
                   "config?)\n",
                   client.address().c_str(), pipeline.c_str());
      return kExitUsage;
    case 401:
      std::fprintf(stderr, "the daemon at %s refused the admin token: check admin.token\n",
                   client.address().c_str());
      return kExitRuntime;
    default:
      std::fprintf(stderr, "the daemon at %s could not start the reindex: %s\n",
                   client.address().c_str(), MessageOf(*started).c_str());
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
      std::fprintf(stderr, "lost the daemon at %s while waiting for reindex %s (%s); if it was "
                   "stopped, the reindex was cancelled and the alias left where it was\n",
                   client.address().c_str(), id.c_str(), status.status().message().c_str());
      return kExitRuntime;
    }
    if (status->status != 200) {
      std::fprintf(stderr, "GET /status on %s: %s\n", client.address().c_str(),
                   MessageOf(*status).c_str());
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

AdminClient::AdminClient(const AdminOptions& admin) : token_(admin.token) {
  const size_t colon = admin.listen.rfind(':');
  host_ = admin.listen.substr(0, colon);
  if (host_.size() >= 2 && host_.front() == '[' && host_.back() == ']') {
    host_ = host_.substr(1, host_.size() - 2);
  }
  if (host_ == "0.0.0.0" || host_.empty()) host_ = "127.0.0.1";
  if (host_ == "::") host_ = "::1";
  port_ = colon == std::string::npos ? 0 : std::atoi(admin.listen.c_str() + colon + 1);
  address_ = admin.listen;
}

namespace {

httplib::Headers AuthHeaders(const Secret& token) {
  httplib::Headers headers;
  if (!token.empty()) headers.emplace("Authorization", "Bearer " + token.value());
  return headers;
}

Result<AdminClient::Response> ToResponse(const httplib::Result& result, const std::string& call,
                                         const std::string& address) {
  if (!result) {
    return Unavailable("admin API at " + address + ": " + call + ": " +
                       httplib::to_string(result.error()));
  }
  return AdminClient::Response{.status = result->status, .body = result->body};
}

}  // namespace

Result<AdminClient::Response> AdminClient::Get(const std::string& path) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(30, 0);
  return ToResponse(client.Get(path.c_str(), AuthHeaders(token_)), "GET " + path, address_);
}

Result<AdminClient::Response> AdminClient::Post(const std::string& path) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(30, 0);
  return ToResponse(client.Post(path.c_str(), AuthHeaders(token_), "", "application/json"),
                    "POST " + path, address_);
}

std::string FormatReindexProgress(const ReindexProgress& progress, double rows_per_second,
                                  bool bar, int width) {
  const bool known_total = progress.rows_expected > 0;
  const double fraction =
      known_total ? std::min(1.0, static_cast<double>(progress.rows_written) /
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
  if (known_total) std::snprintf(percent, sizeof(percent), "%3d%% ", static_cast<int>(fraction * 100));

  if (!bar) {
    return "reindex " + progress.id + ": " + progress.phase + " " + percent + rows + ", " + rate +
           ", " + eta;
  }
  const std::string tail = std::string(" ") + percent + rows + "  " + rate + "  " + eta + "  " +
                           progress.phase;
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

std::optional<int> PrintDaemonStatus(const Config& config, bool json) {
  if (config.admin.listen.empty()) return std::nullopt;
  const AdminClient client(config.admin);
  Result<AdminClient::Response> status = client.Get("/status");
  if (!status.ok()) return std::nullopt;
  if (status->status != 200) {
    std::fprintf(stderr, "GET /status on %s: %s\n", client.address().c_str(),
                 MessageOf(*status).c_str());
    return kExitRuntime;
  }
  if (json) {
    std::printf("%s\n", status->body.c_str());
    return kExitOk;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::array pipelines;
  if (parser.parse(status->body).get(root) != simdjson::SUCCESS ||
      root["pipelines"].get_array().get(pipelines) != simdjson::SUCCESS) {
    std::fprintf(stderr, "GET /status on %s: not a status answer\n", client.address().c_str());
    return kExitRuntime;
  }
  std::printf("live status of the daemon at %s\n", client.address().c_str());
  std::printf("%-20s %-10s %8s %12s %12s %13s  %-26s %s\n", "PIPELINE", "STATE", "LAG", "READ",
              "ACKED", "DEAD-LETTERED", "REINDEX", "LAST ERROR");
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object row;
    if (item.get_object().get(row) != simdjson::SUCCESS) continue;
    double lag = 0;
    if (row["lag_seconds"].get_double().get(lag) != simdjson::SUCCESS) lag = 0;
    const std::string name = StringField(row, "name");
    std::string reindex = "-";
    if (const std::optional<ReindexProgress> progress = ReindexFromStatus(status->body, name)) {
      reindex = progress->state;
      if (progress->state == "running") {
        reindex += " " + progress->phase + " " + Grouped(progress->rows_written);
        if (progress->rows_expected > 0) reindex += "/" + Grouped(progress->rows_expected);
      }
    }
    char lag_text[32];
    std::snprintf(lag_text, sizeof(lag_text), "%.1fs", lag);
    std::printf("%-20s %-10s %8s %12llu %12llu %13llu  %-26s %s\n", name.c_str(),
                StringField(row, "state").c_str(), lag_text,
                static_cast<unsigned long long>(UintField(row, "events_read")),
                static_cast<unsigned long long>(UintField(row, "events_acked")),
                static_cast<unsigned long long>(UintField(row, "dead_lettered")), reindex.c_str(),
                StringField(row, "last_error").c_str());
  }
  for (simdjson::dom::element item : pipelines) {
    simdjson::dom::object row;
    if (item.get_object().get(row) != simdjson::SUCCESS) continue;
    const std::string checkpoint = StringField(row, "checkpoint");
    if (!checkpoint.empty()) {
      std::printf("%s checkpoint: %s\n", StringField(row, "name").c_str(), checkpoint.c_str());
    }
  }
  return kExitOk;
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
        "no daemon answers on admin.listen " + config.admin.listen + ": reindexing in this "
        "process");
  }
  ProgressPrinter printer;
  std::optional<ReindexProgress> last;
  const Status status = RunStandaloneReindex(config, pipeline, [&](const ReindexProgress& progress) {
    last = progress;
    if (progress.state == "running") printer.Update(progress);
  });
  if (last) printer.Finish(*last);
  // A source or sink that refused its configuration is the cause, not the reindex it stopped.
  if (status.code() == StatusCode::kInvalidArgument) {
    std::fprintf(stderr, "reindex of %s failed: %s\n", pipeline.c_str(),
                 status.message().c_str());
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
