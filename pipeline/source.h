#pragma once
// A source of change events. Sources are pulled: the pipeline owns threads, back-pressure and
// shutdown, and asks the source for "changes after X".

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
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

  // A one-pass read of everything the source of truth holds now, for reindex and for the
  // backfill on a first start: a new, independent Source whose Poll, from an empty checkpoint,
  // gives upserts only (never deletes: what is gone is simply not read) and an empty result
  // once everything was read. Its positions are its own paging cursor: they are never stored
  // as the pipeline's checkpoint, and an interrupted full read starts again from the beginning.
  // Where a row from the full read and a live change meet, the live change wins: the pipeline
  // writes full-read rows with create-only semantics (see Batch::create_only).
  virtual Result<std::unique_ptr<Source>> OpenFullRead() {
    return Status(StatusCode::kFailedPrecondition, "this source type has no full read");
  }

  // Whether a first start (no checkpoint yet) runs the full read beside the change stream:
  // true where the stream does not hold the whole history (Kafka retention), false where
  // reading the stream from the beginning already gives every row (Postgres polling).
  virtual bool BackfillOnFirstStart() const { return false; }

  // On a full-read source: how many documents a full read started now would give (e.g.
  // SELECT count(*) of the rows that are not soft-deleted), for reindex progress and
  // verification; nullopt when the source cannot count cheaply. Same thread as Poll.
  virtual Result<std::optional<uint64_t>> CountAll() { return std::optional<uint64_t>(); }
};

}  // namespace searchsync
