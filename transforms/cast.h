#pragma once
// `cast: { field: type, ... }`: converts top-level field values of upserts to a Typesense type.
//
// Conversion rules, for each element of an array type alike:
//   string        strings as they are; numbers and booleans as their canonical text; objects
//                 and arrays as their JSON text.
//   int32, int64  integers; numeric strings ("42", "3.0"); floats only when integral (3.5 is an
//                 error, never truncated); int32 is range-checked.
//   float         numbers; numeric strings. Re-emitted in shortest round-trip form.
//   bool          true/false; 0/1; strings "true"/"false" (any case), "t"/"f" (Postgres text),
//                 "1"/"0".
//   object        objects only (validated, kept as they are).
//   T[]           arrays element-wise; a non-array value becomes a one-element array; null
//                 elements are dropped. A Postgres array literal string such as "{a,b}" is a
//                 string, not an array: sources emit JSON arrays.
// A null field stays null (Typesense treats null on an optional field as absent); a missing
// field is left missing. A value that cannot be converted fails the event with kInvalidArgument
// naming the field, the target type and the value, and the pipeline dead-letters it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/config.h"

namespace searchsync {

enum class CastType : uint8_t {
  kString,
  kInt32,
  kInt64,
  kFloat,
  kBool,
  kObject,
  kStringArray,
  kInt32Array,
  kInt64Array,
  kFloatArray,
  kBoolArray,
  kObjectArray,
};

// "string", "int32[]", ...: the names Typesense uses in a schema.
std::string_view CastTypeName(CastType type);
std::optional<CastType> CastTypeFromName(std::string_view name);

// Converts one JSON value. On failure, kInvalidArgument says why, e.g.
// `cannot be converted to int32 (out of range): 3000000000`; the caller names the field.
// Any thread; keeps a per-thread parse buffer.
Result<std::string> CastJson(std::string_view json, CastType type);

struct FieldCast {
  std::string field;
  CastType type;
};
Transform MakeCast(std::vector<FieldCast> casts);

// Reads `{ field: type, ... }`; an unknown type is an error with the nearest type suggested.
Transform ParseCast(const YAML::Node& value, const std::string& path, const Section& where);

}  // namespace searchsync
