#include "pipeline/ack_tracker.h"

#include <catch2/catch.hpp>
#include <random>
#include <thread>

namespace searchsync {
namespace {

Checkpoint At(int n) { return {std::to_string(n)}; }
// The prefix through event n, whose position is At(n).
AckTracker::Prefix Through(int n) { return {At(n), static_cast<uint64_t>(n)}; }

TEST_CASE("AckTracker checkpoints only the contiguous acknowledged prefix", "[ack]") {
  AckTracker tracker;
  for (int i = 1; i <= 6; ++i) CHECK(tracker.Register(At(i)) == static_cast<uint64_t>(i));
  tracker.Ack(2);
  CHECK_FALSE(tracker.TakeAdvanced());  // 1 still in flight
  tracker.Ack(1);
  CHECK(tracker.TakeAdvanced() == Through(2));
  tracker.Ack(4);
  tracker.Ack(5);
  CHECK_FALSE(tracker.TakeAdvanced());  // 3 still in flight
  tracker.Ack(3);
  CHECK(tracker.TakeAdvanced() == Through(5));
  CHECK_FALSE(tracker.AllAcked());
  tracker.Ack(6);
  CHECK(tracker.TakeAdvanced() == Through(6));
  CHECK(tracker.AllAcked());
  CHECK_FALSE(tracker.TakeAdvanced());
}

TEST_CASE("AckTracker never reports a position past an unacknowledged event under threads",
          "[ack]") {
  constexpr int kEvents = 20'000;
  constexpr int kThreads = 4;
  AckTracker tracker;
  for (int i = 1; i <= kEvents; ++i) (void)tracker.Register(At(i));
  // Thread t acknowledges seqs with seq % kThreads == t, in shuffled order.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint64_t> mine;
      for (uint64_t seq = 1; seq <= kEvents; ++seq) {
        if (seq % kThreads == static_cast<uint64_t>(t)) mine.push_back(seq);
      }
      std::shuffle(mine.begin(), mine.end(), std::mt19937_64(t));
      for (uint64_t seq : mine) tracker.Ack(seq);
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(tracker.AllAcked());
  CHECK(tracker.TakeAdvanced() == Through(kEvents));
}

}  // namespace
}  // namespace searchsync
