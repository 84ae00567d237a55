#pragma once
// AckTracker: which source position may be checkpointed, given acknowledgements that arrive
// out of order from several in-flight batches.
//
//   seq:       1   2   3   4   5   6
//   acked:     x   x   .   x   x   .      <- batch {3,6} still in flight
//              \_____/
//   checkpoint = position of 2 (the end of the contiguous acknowledged prefix)
//
// Thread safety: all methods may be called from any thread (internal mutex).

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>

#include "pipeline/event.h"

namespace searchsync {

class AckTracker {
 public:
  // Records the next event in source order, with the position just after it; returns its seq.
  uint64_t Register(Checkpoint position_after);
  // Marks `seq` acknowledged (stored in the sink, or in the dead-letter store).
  void Ack(uint64_t seq);
  // The longest acknowledged prefix: the position after it, and how many events it holds.
  struct Prefix {
    Checkpoint position;
    uint64_t events = 0;
    bool operator==(const Prefix&) const = default;
  };
  // The acknowledged prefix, if it grew since the last call.
  std::optional<Prefix> TakeAdvanced();
  // True when every registered event is acknowledged.
  bool AllAcked() const;
  // True when every event up to and including `seq` is acknowledged (always for seq 0).
  bool AckedThrough(uint64_t seq) const;
  size_t in_flight() const;
  // When the oldest event not yet acknowledged was registered; nullopt when all are.
  std::optional<std::chrono::steady_clock::time_point> OldestUnackedReadAt() const;

 private:
  struct Entry {
    Checkpoint position;
    std::chrono::steady_clock::time_point registered_at;
    bool acked = false;
  };
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;  // seqs [first_seq_, first_seq_ + size)
  uint64_t first_seq_ = 1;
  std::optional<Checkpoint> advanced_;  // set when the prefix grew since TakeAdvanced
};

}  // namespace searchsync
