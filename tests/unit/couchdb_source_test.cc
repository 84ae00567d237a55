#include <catch2/catch.hpp>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"
#include "sources/couchdb.h"

namespace searchsync {
namespace {

std::string FieldJson(const Event& event, const std::string& name) {
  for (const Field& field : event.document) {
    if (field.name == name) return field.json;
  }
  return "<absent>";
}

TEST_CASE("A change line becomes an upsert with raw JSON fields and CouchDB metadata dropped",
          "[couchdb]") {
  const auto line = ParseCouchdbLine(
      R"({"seq":"13-g1AAAAB_eJzLYWBg","id":"cat-1","changes":[{"rev":"2-70"}],)"
      R"("doc":{"_id":"cat-1","_rev":"2-70","name":"Tom \"the\" cat","age":3,)"
      R"("tags":["a", "b"],"owner":{"name":"Ann","since":null},"_attachments":{"x":{}},)"
      R"("alive":true,"weight":4.25}})");
  REQUIRE(line.ok());
  REQUIRE(line->kind == CouchdbLine::Kind::kChange);
  const Event& event = line->event;
  CHECK(event.op == Op::kUpsert);
  CHECK(event.id == "cat-1");
  CHECK(event.position.token == R"("13-g1AAAAB_eJzLYWBg")");
  CHECK(event.document.size() == 6);
  CHECK(FieldJson(event, "name") == R"("Tom \"the\" cat")");
  CHECK(FieldJson(event, "age") == "3");
  CHECK(FieldJson(event, "tags") == R"(["a", "b"])");
  CHECK(FieldJson(event, "owner") == R"({"name":"Ann","since":null})");
  CHECK(FieldJson(event, "alive") == "true");
  CHECK(FieldJson(event, "weight") == "4.25");
  CHECK(FieldJson(event, "_rev") == "<absent>");
  CHECK(FieldJson(event, "_id") == "<absent>");
  CHECK(FieldJson(event, "_attachments") == "<absent>");
}

TEST_CASE("Deleted changes are deletes, design documents and heartbeats make no event",
          "[couchdb]") {
  const auto deleted =
      ParseCouchdbLine(R"({"seq":7,"id":"a, b`c","changes":[{"rev":"3-1"}],"deleted":true,)"
                       R"("doc":{"_id":"a, b`c","_rev":"3-1","_deleted":true}})");
  REQUIRE(deleted.ok());
  REQUIRE(deleted->kind == CouchdbLine::Kind::kChange);
  CHECK(deleted->event.op == Op::kDelete);
  CHECK(deleted->event.id == "a, b`c");
  CHECK(deleted->event.position.token == "7");

  const auto design = ParseCouchdbLine(
      R"({"seq":8,"id":"_design/app","changes":[{"rev":"1-1"}],"doc":{"_id":"_design/app"}})");
  REQUIRE(design.ok());
  CHECK(design->kind == CouchdbLine::Kind::kSkipped);

  for (const std::string_view heartbeat : {"", " ", "\r"}) {
    const auto line = ParseCouchdbLine(heartbeat);
    REQUIRE(line.ok());
    CHECK(line->kind == CouchdbLine::Kind::kHeartbeat);
  }

  const auto end = ParseCouchdbLine(R"({"last_seq":"9-g1AAAA","pending":0})");
  REQUIRE(end.ok());
  CHECK(end->kind == CouchdbLine::Kind::kEnd);
  CHECK(end->last_seq == R"("9-g1AAAA")");
}

TEST_CASE("A line that is not a change is an error that names it", "[couchdb]") {
  const auto truncated = ParseCouchdbLine(R"({"seq":1,"id":"x","doc":{"a":)");
  CHECK_FALSE(truncated.ok());
  CHECK(truncated.status().message().find("changes feed line") != std::string::npos);
  CHECK_FALSE(ParseCouchdbLine(R"({"id":"x"})").ok());  // no seq
}

TEST_CASE("A normal feed page keeps every seq as sent and counts skipped rows", "[couchdb]") {
  const auto page = ParseCouchdbPage(R"({"results":[
 {"seq":"3-g1AAAA","id":"cat-1","changes":[{"rev":"2-7051"}],"doc":{"_id":"cat-1","n":1}},
 {"seq":"4-g1AAAB","id":"_design/x","changes":[{"rev":"1-1"}],"doc":{"_id":"_design/x"}},
 {"seq":[5,"g1"],"id":"cat-2","changes":[{"rev":"3-7379"}],"deleted":true}
],
"last_seq":"5-g1AAAC","pending":12})");
  REQUIRE(page.ok());
  CHECK(page->rows == 3);
  REQUIRE(page->events.size() == 2);
  CHECK(page->events[0].position.token == R"("3-g1AAAA")");
  CHECK(page->events[1].position.token == R"([5,"g1"])");
  CHECK(page->events[1].op == Op::kDelete);
  CHECK(page->last_seq == R"("5-g1AAAC")");
  CHECK(page->pending == 12);

  const auto empty = ParseCouchdbPage(R"({"results":[],"last_seq":42})");
  REQUIRE(empty.ok());
  CHECK(empty->rows == 0);
  CHECK(empty->last_seq == "42");
  CHECK_FALSE(empty->pending);
}

TEST_CASE("since is the string's value or the JSON text, percent-encoded", "[couchdb]") {
  CHECK(CouchdbSinceParam("") == "0");
  CHECK(CouchdbSinceParam("42") == "42");
  CHECK(CouchdbSinceParam(R"("13-g1AAAAB_eJz-LYW")") == "13-g1AAAAB_eJz-LYW");
  CHECK(CouchdbSinceParam(R"("a+b/c=")") == "a%2Bb%2Fc%3D");
  CHECK(CouchdbSinceParam(R"([5,"g1"])") == "%5B5%2C%22g1%22%5D");
}

TEST_CASE("The couchdb source's keys are read, checked and never print the password",
          "[couchdb][config]") {
  const std::string head = R"(typesense: { nodes: ["http://127.0.0.1:8108"], api_key: k }
pipelines:
  - name: animals
    sink: { collection: animals, schema: { fields: [{ name: name, type: string }] } }
    source:
      type: couchdb
)";
  const auto good = ParseConfig(head + R"(      url: http://127.0.0.1:5984
      database: animals
      username: admin
      password: hunter2
      feed: longpoll
      selector: { type: cat, age: { "$gt": 2 } }
)",
                                "good.yaml");
  REQUIRE(good.ok());
  CHECK(good->pipelines[0].source_type == "couchdb");
  CHECK(good->pipelines[0].make_source() != nullptr);

  const auto bad = ParseConfig(head + R"(      url: db:5984
      database: animals
      password: hunter2
      feed: streaming
      heartbeat: 10s
      timeout: 5s
      page_size: 0
      keep_metadata: [_rev, _conflicts]
)",
                               "bad.yaml");
  REQUIRE_FALSE(bad.ok());
  const std::string message = bad.status().message();
  CHECK(message.find("url: must start with http://") != std::string::npos);
  CHECK(message.find("set username too") != std::string::npos);
  CHECK(message.find("must be continuous or longpoll") != std::string::npos);
  CHECK(message.find("timeout must be longer than heartbeat") != std::string::npos);
  CHECK(message.find("page_size: must be at least 1") != std::string::npos);
  CHECK(message.find("keep_metadata: can keep _rev and _attachments, got '_conflicts'") !=
        std::string::npos);
  CHECK(message.find("hunter2") == std::string::npos);
}

TEST_CASE("A url whose password holds an unencoded '/', '#', '?' or '@' is refused unrepeated",
          "[couchdb][config]") {
  const std::string head = R"(typesense: { nodes: ["http://127.0.0.1:8108"], api_key: k }
pipelines:
  - name: animals
    sink: { collection: animals, schema: { fields: [{ name: name, type: string }] } }
    source: { type: couchdb, database: animals, url: ")";
  for (const std::string password : {"S3/CRET-pw", "S3#CRET-pw", "S3?CRET-pw", "S3@CRET-pw"}) {
    INFO(password);
    const auto parsed =
        ParseConfig(head + "http://admin:" + password + "@127.0.0.1:5984\" }\n", "pipelines.yaml");
    REQUIRE_FALSE(parsed.ok());
    const std::string message = parsed.status().message();
    CHECK(message.find("percent-encode") != std::string::npos);
    CHECK(message.find("S3") == std::string::npos);
    CHECK(message.find("CRET") == std::string::npos);
  }
  // Percent-encoded, the same password is fine.
  CHECK(ParseConfig(head + "http://admin:S3%2FCRET%23pw@127.0.0.1:5984\" }\n", "ok.yaml").ok());
  // A URL curl cannot parse is a configuration error, not a connection to retry.
  const auto bad_port = ParseConfig(head + "http://127.0.0.1:99999\" }\n", "port.yaml");
  REQUIRE_FALSE(bad_port.ok());
  CHECK(bad_port.status().message().find("url: is not a usable URL") != std::string::npos);
}

TEST_CASE("A url curl refuses at run time fails as a configuration error, password masked",
          "[couchdb]") {
  CouchdbOptions options;
  options.url = "http://admin:S3CRET-pw@[::1";
  options.database = "animals";
  const Status status = MakeCouchdbSource(options)->HealthCheck();
  INFO(status.message());
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(status.message().find("S3CRET") == std::string::npos);
}

TEST_CASE("keep_metadata keeps _rev and _attachments for transforms to map", "[couchdb]") {
  const std::string line =
      R"({"seq":5,"id":"cat-1","changes":[{"rev":"2-70"}],"doc":{"_id":"cat-1","_rev":"2-70",)"
      R"("_attachments":{"a.txt":{"stub":true,"length":3}},"_revisions":{"start":2},"name":"Tom"}})";
  const std::vector<std::string> keep = {"_rev", "_attachments"};
  const auto kept = ParseCouchdbLine(line, keep);
  REQUIRE(kept.ok());
  CHECK(FieldJson(kept->event, "_rev") == R"("2-70")");
  CHECK(FieldJson(kept->event, "_attachments") == R"({"a.txt":{"stub":true,"length":3}})");
  CHECK(FieldJson(kept->event, "_revisions") == "<absent>");
  CHECK(FieldJson(kept->event, "_id") == "<absent>");
  const auto dropped = ParseCouchdbLine(line);
  REQUIRE(dropped.ok());
  CHECK(dropped->event.document.size() == 1);
}

TEST_CASE(
    "An _all_docs page: upserts positioned at each row's key as sent, design documents "
    "left out",
    "[couchdb]") {
  const auto page = ParseCouchdbAllDocsPage(
      R"({"total_rows":4,"offset":0,"rows":[)"
      R"({"id":"_design/app","key":"_design/app","value":{"rev":"1-a"},"doc":{"_id":"_design/app","views":{}}},)"
      R"({"id":"a \"b\"","key":"a \"b\"","value":{"rev":"1-b"},"doc":{"_id":"a \"b\"","_rev":"1-b","n":[1,2]}},)"
      R"({"id":"\u00fcber","key":"\u00fcber","value":{"rev":"3-c"},"doc":{"_id":"\u00fcber","_rev":"3-c","n":{"x":null}}},)"
      R"({"id":"_design/zz","key":"_design/zz","value":{"rev":"1-d"},"doc":{"_id":"_design/zz"}})"
      R"(]})");
  REQUIRE(page.ok());
  CHECK(page->rows == 4);
  CHECK(page->total_rows == 4);
  CHECK(page->last_key == R"("_design/zz")");
  REQUIRE(page->events.size() == 2);
  CHECK(page->events[0].op == Op::kUpsert);
  CHECK(page->events[0].id == "a \"b\"");
  CHECK(page->events[0].position.token == R"("a \"b\"")");
  CHECK(FieldJson(page->events[0], "n") == "[1,2]");
  CHECK(page->events[0].document.size() == 1);
  CHECK(page->events[1].id ==
        "\xc3\xbc"
        "ber");
  CHECK(page->events[1].position.token == R"("\u00fcber")");

  const auto bad = ParseCouchdbAllDocsPage(R"({"rows":[{"id":"x"}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("_all_docs") != std::string::npos);
}

}  // namespace
}  // namespace searchsync
