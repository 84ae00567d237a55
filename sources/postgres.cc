#include "sources/postgres.h"

namespace searchsync {
const std::span<const KeySpec> kPostgresKeys;
SourceFactory ParsePostgresSource(const Section&) { return nullptr; }
}  // namespace searchsync
