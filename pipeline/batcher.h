#pragma once
// Batcher: collects events for one sink request and keeps only the last change per id.
//
// A value type with no locks and no clock: the caller passes `now`. Thread-compatible.
//
//   Add(upsert a) Add(upsert b) Add(delete a)      ->  batch {delete a, upsert b}
//   seqs of all three are kept: acknowledging the batch acknowledges every event it absorbed.
//
// A batch is ready when it holds `max_events` events or `max_bytes` bytes, or when its oldest
// event has waited `flush_interval`.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/event.h"

namespace searchsync {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// A pipeline's `sink.batch` keys (pipeline/config.cc): these defaults are the keys' defaults.
struct BatchOptions {
  size_t max_events = 10'000;                       // send once this many documents wait
  size_t max_bytes = 8 * 1024 * 1024;               // or once they hold this much
  std::chrono::milliseconds flush_interval{5'000};  // or once the oldest waited this long
};

// A batch on its way to the sink, with every source sequence number it acknowledges.
struct PendingBatch {
  Batch batch;
  std::vector<uint64_t> seqs;
};

class Batcher {
 public:
  explicit Batcher(BatchOptions options) : options_(options) {}

  // Adds `event`; a pending change of the same id is replaced (last change wins).
  // REQUIRES: !Full()
  void Add(Event event, uint64_t seq, TimePoint now);

  bool empty() const { return pending_.batch.empty(); }
  size_t size() const { return pending_.batch.size(); }
  // No more events may be added until the batch is taken.
  bool Full() const;
  // When the pending batch becomes ready by age; nullopt when empty.
  std::optional<TimePoint> Deadline() const;

  // The pending batch if it is full or old enough.
  std::optional<PendingBatch> TakeIfReady(TimePoint now);
  // The pending batch regardless of size and age (flush on drain or shutdown); nullopt if empty.
  std::optional<PendingBatch> Take();

 private:
  BatchOptions options_;
  PendingBatch pending_;
  std::unordered_map<std::string, size_t> index_by_id_;
  TimePoint oldest_{};
};

}  // namespace searchsync
