#pragma once
// The machinery of a YAML configuration, shared by the engine and the connectors: key tables,
// sections read against them with every error collected, and the parsers of durations, sizes
// and ${VAR} references.
//
// Each component declares its keys once, in a table (KeyTable, or a plain span of KeySpec). The
// same table validates the YAML (unknown keys, missing required keys, wrong types), fills the
// options struct with the values or their defaults, and generates the README's key reference
// (`searchsync check --reference`).
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
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
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

// ---- Key tables that fill an options struct -----------------------------------------------
//
// A Key names one key of a section and the field of `Options` it fills, so that a key's name,
// type, default and documentation are written once:
//
//   constexpr Key<BatchOptions> kBatchKeyList[] = {
//       {"max_events", KeyType::kInt, &BatchOptions::max_events, false, "Send once ..."},
//   };
//   constinit const KeyTable<BatchOptions> kBatchKeys(kBatchKeyList);
//   const Section batch = sink.Child("batch", kBatchKeys.specs());
//   BatchOptions options = kBatchKeys.Read(batch);
//
// A key's default is its field's in-class initialiser: Read leaves an absent key's field as a
// default-constructed Options has it, and specs() renders that value as the table's default
// text (for the reference, and for the Section getters). A key without a field (a nested
// mapping, or a value that needs parsing of its own) is read from the Section by hand.

template <class Options>
using KeyField =
    std::variant<std::monostate, std::string Options::*, Secret Options::*, bool Options::*,
                 int Options::*, size_t Options::*, Millis Options::*,
                 std::optional<Millis> Options::*, std::vector<std::string> Options::*>;

// Whether a value of `type` can be stored in the field alternative `field_index` of KeyField
// (in its order: none, string, Secret, bool, int, size_t, Millis, optional<Millis>, list).
constexpr bool KeyFits(KeyType type, size_t field_index) {
  switch (field_index) {
    case 0:
      return true;
    case 1:
      return type == KeyType::kString;
    case 2:
      return type == KeyType::kSecret;
    case 3:
      return type == KeyType::kBool;
    case 4:
      return type == KeyType::kInt;
    case 5:
      return type == KeyType::kInt || type == KeyType::kSize;
    case 6:
    case 7:
      return type == KeyType::kDuration;
    case 8:
      return type == KeyType::kStringList;
  }
  return false;
}

// The field of a key read by hand (a nested mapping, or a value that needs parsing of its own).
inline constexpr std::monostate kReadByHand;

template <class Options>
struct Key {
  // consteval: a key whose type does not fit its field does not compile.
  // `by_hand_default`: the default of a key read by hand, as YAML writes it (a key with a
  // field has its field's).
  consteval Key(std::string_view name, KeyType type, KeyField<Options> field, bool required,
                std::string_view help, std::string_view by_hand_default = {})
      : name(name),
        type(type),
        field(field),
        required(required),
        help(help),
        by_hand_default(by_hand_default) {
    if (!KeyFits(type, field.index())) throw "the key's type does not fit its field";
    if (field.index() != 0 && !by_hand_default.empty()) throw "a field has its own default";
  }

  std::string_view name;
  KeyType type;
  KeyField<Options> field;  // kReadByHand: none
  bool required;
  std::string_view help;
  std::string_view by_hand_default;
};

// A field's value as a key's default is written in YAML; empty for no default (an empty string
// or list, a secret, an unset duration).
std::string DefaultText(KeyType type, const std::string& value);
std::string DefaultText(KeyType type, const Secret& value);
std::string DefaultText(KeyType type, bool value);
std::string DefaultText(KeyType type, int value);
std::string DefaultText(KeyType type, size_t value);
std::string DefaultText(KeyType type, Millis value);
std::string DefaultText(KeyType type, const std::optional<Millis>& value);
std::string DefaultText(KeyType type, const std::vector<std::string>& value);

// The value of a present key, read as `type` into a field of its type. An integer outside the
// field's range is clamped to it (size_t: 0 and up); checks of the range are the parse
// function's, which names the limits in its message.
void ReadKey(const Section& section, std::string_view key, KeyType type, std::string& out);
void ReadKey(const Section& section, std::string_view key, KeyType type, Secret& out);
void ReadKey(const Section& section, std::string_view key, KeyType type, bool& out);
void ReadKey(const Section& section, std::string_view key, KeyType type, int& out);
void ReadKey(const Section& section, std::string_view key, KeyType type, size_t& out);
void ReadKey(const Section& section, std::string_view key, KeyType type, Millis& out);
void ReadKey(const Section& section, std::string_view key, KeyType type,
             std::optional<Millis>& out);
void ReadKey(const Section& section, std::string_view key, KeyType type,
             std::vector<std::string>& out);

// A table of Keys with the KeySpecs a Section validates against. Its constructor only keeps
// the keys, so a table at namespace scope is constant-initialised (declare it `constinit`) and
// usable from any static initialiser; specs() renders the defaults on first use. Holds views of
// its own strings, so it is neither copied nor moved. Thread-safe.
template <class Options>
class KeyTable {
 public:
  template <size_t N>
  constexpr explicit KeyTable(const Key<Options> (&keys)[N]) : keys_(keys) {}
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  std::span<const KeySpec> specs() const {
    std::call_once(built_, [this] { BuildSpecs(); });
    return specs_;
  }

  // An Options whose fields are the section's values, or their defaults for absent keys.
  Options Read(const Section& section) const {
    Options out{};
    Fill(section, out);
    return out;
  }

  // Sets the fields of the keys present in `section`; the others keep their values in `out`.
  // For sections whose keys fill a struct shared with another section.
  void Fill(const Section& section, Options& out) const {
    for (const Key<Options>& key : keys_) {
      if (!section.Has(key.name)) continue;
      std::visit(
          [&](auto field) {
            if constexpr (!std::is_same_v<decltype(field), std::monostate>) {
              ReadKey(section, key.name, key.type, out.*field);
            }
          },
          key.field);
    }
  }

 private:
  void BuildSpecs() const {
    const Options defaults{};
    defaults_.reserve(keys_.size());  // specs_ views these strings: no reallocation after this
    for (const Key<Options>& key : keys_) {
      defaults_.push_back(std::visit(
          [&](auto field) -> std::string {
            if constexpr (std::is_same_v<decltype(field), std::monostate>) {
              return std::string(key.by_hand_default);
            } else {
              return DefaultText(key.type, defaults.*field);
            }
          },
          key.field));
    }
    for (size_t index = 0; index < keys_.size(); ++index) {
      const Key<Options>& key = keys_[index];
      specs_.push_back({key.name, key.type, defaults_[index], key.required, key.help});
    }
  }

  std::span<const Key<Options>> keys_;
  mutable std::once_flag built_;
  mutable std::vector<std::string> defaults_;
  mutable std::vector<KeySpec> specs_;
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
