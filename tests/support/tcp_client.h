#pragma once
// A raw TCP client, for what an HTTP client library will not send: half-written request
// heads, idle connections, requests without Content-Length.

#include <chrono>
#include <string>
#include <string_view>

namespace searchsync::test {

class TcpClient {
 public:
  // Connects to 127.0.0.1:port; connected() says whether it worked.
  explicit TcpClient(int port);
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  bool connected() const { return connected_; }
  // Whether every byte was sent (false once the server has closed the connection).
  bool Send(std::string_view bytes);
  // Everything received until the server closes the connection; stops at `timeout`.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout);
  // Whether the server closed (or reset) the connection within `timeout`; what arrived before
  // is discarded.
  bool ClosedWithin(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
};

}  // namespace searchsync::test
