#pragma once
// AdminServer: the admin HTTP API of `searchsync run` (cpp-httplib), on `admin.listen`.
//
//   GET  /health                  200 {"status":"ok"} | 503 {"status":"failing","failing":[...]}
//   GET  /status                  every pipeline: state, checkpoint, lag, counters, last error,
//                                 reindex progress
//   GET  /metrics                 Prometheus text format
//   POST /pipelines/NAME/reindex  202 {"id":...} | 404 no such pipeline | 409 one is running
//
// With a token, every call needs `Authorization: Bearer TOKEN` (401 otherwise; compared in
// constant time). A known path called with another method gets 405. Errors are JSON
// {"message": ...}. Slow and idle clients cost no worker thread (pipeline/http_server.h).
//
// The server knows nothing of runners or reindexes: it asks the handlers it is given, so tests
// drive it with fakes. Handlers run on the server's worker threads and must be thread-safe.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/config.h"
#include "pipeline/cron.h"
#include "pipeline/reindex_progress.h"
#include "pipeline/runner.h"
#include "pipeline/status.h"

namespace searchsync {

struct AdminHandlers {
  // Every pipeline's report (PipelineRunner::Report), in config order.
  std::function<std::vector<PipelineReport>()> pipelines;
  // The running or last reindex of a pipeline; nullopt when none ran in this process.
  std::function<std::optional<ReindexProgress>(const std::string& pipeline)> reindex_progress;
  // Starts a reindex; the id. kNotFound: no such pipeline (404); kFailedPrecondition: one is
  // already running (409).
  std::function<Result<std::string>(const std::string& pipeline)> start_reindex;
  // Optional: the next scheduled reindex of a pipeline (shown by /status).
  std::function<std::optional<WallTime>(const std::string& pipeline)> next_reindex;
};

struct AdminServerOptions {
  std::string listen;  // host:port; port 0 picks a free port (tests)
  Secret token;        // empty: no authentication (only allowed on loopback)
  // /health reports a pipeline that has been retrying (Typesense or its source unreachable)
  // without a single success for this long as failing; a failed pipeline at once.
  Millis unhealthy_after{60'000};
  int threads = 4;
  // A request head must arrive within this of connecting (or of the previous answer on the
  // connection); its body and answer get as long again.
  Millis request_timeout{10'000};
};

class AdminServer {
 public:
  // Binds and serves on background threads. kInvalidArgument: `listen` is malformed, or not a
  // loopback address while no token is set; kUnavailable: the address cannot be bound.
  static Result<std::unique_ptr<AdminServer>> Start(AdminServerOptions options,
                                                    AdminHandlers handlers);
  ~AdminServer();  // stops serving and joins the threads
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  int port() const { return port_; }

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// The bodies of /health, /status and /metrics, for the server and for tests. `failing` gets
// the names of failing pipelines with why.
struct HealthReport {
  bool ok = true;
  std::string json;
};
HealthReport RenderHealth(const std::vector<PipelineReport>& pipelines, Millis unhealthy_after);
std::string RenderStatusJson(const std::vector<PipelineReport>& pipelines,
                             const AdminHandlers& handlers);
std::string RenderMetrics(const std::vector<PipelineReport>& pipelines,
                          const AdminHandlers& handlers);

// Whether `host` (of host:port) is a loopback IP literal (127.0.0.0/8, ::1, [::1]) or
// `localhost`. Names are not resolved: any other name is not loopback.
bool IsLoopbackHost(std::string_view host);

}  // namespace searchsync
