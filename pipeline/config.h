#pragma once
// The YAML configuration: key tables, typed reading with every error collected, and the parsed
// Config the runner works from.
//
// Each component declares its keys once, in a constexpr table of KeySpec. The same table
// validates the YAML (unknown keys, missing required keys, wrong types), supplies defaults, and
// generates the README's key reference (`searchsync check --reference`).
//
// Errors are collected, never thrown, and printed compiler-style:
//   pipelines.yaml:14:7: unknown key 'pol_interval' (did you mean 'poll_interval'?)
//   pipelines.yaml:31:19: pipelines[1].sink.batch.flush_interval: expected a duration like 250ms or 5s, got "soon"
//   pipelines.yaml:9:14: typesense.api_key: environment variable TYPESENSE_API_KEY is not set

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

#include "pipeline/sink.h"
#include "pipeline/source.h"
#include "pipeline/status.h"
#include "pipeline/transform.h"

namespace searchsync {

using Millis = std::chrono::milliseconds;

enum class KeyType {
  kString,      // a scalar; ${VAR} and ${VAR:-default} are expanded
  kSecret,      // like kString, but prints as *** everywhere
  kBool,        // true/false
  kInt,         // an integer
  kDuration,    // 250ms, 5s, 30m, 24h (units required)
  kSize,        // 512KiB, 5MiB, 1GiB, or a plain byte count
  kStringList,  // a sequence of scalars, or one scalar meaning a one-element list
  kMapping,     // a nested mapping with its own key table
  kSequence,    // a sequence of mappings
  kAny,         // any YAML (e.g. a schema); read with Section::Node
};

struct KeySpec {
  std::string_view name;
  KeyType type;
  std::string_view default_value;  // as it would be written in YAML; empty = no default
  bool required = false;
  std::string_view help;
};

// A secret string (API key, password, token, DSN). Streams and formats as ***; only value()
// reveals it, for the one call that needs it.
class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& value() const { return value_; }
  bool empty() const { return value_.empty(); }
  static constexpr std::string_view kRedacted = "***";

 private:
  std::string value_;
};

std::ostream& operator<<(std::ostream& out, const Secret& secret);  // writes ***

struct ConfigError {
  std::string file;
  int line = 0;    // 1-based; 0 when the error has no position (e.g. file unreadable)
  int column = 0;  // 1-based
  std::string message;
  std::string ToString() const;  // "file:line:col: message"
};

class ConfigErrors {
 public:
  void Add(ConfigError error) { errors_.push_back(std::move(error)); }
  bool empty() const { return errors_.empty(); }
  const std::vector<ConfigError>& all() const { return errors_; }
  std::string ToString() const;  // one error per line

 private:
  std::vector<ConfigError> errors_;
};

// One YAML mapping of the config file, read against its key table. Constructing it validates
// the keys: unknown keys (with a suggestion), duplicate keys, missing required keys and each
// present value's type are all recorded at once. Getters then return the value or the key's
// default; on a value that failed validation they return the default (the error is already
// recorded) or, when it has none, a neutral value (empty, 0, false). Never throws.
class Section {
 public:
  // `path` names the mapping in messages, e.g. "pipelines[0].source". A null/undefined `node`
  // is an empty mapping (all defaults). Expands ${VAR} and ${VAR:-default} in every scalar
  // beneath `node`, in place, recording missing variables; build the mappings beneath it with
  // Child() and Item(), which share that expansion, rather than with this constructor.
  Section(std::string file, YAML::Node node, std::string path, std::span<const KeySpec> keys,
          ConfigErrors& errors);

  bool Has(std::string_view key) const;  // present in the YAML with a value (`key:` alone is not)
  std::string String(std::string_view key) const;
  Secret SecretString(std::string_view key) const;
  bool Bool(std::string_view key) const;
  int64_t Int(std::string_view key) const;
  Millis Duration(std::string_view key) const;
  uint64_t Size(std::string_view key) const;
  std::vector<std::string> StringList(std::string_view key) const;
  // A nested mapping read against its own table (defaults apply when the key is absent; its
  // required keys are checked only when it is present).
  Section Child(std::string_view key, std::span<const KeySpec> keys) const;
  // The `index`-th mapping of a kSequence key, read against its own table; its path is
  // "key[index]". REQUIRES: index < Node(key).size().
  Section Item(std::string_view key, size_t index, std::span<const KeySpec> keys) const;
  // The raw node of a key, after ${VAR} expansion of its scalars; undefined when absent.
  YAML::Node Node(std::string_view key) const;
  // The path of a key in messages, e.g. "pipelines[0].source.table".
  std::string PathOf(std::string_view key) const;

  // Records an error at the key's value (or at the mapping, when the key is absent).
  void Error(std::string_view key, std::string_view message) const;
  // Records an error at an arbitrary node of this file; nothing when the node is a scalar whose
  // ${VAR} could not be expanded (that error is recorded already).
  void ErrorAt(const YAML::Node& node, std::string_view message) const;

  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }
  ConfigErrors& errors() const { return *errors_; }

 private:
  struct Nested {};
  // Child() and Item(): validates without expanding again; required keys are checked only
  // when `node` is defined.
  Section(Nested, std::string file, YAML::Node node, std::string path,
          std::span<const KeySpec> keys, ConfigErrors& errors);
  const KeySpec* Spec(std::string_view key) const;
  std::string file_;
  YAML::Node node_;
  std::string path_;
  std::span<const KeySpec> keys_;
  ConfigErrors* errors_;
};

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

struct BatchOptions {
  size_t max_events = 10'000;
  size_t max_bytes = 8 * 1024 * 1024;
  Millis flush_interval{5'000};
};

struct SinkOptions {
  std::string collection;   // the alias searches use
  std::string schema_json;  // the collection schema as a JSON object, without "name"
  BatchOptions batch;
  int concurrency = 2;      // import calls in flight
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

// Parsing helpers, exposed for tests and for connectors with values of their own.
std::optional<Millis> ParseDuration(std::string_view text);  // "250ms", "5s", "30m", "1h30m"
std::optional<uint64_t> ParseSize(std::string_view text);    // "512KiB", "5MiB", "2MB", "1024"
// Expands ${VAR} and ${VAR:-default}. kInvalidArgument names a missing variable.
Result<std::string> ExpandEnv(std::string_view text);
// YAML written as JSON: plain (unquoted) scalars that YAML reads as null, booleans or numbers
// become JSON null/true/false/numbers; everything else becomes strings. For values such as a
// collection schema or a CouchDB selector that the config carries as YAML.
std::string YamlToJson(const YAML::Node& node);
// The closest candidate within a small edit distance, or empty.
std::string DidYouMean(std::string_view key, std::span<const KeySpec> keys);

// Every key table (top level, typesense, retry, state, admin, pipeline, each source of
// `connectors`, transforms, sink, batch, queue, reindex) rendered as markdown, for the README.
std::string ConfigReferenceMarkdown(const ConnectorParsers& connectors);

}  // namespace searchsync
