#pragma once
// ChangeQueue: the bounded hand-off between a pipeline's source thread and its dispatcher.
//
// Thread safety: one producer (the source thread) and one consumer (the dispatcher) at a time;
// Close() and the counters may be called from any thread.
//
// The lock-free queue underneath grows on demand, so the bound is ours to keep: Push blocks
// while the queue holds `max_events` events or `max_bytes` bytes. That pause is the pipeline's
// back-pressure: when the sink is slow or down, the source stops reading instead of buffering.
// A single event larger than `max_bytes` is admitted when the queue is empty, so it cannot
// wedge the pipeline.

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "pipeline/event.h"

namespace searchsync {

struct QueuedEvent {
  uint64_t seq = 0;  // the event's place in source order (see AckTracker)
  Event event;
  size_t bytes = 0;
};

class ChangeQueue {
 public:
  ChangeQueue(size_t max_events, size_t max_bytes);

  // Blocks while the queue is full. Returns false (and drops nothing: the event stays
  // unacknowledged, so it is re-read after a restart) when the queue was closed meanwhile.
  bool Push(QueuedEvent item);
  // Moves up to `max` events into `out` (appending), waiting up to `timeout` for the first one.
  // Returns how many were moved; 0 on timeout or when closed and empty.
  size_t PopBatch(std::vector<QueuedEvent>& out, size_t max, std::chrono::milliseconds timeout);
  // Wakes a blocked Push; later pushes fail. Events already queued can still be popped.
  void Close();
  // Wakes a Push blocked on a full queue, which then fails, as later pushes that find the queue
  // full do; pushes that find room still succeed. A graceful stop: what was read is handed on
  // while there is room, and a stalled sink does not hold the source.
  void StopWaiting();

  bool closed() const { return closed_.load(); }
  size_t events() const { return events_.load(); }
  size_t bytes() const { return bytes_.load(); }
  // Monotonic counters: depth = pushed - popped, without a sampled gauge missing bursts.
  uint64_t pushed() const { return pushed_.load(); }
  uint64_t popped() const { return popped_.load(); }

 private:
  bool Full(size_t incoming_bytes) const;

  const size_t max_events_;
  const size_t max_bytes_;
  moodycamel::BlockingConcurrentQueue<QueuedEvent> queue_;
  std::atomic<size_t> events_{0};
  std::atomic<size_t> bytes_{0};
  std::atomic<uint64_t> pushed_{0};
  std::atomic<uint64_t> popped_{0};
  std::atomic<bool> stop_waiting_{false};
  std::atomic<bool> closed_{false};
  // Slow path only: a producer waiting for room.
  std::mutex room_mutex_;
  std::condition_variable room_;
};

}  // namespace searchsync
