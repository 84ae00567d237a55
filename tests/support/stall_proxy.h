#pragma once
// StallProxy: a TCP proxy in front of a local server, for tests of connections that go silent.
// It forwards every connection both ways until StallOpenConnections(): from then on the
// connections open at that moment carry nothing more in either direction but stay open, like a
// network path that went quiet without a reset (no FIN, no RST, no heartbeat). Connections
// opened later are forwarded as usual, so a client that drops the silent connection and
// reconnects gets through.
//
//   auto proxy = StallProxy::Start(couch->port());
//   REQUIRE(proxy.ok());
//   ... point the client at (*proxy)->url() ...
//   (*proxy)->StallOpenConnections();
//
// Thread safety: every public member may be called from any thread; the proxy runs one thread.

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/status.h"

namespace searchsync::test {

class StallProxy {
 public:
  // Listens on a free port of 127.0.0.1 and forwards to 127.0.0.1:`upstream_port`.
  static Result<std::unique_ptr<StallProxy>> Start(int upstream_port);
  ~StallProxy();
  StallProxy(const StallProxy&) = delete;
  StallProxy& operator=(const StallProxy&) = delete;

  int port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:PORT

  // Every connection open now forwards nothing more (and is closed only by the destructor).
  // Returns once no byte of theirs will be forwarded any more.
  void StallOpenConnections();

  size_t connections_accepted() const;

 private:
  struct Pair {
    int client = -1;
    int upstream = -1;
    bool stalled = false;
  };

  StallProxy() = default;
  void Run();
  // Moves what is readable on `from` to `to`; false when the connection is over.
  static bool Forward(int from, int to);
  void Wake() const;

  int upstream_port_ = 0;
  int port_ = 0;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;

  mutable std::mutex mutex_;
  std::condition_variable acknowledged_;
  bool stop_ = false;          // guarded by mutex_
  size_t stall_requests_ = 0;  // guarded by mutex_
  size_t stalls_applied_ = 0;  // guarded by mutex_
  size_t accepted_ = 0;        // guarded by mutex_

  std::vector<Pair> pairs_;  // proxy thread only
  std::thread thread_;
};

}  // namespace searchsync::test
