#include "sinks/collections.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "sinks/typesense_encode.h"

namespace searchsync {

namespace {

using nlohmann::json;

constexpr std::string_view kStampPattern = "dddddddddTddddddZ";  // YYYYMMDDTHHMMSSZ

bool MatchesStamp(std::string_view stamp) {
  // "20261121T031500Z": 8 digits, 'T', 6 digits, 'Z'.
  if (stamp.size() != 16) return false;
  for (size_t i = 0; i < stamp.size(); ++i) {
    const char c = stamp[i];
    if (i == 8 ? c != 'T' : i == 15 ? c != 'Z' : !std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// What Typesense assumes for a field option the schema leaves out.
const json* FieldDefault(const std::string& option) {
  static const json kDefaults = {{"facet", false}, {"optional", false}, {"index", true},
                                 {"infix", false}, {"locale", ""},      {"stem", false},
                                 {"store", true}};
  auto it = kDefaults.find(option);
  return it == kDefaults.end() ? nullptr : &*it;
}

Result<json> ParseSchemaObject(std::string_view text, const char* what) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("fields") || !parsed["fields"].is_array()) {
    return Status(StatusCode::kInvalidArgument,
                  std::string(what) + " is not a JSON object with a \"fields\" array");
  }
  return parsed;
}

}  // namespace

bool IsTimestampedCollectionOf(std::string_view alias, std::string_view name) {
  static_assert(kStampPattern.size() == 17);
  return name.size() == alias.size() + 17 && name.substr(0, alias.size()) == alias &&
         name[alias.size()] == '_' && MatchesStamp(name.substr(alias.size() + 1));
}

Result<std::string> CreateTimestampedCollection(
    TypesenseClient& client, std::string_view alias, std::string_view schema_json,
    std::chrono::system_clock::time_point now,
    const std::function<Status(const std::string&)>& before_create) {
  // Free names are looked for first, so a create that answers with an error after the server
  // made the collection (a cut connection) can be recognised as ours by its existence.
  std::string name;
  for (int attempt = 0;; ++attempt) {
    name = TimestampedCollectionName(alias, now + std::chrono::seconds(attempt));
    Result<bool> exists = client.CollectionExists(name);
    if (!exists.ok()) return exists.status();
    if (!*exists) break;
    if (attempt == 60) {
      return Status(StatusCode::kFailedPrecondition,
                    "no free collection name for alias '" + std::string(alias) +
                        "': 60 collections with consecutive timestamps exist");
    }
  }
  Result<std::string> schema = SchemaWithName(schema_json, name);
  if (!schema.ok()) return schema.status();
  if (before_create) {
    if (Status status = before_create(name); !status.ok()) return status;
  }
  if (Status created = client.CreateCollection(*schema); !created.ok()) {
    Result<bool> exists_now = client.CollectionExists(name);
    if (!exists_now.ok() || !*exists_now) return created;
  }
  return name;
}

Result<std::vector<std::string>> RetireOldCollections(TypesenseClient& client,
                                                      std::string_view alias, size_t keep) {
  Result<std::optional<std::string>> target = client.GetAlias(alias);
  if (!target.ok()) return target.status();
  if (!target->has_value()) return std::vector<std::string>();
  const std::string& live = **target;

  Result<std::vector<CollectionInfo>> collections = client.ListCollections();
  if (!collections.ok()) return collections.status();
  std::vector<std::string> older;
  for (const CollectionInfo& collection : *collections) {
    // Timestamps sort as text, so "older than the live one" is a string comparison.
    if (IsTimestampedCollectionOf(alias, collection.name) && collection.name < live) {
      older.push_back(collection.name);
    }
  }
  std::sort(older.begin(), older.end(), std::greater<>());  // newest first
  std::vector<std::string> dropped;
  for (size_t i = keep; i < older.size(); ++i) {
    if (Status status = client.DropCollection(older[i]); !status.ok()) return status;
    dropped.push_back(older[i]);
  }
  return dropped;
}

Result<std::vector<std::string>> SchemaDifferences(std::string_view configured_schema_json,
                                                   std::string_view collection_json) {
  Result<json> configured = ParseSchemaObject(configured_schema_json, "the configured schema");
  if (!configured.ok()) return configured.status();
  Result<json> live = ParseSchemaObject(collection_json, "the collection's schema");
  if (!live.ok()) return live.status();

  std::vector<std::string> differences;
  auto live_field = [&](const std::string& name) -> const json* {
    for (const json& field : (*live)["fields"]) {
      if (field.value("name", "") == name) return &field;
    }
    return nullptr;
  };
  for (const json& field : (*configured)["fields"]) {
    const std::string name = field.value("name", "");
    const json* other = live_field(name);
    if (other == nullptr) {
      differences.push_back("field '" + name + "' is configured but not in the collection");
      continue;
    }
    // Options the configuration sets, plus the ones whose default a collection may differ in.
    std::vector<std::string> options;
    for (const auto& [option, value] : field.items()) {
      if (option != "name") options.push_back(option);
    }
    for (const char* option : {"facet", "optional", "index"}) {
      if (!field.contains(option)) options.push_back(option);
    }
    for (const std::string& option : options) {
      const json* wanted = field.contains(option) ? &field[option] : FieldDefault(option);
      const json* has = other->contains(option) ? &(*other)[option] : FieldDefault(option);
      if (wanted == nullptr || has == nullptr || *wanted == *has) continue;
      differences.push_back("field '" + name + "': " + option + " is " + wanted->dump() +
                            " in the configuration but " + has->dump() + " in the collection");
    }
  }
  for (const json& field : (*live)["fields"]) {
    const std::string name = field.value("name", "");
    const bool configured_too =
        std::any_of((*configured)["fields"].begin(), (*configured)["fields"].end(),
                    [&](const json& f) { return f.value("name", "") == name; });
    // Typesense adds the leaves of object fields it indexed (`brand.name`) to the schema.
    const bool flattened = field.value("nested", false) && name.find('.') != std::string::npos;
    if (!configured_too && !flattened) {
      differences.push_back("field '" + name + "' is in the collection but not configured");
    }
  }
  for (const char* option :
       {"default_sorting_field", "token_separators", "symbols_to_index", "enable_nested_fields"}) {
    if (!configured->contains(option)) continue;
    const json& wanted = (*configured)[option];
    const json has = live->contains(option) ? (*live)[option] : json();
    if (wanted != has) {
      differences.push_back(std::string(option) + " is " + wanted.dump() +
                            " in the configuration but " + has.dump() + " in the collection");
    }
  }
  return differences;
}

}  // namespace searchsync
