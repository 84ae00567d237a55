#include "pipeline/change_queue.h"

#include <iterator>

namespace searchsync {

ChangeQueue::ChangeQueue(size_t max_events, size_t max_bytes)
    : max_events_(max_events), max_bytes_(max_bytes) {}

bool ChangeQueue::Full(size_t incoming_bytes) const {
  const size_t queued = events_.load();
  if (queued == 0) return false;
  return queued >= max_events_ || bytes_.load() + incoming_bytes > max_bytes_;
}

bool ChangeQueue::Push(QueuedEvent item) {
  if (Full(item.bytes)) {
    std::unique_lock lock(room_mutex_);
    // The timeout only guards against a missed wake-up; the consumer notifies after popping.
    while (!closed_ && !stop_waiting_ && Full(item.bytes)) {
      room_.wait_for(lock, std::chrono::milliseconds(50));
    }
  }
  if (closed_ || (stop_waiting_ && Full(item.bytes))) return false;
  events_.fetch_add(1);
  bytes_.fetch_add(item.bytes);
  pushed_.fetch_add(1);
  queue_.enqueue(std::move(item));
  return true;
}

size_t ChangeQueue::PopBatch(std::vector<QueuedEvent>& out, size_t max,
                             std::chrono::milliseconds timeout) {
  const size_t first = out.size();
  out.resize(first + max);
  const size_t got = queue_.wait_dequeue_bulk_timed(out.begin() + first, max, timeout);
  out.resize(first + got);
  if (got == 0) return 0;
  size_t freed_bytes = 0;
  for (size_t i = first; i < out.size(); ++i) freed_bytes += out[i].bytes;
  events_.fetch_sub(got);
  bytes_.fetch_sub(freed_bytes);
  popped_.fetch_add(got);
  { std::lock_guard lock(room_mutex_); }
  room_.notify_all();
  return got;
}

void ChangeQueue::StopWaiting() {
  {
    std::lock_guard lock(room_mutex_);
    stop_waiting_ = true;
  }
  room_.notify_all();
}

void ChangeQueue::Close() {
  {
    std::lock_guard lock(room_mutex_);
    closed_ = true;
  }
  room_.notify_all();
}

}  // namespace searchsync
