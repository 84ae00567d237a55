#include "pipeline/batcher.h"

#include <cassert>

namespace searchsync {

void Batcher::Add(Event event, uint64_t seq, TimePoint now) {
  assert(!Full());
  const size_t bytes = event.ByteSize();
  if (pending_.batch.empty()) oldest_ = now;
  pending_.seqs.push_back(seq);
  auto [it, inserted] = index_by_id_.try_emplace(event.id, pending_.batch.events.size());
  if (inserted) {
    pending_.batch.events.push_back(std::move(event));
    pending_.batch.byte_size += bytes;
    return;
  }
  Event& previous = pending_.batch.events[it->second];
  pending_.batch.byte_size -= previous.ByteSize();
  pending_.batch.byte_size += bytes;
  previous = std::move(event);
}

bool Batcher::Full() const {
  return pending_.batch.size() >= options_.max_events ||
         pending_.batch.byte_size >= options_.max_bytes;
}

std::optional<TimePoint> Batcher::Deadline() const {
  if (empty()) return std::nullopt;
  return oldest_ + options_.flush_interval;
}

std::optional<PendingBatch> Batcher::TakeIfReady(TimePoint now) {
  if (empty()) return std::nullopt;
  if (!Full() && now < oldest_ + options_.flush_interval) return std::nullopt;
  return Take();
}

std::optional<PendingBatch> Batcher::Take() {
  if (empty()) return std::nullopt;
  PendingBatch taken = std::move(pending_);
  pending_ = PendingBatch{};
  index_by_id_.clear();
  return taken;
}

}  // namespace searchsync
