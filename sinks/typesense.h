#pragma once
// The Typesense sink: bulk import (action=upsert) and delete by id, over libcurl.
//
// Writes go to one real collection: the one the alias `sink.collection` points at when Prepare
// runs (created with the alias when neither exists), or a concrete collection given in
// TypesenseSinkTarget (reindex writes to the new collection while the alias still points at the
// old one). Never through the alias, which a reindex may move while batches are in flight.
// Create-only batches import with action=create; "already exists" lines count as stored. Each
// Write sends the deletes (by id filter in chunks, and one by one for ids the filter syntax
// cannot express), then one import of every upsert, and checks every import result line. A
// request refused as a whole for good (a 4xx about the request, such as a proxy's 413) is sent
// again in halves down to single documents (deletes: one by one), so that only a document
// refused alone is rejected. Result lines saying 429 or 5xx are WriteReport::retryable. Each
// call tries each of `typesense.nodes` at most once and starts at the node that answered last;
// the retry loop is the pipeline's.

#include <memory>
#include <optional>
#include <string>

#include "pipeline/config.h"
#include "pipeline/sink.h"

namespace searchsync {

struct TypesenseSinkTarget {
  // Write to this real collection instead of the alias `sink.collection`. Prepare then only
  // checks that it exists: it creates nothing and leaves the alias alone.
  std::optional<std::string> collection;
};

// `component` names the instance in logs, e.g. "pipeline=products sink=typesense".
// The returned sink is safe to call from up to `sink.concurrency` threads at once.
std::unique_ptr<Sink> MakeTypesenseSink(const TypesenseOptions& typesense, const SinkOptions& sink,
                                        std::string component, TypesenseSinkTarget target = {});

}  // namespace searchsync
