#pragma once
// CollectionAdmin: the collections behind a pipeline's alias, as reindex and restore drive them.
//
//   alias "products" -> products_20261121T031500Z   (live)
//                       products_20261120T031500Z   (kept for rollback: reindex.keep)
//
// A job builds a new collection beside the live one, fills it through a Sink of its own, counts
// it, makes it live in one step (searches never see a half-built index), and retires old ones;
// a job that fails drops what it built. The sink's implementation (Typesense:
// sinks/typesense_collections.h) comes from the registry; tests drive the jobs with a fake.
//
// Thread safety: one caller at a time per instance; instances are independent.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/sink.h"
#include "pipeline/status.h"

namespace searchsync {

struct PipelineConfig;
class StateStore;

// What the sink says of one collection.
struct CollectionFacts {
  std::string name;  // the real name (the alias's target when looked up by the alias)
  uint64_t documents = 0;
  std::string schema_json;  // the collection's schema as the sink describes it
};

class CollectionAdmin {
 public:
  virtual ~CollectionAdmin() = default;

  // The name searches use: the pipeline's alias (sink.collection).
  virtual const std::string& alias() const = 0;

  // The collection the alias points at; nullopt when there is no such alias.
  virtual Result<std::optional<std::string>> LiveCollection() = 0;

  // Creates a new, empty collection of the alias from `schema_json` (the pipeline's schema, or
  // a backup's) and returns its name, which never names an existing collection.
  // `before_create`, when set, is called with that name first (to record the build, see
  // DropLeftoverBuilds); its failure is returned and nothing is created.
  virtual Result<std::string> CreateBeside(
      std::string_view schema_json,
      const std::function<Status(const std::string&)>& before_create = {}) = 0;

  // What the sink says of collection `name` (the alias's target when `name` is the alias, or a
  // real collection so named); nullopt when there is none.
  virtual Result<std::optional<CollectionFacts>> Describe(const std::string& name) = 0;

  // A sink that writes into collection `name` alone, never through the alias (the shadow
  // writes of a reindex); its Prepare only checks that the collection exists.
  virtual std::unique_ptr<Sink> OpenSink(const std::string& name, std::string component) = 0;

  // Points the alias at `name` (atomic for readers) and returns the collection it pointed at
  // before (nullopt: there was no alias), so that a failure afterwards can move it back.
  virtual Result<std::optional<std::string>> MakeLive(const std::string& name) = 0;

  // Drops collection `name` by its real name (never pass the alias); one already gone is fine.
  virtual Status Drop(const std::string& name) = 0;

  // Drops the alias's collections that are older than the live one, except the `keep` newest
  // of them (kept for rollback); returns the names dropped. Collections newer than the live one
  // (a build in progress) are left alone, and nothing is dropped when there is no alias.
  virtual Result<std::vector<std::string>> RetireOld(size_t keep) = 0;

  // How `schema_json` (a collection's, from Describe, or a backup's) differs from the
  // pipeline's configured schema: one readable line per difference, empty when they agree.
  // kInvalidArgument when either is not a schema.
  virtual Result<std::vector<std::string>> SchemaDifferences(
      std::string_view schema_json) const = 0;
};

// Makes the CollectionAdmin of one pipeline; `component` names its owner in logs.
using CollectionAdminFactory = std::function<std::unique_ptr<CollectionAdmin>(
    const PipelineConfig& pipeline, const std::string& component)>;

// The crash bookkeeping of jobs that build collections: a job records its new collection in
// `state` (StateStore::RecordBuild, from CreateBeside's before_create) and forgets it once it
// made it live or dropped it. This drops the alias's collections whose records name a builder
// that is gone (killed before it swapped or dropped them), and forgets their records. A
// collection the alias points at is kept (the builder died after the swap); one whose builder
// may still run (BuilderMayBeAlive) is left alone. Returns the names dropped; logs each under
// `component`.
Result<std::vector<std::string>> DropLeftoverBuilds(CollectionAdmin& admin, StateStore& state,
                                                    std::string_view component);

}  // namespace searchsync
