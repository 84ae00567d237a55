#pragma once
// The built-in transforms, as pipeline/app/registry.cc names them. Each parses its YAML value into
// a pure Transform; an empty Transform means the value had errors, recorded through `where`.
//   - rename: { from: to, ... }     rename top-level fields            (rename.h)
//   - drop: [field, ...]            remove top-level fields            (drop.h)
//   - cast: { field: type, ... }    convert values to a Typesense type (cast.h)

#include "transforms/cast.h"
#include "transforms/drop.h"
#include "transforms/rename.h"
