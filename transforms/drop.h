#pragma once
// `drop: [field, ...]`: removes top-level fields from upserts.

#include <string>
#include <vector>

#include "pipeline/config.h"

namespace searchsync {

// Fields not in the document are ignored.
Transform MakeDrop(std::vector<std::string> fields);

// Reads `[field, ...]`, or a single field name.
Transform ParseDrop(const YAML::Node& value, const std::string& path, const Section& where);

}  // namespace searchsync
