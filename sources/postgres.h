#pragma once
// The `postgres` source: polls a table, view or query by (updated_at, primary key).

#include <span>

#include "pipeline/config.h"

namespace searchsync {

extern const std::span<const KeySpec> kPostgresKeys;

// Reads PostgresOptions from `section`; nullptr when they had errors.
SourceFactory ParsePostgresSource(const Section& section);

}  // namespace searchsync
