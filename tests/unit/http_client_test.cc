#include "pipeline/net/http_client.h"

#include <httplib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/server_process.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

// An httplib server on a free loopback port, serving on its own thread.
struct TestServer {
  TestServer() {
    server.Post("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_header("ETag", "\"abc\"");
      response.set_content(request.method + " " + request.get_header_value("Content-Type") + " " +
                               request.get_header_value("X-Test") + " " + request.body,
                           "text/plain");
    });
    server.Put("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content("PUT " + request.body, "text/plain");
    });
    server.Delete("/echo", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content("DELETE " + request.body, "text/plain");
    });
    server.Get("/auth", [](const httplib::Request& request, httplib::Response& response) {
      response.set_content(request.get_header_value("Authorization"), "text/plain");
    });
    server.Get("/missing", [](const httplib::Request&, httplib::Response& response) {
      response.status = 404;
      response.set_content("no such thing", "text/plain");
    });
    server.Get("/moved", [](const httplib::Request&, httplib::Response& response) {
      response.status = 307;
      response.set_header("Location", "/elsewhere");
    });
    server.Get("/stream", [](const httplib::Request&, httplib::Response& response) {
      response.set_content(std::string(1 << 20, 'x'), "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    REQUIRE(test::WaitUntil([&] { return server.is_running(); }, 60s));
  }
  ~TestServer() {
    server.stop();
    thread.join();
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
  httplib::Server server;
  int port = 0;
  std::thread thread;
};

TEST_CASE("HttpClient sends method, headers and body, and returns status, body and headers",
          "[http]") {
  TestServer server;
  HttpClient client;
  const std::string body = "hello";
  Result<HttpResponse> response =
      client.Send({.method = "POST",
                   .url = server.Url("/echo"),
                   .headers = {"Content-Type: text/x-test", "X-Test: 1"},
                   .body = body});
  REQUIRE(response.ok());
  CHECK(response->status == 200);
  CHECK(response->body == "POST text/x-test 1 hello");
  CHECK(response->Header("etag") == "\"abc\"");
  CHECK(response->Header("x-none") == "");

  response = client.Send({.method = "PUT", .url = server.Url("/echo"), .body = body});
  REQUIRE(response.ok());
  CHECK(response->body == "PUT hello");
  response = client.Send({.method = "DELETE", .url = server.Url("/echo")});
  REQUIRE(response.ok());
  CHECK(response->body == "DELETE ");
}

TEST_CASE("HttpClient returns any status, and where a redirect points without following it",
          "[http]") {
  TestServer server;
  HttpClient client;
  Result<HttpResponse> missing = client.Send({.url = server.Url("/missing")});
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
  CHECK(missing->body == "no such thing");
  Result<HttpResponse> moved = client.Send({.url = server.Url("/moved")});
  REQUIRE(moved.ok());
  CHECK(moved->status == 307);
  CHECK(moved->redirect_to == server.Url("/elsewhere"));
}

TEST_CASE("HttpClient streams a 2xx body to on_body, which can end the transfer", "[http]") {
  TestServer server;
  HttpClient client;
  size_t received = 0;
  Result<HttpResponse> whole =
      client.Send({.url = server.Url("/stream"), .on_body = [&](std::string_view chunk) {
                     received += chunk.size();
                     return true;
                   }});
  REQUIRE(whole.ok());
  CHECK(received == (1u << 20));
  CHECK(whole->body.empty());
  CHECK(whole->body_delivered);
  CHECK_FALSE(whole->aborted);

  Result<HttpResponse> ended = client.Send(
      {.url = server.Url("/stream"), .on_body = [](std::string_view) { return false; }});
  REQUIRE(ended.ok());
  CHECK(ended->aborted);

  // A body that is not 2xx is collected, not streamed.
  bool called = false;
  Result<HttpResponse> missing =
      client.Send({.url = server.Url("/missing"), .on_body = [&](std::string_view) {
                     called = true;
                     return true;
                   }});
  REQUIRE(missing.ok());
  CHECK_FALSE(called);
  CHECK(missing->body == "no such thing");
}

TEST_CASE("HttpClient uploads a byte range of a file", "[http]") {
  TestServer server;
  HttpClient client;
  const auto path =
      std::filesystem::temp_directory_path() / ("http_client_test_" + std::to_string(::getpid()));
  std::ofstream(path) << "0123456789";
  std::FILE* file = std::fopen(path.c_str(), "rb");
  REQUIRE(file != nullptr);
  std::fseek(file, 2, SEEK_SET);
  Result<HttpResponse> response = client.Send(
      {.method = "PUT", .url = server.Url("/echo"), .upload = file, .upload_length = 5});
  std::fclose(file);
  std::filesystem::remove(path);
  REQUIRE(response.ok());
  CHECK(response->body == "PUT 23456");
}

TEST_CASE("HttpClient sends basic authentication", "[http]") {
  TestServer server;
  HttpClient client;
  Result<HttpResponse> response =
      client.Send({.url = server.Url("/auth"), .username = "user", .password = "pass"});
  REQUIRE(response.ok());
  CHECK(response->body == "Basic dXNlcjpwYXNz");
}

TEST_CASE("HttpClient says unavailable without a response and refuses unusable URLs", "[http]") {
  const int free_port = test::PickFreePort();  // nothing listens there
  REQUIRE(free_port != 0);
  HttpClient client;
  Result<HttpResponse> refused =
      client.Send({.url = "http://127.0.0.1:" + std::to_string(free_port) + "/"});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == StatusCode::kUnavailable);
  Result<HttpResponse> unusable = client.Send({.url = "gopher2://host/"});
  REQUIRE_FALSE(unusable.ok());
  CHECK(unusable.status().code() == StatusCode::kInvalidArgument);
  CHECK(HttpUrlProblem("http://host:5984") == "");
  CHECK(HttpUrlProblem("http://host:99999") != "");
}

}  // namespace
}  // namespace searchsync
