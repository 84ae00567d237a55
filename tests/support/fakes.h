#pragma once
// Scripted fakes for driving the pipeline without servers.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pipeline/sink.h"
#include "pipeline/source.h"

namespace searchsync::test {

Event Upsert(std::string id, std::string value = "1");
Event Delete(std::string id);

// Replays a fixed list of events; the checkpoint token is the count of events consumed.
class FakeSource : public Source {
 public:
  explicit FakeSource(std::vector<Event> events);
  Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) override;
  Status Commit(const Checkpoint& upto) override;
  Status HealthCheck() override { return Status::Ok(); }
  std::chrono::milliseconds IdleWait() const override { return std::chrono::milliseconds(10); }
  // A FakeFullRead of the events given to SetFullRead (sharing shared()), or
  // kFailedPrecondition when none were given.
  Result<std::unique_ptr<FullRead>> OpenFullRead() override;
  bool BackfillOnFirstStart() const override { return backfill_on_first_start_; }

  // What OpenFullRead gives, and whether a first start runs it as a backfill.
  void SetFullRead(std::vector<Event> events, bool backfill_on_first_start);

  // Shared so a test keeps a view after handing the source to a runner.
  struct Shared {
    std::mutex mutex;
    std::vector<std::string> commits;
    std::atomic<size_t> polled{0};            // events handed out
    std::atomic<size_t> full_read_polled{0};  // events handed out by full reads
    // Full reads answer kUnavailable once they handed out this many events (-1: never).
    std::atomic<long> full_read_fail_after{-1};
    // Full reads wait before each Next while set.
    std::atomic<bool> full_read_blocked{false};
    // Live polls fail with kUnavailable while set (the database cannot be reached).
    std::atomic<bool> unavailable{false};
    // Called by each live poll that hands out events, after reading them (under `mutex`).
    std::function<void()> during_poll;
  };
  std::shared_ptr<Shared> shared() const { return shared_; }

 private:
  std::vector<Event> events_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::optional<std::vector<Event>> full_read_;
  bool backfill_on_first_start_ = false;
};

// Replays a fixed list of events as a full read, with the full-read switches of `shared`.
class FakeFullRead : public FullRead {
 public:
  explicit FakeFullRead(std::vector<Event> events, std::shared_ptr<FakeSource::Shared> shared =
                                                       std::make_shared<FakeSource::Shared>());
  Result<std::vector<Event>> Next(size_t max_events) override;

 private:
  std::vector<Event> events_;
  std::shared_ptr<FakeSource::Shared> shared_;
  size_t next_ = 0;  // index of the next event to give
};

// Applies writes to an in-memory index, with failure switches. Create-only batches leave ids
// that are in the index already as they are (WriteReport::already_present).
class FakeSink : public Sink {
 public:
  struct Shared {
    std::mutex mutex;
    std::condition_variable written;
    std::map<std::string, std::string> index;  // id -> value of field "v"
    std::vector<size_t> batch_sizes;
    std::set<std::string> reject_ids;  // rejected like a schema mismatch
    // Ids answered as retryable (like Typesense's per-line 500) by the next N writes that hold
    // them (-1: every write); the rest of the batch is stored.
    std::map<std::string, int> retryable_ids;
    std::map<std::string, int> writes_of_id;  // how many writes held each id
    int unavailable_writes = 0;               // the next N writes fail with kUnavailable
    std::set<std::string> unavailable_ids;    // writes holding one of these fail so
    int fail_after_batches = -1;              // after N good batches, fail for good
    std::atomic<bool> blocked{false};         // writes wait while set
    std::atomic<int> writes_in_flight{0};
    int max_writes_in_flight = 0;
    std::set<std::string> ids_in_flight;
    bool same_id_in_two_writes = false;  // per-id order violation detector (live writes)
    int create_only_batches = 0;
    Status permanent_error = FailedPrecondition("typesense refused the API key");
    std::atomic<bool> prepare_unavailable{false};  // Prepare fails with kUnavailable while set
  };

  FakeSink() = default;
  Status HealthCheck() override { return Status::Ok(); }
  Status Prepare() override {
    return shared_->prepare_unavailable ? Unavailable("fake sink: GET /aliases/products: HTTP 503")
                                        : Status::Ok();
  }
  Result<WriteReport> Write(const Batch& batch) override;
  std::shared_ptr<Shared> shared() const { return shared_; }

 private:
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace searchsync::test
