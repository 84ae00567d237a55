#pragma once
// Scripted fakes for driving the pipeline without servers.

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
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

  // Shared so a test keeps a view after handing the source to a runner.
  struct Shared {
    std::mutex mutex;
    std::vector<std::string> commits;
    std::atomic<size_t> polled{0};  // events handed out
  };
  std::shared_ptr<Shared> shared() const { return shared_; }

 private:
  std::vector<Event> events_;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

// Applies writes to an in-memory index, with failure switches.
class FakeSink : public Sink {
 public:
  struct Shared {
    std::mutex mutex;
    std::condition_variable written;
    std::map<std::string, std::string> index;  // id -> value of field "v"
    std::vector<size_t> batch_sizes;
    std::set<std::string> reject_ids;          // rejected like a schema mismatch
    int unavailable_writes = 0;                // the next N writes fail with kUnavailable
    int fail_after_batches = -1;               // after N good batches, fail for good
    std::atomic<bool> blocked{false};          // writes wait while set
    std::atomic<int> writes_in_flight{0};
    int max_writes_in_flight = 0;
    std::set<std::string> ids_in_flight;
    bool same_id_in_two_writes = false;        // per-id order violation detector
    Status permanent_error = FailedPrecondition("typesense refused the API key");
  };

  FakeSink() = default;
  Status HealthCheck() override { return Status::Ok(); }
  Status Prepare() override { return Status::Ok(); }
  Result<WriteReport> Write(const Batch& batch) override;
  std::shared_ptr<Shared> shared() const { return shared_; }

 private:
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace searchsync::test
