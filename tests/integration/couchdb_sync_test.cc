// End-to-end tests of the couchdb source: a real CouchDB-compatible server (pouchdb-server), the
// searchsync binary and the Typesense test server.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "pipeline/app/registry.h"
#include "pipeline/app/reindex.h"
#include "pipeline/config.h"
#include "pipeline/state_store.h"
#include "sources/couchdb.h"
#include "tests/integration/sync_fixture.h"
#include "tests/support/couchdb_server.h"
#include "tests/support/stall_proxy.h"

namespace searchsync::test {
namespace {

// A CouchDB database `animals` synced into the collection `animals`.
class CouchWorld {
 public:
  CouchWorld() : typesense_(TypesenseServerOptions{}) {
    auto couch = CouchdbServer::Start();
    if (!couch.ok()) FAIL("pouchdb-server: " << couch.status().message());
    couch_ = std::move(*couch);
    REQUIRE(couch_->Request("PUT", "/animals").status == 201);
  }

  CouchdbServer& couch() { return *couch_; }
  TypesenseServer& typesense() { return typesense_; }
  std::string state_dir() const { return dir_ / "state"; }
  std::string config_path() const { return dir_ / "pipelines.yaml"; }

  void WriteConfig(const std::string& source_extra = "") {
    std::ofstream(dir_ / "pipelines.yaml") << R"(typesense:
  nodes: ["${TYPESENSE_URL}"]
  api_key: ${TYPESENSE_API_KEY}
  retry: { initial_backoff: 50ms, max_backoff: 1s }
state:
  path: )" + (dir_ / "state") + R"(
pipelines:
  - name: animals
    source:
      type: couchdb
      url: ${COUCHDB_URL}
      database: animals
      heartbeat: 1s
      page_size: 500
)" + source_extra + R"(    sink:
      collection: animals
      schema:
        fields:
          - { name: name, type: string }
          - { name: age, type: int32 }
      batch: { max_events: 500, flush_interval: 100ms }
)";
  }

  // Rewrites the config's source.page_size.
  void SetPageSize(int page_size) {
    std::ifstream in(dir_ / "pipelines.yaml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("page_size: 500");
    REQUIRE(at != std::string::npos);
    text.replace(at, std::string("page_size: 500").size(),
                 "page_size: " + std::to_string(page_size));
    std::ofstream(dir_ / "pipelines.yaml") << text;
  }

  // Makes searchsync reach the server through `url` (a proxy) instead of directly.
  void ReachCouchdbAt(std::string url) { couchdb_url_ = std::move(url); }

  std::vector<std::string> Env() const {
    return {"COUCHDB_URL=" + (couchdb_url_.empty() ? couch_->url() : couchdb_url_),
            "TYPESENSE_URL=" + typesense_.url(), "TYPESENSE_API_KEY=" + typesense_.api_key()};
  }

  CommandResult Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {SEARCHSYNC_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"-c", dir_ / "pipelines.yaml"});
    auto process = ServerProcess::Start({.argv = argv, .env = Env()});
    if (!process.ok()) FAIL("searchsync: " << process.status().message());
    const std::optional<int> code = (*process)->Wait(std::chrono::minutes(5));
    if (!code) FAIL("searchsync did not finish in time: " << (*process)->Describe());
    return {*code, (*process)->ReadStdout(), (*process)->ReadStderr()};
  }

  std::unique_ptr<ServerProcess> StartDaemon() {
    auto process = ServerProcess::Start(
        {.argv = {SEARCHSYNC_BINARY, "run", "-c", dir_ / "pipelines.yaml"}, .env = Env()});
    if (!process.ok()) FAIL("searchsync: " << process.status().message());
    return std::move(*process);
  }

  // Creates animal-<first>..animal-<first+count-1> through _bulk_docs.
  void CreateAnimals(int first, int count, const std::string& suffix = "") {
    for (int start = first; start < first + count; start += 1000) {
      nlohmann::json docs = nlohmann::json::array();
      for (int i = start; i < std::min(first + count, start + 1000); ++i) {
        docs.push_back({{"_id", "animal-" + std::to_string(i)},
                        {"name", "animal " + std::to_string(i) + suffix},
                        {"age", i % 20},
                        {"meta", {{"n", i}, {"tags", {"a", "b"}}}}});
      }
      const HttpAnswer answer =
          couch_->Request("POST", "/animals/_bulk_docs", nlohmann::json{{"docs", docs}}.dump());
      REQUIRE(answer.status == 201);
    }
  }

  // Through one _bulk_docs call per 1,000 ids: replaces each document of `ids` by its `fields`
  // (nullopt: deletes it).
  void BulkUpdate(const std::vector<std::string>& ids,
                  const std::function<std::optional<nlohmann::json>(const std::string&)>& fields) {
    std::map<std::string, std::string> revs;
    const nlohmann::json all = couch_->Request("GET", "/animals/_all_docs").Json();
    for (const nlohmann::json& row : all["rows"]) revs[row["id"]] = row["value"]["rev"];
    for (size_t start = 0; start < ids.size(); start += 1000) {
      nlohmann::json docs = nlohmann::json::array();
      for (size_t id_idx = start; id_idx < std::min(ids.size(), start + 1000); ++id_idx) {
        const std::string& id = ids[id_idx];
        REQUIRE(revs.count(id));
        nlohmann::json doc = fields(id).value_or(nlohmann::json{{"_deleted", true}});
        doc["_id"] = id;
        doc["_rev"] = revs[id];
        docs.push_back(std::move(doc));
      }
      const HttpAnswer answer =
          couch_->Request("POST", "/animals/_bulk_docs", nlohmann::json{{"docs", docs}}.dump());
      REQUIRE(answer.status == 201);
    }
  }

  // Applies `change` to the current version of document `id` (nullopt: deletes it).
  void Update(const std::string& id, const std::optional<nlohmann::json>& fields) {
    nlohmann::json doc = couch_->Request("GET", "/animals/" + id).Json();
    REQUIRE(doc.contains("_rev"));
    if (!fields) {
      const std::string rev = doc["_rev"];
      REQUIRE(couch_->Request("DELETE", "/animals/" + id + "?rev=" + rev).status == 200);
      return;
    }
    doc.update(*fields);
    REQUIRE(couch_->Request("PUT", "/animals/" + id, doc.dump()).status == 201);
  }

  // "" when the index holds exactly the database's documents (name and age); otherwise the
  // first differences.
  std::string IndexMatchesDatabase() {
    const auto docs = couch_->AllDocs("animals");
    const auto index =
        typesense_.Documents("animals").value_or(std::map<std::string, nlohmann::json>{});
    std::ostringstream diff;
    int differences = 0;
    for (const auto& [id, doc] : docs) {
      const auto it = index.find(id);
      if (it == index.end()) {
        if (++differences <= 5) diff << "missing " << id << "\n";
      } else if (it->second.value("name", "") != doc.value("name", "") ||
                 it->second.value("age", -1) != doc.value("age", -2)) {
        if (++differences <= 5) diff << "differs " << id << ": " << it->second.dump() << "\n";
      }
    }
    for (const auto& [id, doc] : index) {
      if (!docs.count(id) && ++differences <= 5) diff << "extra " << id << "\n";
    }
    if (differences > 0) diff << differences << " differences";
    return diff.str();
  }

 private:
  TempDir dir_;
  TypesenseServer typesense_;
  std::unique_ptr<CouchdbServer> couch_;
  std::string couchdb_url_;
};

TEST_CASE("couchdb: 50,000 documents created, updated and deleted, run --once equals _all_docs",
          "[integration][couchdb]") {
  constexpr int kDocuments = 50'000;
  CouchWorld world;
  world.CreateAnimals(0, kDocuments);
  REQUIRE(world.couch().Request("PUT", "/animals/_design/app", R"({"views":{}})").status == 201);
  std::vector<std::string> deleted, renamed;
  for (int i = 0; i < kDocuments; i += 7) deleted.push_back("animal-" + std::to_string(i));
  for (int i = 1; i < kDocuments; i += 5) {
    if (i % 7 != 0) renamed.push_back("animal-" + std::to_string(i));
  }
  world.BulkUpdate(deleted, [](const std::string&) { return std::nullopt; });
  world.BulkUpdate(renamed, [](const std::string&) {
    return nlohmann::json{{"name", "renamed"}, {"age", 7}, {"meta", {{"tags", {"a", "b"}}}}};
  });
  world.WriteConfig();

  const CommandResult run = world.Run({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexMatchesDatabase() == "");
  CHECK(world.typesense().Documents("animals").value().size() ==
        static_cast<size_t>(kDocuments) - deleted.size());
  const auto cat = world.typesense().Document("animals", "animal-1");
  REQUIRE(cat);
  CHECK((*cat)["name"] == "renamed");
  CHECK((*cat)["meta"]["tags"] == nlohmann::json({"a", "b"}));
  CHECK_FALSE(cat->contains("_rev"));
  CHECK_FALSE(world.typesense().Document("animals", "animal-7"));
  CHECK_FALSE(world.typesense().Document("animals", "_design/app"));

  // A second pass right after sends nothing.
  world.typesense().ResetCounters();
  REQUIRE(world.Run({"run", "--once"}).exit_code == 0);
  CHECK(world.typesense().Counters().documents_written == 0);
}

TEST_CASE("couchdb: a change made while run is running reaches the index",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 100);
  world.WriteConfig();
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 60s));
  world.Update("animal-5", nlohmann::json{{"name", "live edit"}});
  world.Update("animal-6", std::nullopt);
  world.CreateAnimals(100, 10);
  CHECK(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 60s));
  CHECK(world.typesense().Document("animals", "animal-5").value_or(nlohmann::json())["name"] ==
        "live edit");
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("couchdb: the server killed and restarted mid-feed loses nothing",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 2000);
  world.WriteConfig();
  world.typesense().SetLatency(20ms);
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.typesense().Counters().documents_written > 0; }, 60s));
  // Lines of the source's retries.
  auto source_retries = [&] {
    std::istringstream log(daemon->ReadStderr());
    size_t count = 0;
    for (std::string line; std::getline(log, line);) {
      count += line.find("] source: ") != std::string::npos &&
               line.find("next_in=") != std::string::npos;
    }
    return count;
  };
  const size_t retries_before = source_retries();
  world.couch().Kill9();
  // The outage lasts until the source has run into it and retries.
  REQUIRE(WaitUntil([&] { return source_retries() > retries_before; }, 60s));
  REQUIRE(world.couch().Restart().ok());
  world.typesense().SetLatency(0ms);
  world.CreateAnimals(2000, 500);
  world.Update("animal-3", nlohmann::json{{"name", "after restart"}});
  CHECK(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 60s));
  INFO(world.IndexMatchesDatabase());
  CHECK(daemon->Stop() == 0);
}

TEST_CASE(
    "couchdb: a continuous feed that stalls without heartbeats is dropped after the idle "
    "timeout and reopened from the last position",
    "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 20);
  auto proxy = StallProxy::Start(world.couch().port());
  REQUIRE(proxy.ok());
  auto source = MakeCouchdbSource(
      {.url = (*proxy)->url(), .database = "animals", .heartbeat = 200ms, .timeout = 1s});
  // Catch up, then one Poll from the caught-up position opens the continuous feed.
  Checkpoint position;
  std::vector<Event> read;
  for (;;) {
    auto page = source->Poll(position, 100);
    REQUIRE(page.ok());
    if (page->empty()) break;
    position = page->back().position;
    read.insert(read.end(), page->begin(), page->end());
  }
  CHECK(read.size() == 20);
  world.CreateAnimals(20, 1);
  std::string live_id;
  REQUIRE(WaitUntil(
      [&] {
        auto events = source->Poll(position, 100);
        REQUIRE(events.ok());
        if (events->empty()) return false;
        live_id = events->front().id;
        position = events->back().position;
        return true;
      },
      30s, 0ms));
  CHECK(live_id == "animal-20");

  // The network path goes quiet: changes made now never arrive on the open feed.
  (*proxy)->StallOpenConnections();
  const size_t connections_before = (*proxy)->connections_accepted();
  world.CreateAnimals(21, 5);
  Status dropped;
  REQUIRE(WaitUntil(
      [&] {
        auto events = source->Poll(position, 100);
        REQUIRE((events.ok() ? events->empty() : true));
        if (!events.ok()) dropped = events.status();
        return !events.ok();
      },
      30s, 0ms));
  CHECK(dropped.code() == StatusCode::kUnavailable);
  CHECK(dropped.message().find("not even a heartbeat") != std::string::npos);

  // The next Polls reconnect from the same position and get every change made during the stall.
  std::vector<std::string> after;
  REQUIRE(WaitUntil(
      [&] {
        auto events = source->Poll(position, 100);
        if (!events.ok()) return false;  // the stalled keep-alive connection times out too
        for (const Event& event : *events) after.push_back(event.id);
        if (!events->empty()) position = events->back().position;
        return after.size() >= 5;
      },
      60s, 0ms));
  // One _bulk_docs: the server may number its documents in any order.
  std::sort(after.begin(), after.end());
  CHECK(after ==
        std::vector<std::string>{"animal-21", "animal-22", "animal-23", "animal-24", "animal-25"});
  CHECK((*proxy)->connections_accepted() > connections_before);
}

TEST_CASE("couchdb: run keeps syncing through a feed that stalls without heartbeats",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 100);
  auto proxy = StallProxy::Start(world.couch().port());
  REQUIRE(proxy.ok());
  world.ReachCouchdbAt((*proxy)->url());
  world.WriteConfig();  // heartbeat 1s: a feed silent for 3s is dropped
  auto daemon = world.StartDaemon();
  REQUIRE(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 60s));
  // A live change through the continuous feed: it is open now.
  world.Update("animal-5", nlohmann::json{{"name", "before the stall"}});
  REQUIRE(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 60s));

  (*proxy)->StallOpenConnections();
  world.Update("animal-6", nlohmann::json{{"name", "during the stall"}});
  world.Update("animal-7", std::nullopt);
  world.CreateAnimals(100, 50);
  CHECK(WaitUntil([&] { return world.IndexMatchesDatabase() == ""; }, 90s));
  INFO(world.IndexMatchesDatabase());
  CHECK(world.typesense().Document("animals", "animal-6").value_or(nlohmann::json())["name"] ==
        "during the stall");
  const std::string log = daemon->ReadStderr();
  INFO(log);
  CHECK(log.find("not even a heartbeat") != std::string::npos);
  CHECK(daemon->Stop() == 0);
}

TEST_CASE("couchdb: kill -9 of searchsync mid-feed, then a restart: the index equals the database",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 3000);
  world.WriteConfig();
  world.typesense().SetLatency(10ms);
  for (int round = 0; round < 3; ++round) {
    auto daemon = world.StartDaemon();
    const auto before = world.typesense().Counters().documents_written;
    REQUIRE(
        WaitUntil([&] { return world.typesense().Counters().documents_written > before; }, 60s));
    world.Update("animal-" + std::to_string(round * 7), nlohmann::json{{"name", "round"}});
    world.Update("animal-" + std::to_string(round * 7 + 1), std::nullopt);
    daemon->Kill9();
  }
  world.typesense().SetLatency(0ms);
  const CommandResult run = world.Run({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexMatchesDatabase() == "");
}

TEST_CASE("couchdb: documents that do not fit the schema are dead-lettered with their id",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 50);
  world.Update("animal-7", nlohmann::json{{"age", "very old"}});
  world.WriteConfig();
  const CommandResult run = world.Run({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  const auto index = world.typesense().Documents("animals").value();
  CHECK(index.size() == 49);
  CHECK_FALSE(index.count("animal-7"));
  auto store = std::move(StateStore::Open(world.state_dir()).value());
  const auto letters = store->ListDeadLetters("animals", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "animal-7");
  CHECK(letters[0].error.find("age") != std::string::npos);
}

// Every event a full read gives, from the start until it answers empty. `between` runs after
// each page with the position of its last event (the _all_docs key the next page starts at).
std::vector<Event> ReadFully(FullRead& full_read, size_t max_events,
                             const std::function<void(const Checkpoint&)>& between = {}) {
  std::vector<Event> events;
  for (;;) {
    auto page = full_read.Next(max_events);
    INFO(page.status().message());
    REQUIRE(page.ok());
    if (page->empty()) return events;
    CHECK(page->size() <= max_events);
    const Checkpoint position = page->back().position;
    events.insert(events.end(), page->begin(), page->end());
    if (between) between(position);
  }
}

TEST_CASE("couchdb: the full read gives every live document once, by _all_docs pages",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 1500);
  // Ids that need JSON escaping or percent-encoding as a startkey, some at page boundaries.
  const std::vector<std::string> tricky = {"a b",
                                           "quote\"d",
                                           "back\\slash",
                                           "plus+and&amp",
                                           "percent%20",
                                           "slash/in/id",
                                           "hash#q?x=1",
                                           "\xc3\xbc"
                                           "ber",
                                           "emoji-\xf0\x9f\x98\x80",
                                           "~tilde",
                                           "0-first",
                                           "animal-1500 ",
                                           "animal-1500\t"};
  nlohmann::json docs = nlohmann::json::array();
  for (const std::string& id : tricky) docs.push_back({{"_id", id}, {"name", id}, {"age", 1}});
  docs.push_back({{"_id", "_design/a"}, {"views", nlohmann::json::object()}});
  docs.push_back({{"_id", "_design/z"}, {"views", nlohmann::json::object()}});
  REQUIRE(world.couch()
              .Request("POST", "/animals/_bulk_docs", nlohmann::json{{"docs", docs}}.dump())
              .status == 201);
  std::vector<std::string> deleted;
  for (int i = 0; i < 1500; i += 10) deleted.push_back("animal-" + std::to_string(i));
  world.BulkUpdate(deleted, [](const std::string&) { return std::nullopt; });

  auto source =
      MakeCouchdbSource({.url = world.couch().url(), .database = "animals", .page_size = 7});
  auto full_read = source->OpenFullRead();
  REQUIRE(full_read.ok());
  CHECK_FALSE(source->BackfillOnFirstStart());

  // While it reads, the document each page ended on is deleted: the next page must still start
  // right after it.
  int deleted_during_read = 0;
  const std::vector<Event> events = ReadFully(**full_read, 5, [&](const Checkpoint& position) {
    if (deleted_during_read >= 20) return;
    const std::string id = nlohmann::json::parse(position.token).get<std::string>();
    world.BulkUpdate({id}, [](const std::string&) { return std::nullopt; });
    ++deleted_during_read;
  });
  CHECK(deleted_during_read == 20);

  const auto expected = world.couch().AllDocs("animals");
  std::map<std::string, int> seen;
  for (const Event& event : events) {
    CHECK(event.op == Op::kUpsert);
    ++seen[event.id];
  }
  for (const auto& [id, count] : seen) {
    INFO(id);
    CHECK(count == 1);
  }
  // Everything alive at the end was read; what was read beyond that is the 20 deleted while
  // reading, each after it was read.
  for (const auto& [id, doc] : expected) {
    INFO(id);
    CHECK(seen.count(id) == 1);
  }
  CHECK(seen.size() == expected.size() + 20);
  for (const std::string& id : tricky) CHECK(seen.count(id) == 1);
  CHECK_FALSE(seen.count("_design/a"));
  CHECK_FALSE(seen.count("animal-10"));
  const auto tom = std::find_if(events.begin(), events.end(),
                                [](const Event& event) { return event.id == "quote\"d"; });
  REQUIRE(tom != events.end());
  bool name_found = false;
  for (const Field& field : tom->document) {
    if (field.name == "name") name_found = field.json == R"("quote\"d")";
    CHECK(field.name != "_rev");
    CHECK(field.name != "_id");
  }
  CHECK(name_found);
}

// pouchdb-server has no filter=_selector, so the selector's full read is shown against a small
// server that replays a CouchDB 3 feed of a selector-filtered `_changes`.
TEST_CASE("couchdb: the full read with a selector reads the filtered _changes without deletes",
          "[integration][couchdb]") {
  const std::vector<std::string> rows = {
      R"({"seq":"1-g1AAAA","id":"cat-1","changes":[{"rev":"1-a"}],"doc":{"_id":"cat-1","_rev":"1-a","age":3}})",
      R"({"seq":"2-g1AAAB","id":"cat-2","changes":[{"rev":"2-b"}],"deleted":true,"doc":{"_id":"cat-2","_rev":"2-b","_deleted":true}})",
      R"({"seq":"3-g1AAAC","id":"cat-3","changes":[{"rev":"1-c"}],"doc":{"_id":"cat-3","_rev":"1-c","age":3}})",
  };
  const std::vector<std::string> seqs = {"1-g1AAAA", "2-g1AAAB", "3-g1AAAC"};
  httplib::Server server;
  std::mutex mutex;
  std::vector<std::string> requests;  // "since body"
  server.Post("/animals/_changes", [&](const httplib::Request& request, httplib::Response& reply) {
    const std::string since = request.get_param_value("since");
    {
      std::lock_guard lock(mutex);
      requests.push_back(since + " " + request.get_param_value("filter") + " " + request.body);
    }
    size_t first = 0;
    while (since != "0" && first < seqs.size() && seqs[first] != since) ++first;
    if (since != "0") ++first;
    const size_t limit = std::stoul(request.get_param_value("limit"));
    std::string body = R"({"results":[)";
    std::string last_seq = since == "0" ? "0" : "\"" + since + "\"";
    for (size_t row_idx = first; row_idx < std::min(rows.size(), first + limit); ++row_idx) {
      body += (row_idx == first ? "" : ",") + rows[row_idx];
      last_seq = "\"" + seqs[row_idx] + "\"";
    }
    reply.set_content(body + R"(],"last_seq":)" + last_seq + R"(,"pending":0})",
                      "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  REQUIRE(WaitUntil([&] { return server.is_running(); }, 10s));

  auto source = MakeCouchdbSource({.url = "http://127.0.0.1:" + std::to_string(port),
                                   .database = "animals",
                                   .selector_json = R"({"age":3})",
                                   .page_size = 1});
  auto full_read = source->OpenFullRead();
  REQUIRE(full_read.ok());
  std::vector<std::string> ids;
  for (const Event& event : ReadFully(**full_read, 100)) {
    CHECK(event.op == Op::kUpsert);
    ids.push_back(event.id);
  }
  CHECK(ids == std::vector<std::string>{"cat-1", "cat-3"});
  server.stop();
  serving.join();
  std::lock_guard lock(mutex);
  CHECK(requests == std::vector<std::string>{R"(0 _selector {"selector":{"age":3}})",
                                             R"(1-g1AAAA _selector {"selector":{"age":3}})",
                                             R"(2-g1AAAB _selector {"selector":{"age":3}})",
                                             R"(3-g1AAAC _selector {"selector":{"age":3}})"});
}

TEST_CASE(
    "couchdb: a reindex reads _all_docs beside the live feed, changes made during the full "
    "read end with their latest value",
    "[integration][couchdb]") {
  CouchWorld world;
  constexpr int kDocuments = 2000;
  world.CreateAnimals(0, kDocuments);
  world.WriteConfig();
  REQUIRE(world.Run({"run", "--once"}).exit_code == 0);
  // Pages of 4 make a full read of 500 pages, long enough to meet the changes below.
  world.SetPageSize(4);
  const std::string old_collection = world.typesense().Aliases().at("animals");

  for (const std::string& entry : world.Env()) {
    const size_t equals = entry.find('=');
    setenv(entry.substr(0, equals).c_str(), entry.substr(equals + 1).c_str(), 1);
  }
  Result<Config> config = LoadConfig(world.config_path());
  REQUIRE(config.ok());
  // In _all_docs order animal-0 is read first and animal-999 last.
  bool changed = false;
  uint64_t written_when_changed = 0;
  const Status reindex =
      RunStandaloneReindex(*config, "animals", [&](const ReindexProgress& progress) {
        if (changed || progress.phase != "full_read" || progress.rows_written == 0) return;
        written_when_changed = progress.rows_written;
        world.Update("animal-0", nlohmann::json{{"name", "changed during the read"}});
        world.Update("animal-999", nlohmann::json{{"name", "changed before it was read"}});
        world.Update("animal-998", std::nullopt);
        world.CreateAnimals(kDocuments, 1, " (new)");
        changed = true;
      });
  INFO(reindex.message());
  REQUIRE(reindex.ok());
  REQUIRE(changed);
  CHECK(written_when_changed < static_cast<uint64_t>(kDocuments));

  const std::string new_collection = world.typesense().Aliases().at("animals");
  CHECK(new_collection != old_collection);
  CHECK(world.IndexMatchesDatabase() == "");
  INFO(world.IndexMatchesDatabase());
  const auto index = world.typesense().Documents(new_collection).value();
  CHECK(index.at("animal-0")["name"] == "changed during the read");
  CHECK(index.at("animal-999")["name"] == "changed before it was read");
  CHECK_FALSE(index.count("animal-998"));
  CHECK(index.count("animal-" + std::to_string(kDocuments)));
}

TEST_CASE("couchdb: _rev and _attachments reach the index only when kept and mapped",
          "[integration][couchdb]") {
  CouchWorld world;
  world.CreateAnimals(0, 10);
  const std::string rev = world.couch().Request("GET", "/animals/animal-2").Json()["_rev"];
  REQUIRE(world.couch()
              .Request("PUT", "/animals/animal-2/photo.json?rev=" + rev, R"({"x":1})")
              .status == 201);
  world.WriteConfig(R"(      keep_metadata: [_rev, _attachments]
    transforms:
      - rename: { _rev: revision, _attachments: files }
)");
  const CommandResult run = world.Run({"run", "--once"});
  INFO(run.err);
  REQUIRE(run.exit_code == 0);
  CHECK(world.IndexMatchesDatabase() == "");
  const auto dog = world.typesense().Document("animals", "animal-2");
  REQUIRE(dog);
  const nlohmann::json stored = world.couch().Request("GET", "/animals/animal-2").Json();
  CHECK((*dog)["revision"] == stored["_rev"]);
  CHECK((*dog)["files"]["photo.json"]["stub"] == true);
  CHECK_FALSE(dog->contains("_rev"));
  CHECK_FALSE(dog->contains("_attachments"));
  const auto cat = world.typesense().Document("animals", "animal-1");
  REQUIRE(cat);
  CHECK((*cat)["revision"].get<std::string>().starts_with("1-"));
  CHECK_FALSE(cat->contains("files"));
}

// A recorded CouchDB 3 answer: opaque string sequences.
constexpr std::string_view kCouchdb3Page =
    R"({"results":[
{"seq":"1-g1AAAACbeJzLYWBgYMpgTmHgzcvPy09JdcjLz8gvLskBCeexAEmGBiD1HwiyEhlwqEtkSKqHKMgCAIT2GV4","id":"cat-1","changes":[{"rev":"1-967a00dff5e02add41819138abb3284d"}],"doc":{"_id":"cat-1","_rev":"1-967a00dff5e02add41819138abb3284d","name":"Tom","age":3}},
{"seq":"2-g1AAAACbeJzLYWBgYMpgTmHgzcvPy09JdcjLz8gvLskBCeexAEmGBiD1HwiyEhlwqEtkSKqHKMgCAIUAGV8","id":"cat-2","changes":[{"rev":"2-7051cbe5c8faecd085a3fa619e6e6337"}],"deleted":true,"doc":{"_id":"cat-2","_rev":"2-7051cbe5c8faecd085a3fa619e6e6337","_deleted":true}}
],
"last_seq":"2-g1AAAACbeJzLYWBgYMpgTmHgzcvPy09JdcjLz8gvLskBCeexAEmGBiD1HwiyEhlwqEtkSKqHKMgCAIUAGV8","pending":0}
)";

TEST_CASE("couchdb: string sequence tokens are kept and sent back exactly as the server sent them",
          "[integration][couchdb]") {
  httplib::Server server;
  std::mutex mutex;
  std::vector<std::string> since_seen;
  server.Get("/animals/_changes", [&](const httplib::Request& request, httplib::Response& reply) {
    const std::string since = request.get_param_value("since");
    {
      std::lock_guard lock(mutex);
      since_seen.push_back(since);
    }
    if (since == "0") {
      reply.set_content(std::string(kCouchdb3Page), "application/json");
    } else {
      reply.set_content(R"({"results":[],"last_seq":")" + since + R"(","pending":0})",
                        "application/json");
    }
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  REQUIRE(WaitUntil([&] { return server.is_running(); }, 10s));

  auto source = MakeCouchdbSource(
      {.url = "http://admin:hunter2@127.0.0.1:" + std::to_string(port), .database = "animals"});
  const auto first = source->Poll(Checkpoint{}, 100);
  REQUIRE(first.ok());
  REQUIRE(first->size() == 2);
  const std::string seq2 =
      "2-g1AAAACbeJzLYWBgYMpgTmHgzcvPy09JdcjLz8gvLskBCeexAEmGBiD1HwiyEhlwqEtkSKqHKMgCAIUAGV8";
  CHECK((*first)[0].id == "cat-1");
  CHECK((*first)[1].op == Op::kDelete);
  CHECK((*first)[1].position.token == "\"" + seq2 + "\"");
  const auto second = source->Poll((*first)[1].position, 100);
  REQUIRE(second.ok());
  CHECK(second->empty());
  {
    std::lock_guard lock(mutex);
    REQUIRE(since_seen.size() == 2);
    CHECK(since_seen[1] == seq2);
  }

  // The server gone: an error that is retried, and that never shows the password.
  server.stop();
  serving.join();
  const auto down = source->Poll((*first)[1].position, 100);
  REQUIRE_FALSE(down.ok());
  CHECK(down.status().code() == StatusCode::kUnavailable);
  CHECK(down.status().message().find("hunter2") == std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
