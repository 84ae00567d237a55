// What `searchsync run` does when Typesense, a proxy in front of it, or the operating system
// misbehaves: redirects, documents the server fails on, signals, a closed stderr, a crash. Each
// test runs the real binary against PostgreSQL and the Typesense test server.

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "pipeline/state_store.h"
#include "tests/integration/sync_fixture.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using test::CommandResult;
using test::SyncFixture;
using test::WaitUntil;

// The products config with `retry` as the typesense.retry mapping.
void WriteConfigWithRetry(SyncFixture& world, const std::string& retry) {
  world.WriteProductsConfig();
  std::ifstream in(world.config_path());
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  const std::string default_retry = "retry: { initial_backoff: 50ms, max_backoff: 1s }";
  const size_t at = yaml.find(default_retry);
  REQUIRE(at != std::string::npos);
  yaml.replace(at, default_retry.size(), "retry: " + retry);
  world.WriteConfig(yaml);
}

nlohmann::json StatusJson(SyncFixture& world) {
  const CommandResult status = world.RunSearchsync({"status", "--json"});
  INFO(status.err);
  REQUIRE(status.exit_code == 0);
  return nlohmann::json::parse(status.out)["pipelines"][0];
}

uint64_t DeadLetterCount(SyncFixture& world) {
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  return store->CountDeadLetters("products").value();
}

}  // namespace

TEST_CASE(
    "a redirect from a proxy is retried, dead-letters nothing, acknowledges nothing, and "
    "the error names the URL for typesense.nodes",
    "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 50);
  WriteConfigWithRetry(world, "{ initial_backoff: 50ms, max_backoff: 200ms, max_elapsed: 2s }");
  world.typesense().SetProxyReply(test::TypesenseProxyReply{
      .status = 301,
      .location = "https://typesense.internal.example/collections/x/documents/import",
      .body = "<html>301 Moved Permanently</html>"});

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("set typesense.nodes to https://typesense.internal.example"));
  CHECK(world.typesense().Counters().Requests(test::TypesenseRoute::kImport) > 1);
  CHECK(DeadLetterCount(world) == 0);
  CHECK(world.IndexDocuments().empty());
  const nlohmann::json status = StatusJson(world);
  CHECK(status["checkpoint"] == "");
  CHECK(status["events_acked"] == 0);

  world.typesense().SetProxyReply(std::nullopt);
  const CommandResult fixed = world.RunSearchsync({"run", "--once"});
  INFO(fixed.err);
  REQUIRE(fixed.exit_code == 0);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE(
    "a proxy's body limit splits imports, only a document too large alone is "
    "dead-lettered, with that reason",
    "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 200);
  world.Exec("UPDATE products SET name = repeat('x', 20000) WHERE id = 'p-77'");
  world.WriteProductsConfig();
  world.typesense().SetProxyReply(test::TypesenseProxyReply{
      .status = 413, .body = "<html>413 Request Entity Too Large</html>", .min_body_bytes = 8000});

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);  // a document was dead-lettered
  const auto documents = world.IndexDocuments();
  CHECK(documents.size() == 199);
  CHECK(documents.count("p-77") == 0);
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  const auto letters = store->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "p-77");
  CHECK_THAT(letters[0].error,
             Catch::StartsWith("HTTP 413: ") && Catch::Contains("the document is too large"));
}

TEST_CASE(
    "a document Typesense keeps failing with 500 is dead-lettered after bounded attempts "
    "and newer changes go on",
    "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  world.typesense().SetImportLineResults(
      {{"p-13",
        {{"code", 500}, {"error", "Could not write to on-disk storage."}, {"success", false}}}});

  const CommandResult run = world.RunSearchsync({"run", "--once"}, 2min);
  INFO(run.err);
  CHECK(run.exit_code == 1);  // a document was dead-lettered
  CHECK(world.IndexDocuments().size() == 99);
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  const auto letters = store->ListDeadLetters("products", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "p-13");
  CHECK(letters[0].error ==
        "HTTP 500: Could not write to on-disk storage. (failed 5 times, written alone)");

  // A later change of the same row is stored once Typesense takes it.
  world.typesense().SetImportLineResults({});
  world.Exec("UPDATE products SET name = 'fixed' WHERE id = 'p-13'");
  const CommandResult again = world.RunSearchsync({"run", "--once"});
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK(world.IndexDocuments().at("p-13")["name"] == "fixed");
}

TEST_CASE("typesense.retry.max_elapsed also bounds the start-up calls",
          "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 5);
  WriteConfigWithRetry(world, "{ initial_backoff: 50ms, max_backoff: 200ms, max_elapsed: 1s }");
  world.typesense().SetUnavailable(true);
  const CommandResult run = world.RunSearchsync({"run", "--once"}, 2min);
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("HTTP 503") &&
                          Catch::Contains("gave up after retry.max_elapsed 1.0s"));
}

TEST_CASE(
    "run --once stopped with events unacknowledged exits 1, says stopped, and a second "
    "SIGTERM ends the grace period",
    "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 300);
  world.WriteProductsConfig();
  REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
  world.Exec("UPDATE products SET name = 'pending' WHERE id IN ('p-1', 'p-2', 'p-3')");
  world.typesense().SetWriteUnavailableRate(1.0);  // reads work, every write gets 503

  auto daemon = world.StartDaemon({"--once"});
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().unavailable > 0; }, 60s));
  daemon->Signal(SIGTERM);
  REQUIRE(WaitUntil(
      [&] { return daemon->ReadStderr().find("received SIGTERM") != std::string::npos; }, 60s));
  daemon->Signal(SIGTERM);
  // Well within the 30 s grace period that the first signal started.
  const std::optional<int> code = daemon->Wait(20s);
  INFO(daemon->Describe());
  REQUIRE(code.has_value());
  CHECK(*code == 1);
  const std::string err = daemon->ReadStderr();
  CHECK_THAT(err, Catch::Contains("again: stopping without waiting"));
  CHECK_THAT(err, Catch::Contains("stopped with 3 events read but not acknowledged"));
  world.typesense().SetWriteUnavailableRate(0.0);
  const nlohmann::json status = StatusJson(world);
  CHECK(status["state"] == "stopped");
  CHECK(status["events_read"] == status["events_acked"]);
}

TEST_CASE("SIGHUP stops run like SIGTERM, with a log line and a final checkpoint",
          "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().size() == 100; }, 60s));
  daemon->Signal(SIGHUP);
  const std::optional<int> code = daemon->Wait(60s);
  INFO(daemon->Describe());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK_THAT(daemon->ReadStderr(), Catch::Contains("received SIGHUP"));
  const nlohmann::json status = StatusJson(world);
  CHECK(status["state"] == "stopped");
  CHECK(status["events_acked"] == 100);
}

TEST_CASE("run survives a closed stderr (run 2>&1 | head)", "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();
  int stderr_pipe[2];
  REQUIRE(::pipe2(stderr_pipe, O_CLOEXEC) == 0);
  auto daemon = test::ServerProcess::Start(
      {.argv = {SEARCHSYNC_BINARY, "run", "-c", world.config_path()},
       .env = world.Env(),
       .stderr_path = "/proc/self/fd/" + std::to_string(stderr_pipe[1])});
  ::close(stderr_pipe[1]);
  ::close(stderr_pipe[0]);  // nobody reads stderr any more: every log line fails with EPIPE
  REQUIRE(daemon.ok());
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().size() == 100; }, 60s));
  world.Exec("UPDATE products SET name = 'after' WHERE id = 'p-5'");
  REQUIRE(WaitUntil([&] { return world.IndexDocuments().at("p-5")["name"] == "after"; }, 60s));
  CHECK((*daemon)->Stop() == 0);
}

TEST_CASE("after kill -9 and recovery, events read and acknowledged agree",
          "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 3000);
  world.WriteProductsConfig("{ max_events: 100, flush_interval: 100ms }");
  world.typesense().SetLatency(50ms);
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().documents_written >= 500; }, 60s));
  daemon->Kill9();
  world.typesense().SetLatency(0ms);

  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  const nlohmann::json status = StatusJson(world);
  CHECK(status["events_read"] == status["events_acked"]);
  CHECK(status["events_acked"] >= 3000);
  CHECK(world.IndexMatchesProducts() == "");
}

TEST_CASE("with --log-format json every line run writes to stderr is JSON, the summary too",
          "[integration][run-outcome]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 20);
  // A null inside string[] passes the transforms but Typesense rejects it: a summary line.
  world.Exec("UPDATE products SET tags = ARRAY['a', NULL] WHERE id = 'p-4'");
  world.WriteProductsConfig();
  const CommandResult run = world.RunSearchsync({"run", "--once", "--log-format", "json"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  std::istringstream lines(run.err);
  std::string line;
  int summary_lines = 0;
  while (std::getline(lines, line)) {
    INFO(line);
    const nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    REQUIRE_FALSE(parsed.is_discarded());
    if (parsed.value("msg", "").find("dead-letter store") != std::string::npos) ++summary_lines;
  }
  CHECK(summary_lines >= 1);
}

}  // namespace searchsync
