#include "pipeline/backoff.h"

#include <algorithm>

namespace searchsync {

std::chrono::milliseconds Backoff::Ceiling() const {
  // Doubling stops once past max_, so the shift never overflows.
  std::chrono::milliseconds ceiling = initial_;
  for (int i = 0; i < attempts_ && ceiling < max_; ++i) ceiling *= 2;
  return std::min(ceiling, max_);
}

std::chrono::milliseconds Backoff::Next(std::mt19937_64& rng) {
  const auto ceiling = Ceiling();
  ++attempts_;
  std::uniform_int_distribution<int64_t> jitter(0, ceiling.count());
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace searchsync
