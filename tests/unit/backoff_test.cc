#include "pipeline/backoff.h"

#include <catch2/catch.hpp>

namespace searchsync {
namespace {

using namespace std::chrono_literals;

TEST_CASE("Backoff doubles its ceiling up to max and jitters below it", "[backoff]") {
  Backoff backoff(100ms, 1s);
  std::mt19937_64 rng(7);
  const std::chrono::milliseconds expected_ceilings[] = {100ms, 200ms, 400ms, 800ms, 1s, 1s};
  for (const auto ceiling : expected_ceilings) {
    CHECK(backoff.Ceiling() == ceiling);
    const auto wait = backoff.Next(rng);
    CHECK(wait >= 0ms);
    CHECK(wait <= ceiling);
  }
  backoff.Reset();
  CHECK(backoff.Ceiling() == 100ms);
}

TEST_CASE("Backoff waits spread over the whole jitter range", "[backoff]") {
  std::mt19937_64 rng(1);
  std::chrono::milliseconds low{1000}, high{0};
  for (int i = 0; i < 1000; ++i) {
    Backoff backoff(1000ms, 1000ms);
    const auto wait = backoff.Next(rng);
    low = std::min(low, wait);
    high = std::max(high, wait);
  }
  CHECK(low < 100ms);
  CHECK(high > 900ms);
}

TEST_CASE("Backoff ceiling never overflows after many attempts", "[backoff]") {
  Backoff backoff(100ms, 30s);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 200; ++i) (void)backoff.Next(rng);
  CHECK(backoff.Ceiling() == 30s);
}

}  // namespace
}  // namespace searchsync
