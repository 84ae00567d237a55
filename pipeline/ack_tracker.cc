#include "pipeline/ack_tracker.h"

#include <cassert>

namespace searchsync {

uint64_t AckTracker::Register(Checkpoint position_after) {
  std::lock_guard lock(mutex_);
  entries_.push_back({std::move(position_after), std::chrono::steady_clock::now(), false});
  return first_seq_ + entries_.size() - 1;
}

void AckTracker::Ack(uint64_t seq) {
  std::lock_guard lock(mutex_);
  assert(seq >= first_seq_ && seq < first_seq_ + entries_.size());
  entries_[seq - first_seq_].acked = true;
  while (!entries_.empty() && entries_.front().acked) {
    advanced_ = std::move(entries_.front().position);
    entries_.pop_front();
    ++first_seq_;
  }
}

std::optional<AckTracker::Prefix> AckTracker::TakeAdvanced() {
  std::lock_guard lock(mutex_);
  if (!advanced_) return std::nullopt;
  Prefix prefix{.position = std::move(*advanced_), .events = first_seq_ - 1};
  advanced_.reset();
  return prefix;
}

bool AckTracker::AllAcked() const {
  std::lock_guard lock(mutex_);
  return entries_.empty();
}

bool AckTracker::AckedThrough(uint64_t seq) const {
  std::lock_guard lock(mutex_);
  return seq < first_seq_;  // the acknowledged prefix is popped as it grows
}

std::optional<std::chrono::steady_clock::time_point> AckTracker::OldestUnackedReadAt() const {
  std::lock_guard lock(mutex_);
  if (entries_.empty()) return std::nullopt;
  return entries_.front().registered_at;  // the acknowledged prefix is popped as it grows
}

size_t AckTracker::in_flight() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace searchsync
