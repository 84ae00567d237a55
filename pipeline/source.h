#pragma once
// A source of change events. Sources are pulled: the pipeline owns threads, back-pressure and
// shutdown, and asks the source for "changes after X".

#include <chrono>
#include <cstddef>
#include <vector>

#include "pipeline/event.h"
#include "pipeline/status.h"

namespace searchsync {

class Source {
 public:
  virtual ~Source() = default;

  // Up to `max_events` changes after `from`, in source order; each event's `position` is the
  // checkpoint just after it. An empty result means caught up *now* (polling: no newer rows below
  // the safe horizon; Kafka: end of every partition; CouchDB: last_seq reached).
  // Transient failures (connection lost) return kUnavailable and the pipeline retries with
  // backoff; kInvalidArgument/kFailedPrecondition stop the pipeline with the message.
  // Source thread only. Connects lazily on first use.
  virtual Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) = 0;

  // Everything up to `upto` is acknowledged by the sink and checkpointed in the state store.
  // (Kafka commits offsets here.) Source thread only.
  virtual Status Commit(const Checkpoint& /*upto*/) { return Status::Ok(); }

  // Checks that the source is reachable and configured right (for `searchsync check`).
  virtual Status HealthCheck() = 0;

  // How long the pipeline waits after an empty Poll before asking again (Postgres:
  // poll_interval). Sources whose Poll already blocks for new data return a short wait.
  virtual std::chrono::milliseconds IdleWait() const { return std::chrono::seconds(1); }
};

}  // namespace searchsync
