#include "tests/support/stall_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace searchsync::test {

namespace {

int ConnectToLocalPort(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<StallProxy>> StallProxy::Start(int upstream_port) {
  std::unique_ptr<StallProxy> proxy(new StallProxy());
  proxy->upstream_port_ = upstream_port;
  proxy->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (proxy->listen_fd_ < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  const int on = 1;
  setsockopt(proxy->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(proxy->listen_fd_, 64) != 0 ||
      getsockname(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return Internal(std::string("stall proxy listen: ") + std::strerror(errno));
  }
  proxy->port_ = ntohs(address.sin_port);
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  proxy->wake_read_ = wake[0];
  proxy->wake_write_ = wake[1];
  proxy->thread_ = std::thread([raw = proxy.get()] { raw->Run(); });
  return proxy;
}

StallProxy::~StallProxy() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    Wake();
    thread_.join();
  }
  for (const Pair& pair : pairs_) {
    close(pair.client);
    close(pair.upstream);
  }
  for (const int fd : {listen_fd_, wake_read_, wake_write_}) {
    if (fd >= 0) close(fd);
  }
}

std::string StallProxy::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void StallProxy::StallOpenConnections() {
  std::unique_lock lock(mutex_);
  const size_t request = ++stall_requests_;
  Wake();
  acknowledged_.wait(lock, [&] { return stalls_applied_ >= request || stop_; });
}

size_t StallProxy::connections_accepted() const {
  std::lock_guard lock(mutex_);
  return accepted_;
}

void StallProxy::Wake() const {
  const char byte = 1;
  [[maybe_unused]] const ssize_t written = write(wake_write_, &byte, 1);
}

bool StallProxy::Forward(int from, int to) {
  char buffer[16 * 1024];
  const ssize_t got = recv(from, buffer, sizeof(buffer), 0);
  if (got <= 0) return false;
  for (ssize_t sent = 0; sent < got;) {
    const ssize_t wrote = send(to, buffer + sent, static_cast<size_t>(got - sent), MSG_NOSIGNAL);
    if (wrote <= 0) return false;
    sent += wrote;
  }
  return true;
}

void StallProxy::Run() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stop_) return;
      if (stalls_applied_ < stall_requests_) {
        for (Pair& pair : pairs_) pair.stalled = true;
        stalls_applied_ = stall_requests_;
        acknowledged_.notify_all();
      }
    }
    // pollfds: [0] wake pipe, [1] listener, then client and upstream of each live pair.
    std::vector<pollfd> fds = {{wake_read_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    std::vector<size_t> live;
    for (size_t pair_idx = 0; pair_idx < pairs_.size(); ++pair_idx) {
      if (pairs_[pair_idx].stalled) continue;
      live.push_back(pair_idx);
      fds.push_back({pairs_[pair_idx].client, POLLIN, 0});
      fds.push_back({pairs_[pair_idx].upstream, POLLIN, 0});
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents != 0) {
      char drain[64];
      while (read(wake_read_, drain, sizeof(drain)) > 0) {
      }
      continue;  // apply a stall before forwarding another byte
    }
    if (fds[1].revents & POLLIN) {
      const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int upstream = ConnectToLocalPort(upstream_port_);
        if (upstream < 0) {
          close(client);
        } else {
          pairs_.push_back({client, upstream, false});
          std::lock_guard lock(mutex_);
          ++accepted_;
        }
      }
    }
    std::vector<size_t> finished;
    for (size_t live_idx = 0; live_idx < live.size(); ++live_idx) {
      Pair& pair = pairs_[live[live_idx]];
      const pollfd& client = fds[2 + 2 * live_idx];
      const pollfd& upstream = fds[3 + 2 * live_idx];
      bool open = true;
      if (client.revents != 0) open = Forward(pair.client, pair.upstream);
      if (open && upstream.revents != 0) open = Forward(pair.upstream, pair.client);
      if (!open) finished.push_back(live[live_idx]);
    }
    for (auto it = finished.rbegin(); it != finished.rend(); ++it) {
      close(pairs_[*it].client);
      close(pairs_[*it].upstream);
      pairs_.erase(pairs_.begin() + static_cast<std::ptrdiff_t>(*it));
    }
  }
}

}  // namespace searchsync::test
