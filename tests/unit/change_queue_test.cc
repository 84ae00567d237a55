#include "pipeline/change_queue.h"

#include <catch2/catch.hpp>
#include <thread>

namespace searchsync {
namespace {

using namespace std::chrono_literals;

QueuedEvent Item(uint64_t seq, size_t bytes = 10) {
  return {.seq = seq, .event = {.id = std::to_string(seq)}, .bytes = bytes};
}

TEST_CASE("ChangeQueue pops in push order", "[queue]") {
  ChangeQueue queue(100, 1 << 20);
  for (uint64_t seq = 1; seq <= 10; ++seq) REQUIRE(queue.Push(Item(seq)));
  std::vector<QueuedEvent> out;
  CHECK(queue.PopBatch(out, 4, 0ms) == 4);
  CHECK(queue.PopBatch(out, 100, 0ms) == 6);
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i].seq == i + 1);
  CHECK(queue.events() == 0);
  CHECK(queue.pushed() == 10);
  CHECK(queue.popped() == 10);
}

TEST_CASE("ChangeQueue blocks the producer at its event bound until the consumer pops", "[queue]") {
  ChangeQueue queue(3, 1 << 20);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (uint64_t seq = 1; seq <= 5; ++seq) {
      if (!queue.Push(Item(seq))) return;
      ++pushed;
    }
  });
  // The producer fills the queue and then waits; it cannot get past the bound.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (pushed < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(pushed == 3);
  CHECK(queue.events() == 3);
  std::vector<QueuedEvent> out;
  while (out.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    queue.PopBatch(out, 1, 10ms);
    CHECK(queue.events() <= 3);
  }
  producer.join();
  CHECK(out.size() == 5);
}

TEST_CASE("ChangeQueue bounds bytes but admits one oversized event into an empty queue",
          "[queue]") {
  ChangeQueue queue(100, 100);
  REQUIRE(queue.Push(Item(1, 500)));  // empty queue: admitted
  std::atomic<bool> second_pushed{false};
  std::thread producer([&] { second_pushed = queue.Push(Item(2, 10)); });
  std::vector<QueuedEvent> out;
  REQUIRE(queue.PopBatch(out, 10, 1s) == 1);
  producer.join();
  CHECK(second_pushed);
}

TEST_CASE("ChangeQueue Close releases a blocked producer", "[queue]") {
  ChangeQueue queue(1, 1 << 20);
  REQUIRE(queue.Push(Item(1)));
  std::atomic<bool> result{true};
  std::thread producer([&] { result = queue.Push(Item(2)); });
  queue.Close();
  producer.join();
  CHECK_FALSE(result);
  std::vector<QueuedEvent> out;
  CHECK(queue.PopBatch(out, 10, 0ms) == 1);  // queued events survive Close
}

TEST_CASE(
    "ChangeQueue StopWaiting releases a producer blocked on a full queue but still takes "
    "pushes that find room",
    "[queue]") {
  ChangeQueue queue(1, 1 << 20);
  REQUIRE(queue.Push(Item(1)));
  std::atomic<bool> result{true};
  std::thread producer([&] { result = queue.Push(Item(2)); });
  queue.StopWaiting();
  producer.join();
  CHECK_FALSE(result);
  CHECK_FALSE(queue.Push(Item(3)));  // still full: fails at once instead of waiting
  std::vector<QueuedEvent> out;
  REQUIRE(queue.PopBatch(out, 10, 0ms) == 1);
  CHECK(queue.Push(Item(4)));  // room again: a graceful stop hands on what was read
  REQUIRE(queue.PopBatch(out, 10, 0ms) == 1);
  CHECK(out.back().seq == 4);
}

}  // namespace
}  // namespace searchsync
