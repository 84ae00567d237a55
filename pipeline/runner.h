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

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "pipeline/ack_tracker.h"
#include "pipeline/batcher.h"
#include "pipeline/change_queue.h"
#include "pipeline/config.h"
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

struct PipelineSnapshot {
  std::string name;
  std::string state;  // starting, running, caught_up, retrying, stopping, stopped, failed
  PipelineCounters counters;
  uint64_t dead_lettered_this_run = 0;
  std::string last_error;
  std::string checkpoint;
  size_t queue_events = 0;
  size_t in_flight = 0;  // read but not yet acknowledged
};

class PipelineRunner {
 public:
  PipelineRunner(PipelineConfig config, RetryOptions retry, std::unique_ptr<Source> source,
                 std::unique_ptr<Sink> sink, StateStore& state, RunOptions options);
  ~PipelineRunner();

  // Runs on the calling thread until caught up (once) or Stop(). OK when it stopped cleanly;
  // otherwise the error that stopped the pipeline (also recorded in the state store).
  Status Run();
  // Requests a graceful stop: stop reading, flush what is held, checkpoint. Any thread.
  void Stop();
  PipelineSnapshot Snapshot() const;  // any thread

 private:
  struct Lane;

  void SourceLoop();
  void DispatchLoop();
  void LaneLoop(Lane& lane);
  void WriteWithRetry(Lane& lane, PendingBatch& pending);
  void Acknowledge(const PendingBatch& pending, const WriteReport& report);
  searchsync::DeadLetter MakeDeadLetter(const Event& event, std::string error) const;
  void DeadLetter(const Event& event, const std::string& error);
  void DeadLetterAll(const PendingBatch& pending, const std::string& error);
  void PersistProgress(const char* state);
  void Fail(const Status& status);
  void SetState(const char* state);
  bool Failed() const;
  // Sleeps up to `wait`; returns early (false) when the pipeline stops or gives up.
  bool SleepUnlessStopped(Millis wait, bool stop_on_stop_request);
  Status PrepareSink();
  const std::string& component() const { return component_; }

  const PipelineConfig config_;
  const RetryOptions retry_;
  const RunOptions options_;
  const std::string component_;
  std::unique_ptr<Source> source_;
  std::unique_ptr<Sink> sink_;
  StateStore& state_;

  ChangeQueue queue_;
  AckTracker tracker_;
  std::vector<std::unique_ptr<Lane>> lanes_;

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> draining_{false};   // flush partial batches now
  std::atomic<bool> abandon_{false};    // give up on unacknowledged work
  std::mutex wake_mutex_;
  std::condition_variable wake_;

  mutable std::mutex status_mutex_;
  Status failure_;
  std::string state_name_ = "starting";
  std::string last_error_;

  // Persisting: the checkpoint and the counters it accounts for, written together.
  mutable std::mutex persist_mutex_;
  Checkpoint persisted_;
  PipelineCounters base_counters_;
  std::atomic<uint64_t> read_{0};
  std::atomic<uint64_t> acked_{0};
  std::atomic<uint64_t> dead_lettered_{0};
};

}  // namespace searchsync
