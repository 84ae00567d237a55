#include "pipeline/runner.h"

#include <algorithm>
#include <functional>
#include <future>
#include <optional>
#include <unordered_map>

#include "pipeline/json.h"
#include "pipeline/log.h"
#include "pipeline/retry.h"

namespace searchsync {
namespace {

using namespace std::chrono_literals;

// How often a retry's sleep re-checks a cancel predicate that nobody notifies.
constexpr Millis kCancelRecheck{50};

// Events the dispatcher holds between the queue and the lanes: part of the memory bound.
constexpr size_t kDispatchChunk = 256;

Millis SteadyMillis(TimePoint at) {
  return std::chrono::duration_cast<Millis>(at.time_since_epoch());
}

// Starts a failure streak at now unless one is going on.
void MarkFailing(std::atomic<int64_t>& since_ms) {
  int64_t none = 0;
  since_ms.compare_exchange_strong(none, std::max<int64_t>(1, SteadyMillis(Clock::now()).count()));
}

bool HasDeletes(const Batch& batch) {
  return std::any_of(batch.events.begin(), batch.events.end(),
                     [](const Event& event) { return event.op == Op::kDelete; });
}

// How often one document that the sink cannot store for a transient reason (Typesense: a
// per-line 500) is written alone before it goes to the dead-letter store.
constexpr int kMaxAttemptsAlone = 5;

// One batch on its way through writes that store only part of it (WriteReport::retryable).
//
//   write {a b c d} -> b, d retryable      the others are stored: narrow to {b d}
//   write {b d}     -> b retryable         narrow to {b}
//   write {b}       -> b retryable  x5     b alone keeps failing: reject it with its error
//
// A write where every document is retryable narrows nothing and counts no attempt: the server
// is failing (e.g. its disk), not the documents, so that is retried like a 503. That holds for
// a batch of one as well (a trickle of single changes during a disk outage): only a document
// whose batch-mates were stored is known to fail on its own.
// Per-document order holds because the lane goes on to its next batch only once this one is
// done. The batch is copied only when narrowed; events may be removed from remaining() between
// writes (DeleteGuard), as long as no id is added.
class PartialWrite {
 public:
  explicit PartialWrite(Batch& batch) : original_(batch) {}

  // What to write next.
  Batch& remaining() { return narrowed_ ? *narrowed_ : original_; }

  // Folds in one write of remaining() as it was sent. OK when the batch is done (nothing is
  // to be written again): outcome() then says what was rejected, in indices of the original
  // batch. Otherwise kUnavailable: write remaining() again after a backoff.
  Status Fold(const WriteReport& report) {
    const Batch& written = remaining();
    for (const Rejection& rejection : report.rejected) {
      outcome_.rejected.push_back(Original(rejection));
    }
    outcome_.already_present += report.already_present;
    stored_ +=
        written.size() - report.rejected.size() - report.retryable.size() - report.already_present;
    if (report.retryable.empty()) return Status::Ok();

    const Rejection& first = report.retryable.front();
    Status retry =
        Unavailable("the sink could not store " + std::to_string(report.retryable.size()) + " of " +
                    std::to_string(written.size()) + " documents, first id=" +
                    JsonString(written.events.at(first.event_index).id) + ": " + first.Reason());
    if (report.retryable.size() < written.size()) {
      if (original_index_.empty()) {
        // From here on the original batch no longer changes: it is not written again.
        for (size_t event_idx = 0; event_idx < original_.size(); ++event_idx) {
          original_index_[original_.events[event_idx].id] = event_idx;
        }
      }
      Batch narrowed{.create_only = written.create_only};
      for (const Rejection& retryable : report.retryable) {
        narrowed.events.push_back(written.events.at(retryable.event_index));
        narrowed.byte_size += narrowed.events.back().ByteSize();
      }
      narrowed_ = std::move(narrowed);
      failures_alone_ = 0;
    } else if (narrowed_ && written.size() == 1 && ++failures_alone_ >= kMaxAttemptsAlone) {
      Rejection rejection = Original(first);
      rejection.error += " (failed " + std::to_string(failures_alone_) + " times, written alone)";
      outcome_.rejected.push_back(std::move(rejection));
      return Status::Ok();
    }
    return retry;
  }

  // Rejects everything not written yet with `error` (code 0: the error says it all). The batch
  // is then done.
  void RejectRemaining(const std::string& error) {
    for (size_t event_idx = 0; event_idx < remaining().size(); ++event_idx) {
      Rejection rejection = Original({.event_index = event_idx});
      rejection.error = error;
      outcome_.rejected.push_back(std::move(rejection));
    }
  }

  const WriteReport& outcome() const { return outcome_; }
  // Documents and deletes the sink stored (create_only: created).
  size_t stored() const { return stored_; }

 private:
  // `rejection` with its index into remaining() turned into one into the original batch.
  Rejection Original(const Rejection& rejection) const {
    Rejection original = rejection;
    if (narrowed_) {
      original.event_index = original_index_.at(narrowed_->events.at(rejection.event_index).id);
    }
    return original;
  }

  Batch& original_;
  std::optional<Batch> narrowed_;
  std::unordered_map<std::string, size_t> original_index_;  // id -> index, once narrowed
  WriteReport outcome_;
  size_t stored_ = 0;
  int failures_alone_ = 0;
};

// Reads the source's next page on a thread of its own while the source thread converts and
// queues the last one. One thread for the whole run rather than one per page, so each page is
// allocated from the same malloc arena (glibc gives new threads new arenas, and freed pages would
// stay resident in each).
class PagePrefetch {
 public:
  using Page = Result<std::vector<Event>>;

  ~PagePrefetch() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();  // after the poll under way, if any
  }

  // Starts `read`. REQUIRES: !pending().
  void Start(std::function<Page()> read) {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    read_ = std::move(read);
    pending_ = true;
    changed_.notify_all();
  }

  // Whether a page was started and not taken yet.
  bool pending() const { return pending_; }

  // Waits for the page started last. REQUIRES: pending().
  Page Take() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return page_.has_value(); });
    Page page = std::move(*page_);
    page_.reset();
    pending_ = false;
    return page;
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return done_ || read_ != nullptr; });
      if (done_) return;
      std::function<Page()> read = std::move(read_);
      read_ = nullptr;
      lock.unlock();
      Page page = read();
      lock.lock();
      page_ = std::move(page);
      changed_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::function<Page()> read_;  // to start
  std::optional<Page> page_;    // read, not taken
  bool pending_ = false;        // the source thread's only
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

void DeleteGuard::Record(const Batch& batch) {
  std::lock_guard lock(mutex_);
  for (const Event& event : batch.events) {
    if (event.op == Op::kDelete) deleted_.insert(event.id);
  }
}

Result<WriteReport> DeleteGuard::WriteWithGuardHeld(
    Batch& batch, const std::function<Result<WriteReport>(const Batch&)>& write) {
  std::lock_guard lock(mutex_);
  if (!deleted_.empty()) {
    std::erase_if(batch.events, [&](const Event& event) { return deleted_.count(event.id) > 0; });
  }
  if (batch.empty()) return WriteReport{};
  return write(batch);
}

size_t DeleteGuard::size() const {
  std::lock_guard lock(mutex_);
  return deleted_.size();
}

struct PipelineRunner::Lane {
  explicit Lane(BatchOptions options) : batcher(options) {}
  std::mutex mutex;
  std::condition_variable changed;  // batch added or taken, input done
  Batcher batcher;
  bool input_done = false;
  std::thread thread;
  ThrottledLog retry_log;
};

PipelineRunner::PipelineRunner(PipelineConfig config, RetryOptions retry,
                               std::unique_ptr<Source> source, std::unique_ptr<Sink> sink,
                               StateStore& state, RunOptions options)
    : config_(std::move(config)),
      retry_(retry),
      options_(options),
      component_("pipeline=" + config_.name),
      source_(std::move(source)),
      state_(state),
      sink_(std::move(sink)),
      queue_(config_.queue.max_events, config_.queue.max_bytes) {
  for (int i = 0; i < std::max(1, config_.sink.concurrency); ++i) {
    lanes_.push_back(std::make_unique<Lane>(config_.sink.batch));
  }
}

PipelineRunner::~PipelineRunner() {
  abandon_ = true;
  queue_.Close();
  wake_.WakeAll();
  for (auto& lane : lanes_) {
    if (lane->thread.joinable()) lane->thread.join();
  }
  if (backfill_thread_.joinable()) backfill_thread_.join();
}

void PipelineRunner::Stop() {
  // The queue stays open: a poll that was under way when the stop came still hands its events
  // to the lanes, which flush them; only a push that finds the queue full fails (a stalled sink
  // must not hold the stop, and those events are read again on the next start).
  stop_requested_ = true;
  queue_.StopWaiting();
  wake_.WakeAll();
}

void PipelineRunner::StopNow() {
  Stop();
  EndGrace("stopping now");
}

void PipelineRunner::EndGrace(const std::string& why) {
  if (abandon_.exchange(true)) return;
  Log(LogLevel::kWarn, component_,
      why + " without waiting for " + std::to_string(tracker_.in_flight()) +
          " unacknowledged events; they will be read again on the next start");
  queue_.Close();
  wake_.WakeAll();
  for (auto& lane : lanes_) lane->changed.notify_all();
}

void PipelineRunner::Recovered(std::atomic<int64_t>& failing_since_ms) {
  if (failing_since_ms.exchange(0) == 0) return;
  if (sink_failing_since_ms_ != 0 || source_failing_since_ms_ != 0) return;
  std::lock_guard lock(status_mutex_);
  if (failure_.ok()) last_error_.clear();  // a failure's error stays
}

void PipelineRunner::SetState(RunState state) {
  std::lock_guard lock(status_mutex_);
  if (run_state_ != RunState::kFailed) run_state_ = state;
}

bool PipelineRunner::Failed() const {
  std::lock_guard lock(status_mutex_);
  return !failure_.ok();
}

void PipelineRunner::Fail(const Status& status) {
  {
    std::lock_guard lock(status_mutex_);
    if (!failure_.ok()) return;
    failure_ = status;
    run_state_ = RunState::kFailed;
    last_error_ = status.message();
  }
  Log(LogLevel::kError, component_, "pipeline stopped: " + status.message());
  abandon_ = true;
  queue_.Close();
  wake_.WakeAll();
  for (auto& lane : lanes_) lane->changed.notify_all();
}

std::function<bool(Millis)> PipelineRunner::RetrySleep(bool stop_on_stop_request,
                                                       std::function<bool()> cancelled) {
  return [this, stop_on_stop_request, cancelled = std::move(cancelled)](Millis wait) {
    if (!cancelled) {
      return wake_.SleepFor(wait, [&] {
        return abandon_.load() || (stop_on_stop_request && stop_requested_.load());
      });
    }
    // Nobody notifies `cancelled`: it is re-checked every kCancelRecheck.
    return wake_.SleepFor(
        wait, [&] { return abandon_.load() || stop_requested_.load() || cancelled(); },
        kCancelRecheck);
  };
}

void PipelineRunner::IdleSleep() {
  wake_.SleepFor(source_->IdleWait(),
                 [&] { return abandon_.load() || stop_requested_.load() || poll_now_.load(); });
}

PipelineReport PipelineRunner::Report() const {
  PipelineReport report{.name = config_.name};
  {
    std::lock_guard lock(status_mutex_);
    report.state = run_state_;
    report.last_error = last_error_;
  }
  report.dead_lettered_this_run = dead_lettered_;
  report.queue_events = queue_.events();
  report.in_flight = tracker_.in_flight();
  report.batches = batches_;
  report.retries = retries_;
  report.documents_reread_found = reread_found_;
  report.documents_reread_gone = reread_gone_;
  {
    std::lock_guard lock(targets_mutex_);
    if (sink_) report.in_flight_limit = sink_->InFlightLimit();
  }
  const TimePoint now = Clock::now();
  if (const std::optional<TimePoint> oldest = tracker_.OldestUnackedReadAt()) {
    report.lag_seconds = std::max(0.0, std::chrono::duration<double>(now - *oldest).count());
  }
  int64_t failing_since_ms = 0;
  for (const int64_t since : {sink_failing_since_ms_.load(), source_failing_since_ms_.load()}) {
    if (since != 0 && (failing_since_ms == 0 || since < failing_since_ms)) failing_since_ms = since;
  }
  if (failing_since_ms != 0) {
    report.retrying_for = std::max(Millis(0), SteadyMillis(now) - Millis(failing_since_ms));
    // Caught up or not, a pipeline whose sink or source keeps failing is retrying.
    if (report.state == RunState::kRunning || report.state == RunState::kCaughtUp) {
      report.state = RunState::kRetrying;
    }
  }
  {
    std::lock_guard lock(persist_mutex_);
    report.checkpoint = persisted_.token;
    report.counters = {.events_read = base_counters_.events_read + read_,
                       .events_acked = base_counters_.events_acked + acked_,
                       .dead_lettered = base_counters_.dead_lettered + dead_lettered_};
  }
  return report;
}

void PipelineRunner::PersistProgress(RunState state) {
  std::lock_guard lock(persist_mutex_);
  if (std::optional<AckTracker::Prefix> advanced = tracker_.TakeAdvanced()) {
    persisted_ = std::move(advanced->position);
    persisted_events_ = advanced->events;
  }
  // The counters stored with a checkpoint count the events up to it and none past it: those
  // are read (and counted) again after a crash or a stop that left them unacknowledged.
  PipelineState row{.pipeline = config_.name,
                    .checkpoint = persisted_,
                    .counters = {.events_read = base_counters_.events_read + persisted_events_,
                                 .events_acked = base_counters_.events_acked + persisted_events_,
                                 .dead_lettered = base_counters_.dead_lettered + dead_lettered_},
                    .state = state};
  {
    std::lock_guard status_lock(status_mutex_);
    row.last_error = last_error_;
  }
  if (Status status = state_.Save(row); !status.ok()) Fail(status);
}

searchsync::DeadLetter PipelineRunner::MakeDeadLetter(const Event& event, std::string error) const {
  std::string document;
  if (event.op == Op::kUpsert) AppendDocumentJson(document, event);
  return {.pipeline = config_.name,
          .document_id = event.id,
          .document = std::move(document),
          .operation = event.op == Op::kUpsert ? "upsert" : "delete",
          .error = std::move(error),
          .position = event.position.token};
}

void PipelineRunner::DeadLetter(const Event& event, const std::string& error) {
  const Status status = state_.AddDeadLetters({MakeDeadLetter(event, error)});
  if (!status.ok()) return Fail(status);
  ++dead_lettered_;
  Log(LogLevel::kWarn, component_,
      "dead-lettered document id=" + JsonString(event.id) + " error=" + JsonString(error));
}

void PipelineRunner::Acknowledge(const PendingBatch& pending, const WriteReport& report) {
  if (!report.rejected.empty()) {
    std::vector<searchsync::DeadLetter> letters;
    letters.reserve(report.rejected.size());
    for (const Rejection& rejection : report.rejected) {
      letters.push_back(
          MakeDeadLetter(pending.batch.events.at(rejection.event_index), rejection.Reason()));
    }
    // The rejected documents must be safe in the dead-letter store before their events count
    // as acknowledged.
    if (Status status = state_.AddDeadLetters(letters); !status.ok()) return Fail(status);
    dead_lettered_ += letters.size();
    Log(LogLevel::kWarn, component_,
        "typesense rejected " + std::to_string(letters.size()) +
            " documents; stored in the dead-letter store, first id=" +
            JsonString(letters.front().document_id) +
            " error=" + JsonString(letters.front().error));
  }
  for (uint64_t seq : pending.seqs) tracker_.Ack(seq);
  acked_ += pending.seqs.size();
  PersistProgress(RunState::kRunning);
}

void PipelineRunner::WriteWithRetry(Lane& lane, PendingBatch& pending) {
  // The targets are taken once per batch, so a reindex's swap never splits a batch.
  std::shared_ptr<Sink> sink;
  std::shared_ptr<Sink> shadow;
  std::vector<std::shared_ptr<DeleteGuard>> guards;
  {
    std::lock_guard lock(targets_mutex_);
    sink = sink_;
    shadow = shadow_;
    if (HasDeletes(pending.batch)) guards = guards_;
  }
  // Before anything is deleted, so a full read in progress cannot bring these ids back. (A full
  // read that starts after this point cannot read them: their deletes were committed before
  // the live stream read them.)
  for (const auto& guard : guards) guard->Record(pending.batch);
  Retrier retrier(retry_, {.component = component_,
                           .max_elapsed_name = "retry.max_elapsed ",
                           .log = &lane.retry_log,
                           .sleep = RetrySleep(/*stop_on_stop_request=*/false),
                           .on_retry = [this](const Status& status, Millis) {
                             {
                               std::lock_guard lock(status_mutex_);
                               last_error_ = status.message();
                             }
                             ++retries_;
                             MarkFailing(sink_failing_since_ms_);
                           }});
  PartialWrite writing(pending.batch);
  for (;;) {
    Result<WriteReport> result = sink->Write(writing.remaining());
    const Status status = result.ok() ? writing.Fold(*result) : result.status();
    if (status.ok()) {
      if (retrier.failures() > 0) {
        Log(LogLevel::kInfo, component_,
            "sink recovered after " + std::to_string(retrier.failures()) + " retries");
      }
      ++batches_;
      Recovered(sink_failing_since_ms_);
      // Acknowledged only once the shadow has it too: a reindex that saw every event
      // acknowledged knows the new collection holds them.
      if (shadow) WriteShadow(lane, *shadow, pending, writing.outcome());
      return Acknowledge(pending, writing.outcome());
    }
    if (status.code() == StatusCode::kInvalidArgument) {
      // The request itself was refused for good: keep the documents, go on.
      writing.RejectRemaining(status.message());
      return Acknowledge(pending, writing.outcome());
    }
    if (std::optional<Status> end = retrier.Failed(status)) {
      // Cancelled: the grace period is over; the batch stays unacknowledged.
      if (end->code() != StatusCode::kCancelled) Fail(*end);
      return;
    }
  }
}

void PipelineRunner::LaneLoop(Lane& lane) {
  for (;;) {
    std::optional<PendingBatch> pending;
    {
      std::unique_lock lock(lane.mutex);
      for (;;) {
        if (abandon_) return;
        const bool flush_all = draining_ || lane.input_done;
        pending = flush_all ? lane.batcher.Take() : lane.batcher.TakeIfReady(Clock::now());
        if (pending) break;
        if (lane.input_done) return;  // input finished and nothing left
        const auto deadline = lane.batcher.Deadline().value_or(Clock::now() + 100ms);
        lane.changed.wait_until(lock, std::min(deadline, Clock::now() + 100ms));
      }
    }
    lane.changed.notify_all();  // room for the dispatcher
    WriteWithRetry(lane, *pending);
  }
}

void PipelineRunner::DispatchLoop() {
  std::vector<QueuedEvent> items;
  const std::hash<std::string> hasher;
  while (!abandon_) {
    items.clear();
    if (queue_.PopBatch(items, kDispatchChunk, 50ms) == 0) {
      if (queue_.closed() && queue_.events() == 0) break;
      continue;
    }
    for (QueuedEvent& item : items) {
      Lane& lane = *lanes_[hasher(item.event.id) % lanes_.size()];
      std::unique_lock lock(lane.mutex);
      lane.changed.wait(lock, [&] { return abandon_ || !lane.batcher.Full(); });
      if (abandon_) return;
      lane.batcher.Add(std::move(item.event), item.seq, Clock::now());
      if (lane.batcher.Full()) lane.changed.notify_all();
    }
  }
  for (auto& lane : lanes_) {
    std::lock_guard lock(lane->mutex);
    lane->input_done = true;
    lane->changed.notify_all();
  }
}

Status PipelineRunner::PrepareSink() {
  Retrier retrier(retry_, {.component = component_,
                           .max_elapsed_name = "retry.max_elapsed ",
                           .sleep = RetrySleep(/*stop_on_stop_request=*/true)});
  for (;;) {
    Status status = sink_->Prepare();
    if (status.ok()) return status;
    if (std::optional<Status> end = retrier.Failed(status)) {
      return end->code() == StatusCode::kCancelled ? Cancelled("stopped before the sink was ready")
                                                   : *end;
    }
  }
}

void PipelineRunner::SourceLoop() {
  Checkpoint read_position = persisted_;
  Checkpoint committed = persisted_;
  ThrottledLog log;
  // Polls are retried forever: retry.max_elapsed bounds requests to the sink.
  Retrier retrier({.initial_backoff = retry_.initial_backoff, .max_backoff = retry_.max_backoff},
                  {.component = component_,
                   .what = "source",
                   .log = &log,
                   .sleep = RetrySleep(/*stop_on_stop_request=*/true),
                   .on_retry = [this](const Status& status, Millis) {
                     {
                       std::lock_guard lock(status_mutex_);
                       last_error_ = status.message();
                     }
                     ++retries_;
                     MarkFailing(source_failing_since_ms_);
                   }});
  // Commits what is checkpointed, then starts a poll from read_position. The source is called
  // from one thread at a time: this one, or the prefetch's while it reads a page.
  PagePrefetch prefetch;
  uint64_t next_poll_number = 0;
  auto start_poll = [&] {
    Checkpoint persisted;
    {
      std::lock_guard lock(persist_mutex_);
      persisted = persisted_;
    }
    if (!(persisted == committed)) {
      if (Status status = source_->Commit(persisted); !status.ok()) {
        log.Warn(component_, "source commit: " + status.message());
      }
      committed = std::move(persisted);
    }
    poll_now_ = false;
    {
      std::lock_guard lock(caught_up_mutex_);
      next_poll_number = ++polls_started_;
    }
    prefetch.Start(
        [this, from = read_position] { return source_->Poll(from, options_.poll_batch); });
  };
  while (!stop_requested_ && !abandon_) {
    if (!prefetch.pending()) start_poll();
    const uint64_t poll_number = next_poll_number;
    Result<std::vector<Event>> polled = prefetch.Take();
    const bool reached_end = polled.ok() && source_->LastPollReachedEnd();
    if (!polled.ok()) {
      if (std::optional<Status> end = retrier.Failed(polled.status())) {
        if (end->code() != StatusCode::kCancelled) Fail(*end);
        return;
      }
      continue;
    }
    std::vector<Event>& events = *polled;
    std::vector<bool> superseded;
    if (Status resolved = ResolveRefetchesOf(events, superseded); !resolved.ok()) {
      if (std::optional<Status> end = retrier.Failed(resolved)) {
        if (end->code() != StatusCode::kCancelled) Fail(*end);
        return;
      }
      continue;  // the page is read again from read_position
    }
    Recovered(source_failing_since_ms_);
    retrier.Succeeded();
    if (events.empty()) {
      {
        // Every event of the pages before this poll is registered by now.
        std::lock_guard lock(caught_up_mutex_);
        last_end_poll_ = poll_number;
        registered_through_end_poll_ = registered_;
      }
      caught_up_changed_.notify_all();
      if (options_.once) {
        source_caught_up_ = true;
        return;
      }
      SetState(RunState::kCaughtUp);
      draining_ = true;  // nothing more is coming soon: let partial batches go
      for (auto& lane : lanes_) lane->changed.notify_all();
      // An idle daemon writes nothing, so it would not notice its state.db deleted.
      if (Status intact = state_.CheckIntact(); !intact.ok()) return Fail(intact);
      IdleSleep();
      continue;
    }
    draining_ = false;
    SetState(RunState::kRunning);
    read_ += events.size();
    read_position = events.back().position;
    // A page that was not empty is followed by another poll at once: the source reads it while
    // this page is transformed and queued. (A stop leaves that page unread: none of its events
    // is registered, so the next start reads it again.)
    start_poll();
    for (size_t event_idx = 0; event_idx < events.size(); ++event_idx) {
      Event& event = events[event_idx];
      const uint64_t seq = tracker_.Register(event.position);
      registered_ = seq;
      if (!superseded.empty() && superseded[event_idx]) {  // a later event re-reads the same id
        tracker_.Ack(seq);
        ++acked_;
        continue;
      }
      if (event.dead_letter_reason.empty()) event.dead_letter_reason = DocumentIdProblem(event.id);
      if (!event.dead_letter_reason.empty()) {
        DeadLetter(event, event.dead_letter_reason);
        tracker_.Ack(seq);
        ++acked_;
        continue;
      }
      if (event.op == Op::kUpsert && !TransformOrDeadLetter(event)) {
        tracker_.Ack(seq);
        ++acked_;
        continue;
      }
      const size_t bytes = event.ByteSize();
      if (!queue_.Push({.seq = seq, .event = std::move(event), .bytes = bytes})) return;
    }
    if (reached_end) {
      // This poll read everything the source held when it began, like an empty one would
      // have: a source that is never idle still reaches a position WaitCaughtUp can wait for.
      {
        std::lock_guard lock(caught_up_mutex_);
        last_end_poll_ = poll_number;
        registered_through_end_poll_ = registered_;
      }
      caught_up_changed_.notify_all();
    }
  }
}

Status PipelineRunner::ResolveRefetchesOf(std::vector<Event>& events,
                                          std::vector<bool>& superseded) {
  const bool any = std::any_of(events.begin(), events.end(),
                               [](const Event& event) { return event.op == Op::kRefetch; });
  if (!any) return Status::Ok();
  const RefetchTotals before = refetch_totals_;
  Status status = ResolveRefetches(
      [this](std::span<const std::string> ids) { return source_->ReadDocuments(ids); }, events,
      kRefetchChunk, superseded, refetch_totals_);
  if (!status.ok()) return status;
  reread_found_ += refetch_totals_.found - before.found;
  reread_gone_ += refetch_totals_.gone - before.gone;
  // A fan-out of many pages: one line every few seconds, not one per page.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_refetch_log_ >= kRefetchLogInterval) {
    last_refetch_log_ = now;
    Log(LogLevel::kInfo, component_,
        "re-reading changed documents: requested=" + std::to_string(refetch_totals_.requested) +
            " found=" + std::to_string(refetch_totals_.found) +
            " gone=" + std::to_string(refetch_totals_.gone) +
            " duplicates=" + std::to_string(refetch_totals_.duplicates) +
            " reads=" + std::to_string(refetch_totals_.reads) + " (this run)");
  }
  return Status::Ok();
}

bool PipelineRunner::TransformOrDeadLetter(Event& event) {
  if (config_.transforms.empty()) return true;
  // What the dead-letter store keeps if a transform fails: the document and id as they came.
  // Transforms change only the document, so the position stays out of their way, uncopied.
  Document original = event.document;
  const std::string id = event.id;
  Checkpoint position = std::move(event.position);
  for (const Transform& transform : config_.transforms) {
    Result<Event> transformed = transform(std::move(event));
    if (!transformed.ok()) {
      DeadLetter(Event{.op = Op::kUpsert,
                       .id = id,
                       .document = std::move(original),
                       .position = std::move(position)},
                 "transform: " + transformed.status().message());
      return false;
    }
    event = std::move(*transformed);
  }
  event.position = std::move(position);
  return true;
}

Status PipelineRunner::Run() {
  Result<PipelineState> loaded = state_.Load(config_.name);
  if (!loaded.ok()) return loaded.status();
  {
    std::lock_guard lock(persist_mutex_);  // Report() may read them from any thread
    base_counters_ = loaded->counters;
    // Everything up to the checkpoint was read and acknowledged, so the two counts agree (a
    // store written before they were kept that way may count re-read events twice).
    base_counters_.events_read = base_counters_.events_acked;
    persisted_ = loaded->checkpoint;
  }
  Log(LogLevel::kInfo, component_,
      "starting" + std::string(options_.once ? " (once)" : "") +
          (persisted_.empty() ? " from the beginning" : " from checkpoint " + persisted_.token));

  if (Status status = PrepareSink(); !status.ok()) {
    if (status.code() == StatusCode::kCancelled) return Status::Ok();
    Fail(status);
    PersistProgress(RunState::kFailed);
    return status;
  }
  SetState(RunState::kRunning);
  for (auto& lane : lanes_) lane->thread = std::thread([this, &lane] { LaneLoop(*lane); });
  std::thread dispatcher([this] { DispatchLoop(); });
  if (Status status = StartBackfillIfDue(); !status.ok()) Fail(status);

  if (!Failed()) SourceLoop();
  // `run --once` is caught up only once the backfill is complete too; a stop interrupts it.
  if (backfill_thread_.joinable()) backfill_thread_.join();

  if (options_.once && !stop_requested_ && !Failed()) {
    // Caught up: flush partial batches and wait until everything read is acknowledged.
    draining_ = true;
    for (auto& lane : lanes_) lane->changed.notify_all();
    // Acknowledgements do not wake it: checked every 20ms.
    const auto done = [&] {
      return tracker_.AllAcked() || abandon_.load() || stop_requested_.load();
    };
    while (!done()) wake_.SleepFor(20ms, done);
  }
  SetState(RunState::kStopping);
  queue_.Close();
  std::thread grace_timer;
  if (!abandon_) {
    // Bound how long a stop may wait on a sink that does not answer.
    grace_timer = std::thread([this] {
      const auto deadline = Clock::now() + options_.shutdown_grace;
      wake_.SleepFor(std::chrono::duration_cast<Millis>(deadline - Clock::now()),
                     [this] { return abandon_.load(); });
      EndGrace("shutdown grace of " + FormatMillis(options_.shutdown_grace) + " over: stopping");
    });
  }
  dispatcher.join();
  for (auto& lane : lanes_) lane->thread.join();
  abandon_ = true;  // the lanes are done: ends the grace timer
  wake_.WakeAll();
  if (grace_timer.joinable()) grace_timer.join();

  const bool failed = Failed();
  const uint64_t unacknowledged = read_ - acked_;
  // Caught up only when the source had nothing more to give and all it gave is acknowledged.
  const bool caught_up = options_.once && source_caught_up_ && unacknowledged == 0 && !failed;
  const RunState final_state =
      failed ? RunState::kFailed : (caught_up ? RunState::kCaughtUp : RunState::kStopped);
  PersistProgress(final_state);
  {
    std::lock_guard lock(persist_mutex_);
    if (Status status = source_->Commit(persisted_); !status.ok()) {
      Log(LogLevel::kWarn, component_, "source commit: " + status.message());
    }
  }
  SetState(final_state);
  std::lock_guard lock(status_mutex_);
  Log(failed ? LogLevel::kError : (unacknowledged > 0 ? LogLevel::kWarn : LogLevel::kInfo),
      component_,
      failed ? "stopped with error: " + failure_.message()
             : std::string(caught_up ? "caught up" : "stopped") + " read=" + std::to_string(read_) +
                   " acked=" + std::to_string(acked_) +
                   " unacknowledged=" + std::to_string(unacknowledged) +
                   " dead_lettered=" + std::to_string(dead_lettered_));
  return failure_;
}

// ---- Full reads, shadow, catch-up ----------------------------------------------------------

void PipelineRunner::DeadLetterRejections(const Batch& batch,
                                          const std::vector<Rejection>& rejected,
                                          const std::string& prefix) {
  if (rejected.empty()) return;
  std::vector<searchsync::DeadLetter> letters;
  letters.reserve(rejected.size());
  for (const Rejection& rejection : rejected) {
    letters.push_back(
        MakeDeadLetter(batch.events.at(rejection.event_index), prefix + rejection.Reason()));
  }
  if (Status status = state_.AddDeadLetters(letters); !status.ok()) return Fail(status);
  dead_lettered_ += letters.size();
  Log(LogLevel::kWarn, component_,
      prefix + "typesense rejected " + std::to_string(letters.size()) +
          " documents; stored in the dead-letter store, first id=" +
          JsonString(letters.front().document_id) + " error=" + JsonString(letters.front().error));
}

std::shared_ptr<DeleteGuard> PipelineRunner::AddGuard() {
  auto guard = std::make_shared<DeleteGuard>();
  std::lock_guard lock(targets_mutex_);
  guards_.push_back(guard);
  return guard;
}

Result<FullReadStats> PipelineRunner::FullRead(searchsync::FullRead& full_read, Sink& target,
                                               const FullReadOptions& options) {
  return FullRead(full_read, target, options, AddGuard());
}

Result<FullReadStats> PipelineRunner::FullRead(searchsync::FullRead& full_read, Sink& target,
                                               const FullReadOptions& options,
                                               std::shared_ptr<DeleteGuard> guard) {
  struct Unregister {
    PipelineRunner* runner;
    const std::shared_ptr<DeleteGuard>* guard;
    ~Unregister() {
      std::lock_guard lock(runner->targets_mutex_);
      std::erase(runner->guards_, *guard);
    }
  } unregister{this, &guard};

  const std::optional<Millis> give_up =
      options.give_up_after ? options.give_up_after : retry_.max_elapsed;
  auto stopped = [&] {
    return abandon_ || stop_requested_ || (options.cancelled && options.cancelled());
  };
  const std::function<bool()> cancelled =
      options.cancelled ? options.cancelled : [] { return false; };
  Retrier retrier({.initial_backoff = retry_.initial_backoff,
                   .max_backoff = retry_.max_backoff,
                   .max_elapsed = give_up},
                  {.component = component_,
                   .what = "full read",
                   .sleep = RetrySleep(/*stop_on_stop_request=*/true, cancelled)});
  // Retries a kUnavailable `status` after a backoff; returns the status to end with, if any.
  auto retry_or_end = [&](const Status& status) -> std::optional<Status> {
    std::optional<Status> end = retrier.Failed(status);
    if (end && end->code() == StatusCode::kCancelled) return Cancelled("full read cancelled");
    return end;
  };

  FullReadStats stats;
  // The next page is read while the current one is written, so the source and the sink work
  // at the same time (two pages in memory). The full read is still used by one thread at a time.
  auto read_page = [&] {
    return std::async(std::launch::async,
                      [&full_read, this] { return full_read.Next(config_.sink.batch.max_events); });
  };
  std::future<Result<std::vector<Event>>> next = read_page();
  for (;;) {
    if (stopped()) return Cancelled("full read cancelled");
    Result<std::vector<Event>> polled = next.get();
    if (!polled.ok()) {
      if (std::optional<Status> end = retry_or_end(polled.status())) return *end;
      next = read_page();
      continue;
    }
    retrier.Succeeded();
    if (polled->empty()) return stats;
    next = read_page();

    Batch batch{.create_only = true};
    batch.events.reserve(polled->size());
    for (Event& event : *polled) {
      if (event.op != Op::kUpsert) continue;  // what is gone is simply not written
      if (event.dead_letter_reason.empty()) event.dead_letter_reason = DocumentIdProblem(event.id);
      if (!event.dead_letter_reason.empty()) {
        DeadLetter(event, event.dead_letter_reason);
        ++stats.rejected;
        continue;
      }
      ++stats.read;
      if (!TransformOrDeadLetter(event)) {
        ++stats.rejected;
        continue;
      }
      batch.byte_size += event.ByteSize();
      batch.events.push_back(std::move(event));
    }
    if (Failed()) return Cancelled("pipeline stopped");

    PartialWrite writing(batch);
    for (;;) {
      if (stopped()) return Cancelled("full read cancelled");
      Batch& remaining = writing.remaining();
      const size_t before = remaining.size();
      Result<WriteReport> written = guard->WriteWithGuardHeld(
          remaining, [&](const Batch& unguarded) { return target.Write(unguarded); });
      stats.skipped_deleted += before - remaining.size();
      Status status = written.ok() ? writing.Fold(*written) : written.status();
      if (status.code() == StatusCode::kInvalidArgument) {
        // The request as a whole was refused for good: keep the documents, go on.
        writing.RejectRemaining(status.message());
        status = Status::Ok();
      }
      if (status.ok()) {
        stats.created += writing.stored();
        stats.already_present += writing.outcome().already_present;
        stats.rejected += writing.outcome().rejected.size();
        DeadLetterRejections(batch, writing.outcome().rejected, "full read: ");
        break;
      }
      if (std::optional<Status> end = retry_or_end(status)) return *end;
    }
    retrier.Succeeded();
    if (options.on_progress) options.on_progress(stats);
  }
}

void PipelineRunner::WriteShadow(Lane& lane, Sink& shadow, PendingBatch& pending,
                                 const WriteReport& primary) {
  Millis give_up{0};
  {
    std::lock_guard lock(targets_mutex_);
    // Detached (the reindex ended) or failed: nothing to do. Promoted (sink_) still counts.
    if (!shadow_stats_.failure.ok() || (shadow_.get() != &shadow && sink_.get() != &shadow)) {
      return;
    }
    for (const Event& event : pending.batch.events) {
      ++(event.op == Op::kDelete ? shadow_stats_.deletes : shadow_stats_.upserts);
    }
    give_up = shadow_give_up_after_;
  }
  Retrier retrier({.initial_backoff = retry_.initial_backoff,
                   .max_backoff = retry_.max_backoff,
                   .max_elapsed = give_up},
                  {.component = component_,
                   .what = "new collection",
                   .log = &lane.retry_log,
                   .sleep = RetrySleep(/*stop_on_stop_request=*/false)});
  Status failure;
  PartialWrite writing(pending.batch);
  for (;;) {
    Result<WriteReport> result = shadow.Write(writing.remaining());
    const Status status = result.ok() ? writing.Fold(*result) : result.status();
    if (status.ok()) {
      // A document both collections refused is dead-lettered once, for the sink's refusal.
      std::vector<Rejection> only_shadow;
      for (const Rejection& rejection : writing.outcome().rejected) {
        const bool also_primary =
            std::any_of(primary.rejected.begin(), primary.rejected.end(),
                        [&](const Rejection& r) { return r.event_index == rejection.event_index; });
        if (!also_primary) only_shadow.push_back(rejection);
      }
      if (!only_shadow.empty()) {
        {
          std::lock_guard lock(targets_mutex_);
          shadow_stats_.rejected += only_shadow.size();
        }
        DeadLetterRejections(pending.batch, only_shadow, "new collection: ");
      }
      return;
    }
    if (std::optional<Status> end = retrier.Failed(status)) {
      failure = end->code() == StatusCode::kCancelled
                    ? Cancelled("stopped while writing to the new collection")
                    : *end;
      break;
    }
  }
  std::lock_guard lock(targets_mutex_);
  if (shadow_stats_.failure.ok()) {
    shadow_stats_.failure = failure;
    Log(LogLevel::kWarn, component_,
        "writes to the new collection stopped (the reindex will fail; the live index is not "
        "affected): " +
            failure.message());
  }
}

Status PipelineRunner::AttachShadow(std::shared_ptr<Sink> shadow, Millis give_up_after) {
  std::lock_guard lock(targets_mutex_);
  if (shadow_) return FailedPrecondition("a reindex is already writing to a new collection");
  shadow_ = std::move(shadow);
  shadow_give_up_after_ = give_up_after;
  shadow_stats_ = {};
  return Status::Ok();
}

ShadowStats PipelineRunner::ShadowState() const {
  std::lock_guard lock(targets_mutex_);
  return shadow_stats_;
}

void PipelineRunner::DetachShadow() {
  std::lock_guard lock(targets_mutex_);
  shadow_.reset();
}

Status PipelineRunner::PromoteShadow() {
  std::lock_guard lock(targets_mutex_);
  if (!shadow_) return FailedPrecondition("no new collection to switch to");
  if (!shadow_stats_.failure.ok()) return shadow_stats_.failure;
  sink_ = std::move(shadow_);
  shadow_.reset();
  return Status::Ok();
}

Status PipelineRunner::WaitCaughtUp(const std::function<bool()>& cancelled, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  auto ended = [&]() -> std::optional<Status> {
    if (abandon_ || stop_requested_ || (cancelled && cancelled())) {
      return Cancelled("stopped while waiting for the pipeline to catch up");
    }
    if (Clock::now() > deadline) {
      return Unavailable("the pipeline did not catch up within " + FormatMillis(timeout));
    }
    return std::nullopt;
  };
  uint64_t seq = 0;
  {
    std::unique_lock lock(caught_up_mutex_);
    const uint64_t after = polls_started_;
    while (last_end_poll_ <= after) {
      if (std::optional<Status> end = ended()) return *end;
      poll_now_ = true;  // rather than waiting out the source's idle wait
      wake_.WakeAll();
      caught_up_changed_.wait_for(lock, 100ms);
    }
    seq = registered_through_end_poll_;
  }
  while (!tracker_.AckedThrough(seq)) {
    if (std::optional<Status> end = ended()) return *end;
    wake_.SleepFor(20ms, [&] { return tracker_.AckedThrough(seq); });
  }
  return Status::Ok();
}

Status PipelineRunner::StartBackfillIfDue() {
  if (!source_->BackfillOnFirstStart()) return Status::Ok();
  Result<std::string> marker = state_.LoadMarker(config_.name, "backfill");
  if (!marker.ok()) return marker.status();
  const bool interrupted = *marker == "running";
  if (!interrupted && !(marker->empty() && persisted_.empty())) return Status::Ok();
  Result<std::unique_ptr<searchsync::FullRead>> full_read = source_->OpenFullRead();
  if (!full_read.ok()) return full_read.status();
  if (Status status = state_.SaveMarker(config_.name, "backfill", "running"); !status.ok()) {
    return status;
  }
  Log(LogLevel::kInfo, component_,
      interrupted ? "backfill: the last one was interrupted; reading everything again"
                  : "backfill: first start, reading everything beside the change stream");
  // The guard exists before the stream reads anything, so no delete the stream sends can
  // precede it.
  std::shared_ptr<DeleteGuard> guard = AddGuard();
  backfill_thread_ = std::thread([this, full_read = std::move(*full_read), guard]() mutable {
    std::shared_ptr<Sink> sink;
    {
      std::lock_guard lock(targets_mutex_);
      sink = sink_;
    }
    Result<FullReadStats> stats = FullRead(*full_read, *sink, {}, std::move(guard));
    if (!stats.ok()) {
      if (stats.status().code() == StatusCode::kCancelled) {
        Log(LogLevel::kInfo, component_, "backfill interrupted; it runs again on the next start");
      } else {
        Fail(Status(stats.status().code(), "backfill: " + stats.status().message()));
      }
      return;
    }
    if (Status status = state_.SaveMarker(config_.name, "backfill", "done"); !status.ok()) {
      return Fail(status);
    }
    Log(LogLevel::kInfo, component_,
        "backfill done read=" + std::to_string(stats->read) +
            " created=" + std::to_string(stats->created) +
            " already_present=" + std::to_string(stats->already_present) +
            " skipped_deleted=" + std::to_string(stats->skipped_deleted) +
            " rejected=" + std::to_string(stats->rejected));
  });
  return Status::Ok();
}

}  // namespace searchsync
