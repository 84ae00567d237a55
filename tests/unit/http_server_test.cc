#include "pipeline/http_server.h"

#include <catch2/catch.hpp>
#include <thread>

#include "tests/support/server_process.h"
#include "tests/support/tcp_client.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::ScaledTimeout;
using test::TcpClient;

// An HttpServer answering GET /ping and POST /echo (the body's size), on its own thread.
struct PingServer {
  explicit PingServer(HttpServerOptions options) : server(options) {
    server.Get("/ping", [](const httplib::Request&, httplib::Response& response) {
      response.set_content("pong", "text/plain");
    });
    server.Post("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content("body=" + std::to_string(request.body.size()), "text/plain");
    });
    port = server.Bind("127.0.0.1", 0, /*numeric_host=*/true);
    REQUIRE(port > 0);
    thread = std::thread([this] { server.Serve(); });
    REQUIRE(test::WaitUntil([&] { return server.is_running(); }, ScaledTimeout(10s)));
  }
  ~PingServer() {
    server.Stop();
    thread.join();
  }
  // GET /ping on a new connection; the answer's status line and body, or "" when none came.
  std::string Ping() {
    TcpClient client(port);
    if (!client.Send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) return "";
    return client.ReadUntilClosed(ScaledTimeout(30s));
  }

  HttpServer server;
  int port = 0;
  std::thread thread;
};

bool Answered(const std::string& response, std::string_view status, std::string_view body) {
  return response.starts_with("HTTP/1.1 " + std::string(status)) && response.ends_with(body);
}

TEST_CASE("HttpServer: a client trickling its request head costs no worker and is cut off",
          "[admin]") {
  PingServer ping({.workers = 1, .request_timeout = 500ms});
  TcpClient slow(ping.port);
  REQUIRE(slow.Send("GET /ping HTTP/1.1\r\nX-Slow: "));
  std::atomic<bool> done = false;
  // One byte every 100 ms: each read gets data well within any per-read timeout.
  std::thread trickle([&] {
    while (!done && slow.Send("a")) std::this_thread::sleep_for(100ms);
  });
  // The only worker is free for others all along.
  CHECK(Answered(ping.Ping(), "200", "pong"));
  // The head never completes: the connection is closed at request_timeout.
  CHECK(slow.ClosedWithin(ScaledTimeout(30s)));
  done = true;
  trickle.join();
}

TEST_CASE("HttpServer: an idle connection is closed, and the oldest go when too many wait",
          "[admin]") {
  SECTION("idle past request_timeout") {
    PingServer ping({.request_timeout = 300ms});
    TcpClient idle(ping.port);
    CHECK(idle.ClosedWithin(ScaledTimeout(30s)));
  }
  SECTION("more than max_waiting") {
    PingServer ping({.workers = 1, .request_timeout = 600s, .max_waiting = 4});
    std::vector<std::unique_ptr<TcpClient>> idle;
    for (int i = 0; i < 10; ++i) {
      idle.push_back(std::make_unique<TcpClient>(ping.port));
      REQUIRE(idle.back()->connected());
    }
    // The six oldest were pushed out; the newest still wait for their request.
    for (int i = 0; i < 6; ++i) CHECK(idle[i]->ClosedWithin(ScaledTimeout(30s)));
    CHECK(Answered(ping.Ping(), "200", "pong"));
    // The ping pushed out one more, the oldest left; the rest still wait.
    CHECK(idle[6]->ClosedWithin(ScaledTimeout(30s)));
    for (int i = 7; i < 10; ++i) {
      REQUIRE(idle[i]->Send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      CHECK(Answered(idle[i]->ReadUntilClosed(ScaledTimeout(30s)), "200", "pong"));
    }
  }
}

TEST_CASE("HttpServer: a request without Content-Length has no body", "[admin]") {
  PingServer ping({.request_timeout = 600s});  // nothing here may wait for a timeout
  TcpClient client(ping.port);
  REQUIRE(client.Send("POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK(Answered(client.ReadUntilClosed(ScaledTimeout(30s)), "200", "body=0"));

  TcpClient with_body(ping.port);
  REQUIRE(with_body.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel"));
  REQUIRE(with_body.Send("lo"));
  // A request with a body is the connection's last (a body left unread would be parsed as
  // the next request).
  CHECK(Answered(with_body.ReadUntilClosed(ScaledTimeout(30s)), "200", "body=5"));
}

TEST_CASE("HttpServer: pipelined requests on one connection are answered in order", "[admin]") {
  PingServer ping({.request_timeout = 600s});
  TcpClient client(ping.port);
  REQUIRE(
      client.Send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\n"
                  "\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  const std::string answers = client.ReadUntilClosed(ScaledTimeout(30s));
  const size_t pong = answers.find("\r\n\r\npong");
  const size_t echo = answers.find("\r\n\r\nbody=0");
  const size_t missing = answers.find("HTTP/1.1 404");
  CHECK(pong != std::string::npos);
  CHECK(echo != std::string::npos);
  CHECK(missing != std::string::npos);
  CHECK(pong < echo);
  CHECK(echo < missing);
}

TEST_CASE("HttpServer: a request head larger than max_head_bytes gets 431", "[admin]") {
  PingServer ping({.request_timeout = 600s, .max_head_bytes = 1024});
  TcpClient client(ping.port);
  REQUIRE(client.Send("GET /ping HTTP/1.1\r\nX-Big: " + std::string(2000, 'a')));
  CHECK(client.ReadUntilClosed(ScaledTimeout(30s))
            .starts_with("HTTP/1.1 431 Request Header Fields Too Large"));
}

}  // namespace
}  // namespace searchsync
