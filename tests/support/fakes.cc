#include "tests/support/fakes.h"

#include <thread>

namespace searchsync::test {

Event Upsert(std::string id, std::string value) {
  return {.op = Op::kUpsert, .id = std::move(id), .document = {{"v", std::move(value)}}};
}

Event Delete(std::string id) { return {.op = Op::kDelete, .id = std::move(id)}; }

FakeSource::FakeSource(std::vector<Event> events) : events_(std::move(events)) {
  for (size_t i = 0; i < events_.size(); ++i) events_[i].position = {std::to_string(i + 1)};
}

Result<std::vector<Event>> FakeSource::Poll(const Checkpoint& from, size_t max_events) {
  const size_t start = from.empty() ? 0 : std::stoul(from.token);
  if (shared_->unavailable) return Unavailable("fake source: connection refused");
  std::vector<Event> out;
  for (size_t i = start; i < events_.size() && out.size() < max_events; ++i) {
    out.push_back(events_[i]);
  }
  shared_->polled += out.size();
  if (!out.empty()) {
    std::lock_guard lock(shared_->mutex);
    if (shared_->during_poll) shared_->during_poll();
  }
  return out;
}

FakeFullRead::FakeFullRead(std::vector<Event> events, std::shared_ptr<FakeSource::Shared> shared)
    : events_(std::move(events)), shared_(std::move(shared)) {}

Result<std::vector<Event>> FakeFullRead::Next(size_t max_events) {
  while (shared_->full_read_blocked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const long fail_after = shared_->full_read_fail_after;
  if (fail_after >= 0 && next_ >= static_cast<size_t>(fail_after)) {
    return Unavailable("fake full read: connection refused");
  }
  std::vector<Event> out;
  for (; next_ < events_.size() && out.size() < max_events; ++next_) {
    out.push_back(events_[next_]);
  }
  shared_->full_read_polled += out.size();
  return out;
}

void FakeSource::SetFullRead(std::vector<Event> events, bool backfill_on_first_start) {
  full_read_ = std::move(events);
  backfill_on_first_start_ = backfill_on_first_start;
}

Result<std::unique_ptr<FullRead>> FakeSource::OpenFullRead() {
  if (!full_read_) return FailedPrecondition("fake source: no full read");
  return std::unique_ptr<FullRead>(std::make_unique<FakeFullRead>(*full_read_, shared_));
}

Status FakeSource::Commit(const Checkpoint& upto) {
  std::lock_guard lock(shared_->mutex);
  shared_->commits.push_back(upto.token);
  return Status::Ok();
}

Result<WriteReport> FakeSink::Write(const Batch& batch) {
  Shared& s = *shared_;
  // Create-only batches may overlap live writes of the same ids (Sink::Write).
  const bool live = !batch.create_only;
  {
    std::lock_guard lock(s.mutex);
    if (live) {
      for (const Event& event : batch.events) {
        if (!s.ids_in_flight.insert(event.id).second) s.same_id_in_two_writes = true;
      }
    }
    s.max_writes_in_flight = std::max(s.max_writes_in_flight, ++s.writes_in_flight);
  }
  while (s.blocked) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Give other lanes a chance to overlap, so order violations would show.
  std::this_thread::yield();
  std::lock_guard lock(s.mutex);
  --s.writes_in_flight;
  if (live) {
    for (const Event& event : batch.events) s.ids_in_flight.erase(event.id);
  }
  if (s.unavailable_writes > 0) {
    --s.unavailable_writes;
    return Unavailable("fake sink: HTTP 503");
  }
  for (const Event& event : batch.events) {
    if (s.unavailable_ids.count(event.id)) return Unavailable("fake sink: HTTP 503");
  }
  if (s.fail_after_batches == 0) return s.permanent_error;
  if (s.fail_after_batches > 0) --s.fail_after_batches;
  WriteReport report;
  for (size_t i = 0; i < batch.events.size(); ++i) {
    const Event& event = batch.events[i];
    ++s.writes_of_id[event.id];
    if (auto it = s.retryable_ids.find(event.id); it != s.retryable_ids.end() && it->second != 0) {
      if (it->second > 0) --it->second;
      report.retryable.push_back(
          {.event_index = i, .code = 500, .error = "Could not write to on-disk storage."});
      continue;
    }
    if (s.reject_ids.count(event.id)) {
      report.rejected.push_back(
          {.event_index = i, .code = 400, .error = "Field `v` must be an int32."});
      continue;
    }
    if (event.op == Op::kDelete) {
      s.index.erase(event.id);
    } else if (batch.create_only && s.index.count(event.id)) {
      ++report.already_present;
    } else {
      s.index[event.id] = event.document.empty() ? "" : event.document[0].json;
    }
  }
  s.batch_sizes.push_back(batch.size());
  if (batch.create_only) ++s.create_only_batches;
  s.written.notify_all();
  return report;
}

}  // namespace searchsync::test
