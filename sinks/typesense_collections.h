#pragma once
// CollectionAdmin (pipeline/collection_admin.h) for Typesense: the timestamped collections
// behind an alias (sinks/collections.h) over TypesenseClient. Each call tries each node at most
// once; retrying is the caller's.

#include <memory>
#include <string>

#include "pipeline/collection_admin.h"
#include "pipeline/config.h"

namespace searchsync {

// The collections behind the alias `sink.collection`, created from schemas like
// `sink.schema_json`; `component` names the owner in logs.
std::unique_ptr<CollectionAdmin> MakeTypesenseCollections(const TypesenseOptions& typesense,
                                                          const SinkOptions& sink,
                                                          std::string component);

}  // namespace searchsync
