#pragma once
// Exponential backoff with full jitter: the n-th wait is uniform in [0, min(max, initial * 2^n)].
// Full jitter spreads retries of many clients so a recovering Typesense is not hit in lockstep.
// A value type; the caller owns the random generator and the sleeping.

#include <chrono>
#include <random>

namespace searchsync {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}

  std::chrono::milliseconds Next(std::mt19937_64& rng);
  void Reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }
  // The upper bound of the next wait, before jitter.
  std::chrono::milliseconds Ceiling() const;

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  int attempts_ = 0;
};

}  // namespace searchsync
