#pragma once
// The life cycle of the collections behind an alias, which reindex and restore drive through
// CollectionAdmin (sinks/typesense_collections.h):
//
//   alias "products" -> products_20261121T031500Z   (live)
//                       products_20261120T031500Z   (kept for rollback: reindex.keep)
//                       products_20261119T031500Z   (older: dropped by its real name)
//
// A new collection is built beside the live one and the alias moves in one PUT, so searches
// never see a half-built index. Only collections named `<alias>_<UTC timestamp>` belong to an
// alias; anything else in the server is never touched.

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/status.h"
#include "sinks/typesense_client.h"

namespace searchsync {

// Whether `name` is `<alias>_YYYYMMDDTHHMMSSZ` (so "products_v2_..." is not one of "products").
bool IsTimestampedCollectionOf(std::string_view alias, std::string_view name);

// Creates a new, empty `<alias>_<UTC timestamp>` from `schema_json` (a schema without "name")
// and returns its name. The name is never one that exists already: a second build within the
// same second takes the next free second, so a new build can never reuse the live collection.
// `before_create`, when set, is called with the chosen name before the collection is created
// (to record the build, see DropLeftoverBuilds in pipeline/collection_admin.h); its failure is
// returned and nothing is created.
Result<std::string> CreateTimestampedCollection(
    TypesenseClient& client, std::string_view alias, std::string_view schema_json,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now(),
    const std::function<Status(const std::string&)>& before_create = {});

// Drops the alias's timestamped collections that are older than the one it points at, except
// the `keep` newest of them (kept for rollback); returns the names dropped. Collections newer
// than the alias target (a build in progress) are left alone, and nothing is dropped when the
// alias does not exist. Drops by real name, never through the alias.
Result<std::vector<std::string>> RetireOldCollections(TypesenseClient& client,
                                                      std::string_view alias, size_t keep);

// How a collection's schema (as GET /collections/{name} returns it) differs from the
// configured one (a schema without "name"): one readable line per difference, empty when they
// agree. Compares each field's type and the options the configuration sets (facet, optional,
// index, sort, infix, locale, ...; unset options against Typesense's defaults), fields only on
// one side (except the flattened `brand.name` fields Typesense adds for object fields), and
// default_sorting_field, token_separators, symbols_to_index, enable_nested_fields when
// configured. kInvalidArgument when either is not a JSON object with "fields".
Result<std::vector<std::string>> SchemaDifferences(std::string_view configured_schema_json,
                                                   std::string_view collection_json);

}  // namespace searchsync
