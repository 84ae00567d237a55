#include "pipeline/state_store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

TEST_CASE("StateStore keeps checkpoints and counters across reopen", "[state]") {
  test::TempDir dir;
  {
    auto store = std::move(StateStore::Open(dir.path()).value());
    CHECK(store->Load("products")->checkpoint.empty());
    REQUIRE(store
                ->Save({.pipeline = "products",
                        .checkpoint = {"{\"rows\":[\"2026-01-01\",\"7\"]}"},
                        .counters = {.events_read = 10, .events_acked = 9, .dead_lettered = 1},
                        .state = RunState::kCaughtUp})
                .ok());
  }
  auto store = std::move(StateStore::Open(dir.path()).value());
  const PipelineState state = store->Load("products").value();
  CHECK(state.checkpoint.token == "{\"rows\":[\"2026-01-01\",\"7\"]}");
  CHECK(state.counters.events_acked == 9);
  CHECK(state.state == RunState::kCaughtUp);
  CHECK(store->LoadAll()->size() == 1);
}

TEST_CASE("StateStore stores dead letters per pipeline", "[state]") {
  test::TempDir dir;
  auto store = std::move(StateStore::Open(dir.path()).value());
  REQUIRE(store
              ->AddDeadLetters(
                  {{.pipeline = "a",
                    .document_id = "x",
                    .document = "{}",
                    .operation = "upsert",
                    .error = "HTTP 400: bad"},
                   {.pipeline = "b", .document_id = "y", .operation = "delete", .error = "bad"}})
              .ok());
  CHECK(store->CountDeadLetters("a").value() == 1);
  const auto letters = store->ListDeadLetters("a", 10).value();
  REQUIRE(letters.size() == 1);
  CHECK(letters[0].document_id == "x");
  CHECK(letters[0].error == "HTTP 400: bad");
}

TEST_CASE("StateStore lets one run process hold the state directory", "[state]") {
  test::TempDir dir;
  auto first = std::move(StateStore::Open(dir.path()).value());
  auto second = std::move(StateStore::Open(dir.path()).value());
  REQUIRE(first->LockForRun().ok());
  CHECK(second->LockForRun().code() == StatusCode::kFailedPrecondition);
  first.reset();
  CHECK(second->LockForRun().ok());
}

TEST_CASE("StateStore refuses to write once its files were deleted or replaced", "[state]") {
  test::TempDir parent;
  const std::string dir = parent / "state";
  auto store = std::move(StateStore::Open(dir).value());
  REQUIRE(store->LockForRun().ok());
  PipelineState row{.pipeline = "products", .checkpoint = {"c1"}, .state = RunState::kRunning};
  REQUIRE(store->Save(row).ok());
  REQUIRE(store->CheckIntact().ok());

  SECTION("the directory deleted") { std::filesystem::remove_all(dir); }
  SECTION("the directory replaced by a fresh store") {
    std::filesystem::remove_all(dir);
    REQUIRE(StateStore::Open(dir).ok());
  }
  SECTION("only the lock deleted: a second run could start") {
    std::filesystem::remove(dir + "/run.lock");
  }
  const Status intact = store->CheckIntact();
  CHECK(intact.code() == StatusCode::kFailedPrecondition);
  CHECK(intact.message().find("state.path " + dir + ": ") == 0);
  CHECK(intact.message().find("deleted or replaced while running") != std::string::npos);
  row.checkpoint = {"c2"};
  CHECK(store->Save(row).code() == StatusCode::kFailedPrecondition);
  CHECK(store->SaveMarker("products", "backfill", "done").code() ==
        StatusCode::kFailedPrecondition);
  CHECK(store->AddDeadLetters({{.pipeline = "products", .document_id = "x"}}).code() ==
        StatusCode::kFailedPrecondition);
}

TEST_CASE("StateStore::OpenReadOnly reads without creating or changing anything", "[state]") {
  test::TempDir parent;
  const std::string dir = parent / "state";
  SECTION("no state directory: nothing ran, nothing is created") {
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir);
    REQUIRE(store.ok());
    CHECK(*store == nullptr);
    CHECK_FALSE(std::filesystem::exists(dir));
  }
  SECTION("a store reads what run wrote, and cannot write") {
    {
      auto writer = std::move(StateStore::Open(dir).value());
      REQUIRE(
          writer->Save({.pipeline = "products", .checkpoint = {"c1"}, .state = RunState::kStopped})
              .ok());
    }
    auto reader = std::move(StateStore::OpenReadOnly(dir).value());
    REQUIRE(reader != nullptr);
    Result<PipelineState> row = reader->Load("products");
    REQUIRE(row.ok());
    CHECK(row->checkpoint.token == "c1");
    CHECK_FALSE(reader->Save({.pipeline = "products", .checkpoint = {"c2"}}).ok());
    CHECK(std::move(StateStore::Open(dir).value())->Load("products")->checkpoint.token == "c1");
  }
  SECTION("a file that is not a database") {
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/state.db") << std::string(4096, 'x');
    Result<std::unique_ptr<StateStore>> store = StateStore::OpenReadOnly(dir);
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().message().find("file is not a database") != std::string::npos);
    // Left as it was.
    CHECK(std::filesystem::file_size(dir + "/state.db") == 4096);
  }
}

TEST_CASE("StateStore reports a damaged table instead of reading it as empty", "[state]") {
  test::TempDir parent;
  const std::string dir = parent / "state";
  int64_t root_page = 0;
  int64_t page_size = 0;
  {
    auto writer = std::move(StateStore::Open(dir).value());
    REQUIRE(
        writer->Save({.pipeline = "products", .checkpoint = {"c1"}, .state = RunState::kStopped})
            .ok());
  }
  {
    // Where the pipelines table lives, read with SQLite itself.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((dir + "/state.db").c_str(), &db) == SQLITE_OK);
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
  REQUIRE(root_page > 1);
  {
    std::fstream file(dir + "/state.db", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp((root_page - 1) * page_size);
    const std::string garbage(static_cast<size_t>(page_size), '\xff');
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  for (bool read_only : {true, false}) {
    INFO("read_only=" << read_only);
    Result<std::unique_ptr<StateStore>> store =
        read_only ? StateStore::OpenReadOnly(dir) : StateStore::Open(dir);
    if (!store.ok()) {  // the damage may already show when opening
      CHECK(store.status().message().find("malformed") != std::string::npos);
      continue;
    }
    Result<PipelineState> row = (*store)->Load("products");
    REQUIRE_FALSE(row.ok());
    CHECK(row.status().message().find("malformed") != std::string::npos);
    CHECK((*store)->LoadAll().status().message().find("malformed") != std::string::npos);
  }
}

}  // namespace
}  // namespace searchsync
