#pragma once
// The explicit table of connectors and transforms. Only registry.cc names concrete ones.

#include <span>
#include <string_view>

#include "pipeline/config.h"

namespace searchsync {

// Parses a source's options from `section` (errors recorded through it) and returns a factory
// for live sources; returns nullptr when the options had errors.
using ParseSourceFn = SourceFactory (*)(const Section& section);

struct SourceRegistration {
  std::string_view type;
  std::span<const KeySpec> keys;
  ParseSourceFn parse;
};

// A transform entry in YAML is a one-key mapping: `- rename: { a: b }`. `value` is the node
// under that key; errors are recorded through `where`; an empty Transform means it had errors.
using ParseTransformFn = Transform (*)(const YAML::Node& value, const std::string& path,
                                       const Section& where);

struct TransformRegistration {
  std::string_view name;
  ParseTransformFn parse;
  std::string_view help;
};

std::span<const SourceRegistration> SourceRegistry();
std::span<const TransformRegistration> TransformRegistry();

struct Config;
struct PipelineConfig;
// The Typesense sink for one pipeline.
std::unique_ptr<Sink> MakeSink(const Config& config, const PipelineConfig& pipeline);

}  // namespace searchsync
