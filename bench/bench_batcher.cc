// Batcher throughput: adding events with last-change-per-id and taking full batches.
//   bench_batcher [events] [distinct ids]

#include <random>

#include "bench/bench_common.h"
#include "pipeline/batcher.h"

int main(int argc, char** argv) {
  using namespace searchsync;
  using namespace searchsync::bench;
  const size_t events = argc > 1 ? std::stoul(argv[1]) : 2'000'000;
  const size_t distinct = argc > 2 ? std::stoul(argv[2]) : 1'000'000;
  constexpr unsigned kSeed = 42;
  PrintHeader("bench_batcher",
              std::to_string(events) + " events over " + std::to_string(distinct) +
                  " ids, batches of 10000",
              kSeed);
  std::mt19937_64 rng(kSeed);
  std::vector<Event> input;
  input.reserve(events);
  size_t bytes = 0;
  for (size_t i = 0; i < events; ++i) {
    input.push_back({.id = "product-" + std::to_string(rng() % distinct),
                     .document = {{"name", "\"a product name\""}, {"price", "12.5"}}});
    bytes += input.back().ByteSize();
  }
  Batcher batcher({.max_events = 10'000, .max_bytes = 8 << 20});
  const TimePoint now{};
  size_t batches = 0;
  Stopwatch watch;
  for (size_t i = 0; i < events; ++i) {
    batcher.Add(std::move(input[i]), i + 1, now);
    if (auto batch = batcher.TakeIfReady(now)) ++batches;
  }
  if (batcher.Take()) ++batches;
  Report("batcher add+take", events, bytes, watch.Seconds());
  std::printf("  %zu batches\n", batches);
}
