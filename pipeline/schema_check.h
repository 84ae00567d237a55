#pragma once
// A collection schema checked as Typesense checks it (API-NOTES.md, POST /collections), so a
// schema the server would refuse is a config error at `searchsync check`, not a failed run.

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace searchsync {

// One thing Typesense would refuse: at `fields[field].key`, or at the top-level `key`.
struct SchemaProblem {
  std::optional<size_t> field;
  std::string key;  // empty: the field (or schema) as a whole
  std::string message;
};

// Every problem Typesense would answer a create-collection call for `schema_json` with 400.
// REQUIRES: `schema_json` is a JSON object with a "fields" array.
std::vector<SchemaProblem> CheckSchema(const std::string& schema_json);

// Reads a JSON schema file into `json` (compacted): "" on success, else what is wrong with the
// file (unreadable, not JSON, not an object, sets "name", lacks "fields").
std::string ReadSchemaFile(const std::filesystem::path& path, std::string& json);

}  // namespace searchsync
