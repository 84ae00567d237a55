// The Source and FullRead contract (pipeline/source.h), run against every source on its real
// server: Postgres, Maxwell on librdkafka's mock cluster (with MariaDB for its full read),
// CouchDB on pouchdb-server.
//
// Each source comes as a "world": its server, one collection of documents {"value": N} keyed
// by id, and a way to change them and to build a new source over them. A new connector gets
// every test here by adding its world class to SOURCE_WORLDS.

#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sources/couchdb.h"
#include "sources/maxwell.h"
#include "sources/postgres.h"
#include "tests/support/couchdb_server.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/postgres_server.h"

namespace searchsync::test {
namespace {

using namespace std::chrono_literals;

// ---- Worlds -------------------------------------------------------------------------------
//
// A world's constructor takes `full_read`: whether the test reads it in full (a source whose
// full read needs another server, like Maxwell's MariaDB, starts it only then). Upsert and
// Delete change one document; each change is committed (and visible to a source) when the call
// returns, and changes are made in call order. NewSource builds a source as a restart would.

void Check(const Status& status) {
  INFO(status.ToString());
  REQUIRE(status.ok());
}

class PostgresWorld {
 public:
  explicit PostgresWorld(bool /*full_read*/ = false)
      : table_("contract_" + std::to_string(++tables_)) {
    Check(Server().Exec("CREATE TABLE " + table_ +
                        " (id text PRIMARY KEY, value integer NOT NULL, is_deleted boolean NOT "
                        "NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT "
                        "clock_timestamp())"));
    Check(Server().Exec("CREATE INDEX ON " + table_ + " (updated_at, id)"));
  }
  void Upsert(const std::string& id, int value) {
    Check(Server().Exec("INSERT INTO " + table_ + " (id, value) VALUES ('" + id + "', " +
                        std::to_string(value) +
                        ") ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value, is_deleted = "
                        "false, updated_at = clock_timestamp()"));
  }
  void Delete(const std::string& id) {
    Check(Server().Exec("UPDATE " + table_ +
                        " SET is_deleted = true, updated_at = clock_timestamp() WHERE id = '" + id +
                        "'"));
  }
  std::unique_ptr<Source> NewSource() {
    return MakePostgresSource({.dsn = Secret(Server().dsn()),
                               .table = table_,
                               .primary_key = {"id"},
                               .updated_at = "updated_at",
                               .poll_interval = 0ms,
                               .page_size = 3,
                               .soft_delete_column = "is_deleted"});
  }

 private:
  // One server for every Postgres world of this binary; each world has a table of its own.
  static PostgresServer& Server() {
    static std::unique_ptr<PostgresServer> server = [] {
      auto started = PostgresServer::Start();
      if (!started.ok()) FAIL("PostgreSQL did not start: " << started.status().ToString());
      return std::move(*started);
    }();
    return *server;
  }
  static inline int tables_ = 0;
  const std::string table_;
};

// Maxwell's messages as its daemon writes them for table shop.items, on 3 partitions (by id),
// and, for the full read, the same rows in MariaDB.
class MaxwellWorld {
 public:
  explicit MaxwellWorld(bool full_read = false) {
    kafka_.CreateTopic(kTopic, kPartitions);
    if (!full_read) return;
    auto started = MariadbServer::Start();
    if (!started.ok()) FAIL("MariaDB did not start: " << started.status().ToString());
    mariadb_ = std::move(*started);
    Check(mariadb_->Exec("CREATE TABLE items (id VARCHAR(64) PRIMARY KEY, value INT NOT NULL)"));
  }
  void Upsert(const std::string& id, int value) {
    const bool exists = rows_.contains(id);
    rows_.insert(id);
    Send(id, exists ? "update" : "insert", nlohmann::json{{"id", id}, {"value", value}}.dump());
    if (mariadb_) {
      Check(mariadb_->Exec("INSERT INTO items VALUES ('" + id + "', " + std::to_string(value) +
                           ") ON DUPLICATE KEY UPDATE value = VALUES(value)"));
    }
  }
  void Delete(const std::string& id) {
    rows_.erase(id);
    Send(id, "delete", nlohmann::json{{"id", id}, {"value", 0}}.dump());
    if (mariadb_) Check(mariadb_->Exec("DELETE FROM items WHERE id = '" + id + "'"));
  }
  std::unique_ptr<Source> NewSource() {
    MaxwellOptions options{.brokers = kafka_.bootstraps(),
                           .topic = kTopic,
                           .group_id = "contract",
                           .database = "shop",
                           .table = "items",
                           // The mock cluster keeps a member that left until its session ends.
                           .kafka = {{"session.timeout.ms", Secret("6000")},
                                     {"heartbeat.interval.ms", Secret("500")}}};
    if (mariadb_) {
      options.snapshot = MysqlFullReadOptions{.dsn = Secret(mariadb_->dsn()),
                                              .database = mariadb_->options().database,
                                              .table = "items"};
    }
    return MakeMaxwellSource(std::move(options));
  }

 private:
  static constexpr int kPartitions = 3;
  static constexpr const char* kTopic = "maxwell";

  void Send(const std::string& id, const std::string& type, const std::string& data) {
    int32_t partition = 0;
    for (const char c : id) partition = (partition * 31 + c) % kPartitions;
    const std::string key =
        nlohmann::json{{"database", "shop"}, {"table", "items"}, {"pk.id", id}}.dump();
    kafka_.Produce(kTopic, partition, key, MaxwellMessage("shop", "items", type, data));
    kafka_.Flush();
  }

  KafkaMock kafka_;
  std::unique_ptr<MariadbServer> mariadb_;
  std::set<std::string> rows_;
};

class CouchdbWorld {
 public:
  explicit CouchdbWorld(bool /*full_read*/ = false) {
    auto started = CouchdbServer::Start();
    if (!started.ok()) FAIL("pouchdb-server: " << started.status().message());
    couch_ = std::move(*started);
    REQUIRE(couch_->Request("PUT", "/items").status == 201);
  }
  void Upsert(const std::string& id, int value) {
    nlohmann::json body{{"value", value}};
    if (const auto rev = revs_.find(id); rev != revs_.end()) body["_rev"] = rev->second;
    const HttpAnswer answer = couch_->Request("PUT", "/items/" + id, body.dump());
    INFO(answer.body);
    REQUIRE(answer.status == 201);
    revs_[id] = answer.Json()["rev"].get<std::string>();
  }
  void Delete(const std::string& id) {
    const HttpAnswer answer = couch_->Request("DELETE", "/items/" + id + "?rev=" + revs_.at(id));
    INFO(answer.body);
    REQUIRE(answer.status == 200);
    revs_[id] = answer.Json()["rev"].get<std::string>();
  }
  std::unique_ptr<Source> NewSource() {
    return MakeCouchdbSource({.url = couch_->url(), .database = "items", .page_size = 4});
  }

 private:
  std::unique_ptr<CouchdbServer> couch_;
  std::map<std::string, std::string> revs_;  // the latest revision of each document
};

#define SOURCE_WORLDS PostgresWorld, MaxwellWorld, CouchdbWorld

// ---- Helpers ------------------------------------------------------------------------------

// Polls from `from` until a poll comes back empty (caught up), moving `from` along like the
// pipeline. kUnavailable is retried: a Kafka consumer waits for its partitions.
std::vector<Event> PollUntilCaughtUp(Source& source, Checkpoint& from, size_t max_events) {
  std::vector<Event> all;
  const auto deadline = std::chrono::steady_clock::now() + 2min;
  while (std::chrono::steady_clock::now() < deadline) {
    Result<std::vector<Event>> events = source.Poll(from, max_events);
    if (!events.ok() && events.status().code() == StatusCode::kUnavailable) continue;
    INFO(events.status().ToString());
    REQUIRE(events.ok());
    if (events->empty()) return all;
    REQUIRE(events->size() <= max_events);
    from = events->back().position;
    for (Event& event : *events) all.push_back(std::move(event));
  }
  FAIL("the source did not catch up within 2 minutes");
  return all;
}

// Polls from `from` until `count` events came, then until caught up, which must add none.
// Empty polls on the way are allowed: a Kafka consumer learns of new messages by fetching, so
// right after a write its partitions may still be at the end it saw last.
std::vector<Event> PollChanges(Source& source, Checkpoint& from, size_t max_events, size_t count) {
  std::vector<Event> all;
  const auto deadline = std::chrono::steady_clock::now() + 2min;
  while (all.size() < count && std::chrono::steady_clock::now() < deadline) {
    std::vector<Event> events = PollUntilCaughtUp(source, from, max_events);
    for (Event& event : events) all.push_back(std::move(event));
  }
  REQUIRE(all.size() == count);
  CHECK(PollUntilCaughtUp(source, from, max_events).empty());
  return all;
}

std::optional<int> Value(const Event& event) {
  if (event.op == Op::kDelete) return std::nullopt;
  for (const Field& field : event.document) {
    if (field.name == "value") return std::stoi(field.json);
  }
  FAIL("an upsert of " << event.id << " without its value field");
  return std::nullopt;
}

std::multiset<std::string> Ids(std::vector<Event>::const_iterator begin,
                               std::vector<Event>::const_iterator end) {
  std::multiset<std::string> ids;
  for (auto it = begin; it != end; ++it) ids.insert(it->id);
  return ids;
}

}  // namespace

// ---- The contract -------------------------------------------------------------------------

TEMPLATE_TEST_CASE(
    "Source contract: each document's changes come in order, and its last "
    "event is its state now",
    "[integration][contract]", SOURCE_WORLDS) {
  TestType world;
  // Seven documents changed in turns; every fifth change deletes one, later ones bring it back.
  std::map<std::string, std::optional<int>> now;  // nullopt: deleted
  for (int step = 1; step <= 60; ++step) {
    const std::string id = "k-" + std::to_string(step % 7);
    if (step % 5 == 0 && now[id].has_value()) {
      world.Delete(id);
      now[id] = std::nullopt;
    } else {
      world.Upsert(id, step);
      now[id] = step;
    }
  }

  auto source = world.NewSource();
  Checkpoint from;
  const std::vector<Event> events = PollUntilCaughtUp(*source, from, 4);
  std::map<std::string, std::vector<std::optional<int>>> by_id;
  for (const Event& event : events) by_id[event.id].push_back(Value(event));
  CHECK(by_id.size() == now.size());
  for (const auto& [id, expected] : now) {
    INFO(id);
    REQUIRE(by_id.contains(id));
    const std::vector<std::optional<int>>& changes = by_id.at(id);
    CHECK(changes.back() == expected);
    // A source may skip versions (polling reads rows, not history), never go back to one.
    int last_value = 0;
    for (const std::optional<int>& value : changes) {
      if (!value) continue;
      CHECK(*value > last_value);
      last_value = *value;
    }
  }
}

TEMPLATE_TEST_CASE(
    "Source contract: an empty poll means caught up, the next gives exactly "
    "what changed since",
    "[integration][contract]", SOURCE_WORLDS) {
  TestType world;
  for (int i = 0; i < 20; ++i) world.Upsert("a-" + std::to_string(i), i + 1);
  auto source = world.NewSource();
  Checkpoint from;
  const std::vector<Event> first = PollUntilCaughtUp(*source, from, 6);
  const std::multiset<std::string> ids = Ids(first.begin(), first.end());
  CHECK(ids.size() == 20);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 20);

  // Caught up and nothing changed: still nothing.
  const Result<std::vector<Event>> again = source->Poll(from, 6);
  REQUIRE(again.ok());
  CHECK(again->empty());

  for (int i = 0; i < 5; ++i) world.Upsert("b-" + std::to_string(i), 100 + i);
  world.Delete("a-3");
  const std::vector<Event> second = PollChanges(*source, from, 6, 6);
  std::map<std::string, std::optional<int>> changed;
  for (const Event& event : second) changed[event.id] = Value(event);
  CHECK(changed == std::map<std::string, std::optional<int>>{{"a-3", std::nullopt},
                                                             {"b-0", 100},
                                                             {"b-1", 101},
                                                             {"b-2", 102},
                                                             {"b-3", 103},
                                                             {"b-4", 104}});
}

TEMPLATE_TEST_CASE(
    "Source contract: a source resuming from a checkpoint gives what follows it "
    "and nothing acknowledged before it",
    "[integration][contract]", SOURCE_WORLDS) {
  TestType world;
  for (int i = 0; i < 30; ++i) world.Upsert("r-" + std::to_string(i), i + 1);
  std::vector<Event> first;
  Checkpoint checkpoint;
  {
    auto source = world.NewSource();
    Checkpoint from;
    first = PollUntilCaughtUp(*source, from, 5);
    REQUIRE(first.size() == 30);
    checkpoint = first[19].position;
    // The state store holds 20 events, the source was told of 10: a crash between storing a
    // checkpoint and Source::Commit. The stored checkpoint is where a restart goes on.
    Check(source->Commit(first[9].position));
  }
  auto resumed = world.NewSource();
  Checkpoint from = checkpoint;
  const std::vector<Event> rest = PollUntilCaughtUp(*resumed, from, 5);
  CHECK(Ids(rest.begin(), rest.end()) == Ids(first.begin() + 20, first.end()));

  world.Upsert("r-new", 99);
  const std::vector<Event> later = PollChanges(*resumed, from, 5, 1);
  CHECK(later[0].id == "r-new");
  CHECK(Value(later[0]) == 99);
}

TEMPLATE_TEST_CASE(
    "FullRead contract: upserts only, each live document once, with its value "
    "now, and CountAll agrees",
    "[integration][contract]", SOURCE_WORLDS) {
  TestType world(/*full_read=*/true);
  std::map<std::string, int> live;
  for (int i = 0; i < 40; ++i) {
    world.Upsert("f-" + std::to_string(i), i + 1);
    live["f-" + std::to_string(i)] = i + 1;
  }
  for (int i = 0; i < 40; i += 4) {
    world.Delete("f-" + std::to_string(i));
    live.erase("f-" + std::to_string(i));
  }
  for (int i = 1; i < 40; i += 4) {
    world.Upsert("f-" + std::to_string(i), 100 + i);
    live["f-" + std::to_string(i)] = 100 + i;
  }

  auto source = world.NewSource();
  Result<std::unique_ptr<FullRead>> full_read = source->OpenFullRead();
  INFO(full_read.status().ToString());
  REQUIRE(full_read.ok());
  std::map<std::string, int> read;
  for (int page = 0;; ++page) {
    REQUIRE(page < 1000);
    Result<std::vector<Event>> events = (*full_read)->Next(7);
    INFO(events.status().ToString());
    REQUIRE(events.ok());
    if (events->empty()) break;
    CHECK(events->size() <= 7);
    for (const Event& event : *events) {
      INFO(event.id);
      REQUIRE(event.op == Op::kUpsert);
      CHECK(read.emplace(event.id, *Value(event)).second);  // once
    }
  }
  CHECK(read == live);
  const Result<std::optional<uint64_t>> count = (*full_read)->CountAll();
  REQUIRE(count.ok());
  if (count->has_value()) CHECK(**count == live.size());
}

}  // namespace searchsync::test
