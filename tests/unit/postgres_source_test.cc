#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "pipeline/json.h"
#include "sources/common.h"
#include "sources/postgres.h"

namespace searchsync {
namespace {

constexpr uint32_t kInt4 = 23, kText = 25, kBool = 16, kNumeric = 1700, kFloat8 = 701,
                   kTimestampTz = 1184, kBytea = 17, kJsonb = 3802;

TEST_CASE("Array literals become JSON arrays with NULL, quoting and escapes", "[postgres]") {
  struct Case {
    std::string literal;
    uint32_t element_oid;
    std::string json;
  };
  const std::vector<Case> cases = {
      {"{}", kInt4, "[]"},
      {"{1,2,3}", kInt4, "[1,2,3]"},
      {"{1,NULL,-3}", kInt4, "[1,null,-3]"},
      {"{{1,2},{3,4}}", kInt4, "[[1,2],[3,4]]"},
      {"[0:1]={7,8}", kInt4, "[7,8]"},
      {R"({plain,"with space","a,b","q\"uote","back\\slash",NULL,"NULL",null})", kText,
       R"(["plain","with space","a,b","q\"uote","back\\slash",null,"NULL",null])"},
      {R"({"{braces}",ü})", kText, R"(["{braces}","ü"])"},
      {"{t,f,NULL}", kBool, "[true,false,null]"},
      {"{1.50,NaN,-0.001}", kNumeric, "[1.50,null,-0.001]"},
      {"{1.5,Infinity,-Infinity,1e+100}", kFloat8, "[1.5,null,null,1e+100]"},
      {R"({"2026-11-21 05:00:00.5+00",infinity})", kTimestampTz,
       R"(["2026-11-21T05:00:00.5Z",null])"},
      {R"({"2026-11-21 05:00:00",-infinity,NULL})", 1114, R"(["2026-11-21T05:00:00Z",null,null])"},
      {R"({"\\x00ff",NULL})", kBytea, R"(["AP8=",null])"},
      {R"({"{\"a\": 1}","[1, 2]"})", kJsonb, R"([{"a":1},[1,2]])"},
  };
  for (const Case& c : cases) {
    INFO(c.literal);
    const std::optional<std::string> json = PostgresArrayToJson(c.literal, c.element_oid);
    REQUIRE(json.has_value());
    CHECK(*json == c.json);
  }
}

TEST_CASE("Malformed array literals are refused", "[postgres]") {
  for (const std::string literal : {"", "1,2", "{1,2", "{1,,2}", "{\"open}", "{1}x", "[0:1]"}) {
    INFO(literal);
    CHECK_FALSE(PostgresArrayToJson(literal, kInt4).has_value());
  }
}

TEST_CASE("Scalar values map to JSON by type", "[postgres]") {
  struct Case {
    uint32_t type_oid;
    std::string text;
    std::string json;
  };
  const std::vector<Case> cases = {
      {kInt4, "-42", "-42"},
      {20, "9223372036854775807", "9223372036854775807"},
      {kNumeric, "12345678901234567890.000000001", "12345678901234567890.000000001"},
      {kNumeric, "NaN", "null"},
      {kFloat8, "0.1", "0.1"},
      {kFloat8, "-Infinity", "null"},
      {kBool, "t", "true"},
      {kBool, "f", "false"},
      {kText, "line\n\"q\"", R"("line\n\"q\"")"},
      {114, "{\n  \"a\" : [1, 2],\n  \"s\": \"x  y\"\n}", R"({"a":[1,2],"s":"x  y"})"},
      {kTimestampTz, "2026-11-21 05:00:00.123456+00", R"("2026-11-21T05:00:00.123456Z")"},
      {kTimestampTz, "2026-11-21 05:00:00+05:30", R"("2026-11-21T05:00:00+05:30")"},
      // A `timestamp` reaches this function as UTC wall time (the source converts it first).
      {1114, "2026-11-21 05:00:00", R"("2026-11-21T05:00:00Z")"},
      {1114, "2026-11-21 05:00:00.000001", R"("2026-11-21T05:00:00.000001Z")"},
      // No RFC 3339 form: null, as for NaN numbers.
      {1114, "infinity", "null"},
      {1114, "-infinity", "null"},
      {kTimestampTz, "infinity", "null"},
      {kTimestampTz, "-infinity", "null"},
      {1114, "0044-03-15 12:00:00 BC", "null"},
      {kTimestampTz, "0044-03-15 12:00:00+00 BC", "null"},
      {kTimestampTz, "12026-11-21 05:00:00+00", "null"},
      {1082, "2026-11-21", R"("2026-11-21")"},
      {kBytea, "\\x", R"("")"},
      {kBytea, "\\x666f6f", R"("Zm9v")"},
      {kBytea, "\\x666f6f62", R"("Zm9vYg==")"},
      {2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", R"("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")"},
      {1007, "{1,2}", "[1,2]"},
      {1009, "not an array", R"("not an array")"},
  };
  for (const Case& c : cases) {
    INFO(c.type_oid << " " << c.text);
    CHECK(PostgresValueToJson(c.type_oid, c.text) == c.json);
  }
}

TEST_CASE("Composite keys join without collisions", "[postgres]") {
  const auto join = [](std::vector<std::string> parts) { return JoinKeyParts(parts); };
  CHECK(join({"42"}) == "42");
  CHECK(join({"a|b"}) == "a|b");  // one column: the value as is
  CHECK(join({"a", "b"}) == "a|b");
  CHECK(join({"a|b", "c"}) == R"(a\|b|c)");
  CHECK(join({"a", "b|c"}) == R"(a|b\|c)");
  CHECK(join({"a\\", "b"}) == R"(a\\|b)");
  CHECK(join({"a", "\\|b"}) == R"(a|\\\|b)");
  CHECK(join({"", ""}) == "|");
  // Pairs that a plain '|' join would confuse stay distinct.
  CHECK(join({"a|b", "c"}) != join({"a", "b|c"}));
  CHECK(join({"a\\", "|b"}) != join({"a\\|", "b"}));
}

TEST_CASE("Checkpoint cursors round-trip through their JSON token", "[postgres]") {
  const PostgresCursor cursor{.rows = {"2026-11-21 05:00:00.123456+00", "42", "a\"b|c"},
                              .tombstones = {"2026-11-21 04:00:00+00", "ü 1"}};
  const std::string token = EncodePostgresCursor(cursor);
  CHECK(token == R"({"rows":["2026-11-21 05:00:00.123456+00","42","a\"b|c"],)"
                 R"("tombstones":["2026-11-21 04:00:00+00","ü 1"]})");
  const Result<PostgresCursor> decoded = DecodePostgresCursor(token);
  REQUIRE(decoded.ok());
  CHECK(*decoded == cursor);

  const Result<PostgresCursor> start = DecodePostgresCursor("");
  REQUIRE(start.ok());
  CHECK(start->rows.empty());
  CHECK(start->tombstones.empty());
  CHECK(EncodePostgresCursor({}) == R"({"rows":[],"tombstones":[]})");
}

TEST_CASE("Relation cursors, with a fan-out in progress, round-trip through the token",
          "[postgres]") {
  PostgresCursor cursor{.rows = {"2026-11-21 05:00:00+00", "42"}};
  cursor.relations["categories"] = {.rows = {"2026-11-21 04:00:00+00"},
                                    .tombstones = {"2026-11-21 04:00:00+00"},
                                    .upto = {"2026-11-21 04:30:00+00", "7"},
                                    .after = {"1234"}};
  cursor.relations["product_tags"] = {.rows = {"2026-11-21 04:10:00+00", "3", "9"},
                                      .tombstones = {"2026-11-21 04:11:00+00", "5"}};
  const std::string token = EncodePostgresCursor(cursor);
  CHECK(token ==
        R"({"rows":["2026-11-21 05:00:00+00","42"],"tombstones":[],"relations":{)"
        R"("categories":{"rows":["2026-11-21 04:00:00+00"],"tombstones":)"
        R"(["2026-11-21 04:00:00+00"],"upto":["2026-11-21 04:30:00+00","7"],"after":["1234"]},)"
        R"("product_tags":{"rows":["2026-11-21 04:10:00+00","3","9"],"tombstones":)"
        R"(["2026-11-21 04:11:00+00","5"]}}})");
  const Result<PostgresCursor> decoded = DecodePostgresCursor(token);
  REQUIRE(decoded.ok());
  CHECK(*decoded == cursor);
  CHECK(DecodePostgresCursor(R"({"relations":{"c":{"bogus":[]}}})").status().code() ==
        StatusCode::kInvalidArgument);
  CHECK(DecodePostgresCursor(R"({"relations":[]})").status().code() ==
        StatusCode::kInvalidArgument);
}

TEST_CASE("Checkpoint cursor parts that are not UTF-8 round-trip as hex, the token stays JSON",
          "[postgres]") {
  // Keys from a SQL_ASCII database: Latin-1 bytes, a lone continuation byte, a truncated
  // sequence, an encoded surrogate.
  const PostgresCursor cursor{.rows = {"2026-11-21 05:00:00+00", "caf\xe9", "\x80"},
                              .tombstones = {"2026-11-21 04:00:00+00", "a\xe2\x82|\xed\xa0\x80"}};
  const std::string token = EncodePostgresCursor(cursor);
  CHECK(token == R"({"rows":["2026-11-21 05:00:00+00",{"hex":"636166e9"},{"hex":"80"}],)"
                 R"("tombstones":["2026-11-21 04:00:00+00",{"hex":"61e2827ceda080"}]})");
  CHECK(IsValidUtf8(token));
  const Result<PostgresCursor> decoded = DecodePostgresCursor(token);
  REQUIRE(decoded.ok());
  CHECK(*decoded == cursor);
  for (const std::string bad :
       {R"({"rows":[{"hex":"6"}]})", R"({"rows":[{"hex":"zz"}]})", R"({"rows":[{"text":"61"}]})"}) {
    INFO(bad);
    CHECK(DecodePostgresCursor(bad).status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Foreign checkpoint tokens are refused as invalid", "[postgres]") {
  for (const std::string token :
       {"42", "{", "[]", R"({"rows":"x"})", R"({"rows":[1]})", R"({"offsets":[]})"}) {
    INFO(token);
    const Result<PostgresCursor> decoded = DecodePostgresCursor(token);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Table names are quoted part by part", "[postgres]") {
  CHECK(QuotePostgresName("products") == R"("products")");
  CHECK(QuotePostgresName("shop.Products") == R"("shop"."Products")");
  CHECK(QuotePostgresName(R"("My Schema"."a.b")") == R"("My Schema"."a.b")");
  CHECK(QuotePostgresName(R"(we"ird)") == R"("we""ird")");
  CHECK(QuotePostgresName(R"("a""b".c)") == R"("a""b"."c")");
}

struct ParsedSource {
  SourceFactory factory;
  ConfigErrors errors;
};

ParsedSource Parse(const std::string& yaml) {
  ParsedSource parsed;
  const Section section("pipelines.yaml", YAML::Load(yaml), "pipelines[0].source", PostgresKeys(),
                        parsed.errors);
  parsed.factory = ParsePostgresSource(section, "test");
  return parsed;
}

TEST_CASE("Postgres options accept a table or a query with defaults", "[postgres]") {
  for (const std::string source : {"table: shop.products", "query: SELECT * FROM products"}) {
    const ParsedSource parsed = Parse("dsn: postgresql://u:pw@db/shop\n" + source +
                                      "\nprimary_key: [tenant, id]\nupdated_at: updated_at\n");
    INFO(parsed.errors.ToString());
    CHECK(parsed.errors.empty());
    REQUIRE(parsed.factory);
    CHECK(parsed.factory()->IdleWait() == std::chrono::seconds(30));
  }
}

TEST_CASE("Postgres options take the zones of timestamp columns", "[postgres]") {
  const ParsedSource parsed = Parse(
      "dsn: postgresql://u:pw@db/shop\ntable: products\nprimary_key: id\nupdated_at: updated_at\n"
      "updated_at_time_zone: UTC\n"
      "deletes: { tombstone_table: { table: gone, id_column: id, deleted_at_column: at,"
      " deleted_at_time_zone: Europe/Berlin } }\n");
  INFO(parsed.errors.ToString());
  CHECK(parsed.errors.empty());
  CHECK(parsed.factory);

  const ParsedSource empty = Parse(
      "dsn: postgresql://u:pw@db/shop\ntable: products\nprimary_key: id\nupdated_at: updated_at\n"
      "updated_at_time_zone: ''\n");
  CHECK_FALSE(empty.factory);
  CHECK(empty.errors.ToString().find("updated_at_time_zone: must name a time zone") !=
        std::string::npos);
}

TEST_CASE("Postgres options report every mistake", "[postgres]") {
  const ParsedSource parsed = Parse(
      "dsn: postgresql://u:secret-pw@db/shop\n"
      "table: products\n"
      "query: SELECT 1\n"
      "primary_key: []\n"
      "updated_at: updated_at\n"
      "page_size: 0\n"
      "deletes: { tombstone_table: { table: gone } }\n");
  CHECK_FALSE(parsed.factory);
  const std::string errors = parsed.errors.ToString();
  INFO(errors);
  CHECK(errors.find("exactly one of 'table' or 'query'") != std::string::npos);
  CHECK(errors.find("primary_key") != std::string::npos);
  CHECK(errors.find("page_size") != std::string::npos);
  CHECK(errors.find("id_column") != std::string::npos);
  CHECK(errors.find("deleted_at_column") != std::string::npos);
  CHECK(errors.find("secret-pw") == std::string::npos);

  const ParsedSource missing = Parse("table: products\n");
  CHECK_FALSE(missing.factory);
  CHECK(missing.errors.ToString().find("dsn") != std::string::npos);
}

TEST_CASE("Postgres relations: each names documents one way, with keys the SQL can bind",
          "[postgres]") {
  const std::string head =
      "dsn: postgresql://u:pw@db/shop\nquery: SELECT * FROM products\nprimary_key: id\n"
      "updated_at: updated_at\n";
  const ParsedSource good = Parse(
      head +
      "relations:\n"
      "  - { table: categories, updated_at: updated_at,\n"
      "      documents: 'SELECT id FROM products WHERE category_id = ANY($1)' }\n"
      "  - { table: product_tags, updated_at: updated_at, primary_key: [product_id, tag_id],\n"
      "      document_key: product_id, tombstone_table: { table: deleted_product_tags,\n"
      "      id_column: product_id, deleted_at_column: deleted_at } }\n");
  INFO(good.errors.ToString());
  CHECK(good.errors.empty());
  CHECK(good.factory);

  const ParsedSource bad =
      Parse(head +
            "relations:\n"
            "  - { table: categories, updated_at: updated_at }\n"
            "  - { table: brands, updated_at: updated_at, documents: 'SELECT id FROM products',\n"
            "      document_key: id }\n"
            "  - { table: tags, updated_at: updated_at, documents: 'SELECT id FROM products' }\n"
            "  - { table: links, updated_at: updated_at, primary_key: [a, b],\n"
            "      documents: 'SELECT id FROM products WHERE x = ANY($1)' }\n"
            "  - { table: tags, updated_at: updated_at, document_key: id, docs: x }\n");
  CHECK_FALSE(bad.factory);
  const std::string errors = bad.errors.ToString();
  INFO(errors);
  CHECK(errors.find("relations[0]") != std::string::npos);
  CHECK(errors.find("set exactly one of 'documents'") != std::string::npos);
  CHECK(errors.find("relations[1].documents: set exactly one") != std::string::npos);
  CHECK(errors.find("relations[2].documents: must use $1") != std::string::npos);
  CHECK(errors.find("relations[3].documents: needs a single-column primary_key") !=
        std::string::npos);
  CHECK(errors.find("relations[4].table: names a table listed before") != std::string::npos);
  CHECK(errors.find("unknown key 'docs'") != std::string::npos);

  const ParsedSource composite = Parse(
      "dsn: postgresql://u:pw@db/shop\ntable: products\nprimary_key: [a, b]\n"
      "updated_at: updated_at\nrelations: [{ table: t, updated_at: u, document_key: k }]\n");
  CHECK_FALSE(composite.factory);
  CHECK(composite.errors.ToString().find("relations: needs a single-column primary_key") !=
        std::string::npos);
}

TEST_CASE("DSNs libpq would misread or refuse are configuration errors that hide the password",
          "[postgres][config]") {
  struct Case {
    std::string dsn;
    std::string says;
  };
  // libpq's own messages for these quote "PG-1@127.0.0.1", "S3CRET" or "CRET".
  const std::vector<Case> cases = {
      {"postgresql://app:S3CRET@PG-1@127.0.0.1/shop", "percent-encode"},
      {"postgresql://app:S3CRET/PG-1@127.0.0.1/shop", "percent-encode"},
      {"postgres://app:S3CRET#PG-1@127.0.0.1/shop", "percent-encode"},
      {"host=127.0.0.1 password=S3CRET PG-1 dbname=shop", "libpq cannot read it"},
      {"host=127.0.0.1 password=S3CRET PG-1=x dbname=shop", "libpq cannot read it"},
      {"host=127.0.0.1 port=notaport password=S3CRET-PG-1", "port \"notaport\" is not a number"},
      {"host=127.0.0.1 port=5432,x password=S3CRET-PG-1", "port \"x\" is not a number"},
      {"host=127.0.0.1 dbname='shop password=S3CRET-PG-1", "unterminated quoted string"},
      {"host=127.0.0.1 colour=blue password=S3CRET-PG-1", "invalid connection option \"colour\""},
      {"postgresql://app:S3CRET-PG-1@127.0.0.1:notaport/shop", "is not a number"},
  };
  for (const Case& c : cases) {
    INFO(c.dsn);
    const Result<std::vector<std::string>> checked = CheckPostgresDsn(c.dsn);
    REQUIRE_FALSE(checked.ok());
    CHECK(checked.status().code() == StatusCode::kInvalidArgument);
    const std::string& message = checked.status().message();
    INFO(message);
    CHECK(message.find(c.says) != std::string::npos);
    CHECK(message.find("S3CRET") == std::string::npos);
    CHECK(message.find("PG-1") == std::string::npos);

    // The config reports it at the dsn key, and builds no source.
    const ParsedSource parsed =
        Parse("dsn: \"" + c.dsn + "\"\ntable: products\nprimary_key: id\nupdated_at: u\n");
    CHECK_FALSE(parsed.factory);
    CHECK(parsed.errors.ToString().find("dsn: ") != std::string::npos);
    CHECK(parsed.errors.ToString().find("S3CRET") == std::string::npos);
  }
}

TEST_CASE("Well-formed DSNs pass, with the password in every form a message could carry",
          "[postgres][config]") {
  const auto uri = CheckPostgresDsn("postgresql://app:S3%2FCRET@db:5432,db2:5433/shop");
  REQUIRE(uri.ok());
  CHECK(std::find(uri->begin(), uri->end(), "S3/CRET") != uri->end());
  CHECK(std::find(uri->begin(), uri->end(), "S3%2FCRET") != uri->end());
  const auto quoted = CheckPostgresDsn("host=db password='S3 CRET' dbname=shop");
  REQUIRE(quoted.ok());
  CHECK(std::find(quoted->begin(), quoted->end(), "S3 CRET") != quoted->end());
  CHECK(CheckPostgresDsn("host=/var/run/postgresql dbname=shop").ok());
  CHECK(CheckPostgresDsn("").ok());
}

TEST_CASE("An option libpq checks only when connecting stops the source as a config error",
          "[postgres]") {
  PostgresOptions options;
  options.dsn = Secret("host=127.0.0.1 port=1 sslmode=bogus password=S3CRET-PG-1");
  options.table = "products";
  options.primary_key = {"id"};
  options.updated_at = "updated_at";
  const Status status = MakePostgresSource(options)->HealthCheck();
  INFO(status.message());
  CHECK(status.code() == StatusCode::kInvalidArgument);
  CHECK(status.message().find("sslmode") != std::string::npos);
  CHECK(status.message().find("S3CRET") == std::string::npos);
}

}  // namespace
}  // namespace searchsync
