#pragma once
// InFlightPacer: how many requests a sink lets be in flight at once, paced by AIMD.
//
//   limit = max            at start
//   overloaded  (503, 429, a lagging write queue)  -> limit = max(1, limit / 2)
//   `limit` writes in a row succeed at this limit  -> limit = min(max, limit + 1)
//
// A burst of refusals from requests that were all in flight together halves the limit once,
// not once per refusal: a refusal of a request that started before the last decrease is not
// news. Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace searchsync {

class InFlightPacer {
 public:
  explicit InFlightPacer(int max);

  // Waits until fewer than limit() requests are in flight, then counts one more. Returns a
  // ticket for Done.
  uint64_t Start();
  // The request of `ticket` ended; `overloaded`: the server refused it for load.
  void Done(uint64_t ticket, bool overloaded);
  // A load signal that is no request's answer (e.g. the server reports its write queue
  // lagging): lowers the limit like a refusal, at most once per `limit` requests started.
  void Overloaded();

  int limit() const;
  int max() const { return max_; }

 private:
  void DecreaseLocked();

  const int max_;
  mutable std::mutex mutex_;
  std::condition_variable room_;
  int limit_;
  int in_flight_ = 0;
  int successes_ = 0;          // in a row, at the current limit
  uint64_t started_ = 0;       // tickets handed out
  uint64_t decreased_at_ = 0;  // started_ when the limit last went down
};

}  // namespace searchsync
