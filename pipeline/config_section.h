#pragma once
// The machinery of a YAML configuration, shared by the engine and the connectors: key tables,
// sections read against them with every error collected, and the parsers of durations, sizes
// and ${VAR} references.
//
// Each component declares its keys once, in a constexpr table of KeySpec. The same table
// validates the YAML (unknown keys, missing required keys, wrong types), supplies defaults, and
// generates the README's key reference (`searchsync check --reference`).
//
// Errors are collected, never thrown, and printed compiler-style:
//   pipelines.yaml:14:7: unknown key 'pol_interval' (did you mean 'poll_interval'?)
//   pipelines.yaml:31:19: pipelines[1].sink.batch.flush_interval: expected a duration like
//     250ms or 5s, got "soon"
//   pipelines.yaml:9:14: typesense.api_key: environment variable TYPESENSE_API_KEY is not set

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/status.h"

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

// Parsing helpers, exposed for tests and for connectors with values of their own.
std::optional<Millis> ParseDuration(std::string_view text);  // "250ms", "5s", "30m", "1h30m"
std::optional<uint64_t> ParseSize(std::string_view text);    // "512KiB", "5MiB", "2MB", "1024"
std::optional<bool> ParseBool(std::string_view text);        // true/false, any case
std::optional<int64_t> ParseInt(std::string_view text);      // "-12", "+3"
// Expands ${VAR} and ${VAR:-default}. kInvalidArgument names a missing variable.
Result<std::string> ExpandEnv(std::string_view text);
// The closest candidate within a small edit distance, or empty.
std::string DidYouMean(std::string_view key, std::span<const KeySpec> keys);
std::string Nearest(std::string_view key, std::span<const std::string_view> names);
const char* KeyTypeName(KeyType type);  // "duration", "string list", ...

// ---- Reading a document ---------------------------------------------------------------------

// The whole of a text file of at most 16 MiB, or what is wrong: a directory, unreadable, too
// large.
Result<std::string> ReadTextFile(const std::filesystem::path& path);
// `text` parsed as one YAML document, its size bounded (aliases expand to at most 10^6 nodes)
// and its merge keys (`<<: *base`) applied; nullopt when it cannot be used, with the reason
// recorded in `errors` against `file`.
std::optional<YAML::Node> LoadYamlDocument(const std::string& text, const std::string& file,
                                           ConfigErrors& errors);
// Records `message` at `mark` (yaml-cpp's 0-based mark; printed 1-based).
void Record(ConfigErrors& errors, const std::string& file, const YAML::Mark& mark,
            std::string message);

// ---- Walking YAML nodes, for parse functions with structure of their own -----------------

bool Present(const YAML::Node& node);       // defined and not null
YAML::Mark MarkOf(const YAML::Node& node);  // null mark when undefined
// The value (or the key node) under `key` in a mapping, or an undefined node. Never inserts.
YAML::Node Lookup(const YAML::Node& map, std::string_view key);
YAML::Node KeyNode(const YAML::Node& map, std::string_view key);
// The `index`-th item of a sequence, or an undefined node.
YAML::Node Element(const YAML::Node& sequence, size_t index);
std::string Indexed(const std::string& path, size_t index);  // "path[index]"
// `text` quoted for a message, cut at 64 bytes on a UTF-8 boundary.
std::string ShownValue(std::string_view text);

}  // namespace searchsync
