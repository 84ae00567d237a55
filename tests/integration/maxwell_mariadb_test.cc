// The maxwell source end to end with MariaDB as the source of truth: the test writes rows to a
// real MariaDB table and publishes the Maxwell messages of those writes (Maxwell's documented
// format, every optional field on) to librdkafka's mock cluster; searchsync syncs them into the
// Typesense test server; the exported collection must equal a SELECT of the table.

#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "pipeline/json.h"
#include "sources/maxwell.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {
namespace {

constexpr int kPartitions = 6;
const std::string kTopic = "maxwell";
const std::string kGroup = "searchsync-orders";

struct OrderRow {
  std::string sku;
  int64_t qty = 0;
  int64_t price_cents = 0;
  std::string updated;  // DATETIME as Maxwell writes it
};

std::string PriceText(int64_t cents) {
  char text[32];
  std::snprintf(text, sizeof(text), "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return text;
}

// The row as the JSON object Maxwell puts in `data`.
std::string RowJson(int64_t id, const OrderRow& row) {
  return "{\"id\":" + std::to_string(id) + ",\"sku\":" + JsonString(row.sku) +
         ",\"qty\":" + std::to_string(row.qty) + ",\"price\":" + PriceText(row.price_cents) +
         ",\"updated\":" + JsonString(row.updated) + "}";
}

// A row change as Maxwell's daemon writes it, field order and optional fields as documented.
struct MaxwellRecord {
  std::string type;
  int64_t id = 0;
  std::string data;
  std::string old;  // updates: the changed columns' previous values
  int64_t xid = 0;
  int xoffset = -1;  // -1: the last row of its transaction (`commit: true` instead)
  int64_t binlog_offset = 0;
};

std::string MaxwellJson(const MaxwellRecord& record) {
  std::string out =
      R"({"database":"shop","table":"orders","type":")" + record.type + R"(","ts":1732170042)";
  if (record.type != "bootstrap-insert") {
    out += ",\"xid\":" + std::to_string(record.xid);
    out +=
        record.xoffset < 0 ? ",\"commit\":true" : ",\"xoffset\":" + std::to_string(record.xoffset);
  }
  out += R"(,"position":"mysql-bin.000042:)" + std::to_string(record.binlog_offset) + "\"";
  out += ",\"primary_key\":[" + std::to_string(record.id) + R"(],"primary_key_columns":["id"])";
  out += ",\"data\":" + record.data;
  if (!record.old.empty()) out += ",\"old\":" + record.old;
  out += "}";
  return out;
}

struct MariadbMaxwellWorld {
  std::unique_ptr<MariadbServer> db;
  KafkaMock kafka;
  TypesenseServer typesense{TypesenseServerOptions{}};
  TempDir dir;
  std::map<int64_t, OrderRow> rows;     // the table as the test wrote it
  std::map<int32_t, int64_t> produced;  // messages per partition
  std::mt19937_64 rng{42};
  int64_t xid = 1000;
  int64_t binlog_offset = 4;
  int serial = 0;

  MariadbMaxwellWorld() {
    auto started = MariadbServer::Start();
    if (!started.ok()) FAIL(started.status().message());
    db = std::move(*started);
    Exec(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, sku VARCHAR(64) NOT NULL, qty INT NOT NULL, "
        "price DECIMAL(10,2) NOT NULL, updated DATETIME NOT NULL)");
    kafka.CreateTopic(kTopic, kPartitions);
  }

  void Exec(const std::string& sql) {
    if (Status status = db->Exec(sql); !status.ok()) FAIL(status.message());
  }

  void Send(int32_t partition, const std::string& key, const std::string& value) {
    kafka.Produce(kTopic, partition, key, value);
    ++produced[partition];
  }

  std::string Timestamp() {
    const int seconds = serial % 86400;
    char text[32];
    std::snprintf(text, sizeof(text), "2024-11-21 %02d:%02d:%02d", seconds / 3600,
                  seconds / 60 % 60, seconds % 60);
    return text;
  }

  // One change of row `id`, written to MariaDB's image of the table; its Maxwell message.
  MaxwellRecord Change(int64_t id, std::set<int64_t>& touched) {
    touched.insert(id);
    MaxwellRecord record{.id = id, .binlog_offset = binlog_offset += 217};
    const auto it = rows.find(id);
    const int dice = static_cast<int>(rng() % 100);
    if (it != rows.end() && dice < 25) {
      record.type = "delete";
      record.data = RowJson(id, it->second);
      rows.erase(it);
      return record;
    }
    OrderRow row{.sku = "sku-" + std::to_string(id) + "-" + std::to_string(serial),
                 .qty = static_cast<int64_t>(rng() % 1000),
                 .price_cents = static_cast<int64_t>(rng() % 1'000'000),
                 .updated = Timestamp()};
    if (it != rows.end()) {
      record.type = "update";
      record.old = "{\"sku\":" + JsonString(it->second.sku) +
                   ",\"price\":" + PriceText(it->second.price_cents) + "}";
    } else {
      record.type = dice < 60 ? "bootstrap-insert" : "insert";
    }
    record.data = RowJson(id, row);
    rows[id] = row;
    return record;
  }

  // Messages this pipeline skips: other tables and databases, bootstrap markers, DDL.
  void Noise(int32_t partition) {
    switch (serial % 5) {
      case 0:
        Send(partition, R"({"database":"shop","table":"users","pk.id":7})",
             R"({"database":"shop","table":"users","type":"insert","ts":1732170042,"xid":9,)"
             R"("commit":true,"data":{"id":7,"name":"x"}})");
        break;
      case 1:
        Send(partition, R"({"database":"shop","table":"orders","_uuid":"5b1e"})",
             R"({"database":"shop","table":"orders","type":"bootstrap-start","ts":1732170042,)"
             R"("data":{}})");
        break;
      case 2:
        Send(partition, R"({"database":"shop","table":"orders","_uuid":"5b1f"})",
             R"({"database":"shop","table":"orders","type":"bootstrap-complete","ts":1732170042,)"
             R"("data":{}})");
        break;
      case 3:
        Send(partition, R"({"database":"shop","table":"orders","_uuid":"91ac"})",
             R"({"type":"table-alter","database":"shop","table":"orders","old":{},"def":{},)"
             R"("ts":1732170042000,"sql":"ALTER TABLE orders ADD COLUMN note TEXT"})");
        break;
      default:
        Send(partition, R"({"database":"archive","table":"orders","pk.id":1})",
             R"({"database":"archive","table":"orders","type":"update","ts":1732170042,)"
             R"("xid":9,"commit":true,"data":{"id":1},"old":{}})");
    }
  }

  // `messages` messages; the changes are grouped in transactions of 1-4 rows and written to
  // MariaDB in rounds (the table ends each round as the messages say).
  void Produce(int messages, int ids) {
    std::set<int64_t> touched;
    int in_round = 0;
    while (messages > 0) {
      ++serial;
      if (rng() % 12 == 0) {
        Noise(static_cast<int32_t>(rng() % kPartitions));
        --messages;
        continue;
      }
      const int transaction_rows = std::min<int>(messages, 1 + static_cast<int>(rng() % 4));
      ++xid;
      for (int row_idx = 0; row_idx < transaction_rows; ++row_idx) {
        MaxwellRecord record = Change(static_cast<int64_t>(rng() % ids), touched);
        record.xid = xid;
        record.xoffset = row_idx + 1 == transaction_rows ? -1 : row_idx;
        Send(static_cast<int32_t>(record.id % kPartitions), MaxwellKey("shop", "orders", record.id),
             MaxwellJson(record));
      }
      messages -= transaction_rows;
      in_round += transaction_rows;
      if (in_round >= 5'000) {
        WriteTouched(touched);
        in_round = 0;
      }
    }
    WriteTouched(touched);
    kafka.Flush();
    for (const auto& [partition, first] : kafka.FirstOffsets(kTopic, kPartitions)) {
      INFO("partition " << partition);
      REQUIRE(first == 0);  // the mock's log cap dropped none of them
    }
  }

  // Writes the current image of every touched row to MariaDB (deleted rows deleted).
  void WriteTouched(std::set<int64_t>& touched) {
    if (touched.empty()) return;
    std::string ids, values;
    for (const int64_t id : touched) {
      ids += (ids.empty() ? "" : ",") + std::to_string(id);
      const auto it = rows.find(id);
      if (it == rows.end()) continue;
      values += std::string(values.empty() ? "" : ",") + "(" + std::to_string(id) + ",'" +
                it->second.sku + "'," + std::to_string(it->second.qty) + "," +
                PriceText(it->second.price_cents) + ",'" + it->second.updated + "')";
    }
    Exec("DELETE FROM orders WHERE id IN (" + ids + ")");
    if (!values.empty()) Exec("INSERT INTO orders VALUES " + values);
    touched.clear();
  }

  std::string config_path() const { return dir / "pipelines.yaml"; }

  // `with_snapshot`: the pipeline also reads the table from MariaDB (first start, reindex).
  void WriteConfig(bool with_snapshot = false) {
    std::ofstream out(config_path());
    out << "typesense:\n"
        << "  nodes: [\"" << typesense.url() << "\"]\n"
        << "  api_key: " << typesense.api_key() << "\n"
        << "  retry: { initial_backoff: 10ms, max_backoff: 200ms }\n"
        << "state: { path: \"" << (dir / "state") << "\" }\n"
        << "pipelines:\n"
        << "  - name: orders\n"
        << "    source:\n"
        << "      type: maxwell\n"
        << "      brokers: \"" << kafka.bootstraps() << "\"\n"
        << "      topic: " << kTopic << "\n"
        << "      group_id: " << kGroup << "\n"
        << "      database: shop\n"
        << "      table: orders\n"
        << "      kafka: { session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\" }\n";
    if (with_snapshot) out << "      snapshot: { dsn: \"" << db->dsn() << "\" }\n";
    out << "    sink:\n"
        << "      collection: orders\n"
        << "      schema: { fields: [{ name: sku, type: string }, { name: qty, type: int64 }, "
           "{ name: price, type: float }, { name: updated, type: string }] }\n"
        << "      batch: { max_events: 1000, flush_interval: 100ms }\n"
        << "      concurrency: 2\n";
  }

  std::vector<std::string> Argv(std::vector<std::string> args) const {
    std::vector<std::string> argv = {SEARCHSYNC_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("-c");
    argv.push_back(config_path());
    return argv;
  }

  int RunOnce() {
    auto process = ServerProcess::Start({.argv = Argv({"run", "--once"})});
    if (!process.ok()) FAIL(process.status().message());
    const std::optional<int> code = (*process)->Wait(std::chrono::seconds(120));
    if (!code) FAIL("searchsync run --once did not finish: " << (*process)->Describe());
    if (*code != 0) UNSCOPED_INFO((*process)->ReadStderr());
    return *code;
  }

  // The collection as Typesense exports it: id -> document.
  std::map<std::string, nlohmann::json> Export() {
    httplib::Client client(typesense.url());
    client.set_read_timeout(60, 0);
    const auto response = client.Get("/collections/orders/documents/export",
                                     {{"X-TYPESENSE-API-KEY", typesense.api_key()}});
    std::map<std::string, nlohmann::json> documents;
    if (!response || response->status != 200) return documents;
    std::istringstream lines(response->body);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      nlohmann::json document = nlohmann::json::parse(line);
      if (!document.contains("id") || !document["id"].is_string()) FAIL("export line: " << line);
      const std::string id = document["id"].get<std::string>();
      documents[id] = std::move(document);
    }
    return documents;
  }

  // "" when the exported collection holds exactly the rows of SELECT ... FROM orders.
  std::string ExportEqualsTable() {
    auto table = db->Query(
        "SELECT id, sku, qty, price, DATE_FORMAT(updated, '%Y-%m-%d %H:%i:%s') FROM orders");
    if (!table.ok()) return table.status().message();
    const auto documents = Export();
    std::string problems;
    std::set<std::string> ids;
    for (const auto& row : *table) {
      const std::string& id = *row[0];
      ids.insert(id);
      const auto it = documents.find(id);
      if (it == documents.end()) {
        problems += "missing " + id + "; ";
      } else {
        const nlohmann::json document = it->second;
        const double price = std::stod(*row[3]);
        const bool complete = document["sku"].is_string() && document["qty"].is_number() &&
                              document["price"].is_number() && document["updated"].is_string();
        if (!complete || document.value("sku", "") != *row[1] ||
            document.value("qty", int64_t{-1}) != std::stoll(*row[2]) ||
            std::abs(document.value("price", -1.0) - price) > 0.001 ||
            document.value("updated", "") != *row[4]) {
          problems += "stale " + id + ": " + document.dump() + " vs sku=" + *row[1] + "; ";
        }
      }
      if (problems.size() > 600) return problems;
    }
    for (const auto& [id, document] : documents) {
      if (!ids.contains(id)) problems += "extra " + id + "; ";
      if (problems.size() > 600) return problems;
    }
    return problems;
  }
};

TEST_CASE(
    "Maxwell: 100000 messages from MariaDB writes over 6 partitions, run --once: the "
    "exported collection equals the table",
    "[integration][maxwell][mariadb]") {
  MariadbMaxwellWorld world;
  world.Produce(100'000, 20'000);
  world.WriteConfig();
  REQUIRE(world.RunOnce() == 0);
  CHECK(world.ExportEqualsTable() == "");
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    INFO("partition " << partition);
    CHECK(committed.at(partition) == world.produced[partition]);
  }
}

TEST_CASE(
    "Maxwell: the first-start backfill from MariaDB runs beside the stream, rows changed "
    "during it end with their latest values",
    "[integration][maxwell][mariadb]") {
  MariadbMaxwellWorld world;
  // The table before searchsync first starts; Kafka no longer holds how it got there.
  std::set<int64_t> touched;
  for (int64_t id = 0; id < 40'000; ++id) {
    world.rows[id] = OrderRow{.sku = "initial-" + std::to_string(id),
                              .qty = id % 1000,
                              .price_cents = id * 7 % 100'000,
                              .updated = "2024-01-01 00:00:00"};
    touched.insert(id);
  }
  world.WriteTouched(touched);
  world.WriteConfig(/*with_snapshot=*/true);
  // Slow imports keep the full read going while the rows change.
  world.typesense.SetLatency(std::chrono::milliseconds(40));
  auto daemon = ServerProcess::Start({.argv = world.Argv({"run"})});
  REQUIRE(daemon.ok());
  REQUIRE(WaitUntil([&] { return world.typesense.Counters().documents_written >= 2'000; },
                    std::chrono::seconds(60)));
  const bool backfill_running = (*daemon)->ReadStderr().find("backfill done") == std::string::npos;
  // Updates, deletes and inserts, in MariaDB and as Maxwell messages on the stream.
  world.Produce(6'000, 45'000);
  CHECK(backfill_running);
  world.typesense.SetLatency(std::chrono::milliseconds(0));
  CHECK(WaitUntil([&] { return world.ExportEqualsTable().empty(); }, std::chrono::seconds(90),
                  std::chrono::milliseconds(250)));
  INFO((*daemon)->ReadStderr().substr(0, 3000));
  CHECK(world.ExportEqualsTable() == "");
  CHECK((*daemon)->ReadStderr().find("backfill done") != std::string::npos);
  CHECK((*daemon)->Stop() == 0);
}

TEST_CASE(
    "Maxwell: kill -9 at random points while messages flow, restart: the index equals the "
    "table",
    "[integration][maxwell][mariadb]") {
  MariadbMaxwellWorld world;
  world.WriteConfig();
  std::mt19937_64 rng(std::random_device{}());
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    auto daemon = ServerProcess::Start({.argv = world.Argv({"run"})});
    REQUIRE(daemon.ok());
    const int64_t written_before = world.typesense.Counters().documents_written;
    world.Produce(15'000, 5'000);
    // Kill once a random share of this round's documents was written: mid-batch, mid-commit
    // or while reading, wherever that lands.
    const int64_t kill_after = written_before + 200 + static_cast<int64_t>(rng() % 4'000);
    CHECK(WaitUntil([&] { return world.typesense.Counters().documents_written >= kill_after; },
                    std::chrono::seconds(60), std::chrono::milliseconds(5)));
    (*daemon)->Kill9();
  }
  // A last pass with nothing killed: everything not acknowledged before a kill is read again.
  REQUIRE(world.RunOnce() == 0);
  CHECK(world.ExportEqualsTable() == "");
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  for (int32_t partition = 0; partition < kPartitions; ++partition) {
    CHECK(committed.at(partition) == world.produced[partition]);
  }
}

}  // namespace
}  // namespace searchsync::test
