#pragma once
// The explicit table of connectors and transforms: the one place that names concrete ones.
// The engine's config loader knows them only through the table it is given (ConnectorParsers);
// the functions below load a config with every connector of this build.

#include <memory>
#include <span>
#include <string>

#include "pipeline/collection_admin.h"
#include "pipeline/config.h"
#include "pipeline/sink.h"

namespace searchsync {

std::span<const SourceRegistration> SourceRegistry();
std::span<const TransformRegistration> TransformRegistry();
// Both tables, for the config loader.
ConnectorParsers Connectors();

// LoadConfig, ParseConfig and ConfigReferenceMarkdown (pipeline/config.h) with Connectors().
Result<Config> LoadConfig(const std::string& path);
Result<Config> ParseConfig(const std::string& text, const std::string& file);
std::string ConfigReferenceMarkdown();

// The Typesense sink for one pipeline.
std::unique_ptr<Sink> MakeSink(const Config& config, const PipelineConfig& pipeline);
// The Typesense collections behind one pipeline's alias, for reindex and restore; `component`
// names the owner in logs.
std::unique_ptr<CollectionAdmin> MakeCollectionAdmin(const Config& config,
                                                     const PipelineConfig& pipeline,
                                                     const std::string& component);

}  // namespace searchsync
