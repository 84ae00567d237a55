// `relations` under a maxwell source, end to end: a real MariaDB holds products, categories,
// tags and the product_tags link table; the test writes them and publishes the Maxwell messages
// of those writes to librdkafka's mock cluster; searchsync re-reads every touched document
// through snapshot.query restricted to its ids. After each step the Typesense collection must
// equal the snapshot query's result, and the group's offsets must never be ahead of what
// Typesense acknowledged.

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/json.h"
#include "tests/support/kafka_mock.h"
#include "tests/support/mariadb_server.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/typesense_server.h"

namespace searchsync::test {
namespace {

constexpr int kPartitions = 3;
const std::string kTopic = "maxwell";
const std::string kGroup = "searchsync-products";

// One document: the product, its category's name and its tags' names.
constexpr const char* kQuery =
    "SELECT p.id, p.name, c.name AS category, "
    "COALESCE((SELECT GROUP_CONCAT(t.name ORDER BY t.name SEPARATOR ',') FROM product_tags pt "
    "JOIN tags t ON t.id = pt.tag_id WHERE pt.product_id = p.id), '') AS tags "
    "FROM products p JOIN categories c ON c.id = p.category_id WHERE p.name NOT LIKE 'hidden%'";

struct RelationsWorld {
  std::unique_ptr<MariadbServer> db;
  KafkaMock kafka;
  TypesenseServer typesense{TypesenseServerOptions{}};
  TempDir dir;
  std::map<int32_t, int64_t> produced;  // messages per partition

  RelationsWorld() {
    auto started = MariadbServer::Start();
    if (!started.ok()) FAIL(started.status().message());
    db = std::move(*started);
    Exec("CREATE TABLE categories (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL)");
    Exec(
        "CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
        "category_id INT NOT NULL, KEY (category_id, id))");
    Exec("CREATE TABLE tags (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL)");
    Exec(
        "CREATE TABLE product_tags (product_id BIGINT NOT NULL, tag_id INT NOT NULL, "
        "PRIMARY KEY (product_id, tag_id), KEY (tag_id))");
    kafka.CreateTopic(kTopic, kPartitions);
  }

  void Exec(const std::string& sql) {
    if (Status status = db->Exec(sql); !status.ok()) FAIL(status.message());
  }

  // Publishes a row change of `table` as Maxwell writes it; returns its offset.
  int64_t Send(const std::string& table, const std::string& type, int64_t key,
               const std::string& data, const std::string& old = "") {
    const int32_t partition = static_cast<int32_t>(key % kPartitions);
    std::string message = "{\"database\":\"shop\",\"table\":" + JsonString(table) +
                          ",\"type\":" + JsonString(type) +
                          ",\"ts\":1732170000,\"xid\":88120,\"commit\":true,\"data\":" + data;
    if (!old.empty()) message += ",\"old\":" + old;
    message += "}";
    kafka.Produce(kTopic, partition, MaxwellKey("shop", table, key), message);
    return produced[partition]++;
  }

  static std::string Product(int64_t id, const std::string& name, int category) {
    return "{\"id\":" + std::to_string(id) + ",\"name\":" + JsonString(name) +
           ",\"category_id\":" + std::to_string(category) + "}";
  }
  static std::string Link(int64_t product, int tag) {
    return "{\"product_id\":" + std::to_string(product) + ",\"tag_id\":" + std::to_string(tag) +
           "}";
  }
  static std::string Named(int64_t id, const std::string& name) {
    return "{\"id\":" + std::to_string(id) + ",\"name\":" + JsonString(name) + "}";
  }

  // Categories 1-3, tags 1-3; `products` products, all in category 1 but every tenth in 2 or 3;
  // every seventh product has tags 1 and 2. Written to MariaDB, then published.
  void Seed(int64_t products) {
    for (int category = 1; category <= 3; ++category) {
      Exec("INSERT INTO categories VALUES (" + std::to_string(category) + ", 'category " +
           std::to_string(category) + "')");
      Send("categories", "insert", category,
           Named(category, "category " + std::to_string(category)));
    }
    for (int tag = 1; tag <= 3; ++tag) {
      Exec("INSERT INTO tags VALUES (" + std::to_string(tag) + ", 'tag" + std::to_string(tag) +
           "')");
      Send("tags", "insert", tag, Named(tag, "tag" + std::to_string(tag)));
    }
    std::string rows, links;
    for (int64_t id = 1; id <= products; ++id) {
      const int category = id % 10 == 0 ? 2 + static_cast<int>(id / 10 % 2) : 1;
      rows += (rows.empty() ? "(" : ",(") + std::to_string(id) + ",'product " + std::to_string(id) +
              "'," + std::to_string(category) + ")";
      Send("products", "insert", id, Product(id, "product " + std::to_string(id), category));
      if (id % 7 == 0) {
        for (int tag = 1; tag <= 2; ++tag) {
          links +=
              (links.empty() ? "(" : ",(") + std::to_string(id) + "," + std::to_string(tag) + ")";
          Send("product_tags", "insert", id, Link(id, tag));
        }
      }
      if (id % 5'000 == 0 || id == products) {
        Exec("INSERT INTO products VALUES " + rows);
        if (!links.empty()) Exec("INSERT INTO product_tags VALUES " + links);
        rows.clear();
        links.clear();
      }
    }
    kafka.Flush();
  }

  std::string config_path() const { return dir / "pipelines.yaml"; }

  void WriteConfig() {
    std::ofstream out(config_path());
    out << "typesense:\n"
        << "  nodes: [\"" << typesense.url() << "\"]\n"
        << "  api_key: " << typesense.api_key() << "\n"
        << "  retry: { initial_backoff: 10ms, max_backoff: 200ms }\n"
        << "state: { path: \"" << (dir / "state") << "\" }\n"
        << "pipelines:\n"
        << "  - name: products\n"
        << "    source:\n"
        << "      type: maxwell\n"
        << "      brokers: \"" << kafka.bootstraps() << "\"\n"
        << "      topic: " << kTopic << "\n"
        << "      group_id: " << kGroup << "\n"
        << "      database: shop\n"
        << "      table: products\n"
        << "      kafka: { session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\" }\n"
        << "      snapshot: { dsn: \"" << db->dsn() << "\", query: \"" << kQuery << "\" }\n"
        << "      relations:\n"
        << "        - table: categories\n"
        << "          documents: \"SELECT id FROM products WHERE category_id IN (?)\"\n"
        << "        - table: tags\n"
        << "          documents: \"SELECT product_id FROM product_tags WHERE tag_id IN (?)\"\n"
        << "        - table: product_tags\n"
        << "          primary_key: [product_id, tag_id]\n"
        << "          document_key: product_id\n"
        << "    sink:\n"
        << "      collection: products\n"
        << "      schema: { fields: [{ name: name, type: string }, { name: category, type: "
           "string }, { name: tags, type: string }] }\n"
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

  int Run(const std::vector<std::string>& args) {
    auto process = ServerProcess::Start({.argv = Argv(args)});
    if (!process.ok()) FAIL(process.status().message());
    const std::optional<int> code = (*process)->Wait(std::chrono::seconds(180));
    if (!code) FAIL("searchsync did not finish: " << (*process)->Describe());
    last_output = (*process)->ReadStderr() + (*process)->ReadStdout();
    return *code;
  }
  std::string last_output;

  // "" when the collection holds exactly the rows of the snapshot query.
  std::string IndexEqualsQuery() {
    auto rows = db->Query(kQuery);
    if (!rows.ok()) return rows.status().message();
    const auto documents = typesense.Documents("products");
    if (!documents) return "no collection";
    std::string problems;
    for (const auto& row : *rows) {
      const auto it = documents->find(*row[0]);
      if (it == documents->end()) {
        problems += "missing " + *row[0] + "; ";
      } else if (it->second.value("name", "") != *row[1] ||
                 it->second.value("category", "") != *row[2] ||
                 it->second.value("tags", "") != *row[3]) {
        problems += "stale " + *row[0] + ": " + it->second.dump() + " vs " + *row[1] + "/" +
                    *row[2] + "/" + *row[3] + "; ";
      }
      if (problems.size() > 600) return problems;
    }
    if (documents->size() != rows->size()) {
      problems += "index holds " + std::to_string(documents->size()) + " documents, the query " +
                  std::to_string(rows->size());
    }
    return problems;
  }

  std::string CommittedAll() {
    const auto committed = kafka.Committed(kGroup, kTopic, kPartitions);
    std::string problems;
    for (int32_t partition = 0; partition < kPartitions; ++partition) {
      if (committed.at(partition) != produced[partition]) {
        problems += "partition " + std::to_string(partition) + " committed " +
                    std::to_string(committed.at(partition)) + " of " +
                    std::to_string(produced[partition]) + "; ";
      }
    }
    return problems;
  }
};

TEST_CASE(
    "Maxwell relations: a category rename, a tag rename, link-table deletes and moves re-read "
    "the documents they touch from MariaDB",
    "[integration][maxwell][mariadb][relations]") {
  RelationsWorld world;
  // 11,700 products in category 1: its fan-out is longer than one poll (10,000 events).
  world.Seed(13'000);
  world.WriteConfig();
  REQUIRE(world.Run({"run", "--once"}) == 0);
  INFO(world.last_output.substr(0, 3000));
  CHECK(world.IndexEqualsQuery() == "");
  CHECK(world.CommittedAll() == "");

  // The category that 11,700 products show is renamed.
  world.Exec("UPDATE categories SET name = 'renamed' WHERE id = 1");
  world.Send("categories", "update", 1, RelationsWorld::Named(1, "renamed"),
             R"({"name":"category 1"})");
  // A tag shown by 1,857 products is renamed.
  world.Exec("UPDATE tags SET name = 'tag2-renamed' WHERE id = 2");
  world.Send("tags", "update", 2, RelationsWorld::Named(2, "tag2-renamed"), R"({"name":"tag2"})");
  // Link rows deleted (the delete message carries the row) and moved to another product.
  world.Exec("DELETE FROM product_tags WHERE product_id = 7");
  world.Send("product_tags", "delete", 7, RelationsWorld::Link(7, 1));
  world.Send("product_tags", "delete", 7, RelationsWorld::Link(7, 2));
  world.Exec("UPDATE product_tags SET product_id = 15 WHERE product_id = 14 AND tag_id = 1");
  world.Send("product_tags", "update", 15, RelationsWorld::Link(15, 1), R"({"product_id":14})");
  // A product moves to another category; one stops matching the query's WHERE; one is deleted.
  world.Exec("UPDATE products SET category_id = 3 WHERE id = 21");
  world.Send("products", "update", 21, RelationsWorld::Product(21, "product 21", 3),
             R"({"category_id":1})");
  world.Exec("UPDATE products SET name = 'hidden 22' WHERE id = 22");
  world.Send("products", "update", 22, RelationsWorld::Product(22, "hidden 22", 1),
             R"({"name":"product 22"})");
  world.Exec("DELETE FROM products WHERE id = 23");
  world.Send("products", "delete", 23, RelationsWorld::Product(23, "product 23", 1));
  world.kafka.Flush();
  REQUIRE(world.Run({"run", "--once"}) == 0);
  INFO(world.last_output.substr(0, 3000));
  CHECK(world.IndexEqualsQuery() == "");
  CHECK(world.CommittedAll() == "");
  const auto documents = world.typesense.Documents("products");
  REQUIRE(documents);
  CHECK(documents->at("1").value("category", "") == "renamed");
  CHECK(documents->at("7").value("tags", "x") == "");
  CHECK(documents->at("14").value("tags", "") == "tag2-renamed");
  CHECK(documents->at("15").value("tags", "") == "tag1");
  CHECK(documents->at("21").value("category", "") == "category 3");
  CHECK_FALSE(documents->contains("22"));
  CHECK_FALSE(documents->contains("23"));
}

TEST_CASE(
    "Maxwell relations: kill -9 while a 20,000-document fan-out is unacknowledged, the offset "
    "never passes the category's message and a restart completes it",
    "[integration][maxwell][mariadb][relations]") {
  RelationsWorld world;
  world.Seed(22'000);  // 19,800 products in category 1
  world.WriteConfig();
  REQUIRE(world.Run({"run", "--once"}) == 0);
  REQUIRE(world.IndexEqualsQuery() == "");

  world.Exec("UPDATE categories SET name = 'renamed' WHERE id = 1");
  const int64_t category_offset = world.Send(
      "categories", "update", 1, RelationsWorld::Named(1, "renamed"), R"({"name":"category 1"})");
  const int32_t category_partition = 1 % kPartitions;
  world.kafka.Flush();
  const int64_t written_before = world.typesense.Counters().documents_written;
  world.typesense.SetLatency(std::chrono::milliseconds(30));  // the fan-out takes a while
  auto daemon = ServerProcess::Start({.argv = world.Argv({"run"})});
  REQUIRE(daemon.ok());
  // Past the first page of the fan-out, imports take effect but are never answered.
  REQUIRE(WaitUntil(
      [&] { return world.typesense.Counters().documents_written >= written_before + 12'000; },
      std::chrono::seconds(120), std::chrono::milliseconds(5)));
  world.typesense.HoldImports(true);
  REQUIRE(WaitUntil([&] { return world.typesense.HeldImports() > 0; }, std::chrono::seconds(60)));
  (*daemon)->Kill9();
  world.typesense.HoldImports(false);
  world.typesense.SetLatency(std::chrono::milliseconds(0));
  // Documents of the fan-out were never acknowledged: the category's message is not committed.
  const auto committed = world.kafka.Committed(kGroup, kTopic, kPartitions);
  CHECK(committed.at(category_partition) <= category_offset);

  REQUIRE(world.Run({"run", "--once"}) == 0);
  INFO(world.last_output.substr(0, 3000));
  CHECK(world.IndexEqualsQuery() == "");
  CHECK(world.CommittedAll() == "");
}

TEST_CASE(
    "Maxwell relations: check names a documents query returning two columns and a "
    "missing document_key column",
    "[integration][maxwell][mariadb][relations]") {
  RelationsWorld world;
  world.WriteConfig();
  std::ifstream in(world.config_path());
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  config.replace(config.find("SELECT id FROM products WHERE category_id"), 9, "SELECT id, name");
  config.replace(config.find("document_key: product_id"), 24, "document_key: product");
  std::ofstream(world.config_path()) << config;
  CHECK(world.Run({"check"}) != 0);
  INFO(world.last_output);
  CHECK(world.last_output.find("relations[0] (categories): documents returns 2 columns (id, "
                               "name); it must return one, the document id") != std::string::npos);
  CHECK(world.last_output.find("relations[2] (product_tags): document_key column `product` is "
                               "not a column of shop.product_tags") != std::string::npos);
}

}  // namespace
}  // namespace searchsync::test
