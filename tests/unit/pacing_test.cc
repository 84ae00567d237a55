#include "pipeline/pacing.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

namespace searchsync {
namespace {

TEST_CASE("InFlightPacer halves on overload, once per burst, never below one", "[pacing]") {
  InFlightPacer pacer(8);
  CHECK(pacer.limit() == 8);
  // Four requests in flight together, all refused: one decrease.
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(pacer.Start());
  for (const uint64_t ticket : tickets) pacer.Done(ticket, /*overloaded=*/true);
  CHECK(pacer.limit() == 4);
  // Refusals of later requests keep halving, down to one and no further.
  for (const int expected : {2, 1, 1, 1}) {
    pacer.Done(pacer.Start(), true);
    CHECK(pacer.limit() == expected);
  }
}

TEST_CASE("InFlightPacer raises the limit by one after `limit` successes, up to its max",
          "[pacing]") {
  InFlightPacer pacer(4);
  pacer.Done(pacer.Start(), true);
  pacer.Done(pacer.Start(), true);
  pacer.Done(pacer.Start(), true);
  REQUIRE(pacer.limit() == 1);
  pacer.Done(pacer.Start(), false);  // 1 success at limit 1
  CHECK(pacer.limit() == 2);
  pacer.Done(pacer.Start(), false);
  CHECK(pacer.limit() == 2);
  pacer.Done(pacer.Start(), false);  // 2 successes at limit 2
  CHECK(pacer.limit() == 3);
  for (int i = 0; i < 20; ++i) pacer.Done(pacer.Start(), false);
  CHECK(pacer.limit() == 4);
}

TEST_CASE("InFlightPacer::Overloaded lowers the limit at most once per `limit` requests",
          "[pacing]") {
  InFlightPacer pacer(8);
  for (int i = 0; i < 8; ++i) pacer.Done(pacer.Start(), false);
  pacer.Overloaded();
  CHECK(pacer.limit() == 4);
  pacer.Overloaded();  // no request started since: the same news
  CHECK(pacer.limit() == 4);
  // Four more requests started (still in flight): news again.
  std::vector<uint64_t> tickets;
  for (int i = 0; i < 4; ++i) tickets.push_back(pacer.Start());
  pacer.Overloaded();
  CHECK(pacer.limit() == 2);
  for (const uint64_t ticket : tickets) pacer.Done(ticket, false);
}

TEST_CASE("InFlightPacer never lets more than `limit` requests be in flight", "[pacing]") {
  InFlightPacer pacer(3);
  std::atomic<int> in_flight{0};
  std::atomic<int> peak{0};
  std::vector<std::thread> threads;
  for (int thread_idx = 0; thread_idx < 8; ++thread_idx) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        const uint64_t ticket = pacer.Start();
        const int now = ++in_flight;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        --in_flight;
        pacer.Done(ticket, false);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(peak.load() <= 3);
  CHECK(peak.load() >= 1);
}

}  // namespace
}  // namespace searchsync
