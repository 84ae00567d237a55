#include "pipeline/admin_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "pipeline/http_server.h"
#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/metrics.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kComponent = "admin";

std::string MessageJson(std::string_view message) { return DumpJson({{"message", message}}); }

void Reply(httplib::Response& response, int status, const std::string& json) {
  response.status = status;
  response.set_content(json, "application/json");
}

// Compares in time that depends only on the lengths, so a wrong token's timing says nothing of
// how much of it was right.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t length = std::max(a.size(), b.size());
  for (size_t i = 0; i < length; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

bool Authorized(const httplib::Request& request, const Secret& token) {
  if (token.empty()) return true;
  const std::string header = request.get_header_value("Authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return false;
  }
  return ConstantTimeEquals(std::string_view(header).substr(kScheme.size()), token.value());
}

// The admin API takes no request bodies; this only bounds what a client may send.
constexpr size_t kMaxRequestBody = 64 * 1024;

// The method a known path takes; "" for an unknown path.
std::string AllowedMethod(const std::string& path) {
  if (path == "/health" || path == "/status" || path == "/metrics") return "GET";
  static const std::regex kReindex(R"(/pipelines/[^/]+/reindex)");
  if (std::regex_match(path, kReindex)) return "POST";
  return "";
}

double Seconds(Millis value) { return static_cast<double>(value.count()) / 1000.0; }

// `seconds` rounded to whole milliseconds, so JSON shows 1.234 rather than 1.2340000000000002.
double Milliseconds(double seconds) { return std::round(seconds * 1000.0) / 1000.0; }

nlohmann::ordered_json ReindexProgressJson(const ReindexProgress& progress) {
  return {{"id", progress.id},
          {"pipeline", progress.pipeline},
          {"state", progress.state},
          {"phase", progress.phase},
          {"collection", progress.collection},
          {"rows_written", progress.rows_written},
          {"rows_expected", progress.rows_expected},
          {"started_unix_ms", progress.started_unix_ms},
          {"finished_unix_ms", progress.finished_unix_ms},
          {"error", progress.error}};
}

std::string FormatSeconds(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3f", seconds);
  return buffer;
}

}  // namespace

bool IsLoopbackHost(std::string_view host) {
  // Only IP literals, never a name: a name is resolved when binding, and may resolve anywhere
  // (`127.attacker.example`). `localhost` is the exception, bound as 127.0.0.1 unresolved.
  if (host == "localhost") return true;
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) host = host.substr(1, host.size() - 2);  // brackets hold IPv6 only
  const std::string text(host);
  in_addr v4{};
  if (!bracketed && inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  return false;
}

HealthReport RenderHealth(const std::vector<PipelineReport>& pipelines, Millis unhealthy_after) {
  nlohmann::ordered_json failing = nlohmann::ordered_json::array();
  for (const PipelineReport& pipeline : pipelines) {
    std::string reason;
    if (pipeline.state == RunState::kFailed) {
      reason = pipeline.last_error.empty() ? "failed" : pipeline.last_error;
    } else if (pipeline.retrying_for > unhealthy_after) {
      reason = "retrying for " + FormatSeconds(Seconds(pipeline.retrying_for)) +
               "s without success: " + pipeline.last_error;
    } else {
      continue;
    }
    failing.push_back(
        {{"name", pipeline.name}, {"state", RunStateName(pipeline.state)}, {"reason", reason}});
  }
  if (pipelines.empty()) {
    failing.push_back({{"name", ""}, {"state", ""}, {"reason", "no pipeline is running"}});
  }
  if (failing.empty()) return {.ok = true, .json = DumpJson({{"status", "ok"}})};
  return {.ok = false, .json = DumpJson({{"status", "failing"}, {"failing", std::move(failing)}})};
}

std::string RenderStatusJson(const std::vector<PipelineReport>& pipelines,
                             const AdminHandlers& handlers) {
  nlohmann::ordered_json rendered = nlohmann::ordered_json::array();
  for (const PipelineReport& pipeline : pipelines) {
    nlohmann::ordered_json entry = {{"name", pipeline.name},
                                    {"state", RunStateName(pipeline.state)},
                                    {"checkpoint", pipeline.checkpoint},
                                    {"lag_seconds", Milliseconds(pipeline.lag_seconds)},
                                    {"events_read", pipeline.counters.events_read},
                                    {"events_acked", pipeline.counters.events_acked},
                                    {"dead_lettered", pipeline.counters.dead_lettered},
                                    {"batches", pipeline.batches},
                                    {"retries", pipeline.retries},
                                    {"queue_events", pipeline.queue_events},
                                    {"in_flight", pipeline.in_flight},
                                    {"in_flight_limit", pipeline.in_flight_limit},
                                    {"retrying_for_seconds", Seconds(pipeline.retrying_for)},
                                    {"last_error", pipeline.last_error}};
    std::optional<ReindexProgress> reindex;
    if (handlers.reindex_progress) reindex = handlers.reindex_progress(pipeline.name);
    entry["reindex"] = reindex ? ReindexProgressJson(*reindex) : nlohmann::ordered_json();
    if (handlers.next_reindex) {
      const std::optional<WallTime> next = handlers.next_reindex(pipeline.name);
      entry["next_reindex"] = next ? nlohmann::ordered_json(FormatLocalTime(*next)) : nullptr;
    }
    rendered.push_back(std::move(entry));
  }
  return DumpJson({{"pipelines", std::move(rendered)}});
}

std::string RenderMetrics(const std::vector<PipelineReport>& pipelines,
                          const AdminHandlers& handlers) {
  PrometheusText out;
  struct CounterFamily {
    const char* name;
    const char* help;
    uint64_t (*value)(const PipelineReport&);
  };
  static constexpr CounterFamily kCounters[] = {
      {"searchsync_events_read_total", "Changes read from the source (cumulative over restarts).",
       [](const PipelineReport& p) { return p.counters.events_read; }},
      {"searchsync_events_acked_total",
       "Changes acknowledged by Typesense or stored as dead letters (cumulative over restarts).",
       [](const PipelineReport& p) { return p.counters.events_acked; }},
      {"searchsync_events_dead_lettered_total",
       "Documents stored in the dead-letter store (cumulative over restarts).",
       [](const PipelineReport& p) { return p.counters.dead_lettered; }},
      {"searchsync_batches_total", "Batches written to Typesense (this process).",
       [](const PipelineReport& p) { return p.batches; }},
      {"searchsync_retries_total",
       "Retried calls: Typesense writes and source reads that failed transiently (this process).",
       [](const PipelineReport& p) { return p.retries; }},
  };
  for (const CounterFamily& family : kCounters) {
    out.Family(family.name, "counter", family.help);
    for (const PipelineReport& p : pipelines) {
      out.Sample(family.name, {{"pipeline", p.name}}, family.value(p));
    }
  }
  out.Family("searchsync_documents_reread_total", "counter",
             "Documents re-read from the source of truth because a related row changed, by "
             "outcome: found (upserted) or gone (deleted) (this process).");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_documents_reread_total", {{"pipeline", p.name}, {"outcome", "found"}},
               p.documents_reread_found);
    out.Sample("searchsync_documents_reread_total", {{"pipeline", p.name}, {"outcome", "gone"}},
               p.documents_reread_gone);
  }
  out.Family("searchsync_queue_events", "gauge",
             "Changes waiting in the queue between source and sink.");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_queue_events", {{"pipeline", p.name}},
               static_cast<uint64_t>(p.queue_events));
  }
  out.Family("searchsync_events_in_flight", "gauge",
             "Changes read but not yet acknowledged (queued, batching or being written).");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_events_in_flight", {{"pipeline", p.name}},
               static_cast<uint64_t>(p.in_flight));
  }
  out.Family("searchsync_sink_in_flight_limit", "gauge",
             "Writes to Typesense allowed in flight now: sink.concurrency, lowered while "
             "Typesense refuses writes or its write queue lags, raised back as writes succeed.");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_sink_in_flight_limit", {{"pipeline", p.name}},
               static_cast<uint64_t>(p.in_flight_limit));
  }
  out.Family("searchsync_lag_seconds", "gauge",
             "Age of the oldest change read but not yet acknowledged; 0 when all is acknowledged.");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_lag_seconds", {{"pipeline", p.name}}, p.lag_seconds);
  }
  out.Family("searchsync_retrying_seconds", "gauge",
             "How long the pipeline has been retrying without a success; 0 when not retrying.");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_retrying_seconds", {{"pipeline", p.name}}, Seconds(p.retrying_for));
  }
  out.Family("searchsync_pipeline_state", "gauge",
             "1 for the pipeline's current state (starting, running, caught_up, retrying, "
             "stopping, stopped, failed).");
  for (const PipelineReport& p : pipelines) {
    out.Sample("searchsync_pipeline_state",
               {{"pipeline", p.name}, {"state", std::string(RunStateName(p.state))}}, uint64_t{1});
  }

  const auto backups = ScheduledBackups().Snapshot();
  if (!backups.empty()) {
    out.Family("searchsync_scheduled_backups_total", "counter",
               "Scheduled backups (job: the pipeline) and snapshots (job: snapshot) this process "
               "ran, by result.");
    for (const auto& [job, counts] : backups) {
      out.Sample("searchsync_scheduled_backups_total", {{"job", job}, {"result", "ok"}},
                 counts.succeeded);
      out.Sample("searchsync_scheduled_backups_total", {{"job", job}, {"result", "failed"}},
                 counts.failed);
    }
    out.Family("searchsync_scheduled_backup_last_success_timestamp_seconds", "gauge",
               "Unix time of the job's last successful run in this process; 0: none yet.");
    for (const auto& [job, counts] : backups) {
      out.Sample("searchsync_scheduled_backup_last_success_timestamp_seconds", {{"job", job}},
                 static_cast<uint64_t>(counts.last_success_unix));
    }
  }

  std::vector<std::pair<std::string, ReindexProgress>> reindexes;
  if (handlers.reindex_progress) {
    for (const PipelineReport& p : pipelines) {
      if (std::optional<ReindexProgress> progress = handlers.reindex_progress(p.name)) {
        reindexes.emplace_back(p.name, std::move(*progress));
      }
    }
  }
  out.Family("searchsync_reindex_running", "gauge", "1 while a reindex of the pipeline runs.");
  for (const PipelineReport& p : pipelines) {
    uint64_t running = 0;
    for (const auto& [name, progress] : reindexes) {
      if (name == p.name && progress.state == "running") running = 1;
    }
    out.Sample("searchsync_reindex_running", {{"pipeline", p.name}}, running);
  }
  struct ReindexFamily {
    const char* name;
    const char* help;
    double (*value)(const ReindexProgress&);
  };
  static constexpr ReindexFamily kReindexGauges[] = {
      {"searchsync_reindex_rows_written",
       "Rows the running or last reindex wrote into its new collection.",
       [](const ReindexProgress& r) { return static_cast<double>(r.rows_written); }},
      {"searchsync_reindex_rows_expected",
       "Rows the running or last reindex expects (0: the source cannot count).",
       [](const ReindexProgress& r) { return static_cast<double>(r.rows_expected); }},
      {"searchsync_reindex_started_timestamp_seconds",
       "Unix time the running or last reindex started.",
       [](const ReindexProgress& r) { return static_cast<double>(r.started_unix_ms) / 1000.0; }},
      {"searchsync_reindex_finished_timestamp_seconds",
       "Unix time the last reindex ended; 0 while one runs.",
       [](const ReindexProgress& r) { return static_cast<double>(r.finished_unix_ms) / 1000.0; }},
  };
  for (const ReindexFamily& family : kReindexGauges) {
    out.Family(family.name, "gauge", family.help);
    for (const auto& [name, progress] : reindexes) {
      out.Sample(family.name, {{"pipeline", name}}, family.value(progress));
    }
  }
  out.Family("searchsync_reindex_state", "gauge",
             "1 for the state of the running or last reindex (running, succeeded, failed, "
             "cancelled).");
  for (const auto& [name, progress] : reindexes) {
    out.Sample("searchsync_reindex_state", {{"pipeline", name}, {"state", progress.state}},
               uint64_t{1});
  }

  out.Family("searchsync_typesense_responses_total", "counter",
             "Calls to Typesense by HTTP status; status=\"error\": no response (connection "
             "error or timeout).");
  for (const auto& [status, count] : TypesenseResponses().Snapshot()) {
    const std::string label = status == 0 ? "error" : std::to_string(status);
    out.Sample("searchsync_typesense_responses_total", {{"status", label}}, count);
  }
  return out.text();
}

struct AdminServer::Impl {
  AdminServerOptions options;
  AdminHandlers handlers;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

AdminServer::~AdminServer() {
  impl_->server->Stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<AdminServer>> AdminServer::Start(AdminServerOptions options,
                                                        AdminHandlers handlers) {
  const size_t colon = options.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      port = std::stoi(options.listen.substr(colon + 1), &used);
      if (used != options.listen.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (port < 0 || port > 65535 || colon == 0) {
    return InvalidArgument("admin.listen: expected host:port like 127.0.0.1:8090, got \"" +
                           options.listen + "\"");
  }
  std::string host = options.listen.substr(0, colon);
  if (options.token.empty() && !IsLoopbackHost(host)) {
    return InvalidArgument("admin.listen: " + options.listen +
                           " is not a loopback address, so admin.token is required");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }

  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->handlers = std::move(handlers);
  Impl* state = impl.get();
  impl->server = std::make_unique<HttpServer>(HttpServerOptions{
      .workers = state->options.threads, .request_timeout = state->options.request_timeout});
  HttpServer& server = *impl->server;
  server.set_payload_max_length(kMaxRequestBody);

  server.set_pre_routing_handler(
      [state](const httplib::Request& request, httplib::Response& response) {
        if (!Authorized(request, state->options.token)) {
          response.set_header("WWW-Authenticate", "Bearer");
          Reply(response, 401,
                MessageJson("missing or wrong admin token: send the header Authorization: Bearer "
                            "<admin.token>"));
          return httplib::Server::HandlerResponse::Handled;
        }
        // A known path called with another method: 405 and the method it takes (RFC 9110 §15.5.6).
        const std::string allowed = AllowedMethod(request.path);
        if (allowed.empty() || request.method == allowed ||
            (allowed == "GET" && request.method == "HEAD")) {
          return httplib::Server::HandlerResponse::Unhandled;
        }
        response.set_header("Allow", allowed == "GET" ? "GET, HEAD" : allowed);
        Reply(response, 405,
              MessageJson(request.method + " " + request.path + " is not allowed: use " + allowed));
        return httplib::Server::HandlerResponse::Handled;
      });
  server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    Reply(response, response.status,
          MessageJson(response.status == 404
                          ? "no such call: " + request.method + " " + request.path +
                                " (the admin API has GET /health, GET /status, GET /metrics, "
                                "POST /pipelines/NAME/reindex)"
                          : "HTTP " + std::to_string(response.status)));
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Log(LogLevel::kError, kComponent, "request failed: " + what);
        Reply(response, 500, MessageJson(what));
      });

  server.Get("/health", [state](const httplib::Request&, httplib::Response& response) {
    const HealthReport report =
        RenderHealth(state->handlers.pipelines(), state->options.unhealthy_after);
    Reply(response, report.ok ? 200 : 503, report.json);
  });
  server.Get("/status", [state](const httplib::Request&, httplib::Response& response) {
    Reply(response, 200, RenderStatusJson(state->handlers.pipelines(), state->handlers));
  });
  server.Get("/metrics", [state](const httplib::Request&, httplib::Response& response) {
    response.set_content(RenderMetrics(state->handlers.pipelines(), state->handlers),
                         "text/plain; version=0.0.4; charset=utf-8");
  });
  server.Post(R"(/pipelines/([^/]+)/reindex)", [state](const httplib::Request& request,
                                                       httplib::Response& response) {
    const std::string pipeline = request.matches[1];
    if (!state->handlers.start_reindex) {
      return Reply(response, 501, MessageJson("reindex is not available"));
    }
    Result<std::string> id = state->handlers.start_reindex(pipeline);
    if (id.ok()) {
      Log(LogLevel::kInfo, kComponent,
          "reindex of pipeline=" + pipeline + " requested over the admin API, id=" + *id);
      return Reply(response, 202, DumpJson({{"id", *id}}));
    }
    const Status& status = id.status();
    const int code = status.code() == StatusCode::kNotFound             ? 404
                     : status.code() == StatusCode::kFailedPrecondition ? 409
                     : status.code() == StatusCode::kInvalidArgument    ? 400
                                                                        : 500;
    Reply(response, code, MessageJson(status.message()));
  });

  // Port 0 (tests): let the kernel pick one and read it back. A loopback host is bound as the
  // literal it was judged by, never resolved.
  const bool literal = IsLoopbackHost(host);
  if (host == "localhost") host = "127.0.0.1";
  const int bound_port = server.Bind(host, port, literal);
  if (bound_port <= 0) {
    return Unavailable("admin.listen " + impl->options.listen +
                       ": cannot listen there (address in use, or not an address of this "
                       "machine?)");
  }
  impl->thread = std::thread([state] { state->server->Serve(); });
  // stop() only works once listen_after_bind runs; wait for it so a quick destructor cannot
  // leave the thread listening forever.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!state->server->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  Log(LogLevel::kInfo, kComponent,
      "admin API listening on " + impl->options.listen.substr(0, colon + 1) +
          std::to_string(bound_port) +
          (impl->options.token.empty() ? " (no token: loopback only)"
                                       : " (bearer token required)"));
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl), bound_port));
}

}  // namespace searchsync
