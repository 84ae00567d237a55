#include "pipeline/app/registry.h"

#include "pipeline/config_reference.h"
#include "sinks/typesense.h"
#include "sinks/typesense_collections.h"
#include "sources/couchdb.h"
#include "sources/maxwell.h"
#include "sources/postgres.h"
#include "transforms/transforms.h"

namespace searchsync {

std::span<const SourceRegistration> SourceRegistry() {
  static const SourceRegistration kSources[] = {
      {"postgres", PostgresKeys(), &ParsePostgresSource},
      {"maxwell", MaxwellKeys(), &ParseMaxwellSource},
      {"couchdb", CouchdbKeys(), &ParseCouchdbSource},
  };
  return kSources;
}

std::span<const TransformRegistration> TransformRegistry() {
  static const TransformRegistration kTransforms[] = {
      {"rename", &ParseRename, "rename top-level fields: { from: to, ... }"},
      {"drop", &ParseDrop, "remove top-level fields: [field, ...]"},
      {"cast", &ParseCast, "convert values to a Typesense type: { field: type, ... }"},
  };
  return kTransforms;
}

ConnectorParsers Connectors() {
  return {.sources = SourceRegistry(), .transforms = TransformRegistry()};
}

Result<Config> LoadConfig(const std::string& path) { return LoadConfig(path, Connectors()); }

Result<Config> ParseConfig(const std::string& text, const std::string& file) {
  return ParseConfig(text, file, Connectors());
}

std::string ConfigReferenceMarkdown() { return ConfigReferenceMarkdown(Connectors()); }

std::unique_ptr<Sink> MakeSink(const Config& config, const PipelineConfig& pipeline) {
  return MakeTypesenseSink(config.typesense, pipeline.sink,
                           "pipeline=" + pipeline.name + " sink=typesense");
}

std::unique_ptr<CollectionAdmin> MakeCollectionAdmin(const Config& config,
                                                     const PipelineConfig& pipeline,
                                                     const std::string& component) {
  return MakeTypesenseCollections(config.typesense, pipeline.sink, component);
}

}  // namespace searchsync
