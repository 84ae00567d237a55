#pragma once
// The built-in transforms. Each parses its YAML value into a pure Transform.
//   - rename: { from: to, ... }     rename top-level fields
//   - drop: [field, ...]            remove top-level fields
//   - cast: { field: type, ... }    convert values to a Typesense field type

#include <string>

#include "pipeline/config.h"

namespace searchsync {

Transform ParseRename(const YAML::Node& value, const std::string& path, const Section& where);
Transform ParseDrop(const YAML::Node& value, const std::string& path, const Section& where);
Transform ParseCast(const YAML::Node& value, const std::string& path, const Section& where);

}  // namespace searchsync
