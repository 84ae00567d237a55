// The maxwell source's full read (`snapshot: { dsn, query }`) against a real MariaDB.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "pipeline/json.h"
#include "sources/common.h"
#include "sources/maxwell.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"

namespace searchsync::test {
namespace {

constexpr int kRows = 20'000;

MaxwellOptions OptionsFor(const MariadbServer& db, std::string query = "") {
  MaxwellOptions options{.brokers = "127.0.0.1:1",
                         .topic = "maxwell",
                         .group_id = "g",
                         .database = db.options().database,
                         .table = "orders"};
  options.snapshot = MysqlFullReadOptions{.dsn = Secret(db.dsn()),
                                          .query = std::move(query),
                                          .database = options.database,
                                          .table = options.table};
  return options;
}

// Every event of a full read, read in pages of `page` until it reports the end.
std::vector<Event> ReadAll(FullRead& full_read, size_t page = 1'000) {
  std::vector<Event> all;
  for (;;) {
    Result<std::vector<Event>> events = full_read.Next(page);
    if (!events.ok()) FAIL(events.status().message());
    if (events->empty()) return all;
    CHECK(events->size() <= page);
    for (Event& event : *events) all.push_back(std::move(event));
  }
}

std::string Base64Of(uint32_t value) {
  const std::string bytes = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                             static_cast<char>(value >> 8), static_cast<char>(value)};
  std::string out;
  AppendBase64(out, bytes);
  return out;
}

std::string TwoDigits(int value) { return (value < 10 ? "0" : "") + std::to_string(value); }

TEST_CASE("Maxwell snapshot: a full read of 20000 MariaDB rows gives every row, typed as Maxwell",
          "[integration][maxwell][mariadb]") {
  auto db = MariadbServer::Start();
  REQUIRE(db.ok());
  MariadbServer& mariadb = **db;
  REQUIRE(mariadb
              .Exec("CREATE TABLE orders (id BIGINT PRIMARY KEY, sku VARCHAR(64) NOT NULL, "
                    "qty INT, price DECIMAL(10,2), weight DOUBLE, created DATETIME, "
                    "updated TIMESTAMP(3) NULL, tags SET('red','green','blue'), "
                    "status ENUM('new','paid'), payload BLOB, note TEXT, flag BIT(1), yr YEAR)")
              .ok());
  // The sequence engine (seq_1_to_N) is built into MariaDB.
  REQUIRE(mariadb
              .Exec("INSERT INTO orders SELECT seq, CONCAT('sku-', seq, IF(seq % 7 = 0, "
                    "' \"quoted\" \\\\ \xC3\xA9', '')), CAST(seq % 100 AS SIGNED) - 50, seq / 100, "
                    "seq * 0.5, "
                    "'2024-01-01 00:00:00' + INTERVAL seq SECOND, IF(seq % 5 = 0, NULL, "
                    "'2024-02-01 00:00:00.123' + INTERVAL seq MINUTE), ELT(seq % 4 + 1, '', "
                    "'red', 'red,blue', 'green,blue'), IF(seq % 2, 'new', 'paid'), "
                    "UNHEX(LPAD(HEX(seq), 8, '0')), IF(seq % 3 = 0, NULL, CONCAT('line1\\nline2 ', "
                    "seq)), seq % 2, 2000 + seq % 50 FROM seq_1_to_" +
                    std::to_string(kRows))
              .ok());

  auto source = MakeMaxwellSource(OptionsFor(mariadb));
  CHECK(source->BackfillOnFirstStart());
  auto full_read = source->OpenFullRead();
  REQUIRE(full_read.ok());
  const std::vector<Event> events = ReadAll(**full_read);
  REQUIRE(events.size() == kRows);
  // Once done, the read stays done.
  CHECK((*full_read)->Next(10)->empty());

  std::set<std::string> ids;
  const std::vector<std::string> tag_sets[] = {{}, {"red"}, {"red", "blue"}, {"green", "blue"}};
  for (const Event& event : events) {
    CHECK(event.op == Op::kUpsert);
    CHECK(event.dead_letter_reason.empty());
    ids.insert(event.id);
    const int64_t id = std::stoll(event.id);
    nlohmann::json document = nlohmann::json::object();
    std::string names;
    for (const Field& field : event.document) {
      names += field.name + ",";
      document[field.name] = nlohmann::json::parse(field.json);
    }
    INFO("row " << id << ": " << document.dump());
    REQUIRE(names == "id,sku,qty,price,weight,created,updated,tags,status,payload,note,flag,yr,");
    CHECK(document["id"] == id);
    CHECK(document["sku"] ==
          "sku-" + std::to_string(id) + (id % 7 == 0 ? " \"quoted\" \\ \xC3\xA9" : ""));
    CHECK(document["qty"] == id % 100 - 50);
    // DECIMAL keeps its digits: 0.01, 1.50, 200.00.
    std::string price_text;
    for (const Field& field : event.document) {
      if (field.name == "price") price_text = field.json;
    }
    CHECK(price_text == std::to_string(id / 100) + "." + TwoDigits(static_cast<int>(id % 100)));
    CHECK(document["weight"].get<double>() == id * 0.5);
    const int64_t created_seconds = id;
    CHECK(document["created"] ==
          "2024-01-" + TwoDigits(1 + static_cast<int>(created_seconds / 86400)) + " " +
              TwoDigits(static_cast<int>(created_seconds / 3600 % 24)) + ":" +
              TwoDigits(static_cast<int>(created_seconds / 60 % 60)) + ":" +
              TwoDigits(static_cast<int>(created_seconds % 60)));
    if (id % 5 == 0) {
      CHECK(document["updated"].is_null());
    } else {
      const std::string updated = document["updated"].get<std::string>();
      CHECK(updated.size() == std::string("2024-02-01 00:00:00.123").size());
      CHECK(updated.starts_with("2024-0"));
      CHECK(updated.ends_with(".123"));
    }
    CHECK(document["tags"] == nlohmann::json(tag_sets[id % 4]));
    CHECK(document["status"] == (id % 2 ? "new" : "paid"));
    CHECK(document["payload"] == Base64Of(static_cast<uint32_t>(id)));
    if (id % 3 == 0) {
      CHECK(document["note"].is_null());
    } else {
      CHECK(document["note"] == "line1\nline2 " + std::to_string(id));
    }
    CHECK(document["flag"] == id % 2);
    CHECK(document["yr"] == 2000 + id % 50);
  }
  CHECK(ids.size() == kRows);
}

TEST_CASE("Maxwell snapshot: composite keys give the ids the stream gives for the same rows",
          "[integration][maxwell][mariadb]") {
  auto db = MariadbServer::Start();
  REQUIRE(db.ok());
  MariadbServer& mariadb = **db;
  REQUIRE(mariadb
              .Exec("CREATE TABLE orders (region VARCHAR(20), code VARBINARY(8), n INT, "
                    "v VARCHAR(10), PRIMARY KEY (region, code, n))")
              .ok());
  REQUIRE(mariadb
              .Exec("INSERT INTO orders VALUES ('eu|west', 'a\\\\b', 1, 'x'), ('eu', 'west|a', 1, "
                    "'y'), ('us', 0x00FF, -7, 'z')")
              .ok());
  auto full_read = MakeMaxwellSource(OptionsFor(mariadb))->OpenFullRead();
  REQUIRE(full_read.ok());
  const std::vector<Event> events = ReadAll(**full_read);
  REQUIRE(events.size() == 3);

  // The same rows as Maxwell writes them (binary columns base64) through the stream's decoder.
  MaxwellDecoder decoder("shop", "orders", {});
  std::set<std::string> stream_ids, read_ids;
  for (const Event& event : events) {
    read_ids.insert(event.id);
    std::string data = "{";
    for (const Field& field : event.document) {
      data += (data.size() > 1 ? "," : "") + JsonString(field.name) + ":" + field.json;
    }
    data += "}";
    Event decoded;
    std::string reason;
    REQUIRE(decoder.Decode(
                "", MaxwellMessage("shop", "orders", "insert", data, R"(["region","code","n"])"),
                decoded, reason) == MaxwellDecoder::Outcome::kChange);
    stream_ids.insert(decoded.id);
  }
  CHECK(read_ids == stream_ids);
  std::string ab;
  AppendBase64(ab, "a\\b");
  const std::vector<std::string> first = {"eu|west", ab, "1"};
  CHECK(read_ids.contains(JoinKeyParts(first)));
}

TEST_CASE("Maxwell snapshot: connection and SQL errors name the cause, never the password",
          "[integration][maxwell][mariadb]") {
  auto db = MariadbServer::Start();
  REQUIRE(db.ok());
  MariadbServer& mariadb = **db;
  REQUIRE(mariadb.Exec("CREATE TABLE orders (id INT PRIMARY KEY)").ok());
  const std::string password = mariadb.options().password;

  SECTION("a wrong password is refused for good") {
    MaxwellOptions options = OptionsFor(mariadb);
    std::string dsn = mariadb.dsn();
    dsn.replace(dsn.find(password), password.size(), "wrong-" + password);
    options.snapshot->dsn = Secret(dsn);
    auto full_read = MakeMaxwellSource(options)->OpenFullRead();
    REQUIRE(full_read.ok());
    const auto events = (*full_read)->Next(10);
    REQUIRE_FALSE(events.ok());
    CHECK(events.status().code() == StatusCode::kFailedPrecondition);
    CHECK(events.status().message().find("Access denied") != std::string::npos);
    CHECK(events.status().message().find(password) == std::string::npos);
  }
  SECTION("a server that is down is retried") {
    MaxwellOptions options = OptionsFor(mariadb);
    REQUIRE(mariadb.Stop().ok());
    auto full_read = MakeMaxwellSource(options)->OpenFullRead();
    REQUIRE(full_read.ok());
    const auto events = (*full_read)->Next(10);
    REQUIRE_FALSE(events.ok());
    CHECK(events.status().code() == StatusCode::kUnavailable);
    CHECK(events.status().message().find(password) == std::string::npos);
    REQUIRE(mariadb.Restart().ok());
    CHECK((*full_read)->Next(10).ok());
  }
  SECTION("a bad query or a table without a primary key needs a fix") {
    auto bad_query =
        MakeMaxwellSource(OptionsFor(mariadb, "SELECT nope FROM orders"))->OpenFullRead();
    REQUIRE(bad_query.ok());
    const auto events = (*bad_query)->Next(10);
    REQUIRE_FALSE(events.ok());
    CHECK(events.status().code() == StatusCode::kFailedPrecondition);
    CHECK(events.status().message().find("nope") != std::string::npos);

    REQUIRE(mariadb.Exec("CREATE TABLE keyless (v INT)").ok());
    MaxwellOptions options = OptionsFor(mariadb);
    options.snapshot->table = "keyless";
    auto keyless = MakeMaxwellSource(options)->OpenFullRead();
    REQUIRE(keyless.ok());
    const auto keyless_events = (*keyless)->Next(10);
    REQUIRE_FALSE(keyless_events.ok());
    CHECK(keyless_events.status().message().find("set primary_key") != std::string::npos);
  }
}

TEST_CASE("Maxwell: without a snapshot there is no full read and no backfill on first start",
          "[integration][maxwell]") {
  auto source = MakeMaxwellSource({.brokers = "127.0.0.1:1",
                                   .topic = "maxwell",
                                   .group_id = "g",
                                   .database = "shop",
                                   .table = "orders"});
  CHECK_FALSE(source->BackfillOnFirstStart());
  const auto full_read = source->OpenFullRead();
  REQUIRE_FALSE(full_read.ok());
  CHECK(full_read.status().message().find("snapshot") != std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
