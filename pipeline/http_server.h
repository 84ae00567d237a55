#pragma once
// HttpServer: a cpp-httplib server where a slow or idle client cannot hold a worker thread.
//
// httplib (0.11, Debian's) gives each connection a worker for its whole life, and its read
// timeout is per read(): a client sending one header byte a second, or one that connects and
// says nothing, keeps a worker, and a handful of them (or a few hundred idle connections) left
// nothing for /health. Its listen backlog is 5, and a request without Content-Length waits for
// the connection to close to read a body it does not have.
//
// Here a connection costs a worker only once its whole request head has arrived:
//
//   accept ──► reception: one poll() thread ── complete head ──► workers (a few threads)
//                 ▲   every connection waiting for its next request         │
//                 └──────────── keep-alive: back after the answer ◄──────────┘
//
// In the reception a request head must be complete within `request_timeout` of the connection
// being accepted (or of the previous answer), else the connection is closed; the body and the
// answer get `request_timeout` more. At most `max_waiting` connections wait there: a new one
// pushes out the one that has waited longest. A request with neither Content-Length nor
// Transfer-Encoding has no body (RFC 9112 §6.3).
//
// Register handlers as on httplib::Server, then Bind() and Serve(). Thread safety: Stop() may be
// called from any thread; the rest from the owning thread.

#include <httplib.h>

#include <chrono>
#include <memory>
#include <string>

namespace searchsync {

struct HttpServerOptions {
  int workers = 4;
  std::chrono::milliseconds request_timeout{10'000};
  size_t max_waiting = 256;       // connections waiting for a request head
  size_t max_head_bytes = 16384;  // request line and headers; larger gets 431
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer() override;

  // Binds host:port with a full listen backlog; port 0 picks a free port. `numeric_host`:
  // `host` is an IP literal and must not be resolved. The bound port, or -1.
  int Bind(const std::string& host, int port, bool numeric_host);
  // Serves on this thread until Stop().
  bool Serve() { return listen_after_bind(); }
  // Stops accepting, closes waiting connections and joins the workers once their answers
  // are written. Idempotent; after it, Serve() returns.
  void Stop();

 private:
  class Reception;
  struct Connection;
  // httplib::Server: called on the accept thread for every accepted socket.
  bool process_and_close_socket(socket_t sock) override;
  void Answer(Connection connection, size_t head_bytes);  // a worker thread

  HttpServerOptions options_;
  std::unique_ptr<Reception> reception_;
  std::unique_ptr<httplib::ThreadPool> workers_;
  bool stopped_ = false;
};

}  // namespace searchsync
