#pragma once
// The product's configuration: the parsed Config the runner works from, the engine's own key
// tables (config.cc) and LoadConfig. The key-table machinery is in config_section.h, YAML as
// JSON in yaml_json.h, the README's reference in config_reference.h.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/batcher.h"
#include "pipeline/config_section.h"
#include "pipeline/sink.h"
#include "pipeline/source.h"
#include "pipeline/status.h"
#include "pipeline/transform.h"

namespace searchsync {

// ---- The parsed configuration -------------------------------------------------------------

struct RetryOptions {
  Millis initial_backoff{100};
  Millis max_backoff{30'000};
  std::optional<Millis> max_elapsed;  // unset: retry forever
};

struct TypesenseOptions {
  std::vector<std::string> nodes;  // "http://host:port"; several nodes: failover between them
  Secret api_key;
  Millis timeout{60 * 60 * 1000};  // client-side timeout for one import call
  RetryOptions retry;
};

struct StateOptions {
  std::string path = "./searchsync-state";  // directory holding state.db
};

struct AdminOptions {
  std::string listen;  // host:port; empty = no admin API
  Secret token;
};

struct SinkOptions {
  std::string collection;   // the alias searches use
  std::string schema_json;  // the collection schema as a JSON object, without "name"
  BatchOptions batch;
  int concurrency = 2;  // import calls in flight
};

// Bounds of the change queue between source and sink: when full, the source pauses.
struct QueueOptions {
  size_t max_events = 100'000;
  size_t max_bytes = 64 * 1024 * 1024;
};

struct ReindexOptions {
  std::string schedule;  // 5-field cron; empty = none
  int keep = 2;
};

// Scheduled backups of a pipeline's collection (see pipeline/app/backup.h).
struct BackupOptions {
  std::string to;        // a directory or s3://bucket/prefix; empty = no scheduled backups
  std::string schedule;  // 5-field cron; empty = only on demand
  int keep = 7;          // complete backups kept in `to`; 0 = keep all
};

// The S3-compatible service behind s3:// backup locations.
struct S3Options {
  std::string endpoint;  // "https://host[:port]"; empty = AWS, https://s3.<region>.amazonaws.com
  std::string region = "us-east-1";
  Secret access_key_id;
  Secret secret_access_key;
};

// Typesense's own server-side snapshots, taken on a schedule by `run`.
struct SnapshotOptions {
  std::string path;      // directory on the Typesense server's machine
  std::string schedule;  // 5-field cron; empty = only on demand (`searchsync snapshot`)
};

using SourceFactory = std::function<std::unique_ptr<Source>()>;

struct PipelineConfig {
  std::string name;
  std::string source_type;
  SourceFactory make_source;  // builds a fresh, unconnected source
  std::vector<Transform> transforms;
  SinkOptions sink;
  QueueOptions queue;
  ReindexOptions reindex;
  BackupOptions backup;
};

struct Config {
  std::string file;
  TypesenseOptions typesense;
  StateOptions state;
  AdminOptions admin;
  S3Options s3;
  SnapshotOptions snapshot;
  std::vector<PipelineConfig> pipelines;
};

// ---- The connectors a config may name ------------------------------------------------------
// The engine names no connector: the application gives the loader its table of parsers
// (pipeline/app/registry.h).

// Parses a source's options from `section` (errors recorded through it) and returns a factory
// for live sources; returns nullptr when the options had errors. `pipeline` is the pipeline's
// name, for the source's log lines.
using ParseSourceFn = SourceFactory (*)(const Section& section, std::string_view pipeline);

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

struct ConnectorParsers {
  std::span<const SourceRegistration> sources;
  std::span<const TransformRegistration> transforms;
};

// Reads, expands and validates `path`; sources and transforms are parsed by `connectors`. On
// any error returns kInvalidArgument whose message is every error, one "file:line:col: message"
// per line.
Result<Config> LoadConfig(const std::string& path, const ConnectorParsers& connectors);
// The same from text already in memory; `file` names it in messages.
Result<Config> ParseConfig(const std::string& text, const std::string& file,
                           const ConnectorParsers& connectors);

// The engine's key tables in the order the reference lists them: the file's own sections down
// to `pipelines[]`, then a pipeline's sections after its source and transforms. Each title is
// the reference's heading.
struct TitledKeys {
  std::string title;
  std::span<const KeySpec> keys;
};
std::vector<TitledKeys> FileKeyTables();
std::vector<TitledKeys> PipelineKeyTables();
// A source's keys as its section is read: `type`, then the connector's own.
std::vector<KeySpec> SourceKeys(const SourceRegistration& registration);

}  // namespace searchsync
