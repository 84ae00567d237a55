// The admin API and the on-call CLI against a real `searchsync run` daemon (PostgreSQL and the
// Typesense test server): tokens, /metrics, /health, reindex over HTTP and `reindex --wait`.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "tests/integration/sync_fixture.h"
#include "tests/support/prometheus_text.h"

namespace searchsync::test {
namespace {

constexpr const char* kToken = "on-call-token-1";

constexpr const char* kAnyPort = "listen: 127.0.0.1:0\n";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The products world with an admin API on loopback, on a port the daemon picks.
struct AdminFixture {
  AdminFixture(int rows, const std::string& token = kToken) {
    world.CreateProductsTable();
    world.InsertProducts(1, rows);
    world.WriteProductsConfig();
    std::string yaml = ReadFile(world.config_path()) + "admin:\n  " + kAnyPort;
    if (!token.empty()) yaml += "  token: " + token + "\n";
    world.WriteConfig(yaml);
  }

  std::unique_ptr<ServerProcess> StartDaemon() {
    auto daemon = world.StartDaemon();
    port = AdminPort(*daemon);
    // The CLI finds the daemon through admin.listen: name the port it got. The daemon read its
    // config at start and does not read it again.
    std::string yaml = ReadFile(world.config_path());
    yaml.replace(yaml.find(kAnyPort), std::string(kAnyPort).size(),
                 "listen: 127.0.0.1:" + std::to_string(port) + "\n");
    world.WriteConfig(yaml);
    client = std::make_unique<httplib::Client>("127.0.0.1", port);
    client->set_connection_timeout(2, 0);
    client->set_read_timeout(30, 0);
    REQUIRE(daemon->WaitReady([&] { return Get("/health", kToken).status() != 0; }, 60s).ok());
    return daemon;
  }

  struct Answer {
    int code = 0;  // 0: no answer
    std::string body;
    int status() const { return code; }
  };
  Answer Get(const std::string& path, const std::string& token = kToken) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto result = client->Get(path.c_str(), headers);
    if (!result) return {};
    return {result->status, result->body};
  }
  Answer Post(const std::string& path, const std::string& token = kToken) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    auto result = client->Post(path.c_str(), headers, "", "application/json");
    if (!result) return {};
    return {result->status, result->body};
  }
  Scrape Metrics() {
    const Answer answer = Get("/metrics");
    REQUIRE(answer.code == 200);
    Scrape scrape = ParsePrometheus(answer.body);
    INFO(answer.body);
    REQUIRE(scrape.error == "");
    return scrape;
  }
  double Metric(const std::string& key) { return Metrics().Value(key); }
  std::string AliasTarget() {
    const auto aliases = world.typesense().Aliases();
    const auto it = aliases.find("products");
    return it == aliases.end() ? "" : it->second;
  }
  nlohmann::json Status() {
    const Answer answer = Get("/status");
    REQUIRE(answer.code == 200);
    return nlohmann::json::parse(answer.body);
  }

  SyncFixture world;
  int port = 0;  // known once the daemon started
  std::unique_ptr<httplib::Client> client;
};

const std::string kProducts = "{pipeline=\"products\"}";

TEST_CASE("Admin API of a running daemon: tokens, metrics that move with the work, health",
          "[integration][admin]") {
  AdminFixture f(500);
  auto daemon = f.StartDaemon();

  // Every call needs the token.
  for (const char* path : {"/health", "/status", "/metrics"}) {
    INFO(path);
    CHECK(f.Get(path, "").code == 401);
    CHECK(f.Get(path, "wrong-token").code == 401);
  }
  CHECK(f.Post("/pipelines/products/reindex", "").code == 401);
  CHECK(f.Post("/pipelines/products/reindex", "on-call-token-2").code == 401);

  REQUIRE(WaitUntil([&] { return f.Metric("searchsync_events_acked_total" + kProducts) == 500; },
                    60s, 100ms));
  Scrape first = f.Metrics();
  CHECK(first.Value("searchsync_events_read_total" + kProducts) == 500);
  CHECK(first.Value("searchsync_events_dead_lettered_total" + kProducts) == 0);
  CHECK(first.Value("searchsync_batches_total" + kProducts) >= 1);
  CHECK(first.Value("searchsync_lag_seconds" + kProducts) == 0);
  CHECK(first.Value("searchsync_typesense_responses_total{status=\"200\"}") >= 1);
  CHECK(f.Get("/health").body == "{\"status\":\"ok\"}");
  const nlohmann::json status = f.Status();
  REQUIRE(status["pipelines"].size() == 1);
  CHECK(status["pipelines"][0]["name"] == "products");
  CHECK(status["pipelines"][0]["events_acked"] == 500);
  CHECK(status["pipelines"][0]["checkpoint"] != "");
  CHECK(status["pipelines"][0]["reindex"].is_null());

  // More rows: the counters follow.
  f.world.InsertProducts(501, 200);
  REQUIRE(WaitUntil([&] { return f.Metric("searchsync_events_acked_total" + kProducts) == 700; },
                    60s, 100ms));
  CHECK(f.Metric("searchsync_batches_total" + kProducts) >
        first.Value("searchsync_batches_total" + kProducts));
  CHECK(f.world.IndexMatchesProducts() == "");

  // `status` shows the daemon's live view.
  const CommandResult table = f.world.RunSearchsync({"status"});
  INFO(table.err);
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("live status of the daemon at 127.0.0.1:" + std::to_string(f.port)) !=
        std::string::npos);
  CHECK(table.out.find("LAG") != std::string::npos);
  const CommandResult json = f.world.RunSearchsync({"status", "--json"});
  CHECK(json.exit_code == 0);
  CHECK(nlohmann::json::parse(json.out)["pipelines"][0]["events_acked"] == 700);

  // Typesense down: calls are retried and counted as 503s.
  f.world.typesense().SetUnavailable(true);
  f.world.InsertProducts(701, 10);
  REQUIRE(
      WaitUntil([&] { return f.Metric("searchsync_retries_total" + kProducts) > 0; }, 60s, 100ms));
  CHECK(f.Metric("searchsync_typesense_responses_total{status=\"503\"}") > 0);
  f.world.typesense().SetUnavailable(false);
  REQUIRE(WaitUntil([&] { return f.Metric("searchsync_events_acked_total" + kProducts) == 710; },
                    60s, 100ms));

  // A row Typesense rejects (a null inside string[]) is dead-lettered, and counted.
  f.world.Exec("UPDATE products SET tags = ARRAY['a', NULL] WHERE id = 'p-42'");
  CHECK(
      WaitUntil([&] { return f.Metric("searchsync_events_dead_lettered_total" + kProducts) == 1; },
                60s, 100ms));
  CHECK(f.Metric("searchsync_events_acked_total" + kProducts) == 711);
  CHECK(f.Status()["pipelines"][0]["dead_lettered"] == 1);

  // The collection behind the alias is dropped: the pipeline stops, /health says so.
  const std::string live = f.AliasTarget().empty() ? "products" : f.AliasTarget();
  httplib::Client typesense("127.0.0.1", f.world.typesense().port());
  auto dropped = typesense.Delete(("/collections/" + live).c_str(),
                                  {{"X-TYPESENSE-API-KEY", f.world.typesense().api_key()}});
  REQUIRE(dropped);
  REQUIRE(dropped->status == 200);
  f.world.InsertProducts(711, 5);
  const bool failing = WaitUntil([&] { return f.Get("/health").code == 503; }, 60s, 100ms);
  INFO("last /health answer: " << f.Get("/health").code << " " << f.Get("/health").body);
  INFO("daemon stderr: " << FileTail(daemon->stderr_path()));
  REQUIRE(failing);
  const nlohmann::json health = nlohmann::json::parse(f.Get("/health").body);
  CHECK(health["status"] == "failing");
  REQUIRE(health["failing"].size() == 1);
  CHECK(health["failing"][0]["name"] == "products");
  CHECK(health["failing"][0]["state"] == "failed");
  CHECK(f.Metrics().Value("searchsync_pipeline_state{pipeline=\"products\",state=\"failed\"}") ==
        1);
}

TEST_CASE("searchsync run refuses an admin API beyond loopback without a token",
          "[integration][admin]") {
  AdminFixture f(1, /*token=*/"");
  std::string text = ReadFile(f.world.config_path());
  const std::string loopback = "listen: 127.0.0.1:";
  text.replace(text.find(loopback), loopback.size(), "listen: 0.0.0.0:");
  f.world.WriteConfig(text);
  const CommandResult run = f.world.RunSearchsync({"run", "--once"});
  CHECK(run.exit_code == 2);
  CHECK(run.err.find("is not a loopback address, so admin.token is required") != std::string::npos);
}

TEST_CASE("searchsync reindex --wait against a running daemon moves the alias and exits 0",
          "[integration][admin][reindex]") {
  AdminFixture f(2000);
  auto daemon = f.StartDaemon();
  REQUIRE(WaitUntil([&] { return f.world.IndexMatchesProducts() == ""; }, 60s, 100ms));
  const std::string before = f.AliasTarget();

  const CommandResult reindex = f.world.RunSearchsync({"reindex", "products", "--wait"});
  INFO(reindex.err);
  REQUIRE(reindex.exit_code == 0);
  CHECK(reindex.err.find("started by the daemon at 127.0.0.1:" + std::to_string(f.port)) !=
        std::string::npos);
  CHECK(reindex.err.find("succeeded") != std::string::npos);
  const std::string after = f.AliasTarget();
  CHECK(after != before);
  CHECK(after.starts_with("products_"));
  CHECK(f.world.IndexMatchesProducts() == "");

  const nlohmann::json status = f.Status();
  CHECK(status["pipelines"][0]["reindex"]["state"] == "succeeded");
  CHECK(status["pipelines"][0]["reindex"]["collection"] == after);
  CHECK(f.Metric("searchsync_reindex_state{pipeline=\"products\",state=\"succeeded\"}") == 1);

  // The live stream writes to the new collection.
  f.world.InsertProducts(2001, 10);
  REQUIRE(WaitUntil([&] { return f.world.IndexMatchesProducts() == ""; }, 60s, 100ms));
}

TEST_CASE("searchsync reindex --wait with no daemon on admin.listen reindexes by itself",
          "[integration][admin][reindex]") {
  AdminFixture f(1000);
  REQUIRE(f.world.RunSearchsync({"run", "--once"}).exit_code == 0);
  const std::string before = f.AliasTarget();
  f.world.InsertProducts(1001, 50);

  const CommandResult reindex = f.world.RunSearchsync({"reindex", "products", "--wait"});
  INFO(reindex.err);
  REQUIRE(reindex.exit_code == 0);
  CHECK(reindex.err.find("no daemon answers on admin.listen") != std::string::npos);
  CHECK(reindex.err.find("succeeded") != std::string::npos);
  CHECK(f.AliasTarget() != before);
  CHECK(f.world.IndexMatchesProducts() == "");

  const CommandResult unknown = f.world.RunSearchsync({"reindex", "nope"});
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("no pipeline named 'nope'") != std::string::npos);
}

TEST_CASE("A reindex.schedule fires in the daemon (every minute: waits up to a minute)",
          "[integration][admin][reindex][schedule]") {
  AdminFixture f(500);
  std::string text = ReadFile(f.world.config_path());
  const std::string sink = "    sink:\n";
  text.insert(text.find(sink), "    reindex: { schedule: \"* * * * *\", keep: 1 }\n");
  f.world.WriteConfig(text);
  auto daemon = f.StartDaemon();
  REQUIRE(WaitUntil([&] { return f.world.IndexMatchesProducts() == ""; }, 60s, 100ms));
  const nlohmann::json before = f.Status();
  CHECK(before["pipelines"][0]["next_reindex"].is_string());

  REQUIRE(WaitUntil(
      [&] {
        const nlohmann::json reindex = f.Status()["pipelines"][0]["reindex"];
        return reindex.is_object() && reindex["state"] == "succeeded";
      },
      150s, 500ms));
  CHECK(daemon->ReadStderr().find("started reindex pipeline=products due at") != std::string::npos);
  CHECK(f.world.IndexMatchesProducts() == "");
}

TEST_CASE("A second reindex while one runs gets 409, over HTTP and from the CLI",
          "[integration][admin][reindex]") {
  AdminFixture f(3000);
  auto daemon = f.StartDaemon();
  REQUIRE(WaitUntil([&] { return f.world.IndexMatchesProducts() == ""; }, 60s, 100ms));
  // Slow Typesense down so the reindex is still running when the second request comes.
  f.world.typesense().SetLatency(300ms);

  const auto first = f.Post("/pipelines/products/reindex");
  REQUIRE(first.code == 202);
  const std::string id = nlohmann::json::parse(first.body)["id"];
  const auto second = f.Post("/pipelines/products/reindex");
  CHECK(second.code == 409);
  CHECK(nlohmann::json::parse(second.body)["message"].get<std::string>().find(id) !=
        std::string::npos);
  CHECK(f.Post("/pipelines/nope/reindex").code == 404);

  const CommandResult cli = f.world.RunSearchsync({"reindex", "products"});
  CHECK(cli.exit_code == 1);
  CHECK(cli.err.find("a reindex of products is already running (id " + id + ")") !=
        std::string::npos);

  f.world.typesense().SetLatency(0ms);
  REQUIRE(WaitUntil([&] { return f.Status()["pipelines"][0]["reindex"]["state"] != "running"; },
                    120s, 200ms));
  CHECK(f.Status()["pipelines"][0]["reindex"]["state"] == "succeeded");
}

}  // namespace
}  // namespace searchsync::test
