// End-to-end: the state directory damaged or deleted under the searchsync binary, and keys that
// are not UTF-8 (a SQL_ASCII database) passing through checkpoints, status and logs.

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pipeline/json.h"
#include "pipeline/state_store.h"
#include "tests/integration/sync_fixture.h"

namespace searchsync::test {
namespace {

using namespace std::chrono_literals;

TEST_CASE("run stops loudly when its state.path is deleted while it runs", "[integration][state]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.InsertProducts(1, 10);
  world.WriteProductsConfig();
  const std::string state_dir = world.dir() / "state";

  auto daemon = world.StartDaemon();
  REQUIRE(daemon->WaitReady([&] { return world.IndexDocuments().size() == 10; }, ScaledTimeout(60s))
              .ok());
  std::filesystem::remove_all(state_dir);

  SECTION("idle: nothing more to write") {}
  SECTION("busy: new rows keep coming") { world.InsertProducts(11, 10); }
  // It notices (between polls, or on its next write) and stops with an error, instead of
  // writing checkpoints into the deleted file and exiting 0.
  const std::optional<int> exit_code = daemon->Wait(ScaledTimeout(60s));
  INFO(daemon->Describe());
  REQUIRE(exit_code);
  CHECK(*exit_code == 1);
  CHECK(daemon->ReadStderr().find("state.path " + state_dir +
                                  ": state.db was deleted or replaced while running") !=
        std::string::npos);
}

TEST_CASE("status only reads the state store and fails on one it cannot read",
          "[integration][state]") {
  SyncFixture world;
  world.CreateProductsTable();
  world.WriteProductsConfig();
  const std::string state_dir = world.dir() / "state";

  SECTION("no state directory: never_run, and nothing is created") {
    const CommandResult status = world.RunSearchsync({"status"});
    INFO(status.err);
    CHECK(status.exit_code == 0);
    CHECK(status.out.find("never_run") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(state_dir));
  }
  SECTION("a file that is not a database") {
    std::filesystem::create_directories(state_dir);
    std::ofstream(state_dir + "/state.db") << std::string(8192, 'x');
    for (const char* json : {"", "--json"}) {
      std::vector<std::string> args = {"status"};
      if (*json) args.push_back(json);
      const CommandResult status = world.RunSearchsync(args);
      CHECK(status.exit_code == 1);
      CHECK(status.err.find("file is not a database") != std::string::npos);
      CHECK(status.out.find("never_run") == std::string::npos);
    }
    CHECK(std::filesystem::file_size(state_dir + "/state.db") == 8192);
  }
  SECTION("a damaged pipelines table") {
    world.InsertProducts(1, 10);
    REQUIRE(world.RunSearchsync({"run", "--once"}).exit_code == 0);
    int64_t root_page = 0;
    int64_t page_size = 0;
    {
      sqlite3* db = nullptr;
      REQUIRE(sqlite3_open((state_dir + "/state.db").c_str(), &db) == SQLITE_OK);
      sqlite3_stmt* stmt = nullptr;
      REQUIRE(sqlite3_prepare_v2(db,
                                 "SELECT rootpage, (SELECT page_size FROM pragma_page_size()) "
                                 "FROM sqlite_master WHERE name = 'pipelines'",
                                 -1, &stmt, nullptr) == SQLITE_OK);
      REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
      root_page = sqlite3_column_int64(stmt, 0);
      page_size = sqlite3_column_int64(stmt, 1);
      sqlite3_finalize(stmt);
      sqlite3_close(db);
    }
    {
      std::fstream file(state_dir + "/state.db", std::ios::in | std::ios::out | std::ios::binary);
      file.seekp((root_page - 1) * page_size);
      const std::string garbage(static_cast<size_t>(page_size), '\xff');
      file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
    }
    const CommandResult status = world.RunSearchsync({"status", "--json"});
    CHECK(status.exit_code == 1);
    CHECK(status.err.find("malformed") != std::string::npos);
  }
}

// The lines of `text` that are not valid UTF-8, or look like JSON objects and are not.
std::vector<std::string> BadJsonLines(const std::string& text) {
  std::vector<std::string> bad;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!IsValidUtf8(line) || (line.starts_with("{") && !nlohmann::json::accept(line))) {
      bad.push_back(line);
    }
  }
  return bad;
}

TEST_CASE(
    "A key that is not UTF-8 (SQL_ASCII) is dead-lettered, checkpoints, restarts, status "
    "and logs stay valid",
    "[integration][state]") {
  SyncFixture world({.pg_encoding = "SQL_ASCII"});
  world.CreateProductsTable();
  world.InsertProducts(1, 5);
  // Latin-1 bytes, as a SQL_ASCII database takes them: 'caf\xe9' is no UTF-8 string.
  world.Exec(
      "INSERT INTO products (id, name, price, tags, popularity) VALUES "
      "(E'caf\\351', 'coffee', 1, ARRAY['x'], 1)");
  world.WriteProductsConfig();

  // The bad row is the last one read: the checkpoint must hold its key exactly.
  const CommandResult first = world.RunSearchsync({"run", "--once", "--log-format", "json"});
  INFO(first.err);
  CHECK(first.exit_code == 1);  // a document was dead-lettered in this run
  CHECK(BadJsonLines(first.err) == std::vector<std::string>{});
  CHECK(first.err.find("not valid UTF-8 (bytes 63 61 66 e9)") != std::string::npos);
  CHECK(world.IndexDocuments().size() == 5);
  {
    auto store = std::move(StateStore::Open(world.dir() / "state").value());
    const PipelineState state = store->Load("products").value();
    INFO(state.checkpoint.token);
    CHECK(IsValidUtf8(state.checkpoint.token));
    CHECK(nlohmann::json::accept(state.checkpoint.token));
    CHECK(state.checkpoint.token.find("{\"hex\":\"636166e9\"}") != std::string::npos);
    const auto letters = store->ListDeadLetters("products", 10).value();
    REQUIRE(letters.size() == 1);
    CHECK(letters[0].document_id == "caf\xe9");
    CHECK(letters[0].error.find("not valid UTF-8") != std::string::npos);
  }

  const CommandResult status = world.RunSearchsync({"status", "--json"});
  INFO(status.err);
  CHECK(status.exit_code == 0);
  CHECK(BadJsonLines(status.out) == std::vector<std::string>{});

  // A restart resumes after the bad row: the new rows come in, it is not read again. A text
  // value that is not UTF-8 is indexed with U+FFFD for each bad byte.
  world.InsertProducts(6, 5);
  world.Exec("UPDATE products SET name = E'cr\\350me' WHERE id = 'p-6'");
  const CommandResult second = world.RunSearchsync({"run", "--once", "--log-format", "json"});
  INFO(second.err);
  CHECK(second.exit_code == 0);
  CHECK(BadJsonLines(second.err) == std::vector<std::string>{});
  const auto documents = world.IndexDocuments();
  CHECK(documents.size() == 10);
  REQUIRE(documents.count("p-6"));
  CHECK(documents.at("p-6")["name"] == "cr\xEF\xBF\xBDme");
  auto store = std::move(StateStore::Open(world.dir() / "state").value());
  CHECK(store->CountDeadLetters("products").value() == 1);
}

}  // namespace
}  // namespace searchsync::test
