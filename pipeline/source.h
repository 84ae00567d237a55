#pragma once
// The two ways the pipeline reads a source of truth, both pulled (the pipeline owns threads,
// back-pressure and shutdown):
//   Source    the change stream: "changes after X", checkpointed after acknowledgement;
//   FullRead  one pass over everything the source holds now (reindex, backfill).
// tests/integration/source_contract_test.cc runs the same contract tests against every source.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "pipeline/event.h"
#include "pipeline/status.h"

namespace searchsync {

// A one-pass read of everything the source of truth holds now, for reindex and for the
// backfill on a first start. Where a row from the full read and a live change meet, the live
// change wins: the pipeline writes full-read rows with create-only semantics
// (Batch::create_only) and drops ids the live stream deleted meanwhile (DeleteGuard).
// One thread at a time (not necessarily the same one). Connects lazily on first use.
class FullRead {
 public:
  virtual ~FullRead() = default;

  // The next up to `max_events` documents, upserts only (what is gone is simply not read),
  // each document once; an empty result once everything was read. Event::position means
  // nothing here (never a checkpoint): an interrupted full read starts again from the
  // beginning, with a new FullRead. After a failure (kUnavailable: transient) Next may be
  // called again: it goes on where the last result ended, or, where the source cannot resume
  // its read (a MySQL result stream), starts over, so documents may come again (the
  // create-only writes keep the first).
  virtual Result<std::vector<Event>> Next(size_t max_events) = 0;

  // How many documents a full read started now would give (e.g. SELECT count(*) of the rows
  // that are not soft-deleted), for reindex progress and verification; nullopt when the source
  // cannot count cheaply.
  virtual Result<std::optional<uint64_t>> CountAll() { return std::optional<uint64_t>(); }
};

class Source {
 public:
  virtual ~Source() = default;

  // Up to `max_events` changes after `from`, in source order; each event's `position` is the
  // checkpoint just after it. An empty `from` means from the beginning. Every source honours
  // `from`: a Poll from a checkpoint gives what follows it and nothing before it, whether it is
  // the position of the last event this source gave (the usual next poll) or a checkpoint from
  // the state store (a restart, a rewound checkpoint). Changes of one document come in the
  // order they were made; a source may give only the latest version of a document (polling
  // reads rows, not history), never an older one after a newer.
  // An empty result means caught up *now* (polling: no newer rows below the safe horizon;
  // Kafka: end of every partition; CouchDB: last_seq reached).
  // Transient failures (connection lost) return kUnavailable and the pipeline retries with
  // backoff; kInvalidArgument/kFailedPrecondition stop the pipeline with the message.
  // Source thread only. Connects lazily on first use.
  virtual Result<std::vector<Event>> Poll(const Checkpoint& from, size_t max_events) = 0;

  // Everything up to `upto` is acknowledged by the sink and checkpointed in the state store.
  // (Kafka commits offsets here.) Source thread only.
  virtual Status Commit(const Checkpoint& /*upto*/) { return Status::Ok(); }

  // The current documents of `ids` (distinct), read from the source of truth the way Poll
  // reads rows (e.g. the pipeline's query restricted to those ids): one kUpsert per id still
  // there, in any order; an id not returned is gone (deleted, or no longer matched by the
  // query). For the kRefetch events Poll returns; see pipeline/refetch.h. Transient failures
  // return kUnavailable. Source thread only.
  virtual Result<std::vector<Event>> ReadDocuments(std::span<const std::string> /*ids*/) {
    return Status(StatusCode::kFailedPrecondition, "this source type cannot re-read documents");
  }

  // Whether the last non-empty Poll read everything the source held when that Poll began
  // (Postgres: every row and tombstone below its horizon fitted in the page), so the stream was
  // at its end, as after an empty Poll. Lets a reindex catch up with a source that is never
  // idle. False when unknown: then only an empty Poll counts. Source thread only.
  virtual bool LastPollReachedEnd() const { return false; }

  // Checks that the source is reachable and configured right (for `searchsync check`).
  virtual Status HealthCheck() = 0;

  // How long the pipeline waits after an empty Poll before asking again (Postgres:
  // poll_interval). Sources whose Poll already blocks for new data return a short wait.
  virtual std::chrono::milliseconds IdleWait() const { return std::chrono::seconds(1); }

  // A new, independent full read of this source (see FullRead); kFailedPrecondition when the
  // source has none (a message that says what to configure).
  virtual Result<std::unique_ptr<FullRead>> OpenFullRead() {
    return Status(StatusCode::kFailedPrecondition, "this source type has no full read");
  }

  // Whether a first start (no checkpoint yet) runs the full read beside the change stream:
  // true where the stream does not hold the whole history (Kafka retention), false where
  // reading the stream from the beginning already gives every row (Postgres polling).
  virtual bool BackfillOnFirstStart() const { return false; }
};

}  // namespace searchsync
