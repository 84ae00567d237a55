#include "pipeline/admin_server.h"

#include <httplib.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "pipeline/app/registry.h"
#include "pipeline/metrics.h"
#include "tests/support/fakes.h"
#include "tests/support/prometheus_text.h"
#include "tests/support/server_process.h"
#include "tests/support/tcp_client.h"
#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::FakeSink;
using test::FakeSource;
using test::ParsePrometheus;
using test::ScaledTimeout;
using test::Scrape;
using test::TcpClient;
using test::Upsert;
using test::WaitUntil;

TEST_CASE("The Prometheus reader rejects what scrapers reject", "[admin]") {
  CHECK(ParsePrometheus("# TYPE a_total counter\na_total 1\n").error.empty());
  CHECK_FALSE(ParsePrometheus("a_total 1\n").error.empty());                      // no TYPE
  CHECK_FALSE(ParsePrometheus("# TYPE a counter\na 1\n").error.empty());          // no _total
  CHECK_FALSE(ParsePrometheus("# TYPE a gauge\na{x=\"\"\"} 1\n").error.empty());  // bad escape
  CHECK_FALSE(ParsePrometheus("# TYPE a gauge\na{x=\"1\"} one\n").error.empty());
  CHECK_FALSE(ParsePrometheus("# TYPE a gauge\na 1").error.empty());  // no final newline
  CHECK(ParsePrometheus("# TYPE a gauge\na{x=\"q\\\"\\\\\\n\"} 1.5e3\n").error.empty());
}

TEST_CASE("PrometheusText escapes label values and writes each family's header once", "[admin]") {
  PrometheusText out;
  out.Family("x_total", "counter", "Help with a \\ backslash\nand a line.");
  out.Family("x_total", "counter", "again");
  out.Sample("x_total", {{"pipeline", "a\"b\\c\nd"}}, uint64_t{7});
  out.Sample("x_total", {{"pipeline", "plain"}}, 0.25);
  CHECK(out.text() ==
        "# HELP x_total Help with a \\\\ backslash\\nand a line.\n"
        "# TYPE x_total counter\n"
        "x_total{pipeline=\"a\\\"b\\\\c\\nd\"} 7\n"
        "x_total{pipeline=\"plain\"} 0.25\n");
  const Scrape scrape = ParsePrometheus(out.text());
  CHECK(scrape.error == "");
  CHECK(scrape.Value("x_total{pipeline=\"plain\"}") == 0.25);
}

// ---- The server, with a real runner behind it -------------------------------------------------

PipelineConfig TestPipeline(std::string name) {
  PipelineConfig config{.name = std::move(name)};
  config.sink.batch = {.max_events = 50, .max_bytes = 1 << 20, .flush_interval = 20ms};
  config.sink.concurrency = 2;
  config.queue = {.max_events = 1000, .max_bytes = 1 << 20};
  return config;
}

std::vector<Event> Events(int count) {
  std::vector<Event> events;
  for (int i = 0; i < count; ++i) events.push_back(Upsert("id-" + std::to_string(i)));
  return events;
}

// A daemon-mode runner on its own thread, with the admin server in front of it.
struct AdminWorld {
  explicit AdminWorld(std::vector<Event> events, Secret token = {}, Millis unhealthy_after = 60s,
                      bool start_runner = true) {
    auto sink = std::make_unique<FakeSink>();
    sink_view = sink->shared();
    runner = std::make_unique<PipelineRunner>(
        TestPipeline("products"), RetryOptions{.initial_backoff = 1ms, .max_backoff = 20ms},
        std::make_unique<FakeSource>(std::move(events)), std::move(sink), *state,
        RunOptions{.shutdown_grace = 1s, .poll_batch = 10});
    AdminHandlers handlers{
        .pipelines = [this] { return std::vector<PipelineReport>{runner->Report()}; },
        .reindex_progress = [this](const std::string& pipeline) -> std::optional<ReindexProgress> {
          std::lock_guard lock(mutex);
          if (pipeline != "products" || !reindex) return std::nullopt;
          return reindex;
        },
        .start_reindex = [this](const std::string& pipeline) -> Result<std::string> {
          std::lock_guard lock(mutex);
          if (pipeline != "products") return NotFound("no pipeline named '" + pipeline + "'");
          if (reindex && reindex->state == "running") {
            return FailedPrecondition("a reindex of products is already running (id " +
                                      reindex->id + ")");
          }
          reindex = ReindexProgress{.id = "products-" + std::to_string(++reindexes),
                                    .pipeline = "products",
                                    .state = "running",
                                    .phase = "full_read",
                                    .collection = "products_20261121T031500Z",
                                    .rows_expected = 1000};
          return reindex->id;
        }};
    Result<std::unique_ptr<AdminServer>> started = AdminServer::Start(
        {.listen = "127.0.0.1:0", .token = std::move(token), .unhealthy_after = unhealthy_after},
        std::move(handlers));
    REQUIRE(started.ok());
    server = std::move(*started);
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_read_timeout(30, 0);
    if (start_runner) thread = std::thread([this] { run_status = runner->Run(); });
  }
  ~AdminWorld() {
    runner->Stop();
    if (thread.joinable()) thread.join();
  }

  httplib::Result Get(const std::string& path, const std::string& token = "") {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client->Get(path.c_str(), headers);
  }
  Scrape Metrics() {
    auto response = Get("/metrics");
    REQUIRE(response);
    REQUIRE(response->status == 200);
    Scrape scrape = ParsePrometheus(response->body);
    INFO(response->body);
    REQUIRE(scrape.error == "");
    return scrape;
  }

  test::TempDir dir;
  std::unique_ptr<StateStore> state = std::move(StateStore::Open(dir.path()).value());
  std::shared_ptr<FakeSink::Shared> sink_view;
  std::unique_ptr<PipelineRunner> runner;
  std::unique_ptr<AdminServer> server;
  std::unique_ptr<httplib::Client> client;
  std::thread thread;
  Status run_status;
  std::mutex mutex;
  std::optional<ReindexProgress> reindex;
  int reindexes = 0;
};

TEST_CASE("Admin API: a missing or wrong bearer token gets 401, the right one 200", "[admin]") {
  AdminWorld world(Events(10), Secret("s3cret-token"));
  for (const char* path : {"/health", "/status", "/metrics", "/nope"}) {
    INFO(path);
    auto missing = world.Get(path);
    REQUIRE(missing);
    CHECK(missing->status == 401);
    CHECK(missing->get_header_value("WWW-Authenticate") == "Bearer");
    CHECK(missing->body.find("\"message\":") != std::string::npos);
    CHECK(missing->body.find("s3cret") == std::string::npos);
    for (const char* wrong : {"s3cret-tokeN", "s3cret-token2", "s3cret", "x"}) {
      auto response = world.Get(path, wrong);
      REQUIRE(response);
      CHECK(response->status == 401);
    }
  }
  auto basic = world.client->Get("/health", {{"Authorization", "Basic czNjcmV0LXRva2Vu"}});
  REQUIRE(basic);
  CHECK(basic->status == 401);
  auto post = world.client->Post("/pipelines/products/reindex", "", "application/json");
  REQUIRE(post);
  CHECK(post->status == 401);
  CHECK(world.reindexes == 0);

  REQUIRE(WaitUntil([&] { return world.Get("/health", "s3cret-token")->status == 200; },
                    ScaledTimeout(30s)));
  CHECK(world.Get("/status", "s3cret-token")->status == 200);
  CHECK(world.Get("/metrics", "s3cret-token")->status == 200);
  // The scheme is case-insensitive (RFC 7235).
  auto lower = world.client->Get("/health", {{"Authorization", "bearer s3cret-token"}});
  REQUIRE(lower);
  CHECK(lower->status == 200);
  auto unknown = world.Get("/nope", "s3cret-token");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(unknown->body.find("GET /health") != std::string::npos);
}

TEST_CASE("Admin API refuses to listen beyond loopback without a token", "[admin]") {
  // Only IP literals are judged: a name is resolved when binding, and may resolve anywhere.
  for (const char* listen : {"0.0.0.0:0", "192.168.1.10:8090", "[::]:0", "example.com:80",
                             "127.attacker.example:0", "127.0.0.256:0", "127.1:0",
                             "localhost.attacker.example:0", "[::2]:0", "[::ffff:10.0.0.1]:0"}) {
    INFO(listen);
    Result<std::unique_ptr<AdminServer>> server = AdminServer::Start({.listen = listen}, {});
    REQUIRE_FALSE(server.ok());
    CHECK(server.status().code() == StatusCode::kInvalidArgument);
    CHECK(server.status().message().find("admin.token is required") != std::string::npos);
  }
  for (const char* listen : {"127.0.0.1", "127.0.0.1:http", ":8090", "127.0.0.1:70000"}) {
    INFO(listen);
    Result<std::unique_ptr<AdminServer>> server = AdminServer::Start({.listen = listen}, {});
    REQUIRE_FALSE(server.ok());
    CHECK(server.status().message().find("expected host:port") != std::string::npos);
  }
  // With a token, any address may be used.
  Result<std::unique_ptr<AdminServer>> open =
      AdminServer::Start({.listen = "0.0.0.0:0", .token = Secret("t")}, {});
  CHECK(open.ok());
  CHECK(IsLoopbackHost("localhost"));
  CHECK(IsLoopbackHost("127.0.0.2"));
  CHECK(IsLoopbackHost("127.255.255.254"));
  CHECK(IsLoopbackHost("[::1]"));
  CHECK(IsLoopbackHost("::1"));
  CHECK(IsLoopbackHost("[::ffff:127.0.0.1]"));
  CHECK_FALSE(IsLoopbackHost("0.0.0.0"));
  CHECK_FALSE(IsLoopbackHost("127example.com"));
  CHECK_FALSE(IsLoopbackHost("127.attacker.example"));
  CHECK_FALSE(IsLoopbackHost("127.0.0.256"));
  CHECK_FALSE(IsLoopbackHost("[127.0.0.1]"));

  // A loopback literal serves; `localhost` is bound as 127.0.0.1, never resolved.
  for (const char* listen : {"127.0.0.1:0", "localhost:0", "127.0.0.7:0"}) {
    INFO(listen);
    Result<std::unique_ptr<AdminServer>> server = AdminServer::Start(
        {.listen = listen}, {.pipelines = [] { return std::vector<PipelineReport>{}; }});
    REQUIRE(server.ok());
    const std::string host = std::string(listen).substr(0, std::string(listen).rfind(':'));
    httplib::Client client(host == "localhost" ? "127.0.0.1" : host, (*server)->port());
    auto health = client.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 503);  // no pipeline
  }
}

TEST_CASE("`check` refuses an admin.listen name without a token, however loopback it looks",
          "[admin]") {
  for (const char* listen : {"127.attacker.example:18090", "127.0.0.256:18090"}) {
    INFO(listen);
    const Result<Config> config = ParseConfig(
        "typesense: { nodes: \"http://127.0.0.1:8108\", api_key: k }\nadmin:\n  listen: " +
            std::string(listen) + "\n",
        "pipelines.yaml");
    REQUIRE_FALSE(config.ok());
    CHECK(config.status().code() == StatusCode::kInvalidArgument);
    CHECK(config.status().message().find(
              "pipelines.yaml:3:11: admin.listen: " + std::string(listen) +
              " is not a loopback address, so admin.token is required") != std::string::npos);
  }
}

TEST_CASE("Admin API: /metrics parses as Prometheus text and its counters move with the work",
          "[admin]") {
  AdminWorld world(Events(300), {}, 60s, /*start_runner=*/false);
  world.sink_view->blocked = true;  // writes wait: events are read but not acknowledged
  world.thread = std::thread([&] { world.run_status = world.runner->Run(); });
  const std::string products = "{pipeline=\"products\"}";

  REQUIRE(WaitUntil(
      [&] { return world.Metrics().Value("searchsync_events_read_total" + products) >= 100; },
      ScaledTimeout(30s)));
  Scrape blocked = world.Metrics();
  CHECK(blocked.types.at("searchsync_events_read_total") == "counter");
  CHECK(blocked.types.at("searchsync_lag_seconds") == "gauge");
  CHECK(blocked.Value("searchsync_events_acked_total" + products) == 0);
  CHECK(blocked.Value("searchsync_events_in_flight" + products) > 0);
  CHECK(blocked.Value("searchsync_batches_total" + products) == 0);
  REQUIRE(
      WaitUntil([&] { return world.Metrics().Value("searchsync_lag_seconds" + products) > 0.05; },
                ScaledTimeout(30s)));
  CHECK(blocked.Value("searchsync_reindex_running" + products) == 0);

  world.sink_view->blocked = false;
  REQUIRE(WaitUntil(
      [&] { return world.Metrics().Value("searchsync_events_acked_total" + products) == 300; },
      ScaledTimeout(30s)));
  const Scrape done = world.Metrics();
  CHECK(done.Value("searchsync_events_read_total" + products) == 300);
  CHECK(done.Value("searchsync_events_dead_lettered_total" + products) == 0);
  CHECK(done.Value("searchsync_batches_total" + products) >= 6);  // 300 events, 50 per batch
  CHECK(done.Value("searchsync_events_in_flight" + products) == 0);
  CHECK(done.Value("searchsync_lag_seconds" + products) == 0);
  CHECK(done.Value("searchsync_queue_events" + products) == 0);

  // Retries count, and a reindex shows its progress.
  {
    std::lock_guard lock(world.sink_view->mutex);
    world.sink_view->unavailable_writes = 3;
  }
  auto started = world.client->Post("/pipelines/products/reindex", "", "application/json");
  REQUIRE(started);
  CHECK(started->status == 202);
  CHECK(started->body == "{\"id\":\"products-1\"}");
  {
    std::lock_guard lock(world.mutex);
    world.reindex->rows_written = 250;
  }
  const Scrape reindexing = world.Metrics();
  CHECK(reindexing.Value("searchsync_reindex_running" + products) == 1);
  CHECK(reindexing.Value("searchsync_reindex_rows_written" + products) == 250);
  CHECK(reindexing.Value("searchsync_reindex_rows_expected" + products) == 1000);
  CHECK(reindexing.Value("searchsync_reindex_state{pipeline=\"products\",state=\"running\"}") == 1);
}

TEST_CASE("Admin API: /health turns 503 when a pipeline fails, and names it", "[admin]") {
  SECTION("failed") {
    AdminWorld world(Events(100), {}, 60s, /*start_runner=*/false);
    world.sink_view->fail_after_batches = 0;  // the first write fails for good (key refused)
    auto before = world.Get("/health");
    REQUIRE(before);
    CHECK(before->status == 200);  // "starting" is not failing
    world.thread = std::thread([&] { world.run_status = world.runner->Run(); });
    REQUIRE(WaitUntil([&] { return world.Get("/health")->status == 503; }, ScaledTimeout(30s)));
    auto health = world.Get("/health");
    CHECK(health->body ==
          "{\"status\":\"failing\",\"failing\":[{\"name\":\"products\",\"state\":\"failed\","
          "\"reason\":\"typesense refused the API key\"}]}");
    auto status = world.Get("/status");
    CHECK(status->body.find("\"state\":\"failed\"") != std::string::npos);
    CHECK(status->body.find("\"last_error\":\"typesense refused the API key\"") !=
          std::string::npos);
  }
  SECTION("retrying for longer than the threshold") {
    AdminWorld world(Events(100), {}, 300ms, /*start_runner=*/false);
    {
      std::lock_guard lock(world.sink_view->mutex);
      world.sink_view->unavailable_writes = 1'000'000;  // Typesense keeps answering 503
    }
    world.thread = std::thread([&] { world.run_status = world.runner->Run(); });
    REQUIRE(WaitUntil([&] { return world.Get("/health")->status == 503; }, ScaledTimeout(30s)));
    auto health = world.Get("/health");
    CHECK(health->body.find("\"reason\":\"retrying for ") != std::string::npos);
    CHECK(world.Metrics().Value("searchsync_retries_total{pipeline=\"products\"}") > 0);
    {
      std::lock_guard lock(world.sink_view->mutex);
      world.sink_view->unavailable_writes = 0;  // Typesense is back
    }
    REQUIRE(WaitUntil([&] { return world.Get("/health")->status == 200; }, ScaledTimeout(30s)));
    CHECK(world.Get("/health")->body == "{\"status\":\"ok\"}");
  }
}

TEST_CASE("Admin API: POST /pipelines/NAME/reindex answers 202, 404 and 409", "[admin]") {
  AdminWorld world(Events(10));
  auto started = world.client->Post("/pipelines/products/reindex", "", "application/json");
  REQUIRE(started);
  CHECK(started->status == 202);
  CHECK(started->body == "{\"id\":\"products-1\"}");

  auto again = world.client->Post("/pipelines/products/reindex", "", "application/json");
  REQUIRE(again);
  CHECK(again->status == 409);
  CHECK(again->body ==
        "{\"message\":\"a reindex of products is already running (id products-1)\"}");

  auto unknown = world.client->Post("/pipelines/orders/reindex", "", "application/json");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(unknown->body == "{\"message\":\"no pipeline named 'orders'\"}");

  auto wrong_method = world.Get("/pipelines/products/reindex");
  REQUIRE(wrong_method);
  CHECK(wrong_method->status == 405);

  auto status = world.Get("/status");
  REQUIRE(status);
  CHECK(status->body.find("\"reindex\":{\"id\":\"products-1\",\"pipeline\":\"products\","
                          "\"state\":\"running\",\"phase\":\"full_read\"") != std::string::npos);
}

TEST_CASE("Admin API: a known path called with the wrong method gets 405 and Allow", "[admin]") {
  AdminWorld world(Events(10), Secret("s3cret-token"));
  const httplib::Headers auth = {{"Authorization", "Bearer s3cret-token"}};
  struct Case {
    std::string method, path, allow;
  };
  for (const Case& c :
       {Case{"GET", "/pipelines/products/reindex", "POST"},
        Case{"DELETE", "/pipelines/products/reindex", "POST"}, Case{"POST", "/health", "GET, HEAD"},
        Case{"PUT", "/status", "GET, HEAD"}, Case{"DELETE", "/metrics", "GET, HEAD"}}) {
    INFO(c.method << " " << c.path);
    httplib::Request request;
    request.method = c.method;
    request.path = c.path;
    request.headers = auth;
    auto response = world.client->send(request);
    REQUIRE(response);
    CHECK(response->status == 405);
    CHECK(response->get_header_value("Allow") == c.allow);
    CHECK(response->body.find("\"message\":") != std::string::npos);
    // Without the token, the method says nothing: 401 first.
    request.headers.clear();
    auto anonymous = world.client->send(request);
    REQUIRE(anonymous);
    CHECK(anonymous->status == 401);
  }
  CHECK(world.reindexes == 0);
  auto head = world.client->Head("/health", auth);
  REQUIRE(head);
  CHECK(head->status == 200);
}

TEST_CASE("Admin API: a POST without Content-Length is checked and answered at once", "[admin]") {
  // curl -X POST sends no Content-Length; such a request has no body.
  const std::string post =
      "POST /pipelines/products/reindex HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
  SECTION("with a token: 401 without it, 202 with it") {
    AdminWorld world(Events(10), Secret("s3cret-token"));
    TcpClient anonymous(world.server->port());
    REQUIRE(anonymous.Send(post + "\r\n"));
    const std::string refused = anonymous.ReadUntilClosed(ScaledTimeout(30s));
    CHECK(refused.starts_with("HTTP/1.1 401 "));
    CHECK(world.reindexes == 0);
    TcpClient authorized(world.server->port());
    REQUIRE(authorized.Send(post + "Authorization: Bearer s3cret-token\r\n\r\n"));
    const std::string accepted = authorized.ReadUntilClosed(ScaledTimeout(30s));
    CHECK(accepted.starts_with("HTTP/1.1 202 "));
    CHECK(accepted.ends_with("{\"id\":\"products-1\"}"));
  }
  SECTION("without a token: 202") {
    AdminWorld world(Events(10));
    TcpClient client(world.server->port());
    REQUIRE(client.Send(post + "\r\n"));
    CHECK(client.ReadUntilClosed(ScaledTimeout(30s)).starts_with("HTTP/1.1 202 "));
  }
}

TEST_CASE("Admin API: slow and idle clients do not keep /health from others", "[admin]") {
  AdminWorld world(Events(10));
  // 200 connections that never say anything, and 8 that send their request head one byte at
  // a time: each read of theirs gets data, so no per-read timeout ever fires.
  std::vector<std::unique_ptr<TcpClient>> idle;
  for (int i = 0; i < 200; ++i) {
    idle.push_back(std::make_unique<TcpClient>(world.server->port()));
    REQUIRE(idle.back()->connected());
  }
  std::vector<std::unique_ptr<TcpClient>> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(std::make_unique<TcpClient>(world.server->port()));
    REQUIRE(slow.back()->Send("GET /health HTTP/1.1\r\nX-Slow: "));
  }
  std::atomic<bool> done = false;
  std::thread trickle([&] {
    while (!done) {
      for (auto& client : slow) (void)client->Send("a");
      std::this_thread::sleep_for(200ms);
    }
  });
  for (int i = 0; i < 5; ++i) {
    httplib::Client client("127.0.0.1", world.server->port());
    client.set_read_timeout(ScaledTimeout(30s));
    auto health = client.Get("/health");
    REQUIRE(health);
    CHECK(health->status == 200);
  }
  // Their request heads never complete: all are closed after the request timeout (10 s).
  for (auto& client : slow) CHECK(client->ClosedWithin(ScaledTimeout(60s)));
  for (auto& client : idle) CHECK(client->ClosedWithin(ScaledTimeout(60s)));
  done = true;
  trickle.join();
}

}  // namespace
}  // namespace searchsync
