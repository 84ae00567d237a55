#include "pipeline/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace searchsync {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxRequestsPerConnection = 100;

// The length of the request head (request line and headers, through the empty line that ends
// them), or npos while it is incomplete.
size_t HeadLength(std::string_view bytes) {
  for (size_t newline = bytes.find('\n'); newline != std::string_view::npos;
       newline = bytes.find('\n', newline + 1)) {
    const std::string_view rest = bytes.substr(newline + 1);
    if (rest.starts_with("\n")) return newline + 2;
    if (rest.starts_with("\r\n")) return newline + 3;
  }
  return std::string_view::npos;
}

// Whether the head announces a body: Content-Length other than 0, or Transfer-Encoding.
bool DeclaresBody(std::string_view head) {
  size_t line_start = head.find('\n');
  while (line_start != std::string_view::npos && line_start + 1 < head.size()) {
    const size_t line_end = head.find('\n', line_start + 1);
    std::string_view line = head.substr(line_start + 1, line_end - line_start - 1);
    line_start = line_end;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
      value.remove_suffix(1);
    }
    if (name == "transfer-encoding") return true;
    if (name == "content-length" && value != "0") return true;
  }
  return false;
}

// Waits until `fd` is ready for `events` or `deadline` passes; whether it is ready.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd entry{.fd = fd, .events = events, .revents = 0};
    const int ready = poll(&entry, 1, static_cast<int>(std::min<int64_t>(left, 1'000)));
    if (ready > 0) return true;
    if (ready < 0 && errno != EINTR) return false;
  }
}

void SocketAddress(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  auto* raw = reinterpret_cast<sockaddr*>(&address);
  if ((peer ? getpeername(fd, raw, &length) : getsockname(fd, raw, &length)) != 0) return;
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (getnameinfo(raw, length, host, sizeof(host), service, sizeof(service),
                  NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
    ip = host;
    port = std::atoi(service);
  }
}

void CloseSocket(int fd) {
  shutdown(fd, SHUT_RDWR);
  close(fd);
}

// httplib hands each accepted socket to its task queue; this one runs the hand-off at once on
// the accept thread, since all it does is pass the socket to the reception.
class HandOffQueue final : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

}  // namespace

struct HttpServer::Connection {
  int fd = -1;
  std::string buffered;  // read from the socket, not yet parsed
  Clock::time_point deadline;
  int answered = 0;
};

// The bytes of one request as httplib reads them: the buffered head, then, only when the head
// announces a body, the rest of the buffer and the socket until the deadline.
class RequestStream final : public httplib::Stream {
 public:
  RequestStream(std::string& buffered, int fd, size_t head_bytes, bool has_body,
                Clock::time_point deadline)
      : buffered_(buffered),
        fd_(fd),
        readable_(has_body ? buffered.size() : head_bytes),
        has_body_(has_body),
        deadline_(deadline) {}
  // What was parsed leaves the buffer; a pipelined next request stays.
  ~RequestStream() override { buffered_.erase(0, position_); }

  bool is_readable() const override { return position_ < readable_ || has_body_; }
  bool is_writable() const override { return WaitFor(fd_, POLLOUT, deadline_); }
  ssize_t read(char* out, size_t size) override {
    if (position_ < readable_) {
      const size_t n = std::min(size, readable_ - position_);
      std::memcpy(out, buffered_.data() + position_, n);
      position_ += n;
      return static_cast<ssize_t>(n);
    }
    if (!has_body_) return 0;
    if (!WaitFor(fd_, POLLIN, deadline_)) return -1;
    return recv(fd_, out, size, MSG_DONTWAIT);
  }
  ssize_t write(const char* data, size_t size) override {
    if (!WaitFor(fd_, POLLOUT, deadline_)) return -1;
    return send(fd_, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(fd_, /*peer=*/true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    SocketAddress(fd_, /*peer=*/false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  std::string& buffered_;
  const int fd_;
  const size_t readable_;
  const bool has_body_;
  const Clock::time_point deadline_;
  size_t position_ = 0;
};

// Connections waiting for a complete request head, all on one poll() thread.
class HttpServer::Reception {
 public:
  using Dispatch = std::function<void(Connection, size_t head_bytes)>;
  Reception(const HttpServerOptions& options, Dispatch dispatch)
      : options_(options),
        dispatch_(std::move(dispatch)),
        wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~Reception() { Stop(); }

  // Any thread. After Stop() the connection is closed.
  void Admit(Connection connection) {
    connection.deadline = Clock::now() + options_.request_timeout;
    std::lock_guard lock(mutex_);
    if (stopping_) return CloseSocket(connection.fd);
    arrivals_.push_back(std::move(connection));
    Wake();  // under the lock: Stop() closes wake_fd_ once stopping_ is set
  }

  void Stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    Wake();
    thread_.join();
    for (Connection& connection : arrivals_) CloseSocket(connection.fd);
    arrivals_.clear();
    close(wake_fd_);
  }

 private:
  void Wake() {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof(one));
  }

  void Loop() {
    std::vector<Connection> waiting;  // oldest first
    std::vector<pollfd> polled;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
        for (Connection& connection : arrivals_) waiting.push_back(std::move(connection));
        arrivals_.clear();
      }
      // Too many waiting: the oldest goes, so a flood of idle connections cannot lock newer
      // clients out for longer than it keeps opening new ones.
      if (waiting.size() > options_.max_waiting) {
        const size_t excess = waiting.size() - options_.max_waiting;
        for (size_t i = 0; i < excess; ++i) CloseSocket(waiting[i].fd);
        waiting.erase(waiting.begin(), waiting.begin() + static_cast<ptrdiff_t>(excess));
      }
      Clock::time_point wake_at = Clock::now() + std::chrono::seconds(1);
      polled.assign(1, pollfd{.fd = wake_fd_, .events = POLLIN, .revents = 0});
      for (const Connection& connection : waiting) {
        polled.push_back({.fd = connection.fd, .events = POLLIN, .revents = 0});
        wake_at = std::min(wake_at, connection.deadline);
      }
      const auto timeout = std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now());
      if (poll(polled.data(), polled.size(),
               static_cast<int>(std::max<int64_t>(0, timeout.count()))) < 0 &&
          errno != EINTR) {
        continue;
      }
      uint64_t drained = 0;
      (void)!::read(wake_fd_, &drained, sizeof(drained));

      const Clock::time_point now = Clock::now();
      std::vector<Connection> still_waiting;
      still_waiting.reserve(waiting.size());
      for (size_t i = 0; i < waiting.size(); ++i) {
        Connection& connection = waiting[i];
        if (polled[i + 1].revents != 0 && !Receive(connection)) {
          CloseSocket(connection.fd);
          continue;
        }
        const size_t head = HeadLength(connection.buffered);
        if (head != std::string_view::npos) {
          dispatch_(std::move(connection), head);
        } else if (connection.buffered.size() > options_.max_head_bytes) {
          Refuse(connection.fd, "431 Request Header Fields Too Large");
        } else if (now >= connection.deadline) {
          CloseSocket(connection.fd);  // too slow, or idle
        } else {
          still_waiting.push_back(std::move(connection));
        }
      }
      waiting.swap(still_waiting);
    }
    for (Connection& connection : waiting) CloseSocket(connection.fd);
  }

  // Reads what has arrived; false when the client closed or the socket failed.
  bool Receive(Connection& connection) {
    char chunk[4096];
    const ssize_t n = recv(connection.fd, chunk, sizeof(chunk), MSG_DONTWAIT);
    if (n > 0) {
      connection.buffered.append(chunk, static_cast<size_t>(n));
      return true;
    }
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
  }

  static void Refuse(int fd, std::string_view status) {
    const std::string answer =
        "HTTP/1.1 " + std::string(status) + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!send(fd, answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    CloseSocket(fd);
  }

  const HttpServerOptions options_;
  const Dispatch dispatch_;
  const int wake_fd_;
  std::mutex mutex_;
  bool stopping_ = false;             // guarded by mutex_
  std::vector<Connection> arrivals_;  // guarded by mutex_
  std::thread thread_;
};

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {
  workers_ = std::make_unique<httplib::ThreadPool>(std::max(1, options_.workers));
  reception_ = std::make_unique<Reception>(options_, [this](Connection connection, size_t head) {
    workers_->enqueue([this, connection = std::move(connection), head]() mutable {
      Answer(std::move(connection), head);
    });
  });
  new_task_queue = [] { return new HandOffQueue(); };
}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::Bind(const std::string& host, int port, bool numeric_host) {
  const int flags = numeric_host ? AI_NUMERICHOST : 0;
  const int bound =
      port == 0 ? bind_to_any_port(host, flags) : (bind_to_port(host, port, flags) ? port : -1);
  // httplib listens with a backlog of 5: connections beyond it wait for SYN retries.
  if (bound > 0) ::listen(svr_sock_, SOMAXCONN);
  return bound;
}

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  stop();
  reception_->Stop();
  workers_->shutdown();  // answers being written finish; their connections are closed
}

bool HttpServer::process_and_close_socket(socket_t sock) {
  reception_->Admit(Connection{.fd = sock});
  return true;
}

void HttpServer::Answer(Connection connection, size_t head_bytes) {
  const bool has_body = DeclaresBody(std::string_view(connection.buffered).substr(0, head_bytes));
  // A body the handler did not read would be parsed as the next request: close after it.
  const bool last = has_body || ++connection.answered >= kMaxRequestsPerConnection;
  bool client_closes = false;
  bool ok = false;
  {
    RequestStream stream(connection.buffered, connection.fd, head_bytes, has_body,
                         Clock::now() + options_.request_timeout);
    ok = process_request(stream, last, client_closes, nullptr);
  }
  if (!ok || last || client_closes) return CloseSocket(connection.fd);
  reception_->Admit(std::move(connection));
}

}  // namespace searchsync
