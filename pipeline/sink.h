#pragma once
// A sink: where documents go. The product has one, Typesense; the interface keeps the pipeline
// free of HTTP and lets tests drive the pipeline with a scripted sink.

#include "pipeline/event.h"
#include "pipeline/status.h"

namespace searchsync {

class Sink {
 public:
  virtual ~Sink() = default;

  // Reachability and credentials, run by `searchsync check` and at start-up.
  virtual Status HealthCheck() = 0;

  // Makes sure the destination exists (Typesense: creates the alias's first collection from the
  // schema, under a fixed name so that two daemons starting together create one, and points
  // the alias at it when the alias does not exist yet). Called once before Write.
  virtual Status Prepare() = 0;

  // Writes one batch: upserts and deletes, at most one event per id. A create_only batch
  // (upserts only) creates the documents whose ids are not stored yet and leaves the others.
  // Error: the batch as a whole failed; kUnavailable means retry the whole batch later (writes
  // are idempotent), kFailedPrecondition (e.g. API key refused) stops the pipeline.
  // Report: everything not in `rejected` is stored; rejected documents go to the dead-letter
  // store. Called from up to `concurrency` threads at once, never with one id in two calls,
  // except that a create_only batch may overlap live writes of the same ids.
  virtual Result<WriteReport> Write(const Batch& batch) = 0;

  // How many Write calls the sink lets run at once now: it lowers this while the server refuses
  // writes or lags, and raises it back as writes succeed (see InFlightPacer). 0: not paced.
  virtual int InFlightLimit() const { return 0; }
};

}  // namespace searchsync
