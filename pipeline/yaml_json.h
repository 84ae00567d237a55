#pragma once
// YAML written as JSON, for values the config carries as YAML but a server reads as JSON (a
// collection schema, a CouchDB selector).

#include <yaml-cpp/yaml.h>

#include <string>

namespace searchsync {

// Plain (unquoted) scalars that YAML reads as null, booleans or numbers become JSON
// null/true/false/numbers; everything else becomes strings.
std::string YamlToJson(const YAML::Node& node);

}  // namespace searchsync
