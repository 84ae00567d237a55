#include "pipeline/state_store.h"

#include <catch2/catch.hpp>

#include "tests/support/temp_dir.h"

namespace searchsync {
namespace {

TEST_CASE("StateStore keeps checkpoints and counters across reopen", "[state]") {
  test::TempDir dir;
  {
    auto store = std::move(StateStore::Open(dir.path()).value());
    CHECK(store->Load("products")->checkpoint.empty());
    REQUIRE(store->Save({.pipeline = "products",
                         .checkpoint = {"{\"rows\":[\"2026-01-01\",\"7\"]}"},
                         .counters = {.events_read = 10, .events_acked = 9, .dead_lettered = 1},
                         .state = "caught_up"})
                .ok());
  }
  auto store = std::move(StateStore::Open(dir.path()).value());
  const PipelineState state = store->Load("products").value();
  CHECK(state.checkpoint.token == "{\"rows\":[\"2026-01-01\",\"7\"]}");
  CHECK(state.counters.events_acked == 9);
  CHECK(state.state == "caught_up");
  CHECK(store->LoadAll()->size() == 1);
}

TEST_CASE("StateStore stores dead letters per pipeline", "[state]") {
  test::TempDir dir;
  auto store = std::move(StateStore::Open(dir.path()).value());
  REQUIRE(store->AddDeadLetters({{.pipeline = "a", .document_id = "x", .document = "{}",
                                  .operation = "upsert", .error = "HTTP 400: bad"},
                                 {.pipeline = "b", .document_id = "y", .operation = "delete",
                                  .error = "bad"}})
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

}  // namespace
}  // namespace searchsync
