#pragma once
// The README's configuration reference, generated from the key tables so it cannot drift:
// `searchsync check --reference` prints it, and a unit test compares it with the README.

#include <string>

#include "pipeline/config.h"

namespace searchsync {

// Every key table (top level, typesense, retry, state, admin, s3, snapshot, pipeline, each
// source of `connectors`, transforms, sink, batch, queue, reindex, backup) rendered as
// markdown.
std::string ConfigReferenceMarkdown(const ConnectorParsers& connectors);

}  // namespace searchsync
