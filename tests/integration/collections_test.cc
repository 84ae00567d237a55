#include "sinks/collections.h"

#include <catch2/catch.hpp>
#include <string>

#include "sinks/typesense_client.h"
#include "tests/support/typesense_server.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::system_clock;

constexpr char kSchema[] = R"({"fields":[{"name":"name","type":"string"},)"
                           R"({"name":"price","type":"float","facet":true}]})";

struct Fixture {
  test::TypesenseServer server{test::TypesenseServerOptions{.api_key = "key"}};
  TypesenseClient client{TypesenseClientOptions{.nodes = {server.url()}, .api_key = Secret("key")},
                         "test"};

  std::vector<std::string> Names() {
    std::vector<std::string> names = server.CollectionNames();
    std::sort(names.begin(), names.end());
    return names;
  }
};

Clock::time_point At(int day, int hour) {
  // 2026-11-<day> <hour>:00:00 UTC
  std::tm tm{};
  tm.tm_year = 126;
  tm.tm_mon = 10;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  return Clock::from_time_t(timegm(&tm));
}

TEST_CASE("IsTimestampedCollectionOf matches only <alias>_<UTC timestamp>", "[collections]") {
  CHECK(IsTimestampedCollectionOf("products", "products_20261121T031500Z"));
  CHECK_FALSE(IsTimestampedCollectionOf("products", "products"));
  CHECK_FALSE(IsTimestampedCollectionOf("products", "products_v2_20261121T031500Z"));
  CHECK_FALSE(IsTimestampedCollectionOf("products", "products_20261121T031500"));
  CHECK_FALSE(IsTimestampedCollectionOf("products", "products_2026112XT031500Z"));
  CHECK_FALSE(IsTimestampedCollectionOf("products", "other_20261121T031500Z"));
  CHECK(IsTimestampedCollectionOf("products_v2", "products_v2_20261121T031500Z"));
}

TEST_CASE("CreateTimestampedCollection never reuses an existing name", "[collections]") {
  Fixture f;
  const Clock::time_point now = At(21, 3);
  Result<std::string> first = CreateTimestampedCollection(f.client, "products", kSchema, now);
  REQUIRE(first.ok());
  CHECK(*first == "products_20261121T030000Z");
  Result<std::string> second = CreateTimestampedCollection(f.client, "products", kSchema, now);
  REQUIRE(second.ok());
  CHECK(*second == "products_20261121T030001Z");
  Result<std::optional<CollectionInfo>> info = f.client.GetCollection(*second);
  REQUIRE(info.ok());
  REQUIRE(info->has_value());
  CHECK((*info)->num_documents == 0);
  CHECK((*info)->schema_json.find("\"price\"") != std::string::npos);

  CHECK_FALSE(CreateTimestampedCollection(f.client, "products", R"({"fields":"x"})", now).ok());
}

TEST_CASE("RetireOldCollections keeps the live one, the newest `keep` older ones and builds",
          "[collections]") {
  Fixture f;
  std::vector<std::string> made;
  for (int day = 15; day <= 20; ++day) {
    Result<std::string> name =
        CreateTimestampedCollection(f.client, "products", kSchema, At(day, 3));
    REQUIRE(name.ok());
    made.push_back(*name);
  }
  // Not ours: another alias sharing the prefix, and a plain collection.
  REQUIRE(CreateTimestampedCollection(f.client, "products_v2", kSchema, At(1, 0)).ok());
  REQUIRE(
      f.client
          .CreateCollection(R"({"name":"products_manual","fields":[{"name":"n","type":"string"}]})")
          .ok());

  SECTION("no alias: nothing is dropped") {
    Result<std::vector<std::string>> dropped = RetireOldCollections(f.client, "products", 0);
    REQUIRE(dropped.ok());
    CHECK(dropped->empty());
  }
  SECTION("alias on the 19th: the 20th is a build in progress; keep 2 of the older ones") {
    REQUIRE(f.client.PutAlias("products", made[4]).ok());
    Result<std::vector<std::string>> dropped = RetireOldCollections(f.client, "products", 2);
    REQUIRE(dropped.ok());
    CHECK(*dropped == std::vector<std::string>{made[1], made[0]});
    CHECK(f.Names() == std::vector<std::string>{made[2], made[3], made[4], made[5],
                                                "products_manual", "products_v2_20261101T000000Z"});
    // Running it again drops nothing more.
    Result<std::vector<std::string>> again = RetireOldCollections(f.client, "products", 2);
    REQUIRE(again.ok());
    CHECK(again->empty());
  }
  SECTION("keep 0 drops every older one, never the live one") {
    REQUIRE(f.client.PutAlias("products", made[5]).ok());
    Result<std::vector<std::string>> dropped = RetireOldCollections(f.client, "products", 0);
    REQUIRE(dropped.ok());
    CHECK(dropped->size() == 5);
    Result<std::optional<std::string>> target = f.client.GetAlias("products");
    REQUIRE(target.ok());
    CHECK(**target == made[5]);
    CHECK(f.client.CollectionExists(made[5]).value());
  }
}

TEST_CASE("DropCollection of a missing collection is fine, ListCollections lists real ones",
          "[collections]") {
  Fixture f;
  CHECK(f.client.DropCollection("nothing_here").ok());
  REQUIRE(
      f.client.CreateCollection(R"({"name":"a","fields":[{"name":"n","type":"string"}]})").ok());
  REQUIRE(f.client.PutAlias("alias_of_a", "a").ok());
  Result<std::vector<CollectionInfo>> all = f.client.ListCollections();
  REQUIRE(all.ok());
  REQUIRE(all->size() == 1);
  CHECK(all->front().name == "a");
  Result<std::optional<CollectionInfo>> missing = f.client.GetCollection("b");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
}

TEST_CASE("SchemaDifferences names each difference between config and collection",
          "[collections]") {
  const std::string live =
      R"({"name":"products_1","num_documents":3,"default_sorting_field":"",)"
      R"("fields":[{"name":"name","type":"string","facet":false,"optional":false,"index":true,)"
      R"("sort":false,"infix":false,"locale":""},)"
      R"({"name":"price","type":"float","facet":true,"optional":false,"index":true,"sort":true}]})";
  SECTION("equal, with Typesense's defaults filled in by the server") {
    Result<std::vector<std::string>> diff = SchemaDifferences(kSchema, live);
    REQUIRE(diff.ok());
    CHECK(diff->empty());
  }
  SECTION("a changed type, a new field, a removed field, a changed option") {
    const std::string configured =
        R"({"fields":[{"name":"name","type":"string","facet":true},)"
        R"({"name":"price","type":"int32","facet":true},{"name":"tags","type":"string[]"}]})";
    Result<std::vector<std::string>> diff = SchemaDifferences(configured, live);
    REQUIRE(diff.ok());
    CHECK(*diff == std::vector<std::string>{
                       "field 'name': facet is true in the configuration but false in the "
                       "collection",
                       "field 'price': type is \"int32\" in the configuration but \"float\" in "
                       "the collection",
                       "field 'tags' is configured but not in the collection"});
    const std::string fewer = R"({"fields":[{"name":"name","type":"string"}]})";
    Result<std::vector<std::string>> removed = SchemaDifferences(fewer, live);
    REQUIRE(removed.ok());
    CHECK(*removed ==
          std::vector<std::string>{"field 'price' is in the collection but not configured"});
  }
  SECTION("default_sorting_field is compared when configured") {
    const std::string configured =
        R"({"fields":[{"name":"name","type":"string"},{"name":"price","type":"float",)"
        R"("facet":true}],"default_sorting_field":"price"})";
    Result<std::vector<std::string>> diff = SchemaDifferences(configured, live);
    REQUIRE(diff.ok());
    CHECK(*diff == std::vector<std::string>{"default_sorting_field is \"price\" in the "
                                            "configuration but \"\" in the collection"});
  }
  SECTION("the leaves Typesense flattens out of object fields are not differences") {
    const std::string configured =
        R"({"enable_nested_fields":true,"fields":[{"name":"brand","type":"object"}]})";
    const std::string nested =
        R"({"name":"c_1","enable_nested_fields":true,"fields":[)"
        R"({"name":"brand","type":"object","nested":true},)"
        R"({"name":"brand.name","type":"string","optional":true,"nested":true},)"
        R"({"name":"loose.name","type":"string","optional":true}]})";
    Result<std::vector<std::string>> diff = SchemaDifferences(configured, nested);
    REQUIRE(diff.ok());
    CHECK(*diff ==
          std::vector<std::string>{"field 'loose.name' is in the collection but not configured"});
  }
  CHECK_FALSE(SchemaDifferences("[]", live).ok());
  CHECK_FALSE(SchemaDifferences(kSchema, "not json").ok());
}

}  // namespace
}  // namespace searchsync
