#pragma once
// `rename: { from: to, ... }`: renames top-level fields of upserts.

#include <string>
#include <vector>

#include "pipeline/config.h"

namespace searchsync {

struct FieldRename {
  std::string from;
  std::string to;
};

// All renames apply at once, so { a: b, b: a } swaps. A missing `from` field is a no-op; a
// renamed field replaces a field that already has its new name. Event::id is never touched.
// REQUIRES: no two renames share a `to`.
Transform MakeRename(std::vector<FieldRename> renames);

// Reads `{ from: to, ... }`. Renaming onto `id` is an error: the sink takes the document id from
// Event::id and ignores a field of that name.
Transform ParseRename(const YAML::Node& value, const std::string& path, const Section& where);

}  // namespace searchsync
