// `relations` under a maxwell source: the config, how keys are bound into MySQL, and the
// fan-out mark of checkpoints. End to end: tests/integration/maxwell_relations_test.cc.

#include <catch2/catch.hpp>

#include "pipeline/app/registry.h"
#include "sources/maxwell.h"
#include "sources/mysql_full_read.h"

namespace searchsync {
namespace {

std::string ConfigWith(const std::string& source_extra) {
  return R"(
typesense: { nodes: ["http://127.0.0.1:8108"], api_key: k }
pipelines:
  - name: products
    source:
      type: maxwell
      brokers: 127.0.0.1:9092
      topic: maxwell
      group_id: searchsync-products
      database: shop
      table: products
)" + source_extra +
         R"(
    sink: { collection: products, schema: { fields: [{ name: name, type: string }] } }
)";
}

constexpr const char* kSnapshot =
    "      snapshot: { dsn: \"tcp://u:pw@127.0.0.1:3306/shop\", query: \"SELECT * FROM "
    "products\" }\n";

TEST_CASE("Maxwell relations: documents with one ?, or document_key, snapshot required",
          "[maxwell][config]") {
  const Result<Config> good = ParseConfig(
      ConfigWith(std::string(kSnapshot) +
                 "      relations:\n"
                 "        - { table: categories, documents: 'SELECT id FROM products WHERE "
                 "category_id IN (?)' }\n"
                 "        - { table: product_tags, primary_key: [product_id, tag_id], "
                 "document_key: product_id }\n"),
      "pipelines.yaml");
  INFO((good.ok() ? "" : good.status().message()));
  CHECK(good.ok());

  const Result<Config> bad = ParseConfig(
      ConfigWith(std::string(kSnapshot) +
                 "      relations:\n"
                 "        - { table: categories }\n"
                 "        - { table: brands, documents: 'SELECT id FROM products WHERE b IN (?) "
                 "AND c IN (?)' }\n"
                 "        - { table: tags, documents: \"SELECT id FROM products WHERE x = '?'\" }\n"
                 "        - { table: links, primary_key: [a, b], documents: 'SELECT id FROM "
                 "products WHERE x IN (?)' }\n"
                 "        - { table: tags, document_key: id, updated_at: updated_at }\n"
                 "        - { table: products, document_key: id }\n"),
      "pipelines.yaml");
  REQUIRE_FALSE(bad.ok());
  const std::string& errors = bad.status().message();
  INFO(errors);
  CHECK(errors.find("relations[0]") != std::string::npos);
  CHECK(errors.find("set exactly one of 'documents'") != std::string::npos);
  CHECK(errors.find("relations[1].documents: must use ? exactly once") != std::string::npos);
  CHECK(errors.find("relations[2].documents: must use ? exactly once") != std::string::npos);
  CHECK(errors.find("relations[3].documents: needs a single-column primary_key") !=
        std::string::npos);
  CHECK(errors.find("relations[4].table: names a table listed before") != std::string::npos);
  CHECK(errors.find("relations[4].updated_at: not used by a maxwell source") != std::string::npos);
  CHECK(errors.find("relations[5].table: is the pipeline's own table") != std::string::npos);

  const Result<Config> no_snapshot =
      ParseConfig(ConfigWith("      relations: [{ table: product_tags, document_key: p }]\n"),
                  "pipelines.yaml");
  REQUIRE_FALSE(no_snapshot.ok());
  CHECK(no_snapshot.status().message().find("relations: needs snapshot") != std::string::npos);

  const Result<Config> composite =
      ParseConfig(ConfigWith(std::string(kSnapshot) +
                             "      primary_key: [a, b]\n"
                             "      relations: [{ table: product_tags, document_key: p }]\n"),
                  "pipelines.yaml");
  REQUIRE_FALSE(composite.ok());
  CHECK(composite.status().message().find("relations: needs a single-column primary_key") !=
        std::string::npos);
}

TEST_CASE("MySQL key lists: ? outside quotes and comments becomes the list of literals",
          "[maxwell][mysql]") {
  CHECK(MysqlPlaceholders("SELECT id FROM p WHERE c IN (?)") == std::vector<size_t>{29});
  CHECK(MysqlPlaceholders("SELECT '?', \"?\", `?` -- ?\n # ?\n /* ? */ FROM t WHERE a IN (?)")
            .size() == 1);
  CHECK(MysqlPlaceholders("SELECT 'it''s ?' FROM t WHERE a IN (?) AND b = '\\'?'").size() == 1);
  CHECK(MysqlPlaceholders("SELECT id FROM t").empty());

  const std::vector<std::string> literals = {"7", MysqlKeyLiteral("a'b", false)};
  CHECK(BindMysqlList("SELECT id FROM p WHERE c IN (?) ORDER BY id", literals) ==
        "SELECT id FROM p WHERE c IN (7, _utf8mb4 X'612762') ORDER BY id");
  CHECK(BindMysqlList("SELECT id FROM p WHERE c IN (?)", {}) ==
        "SELECT id FROM p WHERE c IN (NULL)");

  CHECK(MysqlKeyLiteral("42", true) == "42");
  CHECK(MysqlKeyLiteral("-1.5e3", true) == "-1.5e3");
  // Only a number goes into SQL as written: anything else is a hex string, whatever it holds.
  CHECK(MysqlKeyLiteral("1-1", true) == "_utf8mb4 X'312D31'");
  CHECK(MysqlKeyLiteral("1 OR 1=1", true) == "_utf8mb4 X'31204F5220313D31'");
  CHECK(MysqlKeyLiteral("42", false) == "_utf8mb4 X'3432'");
  CHECK(MysqlKeyLiteral("", false) == "_utf8mb4 X''");
}

TEST_CASE("A checkpoint's fan-out mark names the partition and the last document id given",
          "[maxwell]") {
  auto plain = SplitFanOutMark("0:3,3:2");
  REQUIRE(plain.ok());
  CHECK(plain->first == "0:3,3:2");
  CHECK_FALSE(plain->second.has_value());

  auto marked = SplitFanOutMark("0:3,3:2#3:id#with:colons");
  REQUIRE(marked.ok());
  CHECK(marked->first == "0:3,3:2");
  REQUIRE(marked->second.has_value());
  CHECK(marked->second->partition == 3);
  CHECK(marked->second->after == "id#with:colons");

  CHECK_FALSE(SplitFanOutMark("0:3#x:1").ok());
  CHECK_FALSE(SplitFanOutMark("0:3#3").ok());
}

}  // namespace
}  // namespace searchsync
