#pragma once
// `searchsync reindex -c FILE PIPELINE [--wait]`: asks the `run` daemon of the same config to
// reindex (POST /pipelines/NAME/reindex on admin.listen), or reindexes in this process when no
// daemon answers there. With --wait, follows the reindex to its end: a progress bar on a
// terminal, plain progress lines otherwise.

#include <cstdio>
#include <optional>
#include <string>

#include "pipeline/config.h"
#include "pipeline/reindex.h"

namespace searchsync {

// Returns the exit code: 0 the reindex succeeded (or, without --wait, the daemon started it);
// 1 it failed, was cancelled, or is already running; 2 no such pipeline.
int RunReindexCommand(const Config& config, const std::string& pipeline, bool wait);

// `searchsync status` while a daemon answers on admin.listen: its live /status (JSON with
// `json`, else a table with lag and reindex progress). nullopt when no daemon answers there
// (the caller then shows the state store); otherwise the exit code.
std::optional<int> PrintDaemonStatus(const Config& config, bool json);

// One progress report. `rows_per_second` < 0: not known yet. With `bar`, a one-line bar of
// `width` columns for a terminal (no line feed); otherwise a plain log-style line.
std::string FormatReindexProgress(const ReindexProgress& progress, double rows_per_second,
                                  bool bar, int width = 80);

// The admin API of a running daemon, as a client. The host of admin.listen is used as is,
// except that a wildcard address (0.0.0.0, ::) is reached on loopback.
class AdminClient {
 public:
  explicit AdminClient(const AdminOptions& admin);

  struct Response {
    int status = 0;
    std::string body;
  };
  // kUnavailable when nothing answers at the address.
  Result<Response> Get(const std::string& path) const;
  Result<Response> Post(const std::string& path) const;
  const std::string& address() const { return address_; }

 private:
  std::string host_;
  int port_ = 0;
  std::string address_;
  Secret token_;
};

}  // namespace searchsync
