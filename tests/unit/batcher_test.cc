#include "pipeline/batcher.h"

#include <catch2/catch.hpp>

namespace searchsync {
namespace {

using namespace std::chrono_literals;

Event Upsert(std::string id, std::string value = "1") {
  return {.op = Op::kUpsert, .id = std::move(id), .document = {{"v", std::move(value)}}};
}
Event Delete(std::string id) { return {.op = Op::kDelete, .id = std::move(id)}; }

TEST_CASE("Batcher flushes on flush_interval even below max_events", "[batcher]") {
  Batcher batcher({.max_events = 100, .flush_interval = 2s});
  const TimePoint t0{};
  batcher.Add(Upsert("id-1"), 1, t0);
  CHECK_FALSE(batcher.TakeIfReady(t0 + 1999ms));
  const auto batch = batcher.TakeIfReady(t0 + 2s);
  REQUIRE(batch);
  CHECK(batch->batch.size() == 1);
  CHECK(batcher.empty());
}

TEST_CASE("Batcher is ready at max_events and at max_bytes", "[batcher]") {
  const TimePoint t0{};
  Batcher by_count({.max_events = 3, .flush_interval = 1h});
  by_count.Add(Upsert("a"), 1, t0);
  by_count.Add(Upsert("b"), 2, t0);
  CHECK_FALSE(by_count.Full());
  by_count.Add(Upsert("c"), 3, t0);
  CHECK(by_count.Full());
  REQUIRE(by_count.TakeIfReady(t0));

  Batcher by_bytes(
      {.max_events = 1000, .max_bytes = 2 * Upsert("a").ByteSize(), .flush_interval = 1h});
  by_bytes.Add(Upsert("a"), 1, t0);
  CHECK_FALSE(by_bytes.Full());
  by_bytes.Add(Upsert("b"), 2, t0);
  CHECK(by_bytes.Full());
}

TEST_CASE("Batcher keeps the last change per id across upserts and deletes", "[batcher]") {
  Batcher batcher({.max_events = 100, .flush_interval = 1s});
  const TimePoint t0{};
  batcher.Add(Upsert("a", "1"), 1, t0);
  batcher.Add(Upsert("b", "1"), 2, t0);
  batcher.Add(Delete("a"), 3, t0);  // delete after upsert
  batcher.Add(Delete("b"), 4, t0);
  batcher.Add(Upsert("b", "2"), 5, t0);  // upsert after delete
  auto taken = batcher.Take();
  REQUIRE(taken);
  REQUIRE(taken->batch.size() == 2);
  CHECK(taken->seqs == std::vector<uint64_t>{1, 2, 3, 4, 5});
  for (const Event& event : taken->batch.events) {
    if (event.id == "a") {
      CHECK(event.op == Op::kDelete);
    } else {
      CHECK(event.op == Op::kUpsert);
      CHECK(event.document.at(0).json == "2");
    }
  }
  CHECK(taken->batch.byte_size == Delete("a").ByteSize() + Upsert("b", "2").ByteSize());
}

TEST_CASE("Batcher deadline follows the oldest event of the pending batch", "[batcher]") {
  Batcher batcher({.max_events = 10, .flush_interval = 5s});
  CHECK_FALSE(batcher.Deadline());
  const TimePoint t0{};
  batcher.Add(Upsert("a"), 1, t0 + 1s);
  batcher.Add(Upsert("b"), 2, t0 + 3s);
  CHECK(batcher.Deadline() == t0 + 6s);
}

}  // namespace
}  // namespace searchsync
