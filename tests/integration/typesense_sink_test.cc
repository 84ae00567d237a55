#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/json.h"
#include "sinks/typesense.h"
#include "sinks/typesense_client.h"
#include "sinks/typesense_encode.h"
#include "tests/support/typesense_server.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

constexpr char kSchema[] = R"({"fields":[{"name":"name","type":"string"},)"
                           R"({"name":"price","type":"float","optional":true}]})";

// Ids the product promises to write and delete correctly.
const std::vector<std::string> kTrickyIds = {
    "a,b", "x y",    "ü-1",   "(a)",    "&&",      "50%",   "+1",     "tick`",
    "*",   "ends\\", " lead", "trail ", "a/b?c#d", "`(x)`", "id:[q]", "a\\`b",
};

Event Upsert(const std::string& id, const std::string& name) {
  return Event{.op = Op::kUpsert, .id = id, .document = {{"name", JsonString(name)}}};
}

Event Delete(const std::string& id) { return Event{.op = Op::kDelete, .id = id}; }

Batch MakeBatch(std::vector<Event> events) {
  Batch batch;
  batch.events = std::move(events);
  for (const Event& event : batch.events) batch.byte_size += event.ByteSize();
  return batch;
}

// A test server and the options of a sink pointed at it.
struct SinkFixture {
  test::TypesenseServer server{test::TypesenseServerOptions{.api_key = "s3cret-test-key"}};
  TypesenseOptions typesense;
  SinkOptions sink;

  SinkFixture() {
    typesense.nodes = {server.url()};
    typesense.api_key = Secret(server.api_key());
    typesense.timeout = 30s;
    sink.collection = "products";
    sink.schema_json = kSchema;
  }

  std::unique_ptr<Sink> MakeSink(TypesenseSinkTarget target = {}) const {
    return MakeTypesenseSink(typesense, sink, "test sink=typesense", std::move(target));
  }

  // A sink on which Prepare already succeeded.
  std::unique_ptr<Sink> PreparedSink() const {
    std::unique_ptr<Sink> result = MakeSink();
    REQUIRE(result->Prepare().ok());
    return result;
  }

  std::map<std::string, nlohmann::json> Stored() const {
    const auto documents = server.Documents("products");
    REQUIRE(documents.has_value());
    return *documents;
  }
};

// A node URL where nothing listens: a port the kernel picked free, closed again.
std::string DeadNodeUrl() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

}  // namespace

TEST_CASE("Typesense sink HealthCheck passes against a healthy server",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  const Status status = fixture.MakeSink()->HealthCheck();
  CHECK(status.ok());
}

TEST_CASE("Typesense sink Prepare creates a timestamped collection behind the alias",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.MakeSink();
  REQUIRE(sink->Prepare().ok());

  const auto aliases = fixture.server.Aliases();
  REQUIRE(aliases.count("products") == 1);
  const std::string& collection = aliases.at("products");
  CHECK_THAT(collection, Catch::Matches("products_[0-9]{8}T[0-9]{6}Z"));
  CHECK(fixture.server.CollectionNames() == std::vector<std::string>{collection});
  const auto summary = fixture.server.Collection(collection);
  REQUIRE(summary.has_value());
  CHECK((*summary)["fields"].size() == 2);

  SECTION("a second Prepare uses the alias and creates nothing") {
    REQUIRE(fixture.MakeSink()->Prepare().ok());
    CHECK(fixture.server.CollectionNames() == std::vector<std::string>{collection});
    CHECK(fixture.server.Aliases().at("products") == collection);
  }
}

TEST_CASE("Typesense sink Prepare uses a real collection named like the alias",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  TypesenseClient client({.nodes = fixture.typesense.nodes, .api_key = fixture.typesense.api_key},
                         "test");
  REQUIRE(client.CreateCollection(*SchemaWithName(kSchema, "products")).ok());

  std::unique_ptr<Sink> sink = fixture.MakeSink();
  REQUIRE(sink->Prepare().ok());
  CHECK(fixture.server.Aliases().empty());
  CHECK(fixture.server.CollectionNames() == std::vector<std::string>{"products"});

  REQUIRE(sink->Write(MakeBatch({Upsert("1", "one")})).ok());
  CHECK(fixture.Stored().count("1") == 1);
}

TEST_CASE("Typesense sink with an explicit target writes there and needs it to exist",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> missing = fixture.MakeSink({.collection = "products_next"});
  const Status status = missing->Prepare();
  CHECK(status.code() == StatusCode::kFailedPrecondition);
  CHECK(fixture.server.CollectionNames().empty());

  TypesenseClient client({.nodes = fixture.typesense.nodes, .api_key = fixture.typesense.api_key},
                         "test");
  REQUIRE(client.CreateCollection(*SchemaWithName(kSchema, "products_next")).ok());
  std::unique_ptr<Sink> sink = fixture.MakeSink({.collection = "products_next"});
  REQUIRE(sink->Prepare().ok());
  CHECK(fixture.server.Aliases().empty());
  REQUIRE(sink->Write(MakeBatch({Upsert("1", "one")})).ok());
  CHECK(fixture.server.Documents("products_next")->count("1") == 1);
}

TEST_CASE("Typesense sink upserts and deletes tricky ids", "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();

  std::vector<Event> upserts;
  for (const std::string& id : kTrickyIds) upserts.push_back(Upsert(id, "name of " + id));
  upserts.push_back(Upsert("keep", "kept"));
  const Result<WriteReport> written = sink->Write(MakeBatch(upserts));
  REQUIRE(written.ok());
  CHECK(written->rejected.empty());
  const auto stored = fixture.Stored();
  CHECK(stored.size() == kTrickyIds.size() + 1);
  for (const std::string& id : kTrickyIds) {
    INFO("id: [" << id << "]");
    REQUIRE(stored.count(id) == 1);
    CHECK(stored.at(id)["name"] == "name of " + id);
  }

  std::vector<Event> deletes;
  for (const std::string& id : kTrickyIds) deletes.push_back(Delete(id));
  fixture.server.ResetCounters();
  const Result<WriteReport> deleted = sink->Write(MakeBatch(deletes));
  REQUIRE(deleted.ok());
  // One filter request for the ids the filter syntax can express, one request per other id.
  const auto counters = fixture.server.Counters();
  CHECK(counters.Requests(test::TypesenseRoute::kDeleteByFilter) == 1);
  CHECK(counters.Requests(test::TypesenseRoute::kDocument) ==
        static_cast<int64_t>(PlanDeletes(MakeBatch(deletes)).single_ids.size()));
  CHECK(counters.Requests(test::TypesenseRoute::kImport) == 0);
  const auto left = fixture.Stored();
  CHECK(left.size() == 1);
  CHECK(left.count("keep") == 1);
}

TEST_CASE("Typesense sink deleting the id * deletes only that document",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  REQUIRE(sink->Write(MakeBatch({Upsert("*", "star"), Upsert("a", "A"), Upsert("b", "B")})).ok());
  REQUIRE(fixture.Stored().size() == 3);

  REQUIRE(sink->Write(MakeBatch({Delete("*")})).ok());
  const auto left = fixture.Stored();
  CHECK(left.size() == 2);
  CHECK(left.count("*") == 0);
}

TEST_CASE("Typesense sink mixes upserts and deletes in one batch, ignoring unknown ids",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  REQUIRE(sink->Write(MakeBatch({Upsert("1", "one"), Upsert("2", "two")})).ok());

  const Result<WriteReport> report =
      sink->Write(MakeBatch({Delete("1"), Upsert("2", "zwei"), Upsert("3", "three"),
                             Delete("never-there"), Delete("tick`never")}));
  REQUIRE(report.ok());
  CHECK(report->rejected.empty());
  const auto stored = fixture.Stored();
  CHECK(stored.size() == 2);
  CHECK(stored.at("2")["name"] == "zwei");
  CHECK(stored.at("3")["name"] == "three");
}

TEST_CASE("Typesense sink reports a rejected document and stores the others",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  Event bad = Upsert("bad", "bad price");
  bad.document.push_back({"price", R"("not a number")"});
  Event good = Upsert("good", "good price");
  good.document.push_back({"price", "9.5"});

  const Result<WriteReport> report =
      sink->Write(MakeBatch({Upsert("first", "first"), Delete("gone"), bad, good}));
  REQUIRE(report.ok());
  REQUIRE(report->rejected.size() == 1);
  CHECK(report->rejected[0].event_index == 2);
  CHECK(report->rejected[0].code == 400);
  CHECK_THAT(report->rejected[0].error, Catch::Contains("price"));
  const auto stored = fixture.Stored();
  CHECK(stored.size() == 2);
  CHECK(stored.count("first") == 1);
  CHECK(stored.at("good")["price"] == 9.5);
}

TEST_CASE("Typesense sink with a wrong API key fails precondition without showing the key",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  REQUIRE(fixture.MakeSink()->Prepare().ok());
  fixture.typesense.api_key = Secret("wrong-key-do-not-print");
  std::unique_ptr<Sink> sink = fixture.MakeSink();

  const Status health = sink->HealthCheck();
  CHECK(health.code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(health.message(), Catch::Contains("API key was refused"));
  CHECK_THAT(health.message(), !Catch::Contains("wrong-key-do-not-print"));

  const Status prepare = sink->Prepare();
  CHECK(prepare.code() == StatusCode::kFailedPrecondition);

  const Result<WriteReport> write = sink->Write(MakeBatch({Upsert("1", "one"), Delete("2")}));
  REQUIRE_FALSE(write.ok());
  CHECK(write.status().code() == StatusCode::kFailedPrecondition);
  CHECK_THAT(write.status().message(), Catch::Contains("API key was refused"));
  CHECK_THAT(write.status().message(), !Catch::Contains("wrong-key-do-not-print"));
  CHECK_THAT(write.status().message(), !Catch::Contains("s3cret-test-key"));
}

TEST_CASE("Typesense sink returns kUnavailable on 503 and succeeds once the server is back",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  const Batch batch = MakeBatch({Upsert("1", "one"), Delete("2")});

  SECTION("server down") {
    fixture.server.SetUnavailable(true);
    const Result<WriteReport> write = sink->Write(batch);
    REQUIRE_FALSE(write.ok());
    CHECK(write.status().code() == StatusCode::kUnavailable);
    CHECK_THAT(write.status().message(), Catch::Contains("HTTP 503"));
    CHECK(sink->HealthCheck().code() == StatusCode::kUnavailable);
    fixture.server.SetUnavailable(false);
  }
  SECTION("every write refused") {
    fixture.server.SetWriteUnavailableRate(1.0);
    const Result<WriteReport> write = sink->Write(MakeBatch({Upsert("1", "one")}));
    REQUIRE_FALSE(write.ok());
    CHECK(write.status().code() == StatusCode::kUnavailable);
    // The sink writes to the concrete collection behind the alias, never through it.
    CHECK_THAT(write.status().message(),
               Catch::Matches("typesense POST /collections/products_\\d{8}T\\d{6}Z/documents/"
                              "import: HTTP 503.*"));
    fixture.server.SetWriteUnavailableRate(0.0);
  }
  const Result<WriteReport> retried = sink->Write(batch);
  REQUIRE(retried.ok());
  CHECK(fixture.Stored().count("1") == 1);
}

TEST_CASE("Typesense sink returns kUnavailable when connections are cut, and retries are safe",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  const Batch batch = MakeBatch({Upsert("1", "one"), Upsert("2", "two"), Delete("3")});

  fixture.server.SetDropRate(1.0);
  const Result<WriteReport> write = sink->Write(batch);
  REQUIRE_FALSE(write.ok());
  CHECK(write.status().code() == StatusCode::kUnavailable);

  fixture.server.SetDropRate(0.0);
  const Result<WriteReport> retried = sink->Write(batch);
  REQUIRE(retried.ok());
  CHECK(retried->rejected.empty());
  CHECK(fixture.Stored().size() == 2);
}

TEST_CASE("Typesense sink retries a redirect, stores nothing, and names where it points",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  fixture.server.SetProxyReply(test::TypesenseProxyReply{
      .status = 301,
      .location = "https://search.example.com/collections/products/documents/import",
      .body = "<html><head><title>301 Moved Permanently</title></head></html>"});
  const Result<WriteReport> write =
      sink->Write(MakeBatch({Upsert("1", "one"), Upsert("2", "two")}));
  REQUIRE_FALSE(write.ok());
  CHECK(write.status().code() == StatusCode::kUnavailable);
  CHECK_THAT(write.status().message(),
             Catch::Contains("HTTP 301: redirected to https://search.example.com") &&
                 Catch::Contains("set typesense.nodes to https://search.example.com"));
  CHECK(fixture.Stored().empty());

  fixture.server.SetProxyReply(std::nullopt);
  const Result<WriteReport> retried =
      sink->Write(MakeBatch({Upsert("1", "one"), Upsert("2", "two")}));
  REQUIRE(retried.ok());
  CHECK(fixture.Stored().size() == 2);
}

TEST_CASE("Typesense sink halves an import a proxy finds too large, down to the one document",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  std::vector<Event> events;
  for (int i = 0; i < 40; ++i) {
    events.push_back(Upsert("doc-" + std::to_string(i), "name " + std::to_string(i)));
  }
  events.push_back(Upsert("huge", std::string(4000, 'x')));
  events.push_back(Delete("gone"));
  const Batch batch = MakeBatch(events);
  // About eight small documents fit under the limit; the huge one never does.
  fixture.server.SetProxyReply(test::TypesenseProxyReply{
      .status = 413,
      .body = "<html><head><title>413 Request Entity Too Large</title></head></html>",
      .min_body_bytes = 300});

  const Result<WriteReport> report = sink->Write(batch);
  REQUIRE(report.ok());
  CHECK(report->retryable.empty());
  REQUIRE(report->rejected.size() == 1);
  CHECK(report->rejected[0].event_index == 40);
  CHECK(report->rejected[0].code == 413);
  CHECK_THAT(report->rejected[0].Reason(),
             Catch::StartsWith("HTTP 413: typesense POST /collections/products_") &&
                 Catch::Contains("the document is too large: a request holding only this "
                                 "document (4023 bytes) exceeds a body size limit"));
  const auto stored = fixture.Stored();
  CHECK(stored.size() == 40);
  CHECK(stored.count("huge") == 0);
  CHECK(stored.at("doc-39")["name"] == "name 39");
}

TEST_CASE("Typesense sink halves an import refused with another 4xx, down to single documents",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  // Every import is refused, so are the halves, down to single documents: each one is rejected
  // with the reason.
  fixture.server.SetProxyReply(
      test::TypesenseProxyReply{.status = 400, .body = R"({"message": "Bad request"})"});
  const Result<WriteReport> report =
      sink->Write(MakeBatch({Upsert("1", "one"), Upsert("2", "two"), Upsert("3", "three")}));
  REQUIRE(report.ok());
  REQUIRE(report->rejected.size() == 3);
  for (size_t event_idx = 0; event_idx < 3; ++event_idx) {
    CHECK(report->rejected[event_idx].event_index == event_idx);
    CHECK(report->rejected[event_idx].code == 400);
    CHECK_THAT(report->rejected[event_idx].error,
               Catch::EndsWith("Bad request (a request holding only this document)"));
  }
  // One request for the batch, two halves, then single documents: 1 + 2 + 2 (the half of two).
  CHECK(fixture.server.Counters().Requests(test::TypesenseRoute::kImport) == 5);
}

TEST_CASE("Typesense sink deletes one by one when a delete by filter is refused as a whole",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  REQUIRE(sink->Write(MakeBatch({Upsert("a", "a"), Upsert("b", "b"), Upsert("c", "c")})).ok());
  fixture.server.SetProxyReply(
      test::TypesenseProxyReply{.route = test::TypesenseRoute::kDeleteByFilter,
                                .status = 414,
                                .body = "<html>414 Request-URI Too Large</html>"});
  const Result<WriteReport> report =
      sink->Write(MakeBatch({Delete("a"), Delete("b"), Upsert("d", "d")}));
  REQUIRE(report.ok());
  CHECK(report->rejected.empty());
  const auto stored = fixture.Stored();
  CHECK(stored.size() == 2);
  CHECK(stored.count("c") == 1);
  CHECK(stored.count("d") == 1);

  // A delete refused even alone is that document's rejection; the rest of the batch is written.
  fixture.server.SetProxyReply(test::TypesenseProxyReply{
      .route = test::TypesenseRoute::kDocument, .status = 400, .body = "bad request"});
  const Result<WriteReport> refused = sink->Write(MakeBatch({Delete("*"), Upsert("e", "e")}));
  REQUIRE(refused.ok());
  REQUIRE(refused->rejected.size() == 1);
  CHECK(refused->rejected[0].event_index == 0);
  CHECK_THAT(refused->rejected[0].Reason(), Catch::Contains("HTTP 400: bad request"));
  CHECK(fixture.Stored().count("e") == 1);
}

TEST_CASE("Typesense sink reports a document whose result line says 500 as retryable",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  fixture.server.SetImportLineResults(
      {{"poison",
        {{"code", 500}, {"error", "Could not write to on-disk storage."}, {"success", false}}},
       {"silent", {{"success", false}}}});
  const Result<WriteReport> report = sink->Write(MakeBatch(
      {Upsert("a", "a"), Upsert("poison", "p"), Upsert("silent", "s"), Upsert("b", "b")}));
  REQUIRE(report.ok());
  REQUIRE(report->retryable.size() == 1);
  CHECK(report->retryable[0].event_index == 1);
  CHECK(report->retryable[0].Reason() == "HTTP 500: Could not write to on-disk storage.");
  REQUIRE(report->rejected.size() == 1);
  CHECK(report->rejected[0].event_index == 2);
  CHECK(report->rejected[0].Reason() ==
        "typesense refused the document without giving a reason (result line: "
        "{\"success\":false})");
  const auto stored = fixture.Stored();
  CHECK(stored.size() == 2);
  CHECK(stored.count("a") == 1);
  CHECK(stored.count("b") == 1);
}

TEST_CASE("Typesense sink times out a slow server as kUnavailable",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  fixture.typesense.timeout = 100ms;
  std::unique_ptr<Sink> impatient = fixture.MakeSink();
  fixture.server.SetLatency(5s);
  const Result<WriteReport> write = impatient->Write(MakeBatch({Upsert("1", "one")}));
  fixture.server.SetLatency(0ms);
  REQUIRE_FALSE(write.ok());
  CHECK(write.status().code() == StatusCode::kUnavailable);
}

TEST_CASE("Typesense sink fails over to the next node", "[integration][typesense-sink]") {
  SinkFixture fixture;

  SECTION("first node refuses connections") {
    fixture.typesense.nodes = {DeadNodeUrl(), fixture.server.url()};
  }
  SECTION("first node answers 503") {
    test::TypesenseServer lagging{test::TypesenseServerOptions{.api_key = "s3cret-test-key"}};
    lagging.SetUnavailable(true);
    fixture.typesense.nodes = {lagging.url(), fixture.server.url()};
    std::unique_ptr<Sink> sink = fixture.MakeSink();
    REQUIRE(sink->Prepare().ok());
    REQUIRE(sink->Write(MakeBatch({Upsert("1", "one")})).ok());
    CHECK(lagging.CollectionNames().empty());
  }
  std::unique_ptr<Sink> sink = fixture.MakeSink();
  REQUIRE(sink->HealthCheck().ok());
  REQUIRE(sink->Prepare().ok());
  const Result<WriteReport> write = sink->Write(MakeBatch({Upsert("2", "two"), Delete("1")}));
  REQUIRE(write.ok());
  CHECK(fixture.Stored().count("2") == 1);
  CHECK(fixture.Stored().count("1") == 0);
}

TEST_CASE("Typesense sink fails over within one call only once per node",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> prepared = fixture.PreparedSink();
  fixture.typesense.nodes = {DeadNodeUrl(), fixture.server.url()};
  std::unique_ptr<Sink> sink = fixture.MakeSink();
  fixture.server.SetUnavailable(true);
  fixture.server.ResetCounters();
  const Result<WriteReport> write = sink->Write(MakeBatch({Upsert("1", "one")}));
  REQUIRE_FALSE(write.ok());
  CHECK(write.status().code() == StatusCode::kUnavailable);
  CHECK(fixture.server.Counters().Requests(test::TypesenseRoute::kImport) == 1);
}

TEST_CASE("Typesense sink accepts concurrent writes of distinct ids",
          "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  constexpr int kThreads = 4;
  constexpr int kBatchesPerThread = 10;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int thread_idx = 0; thread_idx < kThreads; ++thread_idx) {
    threads.emplace_back([&, thread_idx] {
      for (int batch_idx = 0; batch_idx < kBatchesPerThread; ++batch_idx) {
        const std::string id = std::to_string(thread_idx) + "-" + std::to_string(batch_idx);
        if (!sink->Write(MakeBatch({Upsert(id, id), Upsert(id + "-x", id)})).ok()) {
          ++failures[thread_idx];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(failures == std::vector<int>(kThreads, 0));
  CHECK(fixture.Stored().size() == 2 * kThreads * kBatchesPerThread);
}

TEST_CASE("TypesenseClient exports every stored document", "[integration][typesense-sink]") {
  SinkFixture fixture;
  std::unique_ptr<Sink> sink = fixture.PreparedSink();
  std::vector<Event> upserts;
  for (int doc_idx = 0; doc_idx < 250; ++doc_idx) {
    upserts.push_back(Upsert("doc-" + std::to_string(doc_idx), "n"));
  }
  REQUIRE(sink->Write(MakeBatch(upserts)).ok());

  TypesenseClient client({.nodes = fixture.typesense.nodes, .api_key = fixture.typesense.api_key},
                         "test");
  std::vector<std::string> lines;
  const Status status = client.Export("products", [&](std::string_view line) {
    lines.emplace_back(line);
    return Status::Ok();
  });
  REQUIRE(status.ok());
  REQUIRE(lines.size() == 250);
  CHECK(nlohmann::json::parse(lines.front())["id"] == "doc-0");
  CHECK(nlohmann::json::parse(lines.back())["id"] == "doc-249");

  SECTION("a callback error stops the export") {
    int seen = 0;
    const Status stopped = client.Export("products", [&](std::string_view) {
      return ++seen == 3 ? Cancelled("enough") : Status::Ok();
    });
    CHECK(stopped.code() == StatusCode::kCancelled);
    CHECK(seen == 3);
  }
  SECTION("a missing collection fails precondition") {
    const Status missing = client.Export("nope", [](std::string_view) { return Status::Ok(); });
    CHECK(missing.code() == StatusCode::kFailedPrecondition);
  }
}

}  // namespace searchsync
