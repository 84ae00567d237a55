// `searchsync dead-letters`: what a real run stored, as the on-call engineer reads it (text) and
// as a script reads it (--json).

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>

#include "tests/integration/sync_fixture.h"

namespace searchsync {
namespace {

using test::CommandResult;
using test::SyncFixture;

}  // namespace

TEST_CASE("dead-letters lists each document Typesense refused with its error, time and input",
          "[integration][dead-letters]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 100);
  world.WriteProductsConfig();

  // Nothing ran yet: an empty list, not an error, and no state directory is created.
  const CommandResult before = world.RunSearchsync({"dead-letters", "products"});
  INFO(before.err);
  CHECK(before.exit_code == 0);
  CHECK(before.out == "0 dead letter(s) in pipeline products\n");
  CHECK_FALSE(std::filesystem::exists(world.dir() / "state"));

  // A null inside string[] passes the transforms but Typesense rejects it.
  world.Exec("UPDATE products SET tags = ARRAY['a', NULL] WHERE id IN ('p-42', 'p-7')");
  world.Exec("UPDATE products SET name = E'two\\nlines \"quoted\"' WHERE id = 'p-7'");
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);
  CHECK_THAT(run.err, Catch::Contains("see `searchsync dead-letters -c " + world.config_path() +
                                      " products`"));

  const CommandResult json = world.RunSearchsync({"dead-letters", "products", "--json"});
  INFO(json.err);
  REQUIRE(json.exit_code == 0);
  const nlohmann::json listed = nlohmann::json::parse(json.out);
  CHECK(listed["pipeline"] == "products");
  CHECK(listed["count"] == 2);
  REQUIRE(listed["dead_letters"].size() == 2);
  std::set<std::string> ids;
  for (const nlohmann::json& letter : listed["dead_letters"]) {
    INFO(letter.dump());
    ids.insert(letter["id"].get<std::string>());
    CHECK(letter["operation"] == "upsert");
    CHECK_THAT(letter["error"].get<std::string>(),
               Catch::StartsWith("HTTP 400: ") && Catch::Contains("tags"));
    CHECK(std::regex_match(letter["time"].get<std::string>(),
                           std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
    CHECK_FALSE(letter["position"].get<std::string>().empty());
    // The input as it was read, a JSON object, not a string holding one.
    REQUIRE(letter["input"].is_object());
    CHECK(letter["input"]["id"] == letter["id"]);
    CHECK(letter["input"]["tags"] == nlohmann::json::parse(R"(["a", null])"));
  }
  CHECK(ids == std::set<std::string>{"p-42", "p-7"});
  const nlohmann::json& p7 =
      listed["dead_letters"][listed["dead_letters"][0]["id"] == "p-7" ? 0 : 1];
  CHECK(p7["input"]["name"] == "two\nlines \"quoted\"");

  // Text: one block per letter, each value on one line.
  const CommandResult text = world.RunSearchsync({"dead-letters", "products"});
  INFO(text.err);
  REQUIRE(text.exit_code == 0);
  INFO(text.out);
  CHECK_THAT(text.out, Catch::Contains("  upsert  id=\"p-42\"  position="));
  CHECK_THAT(text.out, Catch::Contains("\n  error: HTTP 400: "));
  CHECK_THAT(text.out, Catch::Contains("\n  input: {\"id\":\"p-7\","));
  CHECK_THAT(text.out, Catch::Contains(R"("name":"two\nlines \"quoted\"")"));
  CHECK_THAT(text.out, Catch::EndsWith("\n2 dead letter(s) in pipeline products\n"));
  // 2 letters of 3 lines each, and the count.
  CHECK(std::count(text.out.begin(), text.out.end(), '\n') == 7);

  const CommandResult unknown = world.RunSearchsync({"dead-letters", "orders"});
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("no pipeline named 'orders'"));
}

TEST_CASE("dead-letters lists every letter however many pages the store reads them in",
          "[integration][dead-letters]") {
  SyncFixture world;
  world.CreateProductsTable();
  constexpr int kRows = 2'345;  // more than two of the command's pages of 1,000
  world.InsertProducts(1, kRows);
  world.Exec("UPDATE products SET tags = ARRAY[NULL]::text[]");
  world.WriteProductsConfig();
  const CommandResult run = world.RunSearchsync({"run", "--once"});
  INFO(run.err);
  CHECK(run.exit_code == 1);

  const CommandResult json = world.RunSearchsync({"dead-letters", "products", "--json"});
  INFO(json.err);
  REQUIRE(json.exit_code == 0);
  const nlohmann::json listed = nlohmann::json::parse(json.out);
  CHECK(listed["count"] == kRows);
  std::set<std::string> ids;
  for (const nlohmann::json& letter : listed["dead_letters"]) {
    ids.insert(letter["id"].get<std::string>());
  }
  CHECK(ids.size() == static_cast<size_t>(kRows));
  CHECK(ids.count("p-1") == 1);
  CHECK(ids.count("p-" + std::to_string(kRows)) == 1);
}

}  // namespace searchsync
