#include "pipeline/pacing.h"

#include <algorithm>

namespace searchsync {

InFlightPacer::InFlightPacer(int max) : max_(std::max(1, max)), limit_(max_) {}

uint64_t InFlightPacer::Start() {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [&] { return in_flight_ < limit_; });
  ++in_flight_;
  return ++started_;
}

void InFlightPacer::Done(uint64_t ticket, bool overloaded) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  if (overloaded) {
    successes_ = 0;
    if (ticket > decreased_at_) DecreaseLocked();
  } else if (++successes_ >= limit_ && limit_ < max_) {
    ++limit_;
    successes_ = 0;
  }
  room_.notify_all();
}

void InFlightPacer::Overloaded() {
  std::lock_guard lock(mutex_);
  successes_ = 0;
  if (started_ >= decreased_at_ + static_cast<uint64_t>(limit_)) DecreaseLocked();
}

int InFlightPacer::limit() const {
  std::lock_guard lock(mutex_);
  return limit_;
}

void InFlightPacer::DecreaseLocked() {
  limit_ = std::max(1, limit_ / 2);
  decreased_at_ = started_;
}

}  // namespace searchsync
