#pragma once
// PipelineRunner: runs one pipeline: source -> transforms -> change queue -> lanes -> sink.
//
//   source thread            dispatcher thread          lane threads (sink.concurrency)
//   Poll -> transform  ->  ChangeQueue  ->  route by hash(id)  ->  Batcher -> Sink::Write
//        Register(seq)        (bounded:                 (one id, one lane: per-id order
//                              source pauses)            holds across requests in flight)
//                                                             |
//   Source::Commit  <-  StateStore checkpoint  <-  AckTracker.Ack(seqs of the batch)
//
// A checkpoint moves only after the sink acknowledged every event before it (AckTracker), and
// is written before the source is told (Commit), so `kill -9` at any moment loses nothing.
//
// Full reads (reindex, and the backfill on a first start) run beside this stream: FullRead
// reads Source::OpenFullRead page by page and writes create-only batches, while the lanes record
// every id they delete in a DeleteGuard first (see DeleteGuard for why the live change wins).
// During a reindex the lanes write each batch to the sink and then to a shadow sink (the new
// collection) before acknowledging it, until PromoteShadow makes the shadow the sink.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_set>
#include <vector>

#include "pipeline/ack_tracker.h"
#include "pipeline/batcher.h"
#include "pipeline/change_queue.h"
#include "pipeline/config.h"
#include "pipeline/refetch.h"
#include "pipeline/retry.h"
#include "pipeline/sink.h"
#include "pipeline/source.h"
#include "pipeline/state_store.h"

namespace searchsync {

struct RunOptions {
  bool once = false;  // stop when the source is caught up and everything read is acknowledged
  // After Stop(), how long lanes keep retrying to flush what they hold before giving up (what
  // they give up on stays unacknowledged and is read again on the next start).
  Millis shutdown_grace{30'000};
  size_t poll_batch = 10'000;  // max events asked from the source per Poll
};

struct PipelineReport {
  std::string name;
  // kRetrying while the sink or the source keeps failing; after a run, kCaughtUp only for a
  // --once run that read everything the source had and got all of it acknowledged, else
  // kStopped (or kFailed).
  RunState state = RunState::kStarting;
  PipelineCounters counters;
  uint64_t dead_lettered_this_run = 0;
  std::string last_error;  // the failure, or the error being retried; empty once recovered
  std::string checkpoint;
  size_t queue_events = 0;
  size_t in_flight = 0;  // read but not yet acknowledged
  uint64_t batches = 0;  // batches the sink acknowledged, this run
  uint64_t retries = 0;  // transient failures retried (sink writes and source polls), this run
  // Age of the oldest event read but not yet acknowledged; 0 when everything read is.
  double lag_seconds = 0;
  // How long the sink or the source has been failing without a success; 0 when it is not.
  Millis retrying_for{0};
  // Documents re-read because they may have changed (kRefetch: a related table's row changed),
  // this run: still there (upserted) and gone (deleted).
  uint64_t documents_reread_found = 0;
  uint64_t documents_reread_gone = 0;
  // Sink writes allowed in flight now (Sink::InFlightLimit): sink.concurrency, lower while
  // Typesense refuses or lags; 0 when the sink does not pace.
  int in_flight_limit = 0;
};

// Ids the live stream deletes while a full read writes into the same collection.
//
// A full read may have read a row just before the live stream deleted it; written afterwards,
// it would bring the document back. So the lanes Record a batch's deleted ids before sending
// the batch, and the full-read writer holds the guard across "drop guarded ids + import":
//   - Record before the full-read import took the guard: the import skips the id.
//   - Record after: the import has completed, and the delete is sent after it, so it wins.
// Upserts need no guard: a create-only import never replaces a document the live stream wrote,
// and a live upsert after the import replaces the full read's version. Either way the live
// change wins, in every interleaving.
//
// Thread safety: any thread. Memory: one entry per id deleted during the full read.
class DeleteGuard {
 public:
  void Record(const Batch& batch);
  // Removes guarded ids from `batch`, then runs `write` with the guard held.
  Result<WriteReport> WriteWithGuardHeld(
      Batch& batch, const std::function<Result<WriteReport>(const Batch&)>& write);
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::unordered_set<std::string> deleted_;
};

// What a full read did.
struct FullReadStats {
  uint64_t read = 0;             // upserts the full-read source gave
  uint64_t created = 0;          // documents the full read created
  uint64_t already_present = 0;  // left as they were: a live change wrote them first
  uint64_t skipped_deleted = 0;  // deleted by the live stream meanwhile (DeleteGuard)
  uint64_t rejected = 0;         // refused by the sink or a transform: dead-lettered
};

struct FullReadOptions {
  // Called after every batch, from the full-read thread.
  std::function<void(const FullReadStats&)> on_progress;
  // Checked between batches and retries; the read ends with kCancelled when it returns true.
  std::function<bool()> cancelled;
  // Gives up when the source or the sink stays unavailable this long (unset: retry.max_elapsed,
  // or forever when that is unset too).
  std::optional<Millis> give_up_after;
};

// What the lanes wrote to a shadow sink (counted before sending, so a count read at any
// moment bounds what the shadow holds).
struct ShadowStats {
  uint64_t upserts = 0;
  uint64_t deletes = 0;
  uint64_t rejected = 0;
  Status failure;  // the write that made the lanes stop writing to the shadow
};

class PipelineRunner {
 public:
  PipelineRunner(PipelineConfig config, RetryOptions retry, std::unique_ptr<Source> source,
                 std::unique_ptr<Sink> sink, StateStore& state, RunOptions options);
  ~PipelineRunner();

  // Runs on the calling thread until caught up (once) or Stop(). OK when it stopped cleanly;
  // otherwise the error that stopped the pipeline (also recorded in the state store).
  Status Run();
  // Requests a graceful stop: stop reading, flush what is held (retrying for up to
  // RunOptions::shutdown_grace), checkpoint. Any thread.
  void Stop();
  // Stop() without the grace period: writes that are retrying give up at once, what is not
  // acknowledged stays so and is read again on the next start. Any thread.
  void StopNow();
  PipelineReport Report() const;  // any thread

  // ---- Full reads and reindex (any thread, while Run is running) -------------------------

  // Reads `full_read` (from Source::OpenFullRead) from the beginning to its end and writes it
  // to `target` in create-only batches of sink.batch.max_events, after the pipeline's
  // transforms, skipping ids the live stream deletes meanwhile. Rejected documents go to the
  // dead-letter store. `target` is the pipeline's sink (backfill) or a shadow (reindex).
  // kCancelled when options.cancelled() or the pipeline stops; the last error when the source
  // or sink stays unavailable past give_up_after or fails for good.
  Result<FullReadStats> FullRead(searchsync::FullRead& full_read, Sink& target,
                                 const FullReadOptions& options);

  // From now on, every batch the lanes write to the sink is written to `shadow` too before it
  // is acknowledged. A shadow that fails (kUnavailable beyond `give_up_after`, or any other
  // error) is left behind with ShadowStats::failure set: the live pipeline never waits on it
  // beyond that and never loses data for it. kFailedPrecondition when a shadow is attached.
  Status AttachShadow(std::shared_ptr<Sink> shadow, Millis give_up_after);
  // The shadow's counts so far (failure set once it failed).
  ShadowStats ShadowState() const;
  // Stops writing to the shadow (batches already writing to it finish first).
  void DetachShadow();
  // Makes the shadow the sink: batches taken after this go to it alone. Batches taken before go
  // to both, so no batch is split across the two. Returns the shadow's failure, if any (then
  // nothing changes).
  Status PromoteShadow();

  // Catch-up by position, not by silence: blocks until a Poll that started after this call read
  // to the end of the source (found nothing new, or Source::LastPollReachedEnd), and every event
  // read up to the end of that Poll is acknowledged (by the sink and any shadow). A source that
  // is never idle thus still catches up. Wakes the source rather than waiting out its idle wait.
  // kCancelled when `cancelled()` or the pipeline stops or fails; kUnavailable after `timeout`.
  Status WaitCaughtUp(const std::function<bool()>& cancelled, Millis timeout);

  StateStore& state() const { return state_; }

  // Events read from the source by this run (for reindex verification).
  uint64_t events_read() const { return read_; }

 private:
  struct Lane;

  void SourceLoop();
  void DispatchLoop();
  void LaneLoop(Lane& lane);
  void WriteWithRetry(Lane& lane, PendingBatch& pending);
  // Writes one batch to the shadow with bounded retries; a failure is recorded in
  // shadow_stats_ and ends the shadow. `primary` is the sink's report for the same batch.
  void WriteShadow(Lane& lane, Sink& shadow, PendingBatch& pending, const WriteReport& primary);
  void DeadLetterRejections(const Batch& batch, const std::vector<Rejection>& rejected,
                            const std::string& prefix);
  // Registers a new DeleteGuard with the lanes (FullRead unregisters it when it ends).
  std::shared_ptr<DeleteGuard> AddGuard();
  Result<FullReadStats> FullRead(searchsync::FullRead& full_read, Sink& target,
                                 const FullReadOptions& options,
                                 std::shared_ptr<DeleteGuard> guard);
  // Backfill on a first start (Source::BackfillOnFirstStart): starts backfill_thread_ when no
  // backfill has completed and either nothing was checkpointed yet or an earlier one was
  // interrupted. The state store's "backfill" marker is "running" until it completes.
  Status StartBackfillIfDue();
  // Waits the source's idle wait, or less when stopped or when WaitCaughtUp asks for a poll.
  void IdleSleep();
  void Acknowledge(const PendingBatch& pending, const WriteReport& report);
  searchsync::DeadLetter MakeDeadLetter(const Event& event, std::string error) const;
  void DeadLetter(const Event& event, const std::string& error);
  // Runs the pipeline's transforms over an upsert in place; when one fails, the event as read
  // goes to the dead-letter store and the result is false.
  bool TransformOrDeadLetter(Event& event);
  void PersistProgress(RunState state);
  // Source thread: turns the kRefetch events of a polled page into upserts and deletes by
  // re-reading them (pipeline/refetch.h); marks superseded duplicates. On error the page is
  // unchanged and is polled again.
  Status ResolveRefetchesOf(std::vector<Event>& events, std::vector<bool>& superseded);
  static constexpr size_t kRefetchChunk = 1000;  // ids per ReadDocuments call
  static constexpr std::chrono::seconds kRefetchLogInterval{5};
  void Fail(const Status& status);
  // Ends the shutdown grace period (once): lanes give up what they retry. `why` starts the log.
  void EndGrace(const std::string& why);
  // A failure streak (sink or source) ended; last_error is cleared once none is going on.
  void Recovered(std::atomic<int64_t>& failing_since_ms);
  void SetState(RunState state);
  bool Failed() const;
  // A retry's sleep: ends early (false) when the pipeline gives up (abandon_), on a stop request
  // too when `stop_on_stop_request`, and when `cancelled()` (which also implies the former).
  std::function<bool(Millis)> RetrySleep(bool stop_on_stop_request,
                                         std::function<bool()> cancelled = {});
  Status PrepareSink();
  const std::string& component() const { return component_; }

  const PipelineConfig config_;
  const RetryOptions retry_;
  const RunOptions options_;
  const std::string component_;
  std::unique_ptr<Source> source_;
  StateStore& state_;

  // Where the lanes write. Each batch takes both pointers once, so a swap happens between
  // batches; shared_ptr keeps a sink alive for batches still writing to it.
  mutable std::mutex targets_mutex_;
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<Sink> shadow_;
  Millis shadow_give_up_after_{0};
  ShadowStats shadow_stats_;
  std::vector<std::shared_ptr<DeleteGuard>> guards_;  // full reads in progress

  // WaitCaughtUp: polls started, and the last one that reached the end of the source (empty, or
  // LastPollReachedEnd) with the last seq it registered.
  std::mutex caught_up_mutex_;
  std::condition_variable caught_up_changed_;
  uint64_t polls_started_ = 0;
  uint64_t last_end_poll_ = 0;
  uint64_t registered_through_end_poll_ = 0;
  std::atomic<uint64_t> registered_{0};
  std::atomic<bool> poll_now_{false};

  std::thread backfill_thread_;
  std::atomic<bool> backfill_running_{false};

  ChangeQueue queue_;
  AckTracker tracker_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> draining_{false};          // flush partial batches now
  std::atomic<bool> abandon_{false};           // give up on unacknowledged work
  std::atomic<bool> source_caught_up_{false};  // once: the source had nothing more to give
  Waker wake_;  // retry sleeps, the idle wait and the waits below end when a flag above is set

  mutable std::mutex status_mutex_;
  Status failure_;
  RunState run_state_ = RunState::kStarting;
  std::string last_error_;

  // Persisting: the checkpoint and the counters it accounts for, written together.
  mutable std::mutex persist_mutex_;
  Checkpoint persisted_;
  uint64_t persisted_events_ = 0;  // events of this run up to persisted_
  PipelineCounters base_counters_;
  std::atomic<uint64_t> read_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> dead_lettered_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> retries_{0};
  // kRefetch events resolved by re-reading (pipeline/refetch.h), this run. Source thread
  // writes; Snapshot() reads.
  std::atomic<uint64_t> reread_found_{0};
  std::atomic<uint64_t> reread_gone_{0};
  RefetchTotals refetch_totals_;  // source thread only
  std::chrono::steady_clock::time_point last_refetch_log_{};
  // Steady-clock milliseconds of the first failure of the current retry streak; 0: none.
  std::atomic<int64_t> sink_failing_since_ms_{0};
  std::atomic<int64_t> source_failing_since_ms_{0};
};

}  // namespace searchsync
