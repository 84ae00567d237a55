#include "pipeline/config.h"

#include <simdjson.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <system_error>

#include "pipeline/admin_server.h"
#include "pipeline/cron.h"
#include "pipeline/json.h"
#include "pipeline/url.h"

namespace searchsync {
namespace {

// ---- Key tables ----------------------------------------------------------------------------
// Defaults here must match the in-class defaults of the options structs in config.h; a unit
// test parses a minimal config and compares.

constexpr KeySpec kTopKeys[] = {
    {"typesense", KeyType::kMapping, "", true, "The Typesense cluster the collections live in."},
    {"state", KeyType::kMapping, "", false, "Where checkpoints and dead letters are kept."},
    {"admin", KeyType::kMapping, "", false,
     "The admin HTTP API: health, status, metrics, reindex."},
    {"s3", KeyType::kMapping, "", false,
     "The S3-compatible service for `s3://bucket/prefix` backup locations."},
    {"snapshot", KeyType::kMapping, "", false,
     "Typesense's own server-side snapshots, taken on a schedule by `run`."},
    {"pipelines", KeyType::kSequence, "", true,
     "One entry per source-to-collection pipeline; at least one."},
};

constexpr KeySpec kS3Keys[] = {
    {"endpoint", KeyType::kString, "", false,
     "`http(s)://host:port` of the service, addressed path-style; unset: AWS "
     "(`https://s3.<region>.amazonaws.com`)."},
    {"region", KeyType::kString, "us-east-1", false, "Region the requests are signed for."},
    {"access_key_id", KeyType::kSecret, "", false, "e.g. `${AWS_ACCESS_KEY_ID}`."},
    {"secret_access_key", KeyType::kSecret, "", false, "e.g. `${AWS_SECRET_ACCESS_KEY}`."},
};

constexpr KeySpec kSnapshotKeys[] = {
    {"path", KeyType::kString, "", false,
     "Absolute directory on the Typesense server's machine the snapshot is copied to."},
    {"schedule", KeyType::kString, "", false,
     "5-field cron expression in the daemon's local time; unset: only `searchsync snapshot`."},
};

constexpr KeySpec kTypesenseKeys[] = {
    {"nodes", KeyType::kStringList, "", true,
     "Node URLs, `http(s)://host:port`; with several nodes, requests fail over between them."},
    {"api_key", KeyType::kSecret, "", true, "Admin API key, e.g. `${TYPESENSE_API_KEY}`."},
    {"timeout", KeyType::kDuration, "60m", false, "Client-side timeout of one import call."},
    {"retry", KeyType::kMapping, "", false,
     "Backoff for 429, 503, other 5xx and connection errors."},
};

constexpr KeySpec kRetryKeys[] = {
    {"initial_backoff", KeyType::kDuration, "100ms", false,
     "Longest wait before the first retry; the bound doubles with each attempt (full jitter)."},
    {"max_backoff", KeyType::kDuration, "30s", false, "Upper bound of the wait between attempts."},
    {"max_elapsed", KeyType::kDuration, "", false,
     "Give up on a request after this long; unset: retry forever."},
};

constexpr KeySpec kStateKeys[] = {
    {"path", KeyType::kString, "./searchsync-state", false,
     "Directory of the embedded checkpoint and dead-letter store."},
};

constexpr KeySpec kAdminKeys[] = {
    {"listen", KeyType::kString, "", false,
     "`host:port` of the admin API, e.g. `127.0.0.1:8090`; port `0` picks a free port, logged "
     "as `admin API listening on HOST:PORT` (for tests: `status` and `reindex` cannot find "
     "it); unset: no admin API."},
    {"token", KeyType::kSecret, "", false,
     "Bearer token every call must carry; required when `listen` is not a loopback address."},
};

constexpr KeySpec kPipelineKeys[] = {
    {"name", KeyType::kString, "", true,
     "Unique name, `[a-z0-9_-]+`; used in logs, metrics, state and on the command line."},
    {"source", KeyType::kMapping, "", true,
     "Where changes come from; `type` picks the connector (see the source tables)."},
    {"transforms", KeyType::kSequence, "", false,
     "Applied in order to every upsert; each item is a one-key mapping, e.g. "
     "`- rename: { a: b }`."},
    {"sink", KeyType::kMapping, "", true, "The Typesense collection written to."},
    {"queue", KeyType::kMapping, "", false,
     "Bounds of the change queue between source and sink; when full, the source pauses."},
    {"reindex", KeyType::kMapping, "", false,
     "Scheduled rebuilds, and how many old collections to keep."},
    {"backup", KeyType::kMapping, "", false,
     "Scheduled backups of the collection, and how many to keep."},
};

constexpr KeySpec kSourceTypeKey = {"type", KeyType::kString, "", true,
                                    "Selects the connector, and with it the keys below."};

constexpr KeySpec kSinkKeys[] = {
    {"collection", KeyType::kString, "", true,
     "The alias searches use; each reindex builds a new collection behind it."},
    {"schema", KeyType::kMapping, "", false,
     "The collection schema, Typesense's JSON written as YAML, with `fields` and without "
     "`name`. Exactly one of `schema` and `schema_file`."},
    {"schema_file", KeyType::kString, "", false,
     "A JSON file holding the schema, relative to this config file."},
    {"batch", KeyType::kMapping, "", false, "When an import call is sent."},
    {"concurrency", KeyType::kInt, "2", false, "Import calls in flight, 1..64."},
};

constexpr KeySpec kBatchKeys[] = {
    {"max_events", KeyType::kInt, "10000", false, "Send once this many documents wait."},
    {"max_bytes", KeyType::kSize, "8MiB", false, "Send once the waiting documents hold this much."},
    {"flush_interval", KeyType::kDuration, "5s", false,
     "Send whatever waits this long after its first change."},
};

constexpr KeySpec kQueueKeys[] = {
    {"max_events", KeyType::kInt, "100000", false,
     "Changes held between source and sink; at least `sink.batch.max_events`."},
    {"max_bytes", KeyType::kSize, "64MiB", false,
     "Memory held between source and sink; at least `sink.batch.max_bytes`."},
};

constexpr KeySpec kReindexKeys[] = {
    {"schedule", KeyType::kString, "", false,
     "5-field cron expression in the daemon's local time, e.g. `\"0 3 * * *\"`; unset: only "
     "on demand."},
    {"keep", KeyType::kInt, "2", false, "Old collections kept for rollback."},
};

constexpr KeySpec kBackupKeys[] = {
    {"to", KeyType::kString, "", false,
     "Where backups go: a directory, or `s3://bucket/prefix` (see `s3`); each backup is "
     "`<to>/<pipeline>/<UTC timestamp>/`. Also the default of `backup --to` and "
     "`restore --from`."},
    {"schedule", KeyType::kString, "", false,
     "5-field cron expression in the daemon's local time, e.g. `\"30 2 * * *\"`; needs `to`; "
     "unset: only `searchsync backup`."},
    {"keep", KeyType::kInt, "7", false,
     "Complete backups kept in `to` after each backup there; older ones are deleted. 0 keeps "
     "all."},
};

constexpr int kMaxConcurrency = 64;
// The tag of a scalar whose ${VAR} could not be expanded: its error is recorded, and further
// errors about its (unexpanded) value would only repeat it.
constexpr char kUnexpandedTag[] = "!searchsync/unexpanded";
constexpr size_t kMaxShownValue = 64;  // longest value echoed in a message
// A config or schema file is a few KiB; anything past this is the wrong file (or /dev/zero).
constexpr size_t kMaxFileBytes = 16 << 20;
// Bounds on the document as its aliases expand: a "billion laughs" (aliases of aliases of
// lists) is a few lines that expand to 10^9 nodes; a config has a few thousand.
constexpr size_t kMaxExpandedNodes = 1'000'000;
constexpr int kMaxExpandedDepth = 500;

// ---- Small helpers -------------------------------------------------------------------------

// The whole of a file of at most kMaxFileBytes (read in pieces, so /dev/zero or a pipe that
// never ends costs no more), or what is wrong: a directory, unreadable, too large.
Result<std::string> ReadTextFile(const std::filesystem::path& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return InvalidArgument("is a directory; expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(std::string("cannot read: ") + std::strerror(errno));
  std::string text;
  char buffer[64 * 1024];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) {
      return InvalidArgument("is larger than " + std::to_string(kMaxFileBytes >> 20) +
                             " MiB; is it the right file?");
    }
  }
  if (in.bad()) return InvalidArgument(std::string("cannot read: ") + std::strerror(errno));
  return text;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t k = 0; k <= b.size(); ++k) d[0][k] = k;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t k = 1; k <= b.size(); ++k) {
      const size_t cost = a[i - 1] == b[k - 1] ? 0 : 1;
      d[i][k] = std::min({d[i - 1][k] + 1, d[i][k - 1] + 1, d[i - 1][k - 1] + cost});
      if (i > 1 && k > 1 && a[i - 1] == b[k - 2] && a[i - 2] == b[k - 1]) {
        d[i][k] = std::min(d[i][k], d[i - 2][k - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

template <class Names>
std::string Nearest(std::string_view key, const Names& names) {
  // Short keys tolerate fewer edits, or everything would be "near" everything.
  const size_t max_distance = key.size() <= 2 ? 1 : key.size() <= 5 ? 2 : 3;
  const std::string lower_key = Lower(key);
  std::string best;
  size_t best_distance = max_distance + 1;
  for (std::string_view name : names) {
    const size_t distance = EditDistance(lower_key, Lower(name));
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(name);
    }
  }
  return best;
}

std::string JoinNames(std::span<const KeySpec> keys) {
  std::string out;
  for (const KeySpec& spec : keys) {
    if (!out.empty()) out += ", ";
    out += spec.name;
  }
  return out;
}

// `text` quoted for a message, cut at kMaxShownValue bytes on a UTF-8 boundary.
std::string Shown(std::string_view text) {
  if (text.size() > kMaxShownValue) {
    size_t cut = kMaxShownValue;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return JsonString(text.substr(0, cut)) + "...";
  }
  return JsonString(text);
}

const char* KindOf(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return "a scalar";
    default:
      return "nothing";
  }
}

// What a message says the user wrote; secrets are never echoed.
std::string Got(const YAML::Node& node, bool secret) {
  if (!node.IsScalar()) return std::string(", got ") + KindOf(node);
  if (secret) return "";
  return ", got " + Shown(node.Scalar());
}

bool Present(const YAML::Node& node) { return node.IsDefined() && !node.IsNull(); }

YAML::Mark MarkOf(const YAML::Node& node) {
  if (!node.IsDefined()) return YAML::Mark::null_mark();
  return node.Mark();
}

void Record(ConfigErrors& errors, const std::string& file, const YAML::Mark& mark,
            std::string message) {
  ConfigError error{.file = file, .message = std::move(message)};
  if (!mark.is_null()) {
    error.line = mark.line + 1;  // yaml-cpp counts from 0
    error.column = mark.column + 1;
  }
  errors.Add(std::move(error));
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Indexed(const std::string& path, size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// The value under `key` in a mapping, or an undefined node. Iterates instead of using
// operator[], which inserts (non-const) or yields an unusable zombie node (const) when absent.
YAML::Node Lookup(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node KeyNode(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) return it->first;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node Element(const YAML::Node& sequence, size_t index) {
  size_t at = 0;
  for (auto it = sequence.begin(); it != sequence.end(); ++it, ++at) {
    if (at == index) return *it;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

// Expands ${VAR} in every scalar beneath `node`, in place. `expanded` holds the positions of
// scalars already done, so an anchor reached again through an alias is expanded once.
void ExpandTree(YAML::Node node, const std::string& path, const std::string& file,
                ConfigErrors& errors, std::set<int>& expanded) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const int pos = node.Mark().pos;
      if (pos >= 0 && !expanded.insert(pos).second) return;
      if (node.Scalar().find('$') == std::string::npos) return;
      Result<std::string> value = ExpandEnv(node.Scalar());
      if (!value.ok()) {
        Record(errors, file, node.Mark(),
               (path.empty() ? "" : path + ": ") + value.status().message());
        node.SetTag(kUnexpandedTag);
      } else if (*value != node.Scalar()) {
        node = *value;  // keeps the node's mark and tag
      }
      return;
    }
    case YAML::NodeType::Sequence: {
      size_t index = 0;
      for (auto it = node.begin(); it != node.end(); ++it, ++index) {
        ExpandTree(*it, Indexed(path, index), file, errors, expanded);
      }
      return;
    }
    case YAML::NodeType::Map:
      for (auto it = node.begin(); it != node.end(); ++it) {
        ExpandTree(it->second, Join(path, it->first.IsScalar() ? it->first.Scalar() : "?"), file,
                   errors, expanded);
      }
      return;
    default:
      return;
  }
}

// Counts the nodes of the document as its aliases expand; false once there are more than
// `budget` or they nest deeper than kMaxExpandedDepth (an alias inside its own anchor).
bool WithinExpansionBounds(const YAML::Node& node, size_t& budget, int depth = 0) {
  if (budget == 0 || depth > kMaxExpandedDepth) return false;
  --budget;
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!WithinExpansionBounds(it->first, budget, depth + 1) ||
          !WithinExpansionBounds(it->second, budget, depth + 1)) {
        return false;
      }
    }
  } else if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!WithinExpansionBounds(*it, budget, depth + 1)) return false;
    }
  }
  return true;
}

bool IsMergeKey(const YAML::Node& key) {
  return key.IsScalar() && key.Scalar() == "<<" && key.Tag() == "?";  // plain, not "<<"
}

// Applies YAML merge keys in place (yaml-cpp reads `<<` as an ordinary key): `<<: *base` or
// `<<: [*a, *b]` adds each key of the merged mappings that the mapping does not set itself,
// earlier mappings first. REQUIRES: WithinExpansionBounds(node) (so no alias cycles).
void ApplyMergeKeys(YAML::Node node, const std::string& file, ConfigErrors& errors) {
  if (node.IsSequence()) {
    for (auto it = node.begin(); it != node.end(); ++it) ApplyMergeKeys(*it, file, errors);
    return;
  }
  if (!node.IsMap()) return;
  std::vector<YAML::Node> merged;
  bool has_merge_key = false;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!IsMergeKey(it->first)) continue;
    has_merge_key = true;
    const YAML::Node value = it->second;
    bool usable = value.IsMap();
    if (value.IsSequence()) {
      usable = true;
      for (auto item = value.begin(); item != value.end(); ++item) usable &= item->IsMap();
    }
    if (!usable) {
      Record(errors, file, MarkOf(value),
             "<<: a merge key takes a mapping or a list of mappings, like <<: *defaults or "
             "<<: [*a, *b]");
      continue;
    }
    if (value.IsMap()) {
      merged.push_back(value);
    } else {
      for (auto item = value.begin(); item != value.end(); ++item) merged.push_back(*item);
    }
  }
  if (has_merge_key) {
    while (node.remove("<<")) {
    }
    for (YAML::Node& source : merged) {
      ApplyMergeKeys(source, file, errors);  // a merged mapping may merge others itself
      for (auto it = source.begin(); it != source.end(); ++it) {
        if (!it->first.IsScalar() || Lookup(node, it->first.Scalar()).IsDefined()) continue;
        node.force_insert(it->first, it->second);
      }
    }
  }
  for (auto it = node.begin(); it != node.end(); ++it) ApplyMergeKeys(it->second, file, errors);
}

std::optional<bool> ParseBool(std::string_view text) {
  const std::string lower = Lower(text);
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// `digits[.digits]` followed by a unit from `units` (name, multiplier); the product must be a
// whole number of the base unit. Returns nullopt on syntax errors and overflow.
struct Unit {
  std::string_view name;
  uint64_t multiplier;
};

std::optional<uint64_t> ParseQuantity(std::string_view& text, std::span<const Unit> units,
                                      bool unit_required) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  size_t at = 0;
  uint64_t whole = 0;
  const size_t digits_start = at;
  while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
    const uint64_t digit = static_cast<uint64_t>(text[at] - '0');
    if (whole > (kMax - digit) / 10) return std::nullopt;
    whole = whole * 10 + digit;
    ++at;
  }
  if (at == digits_start) return std::nullopt;
  uint64_t fraction = 0;
  uint64_t scale = 1;
  if (at < text.size() && text[at] == '.') {
    ++at;
    const size_t fraction_start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (scale >= 1'000'000'000) return std::nullopt;
      fraction = fraction * 10 + static_cast<uint64_t>(text[at] - '0');
      scale *= 10;
      ++at;
    }
    if (at == fraction_start) return std::nullopt;
  }
  const size_t unit_start = at;
  while (at < text.size() &&
         ((text[at] >= 'a' && text[at] <= 'z') || (text[at] >= 'A' && text[at] <= 'Z'))) {
    ++at;
  }
  const std::string_view unit_name = text.substr(unit_start, at - unit_start);
  uint64_t multiplier = 0;
  if (unit_name.empty() && !unit_required) {
    multiplier = 1;
  } else {
    for (const Unit& unit : units) {
      if (unit.name == unit_name) multiplier = unit.multiplier;
    }
  }
  if (multiplier == 0) return std::nullopt;
  if (whole > kMax / multiplier) return std::nullopt;
  const uint64_t fraction_scaled = fraction * multiplier;  // fraction < 1e9, multiplier < 2^40
  if (fraction != 0 && fraction_scaled / multiplier != fraction) return std::nullopt;
  if (fraction_scaled % scale != 0) return std::nullopt;  // not a whole number of base units
  const uint64_t value = whole * multiplier;
  if (value > kMax - fraction_scaled / scale) return std::nullopt;
  text.remove_prefix(at);
  return value + fraction_scaled / scale;
}

constexpr Unit kDurationUnits[] = {
    {"ms", 1}, {"s", 1'000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
};

constexpr Unit kSizeUnits[] = {
    {"B", 1},
    {"KB", 1'000},
    {"MB", 1'000'000},
    {"GB", 1'000'000'000},
    {"TB", 1'000'000'000'000},
    {"KiB", uint64_t{1} << 10},
    {"MiB", uint64_t{1} << 20},
    {"GiB", uint64_t{1} << 30},
    {"TiB", uint64_t{1} << 40},
};

// A getter's value: the key's own when it parses, else its default (a value that failed
// validation has its error recorded already), else `neutral`.
template <class T, class Parse>
T Read(const YAML::Node& value, const KeySpec* spec, Parse parse, T neutral) {
  if (Present(value) && value.IsScalar()) {
    if (const auto parsed = parse(value.Scalar())) return *parsed;
  }
  if (spec != nullptr && !spec->default_value.empty()) {
    if (const auto parsed = parse(spec->default_value)) return *parsed;
  }
  return neutral;
}

const char* TypeName(KeyType type) {
  switch (type) {
    case KeyType::kString:
      return "string";
    case KeyType::kSecret:
      return "secret";
    case KeyType::kBool:
      return "bool";
    case KeyType::kInt:
      return "integer";
    case KeyType::kDuration:
      return "duration";
    case KeyType::kSize:
      return "size";
    case KeyType::kStringList:
      return "string list";
    case KeyType::kMapping:
      return "mapping";
    case KeyType::kSequence:
      return "sequence";
    case KeyType::kAny:
      return "any";
  }
  return "?";
}

// The type check a Section runs on each present key; records at most one error per value.
void CheckValue(const Section& section, const KeySpec& spec, const YAML::Node& value) {
  if (value.IsNull()) return;  // as if absent; the required check speaks for it
  const std::string path = section.PathOf(spec.name);
  const bool secret = spec.type == KeyType::kSecret;
  auto fail = [&](std::string_view expected) {
    section.ErrorAt(value, path + ": expected " + std::string(expected) + Got(value, secret));
  };
  switch (spec.type) {
    case KeyType::kString:
    case KeyType::kSecret:
      if (!value.IsScalar()) fail("a string");
      return;
    case KeyType::kBool:
      if (!value.IsScalar() || !ParseBool(value.Scalar())) fail("true or false");
      return;
    case KeyType::kInt:
      if (!value.IsScalar() || !ParseInt(value.Scalar())) fail("an integer");
      return;
    case KeyType::kDuration:
      if (!value.IsScalar() || !ParseDuration(value.Scalar())) {
        fail("a duration like 250ms or 5s");
      }
      return;
    case KeyType::kSize:
      if (!value.IsScalar() || !ParseSize(value.Scalar())) fail("a size like 512KiB or 8MiB");
      return;
    case KeyType::kStringList:
      if (value.IsSequence()) {
        size_t index = 0;
        for (auto it = value.begin(); it != value.end(); ++it, ++index) {
          if (!it->IsScalar()) {
            section.ErrorAt(*it, Indexed(path, index) + ": expected a string" + Got(*it, secret));
          }
        }
      } else if (!value.IsScalar()) {
        fail("a list of strings");
      }
      return;
    case KeyType::kMapping:
      if (!value.IsMap()) fail("a mapping");
      return;
    case KeyType::kSequence:
      if (!value.IsSequence()) {
        fail("a sequence");
        return;
      }
      {
        size_t index = 0;
        for (auto it = value.begin(); it != value.end(); ++it, ++index) {
          if (!it->IsMap()) {
            section.ErrorAt(*it, Indexed(path, index) + ": expected a mapping" + Got(*it, secret));
          }
        }
      }
      return;
    case KeyType::kAny:
      return;
  }
}

// Unknown, duplicate and missing required keys, and each value's type.
void ValidateMapping(const Section& section, const YAML::Node& node, std::span<const KeySpec> keys,
                     bool report_shape, bool check_required) {
  if (Present(node) && !node.IsMap()) {
    if (report_shape) {
      section.ErrorAt(node, (section.path().empty() ? std::string("the file") : section.path()) +
                                ": expected a mapping of keys, got " + KindOf(node));
    }
    return;
  }
  std::map<std::string, int, std::less<>> seen;  // key -> 1-based line
  if (Present(node)) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) {
        section.ErrorAt(it->first, section.path() + ": keys must be plain names");
        continue;
      }
      const std::string& name = it->first.Scalar();
      const auto spec =
          std::find_if(keys.begin(), keys.end(), [&](const KeySpec& k) { return k.name == name; });
      if (spec == keys.end()) {
        const std::string near = DidYouMean(name, keys);
        if (!near.empty()) {
          section.ErrorAt(it->first, "unknown key '" + name + "' (did you mean '" + near + "'?)");
        } else {
          const std::string where =
              section.path().empty() ? "at the top level" : "in " + section.path();
          section.ErrorAt(it->first, "unknown key '" + name + "' " + where +
                                         "; allowed keys: " + JoinNames(keys));
        }
        continue;
      }
      const auto [first, inserted] = seen.emplace(name, MarkOf(it->first).line + 1);
      if (!inserted) {
        section.ErrorAt(it->first, section.PathOf(name) + ": duplicate key (first set on line " +
                                       std::to_string(first->second) + ")");
        continue;
      }
      CheckValue(section, *spec, it->second);
    }
  }
  if (!check_required) return;
  for (const KeySpec& spec : keys) {
    if (!spec.required) continue;
    const YAML::Node value = Lookup(node, spec.name);
    if (!value.IsDefined()) {
      section.ErrorAt(node, (section.path().empty() ? "" : section.path() + ": ") +
                                "missing required key '" + std::string(spec.name) + "' (" +
                                std::string(spec.help) + ")");
    } else if (value.IsNull()) {
      section.ErrorAt(
          value.Mark().is_null() ? node : value,
          section.PathOf(spec.name) + ": needs a value (" + std::string(spec.help) + ")");
    }
  }
}

// ---- YAML to JSON (the collection schema) --------------------------------------------------

bool IsYamlNull(std::string_view text) {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// YAML 1.2 core schema: [-+]?[0-9]+
bool IsYamlInt(std::string_view text) {
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// YAML 1.2 core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsYamlFloat(std::string_view text) {
  size_t at = 0;
  auto digits = [&] {
    const size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    return at - start;
  };
  if (at < text.size() && (text[at] == '-' || text[at] == '+')) ++at;
  const size_t whole = digits();
  size_t fraction = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    fraction = digits();
  }
  if (whole == 0 && fraction == 0) return false;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '-' || text[at] == '+')) ++at;
    if (digits() == 0) return false;
  }
  return at == text.size();
}

void AppendScalarJson(std::string& out, const YAML::Node& node) {
  const std::string& text = node.Scalar();
  // Plain (unquoted) scalars are tagged "?"; quoted and block scalars "!". Only plain ones
  // can be null, booleans or numbers.
  if (node.Tag() == "?") {
    if (IsYamlNull(text)) {
      out += "null";
      return;
    }
    if (const std::optional<bool> flag = ParseBool(text)) {
      out += *flag ? "true" : "false";
      return;
    }
    std::string_view number = text;
    if (!number.empty() && number[0] == '+') number.remove_prefix(1);
    char buffer[64];
    if (IsYamlInt(text)) {
      int64_t value = 0;
      const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
      if (ec == std::errc() && end == number.data() + number.size()) {
        out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
        return;
      }
    }
    if (IsYamlFloat(text)) {
      std::string digits(number);
      if (!digits.empty() &&
          (digits[0] == '.' || (digits[0] == '-' && digits.size() > 1 && digits[1] == '.'))) {
        digits.insert(digits[0] == '-' ? 1 : 0, "0");
      }
      double value = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (ec == std::errc() && end == digits.data() + digits.size() && std::isfinite(value)) {
        out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
        return;
      }
    }
  }
  AppendJsonString(out, text);
}

void AppendYamlAsJson(std::string& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      AppendScalarJson(out, node);
      return;
    case YAML::NodeType::Sequence: {
      out.push_back('[');
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!first) out.push_back(',');
        first = false;
        AppendYamlAsJson(out, *it);
      }
      out.push_back(']');
      return;
    }
    case YAML::NodeType::Map: {
      out.push_back('{');
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!first) out.push_back(',');
        first = false;
        AppendJsonString(out, it->first.IsScalar() ? it->first.Scalar() : std::string());
        out.push_back(':');
        AppendYamlAsJson(out, it->second);
      }
      out.push_back('}');
      return;
    }
    default:
      out += "null";
      return;
  }
}

// ---- The parts of the config ---------------------------------------------------------------

// "" when `url` is a usable node URL (a trailing '/' is removed from it), else what is wrong.
std::string CheckNodeUrl(std::string& url) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  } else {
    return "the scheme must be http:// or https://";
  }
  if (FindUrlUserInfo(url)) {
    return "a node URL holds no user:password@; Typesense authenticates with typesense.api_key";
  }
  if (rest.ends_with('/')) {
    rest.remove_suffix(1);
    url.pop_back();
  }
  if (rest.find('/') != std::string_view::npos) return "a node URL has no path";
  if (rest.empty()) return "the host is missing";
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos ||
      (rest.front() == '[' && (colon == 0 || rest[colon - 1] != ']'))) {
    return "the port is missing";
  }
  if (colon == 0) return "the host is missing";
  const std::string_view port_text = rest.substr(colon + 1);
  const std::optional<int64_t> port = ParseInt(port_text);
  if (port_text.starts_with('+') || !port || *port < 1 || *port > 65535) return "bad port";
  return "";
}

TypesenseOptions ParseTypesense(const Section& section) {
  TypesenseOptions options;
  options.nodes = section.StringList("nodes");
  const YAML::Node nodes = section.Node("nodes");
  if (section.Has("nodes") && options.nodes.empty()) {
    section.Error("nodes", "needs at least one node URL, like http://127.0.0.1:8108");
  }
  for (size_t index = 0; index < options.nodes.size(); ++index) {
    std::string& url = options.nodes[index];
    const std::string problem = CheckNodeUrl(url);
    if (problem.empty()) continue;
    const YAML::Node at = nodes.IsSequence() ? Element(nodes, index) : nodes;
    section.ErrorAt(at, Indexed(section.PathOf("nodes"), index) +
                            ": expected a URL like http://127.0.0.1:8108, got " +
                            Shown(RedactUrl(url)) + " (" + problem + ")");
  }
  options.api_key = section.SecretString("api_key");
  if (section.Has("api_key") && section.Node("api_key").IsScalar() && options.api_key.empty()) {
    section.Error("api_key", "is empty; set it, e.g. api_key: ${TYPESENSE_API_KEY}");
  }
  options.timeout = section.Duration("timeout");
  if (options.timeout <= Millis::zero()) section.Error("timeout", "must be longer than 0");

  const Section retry = section.Child("retry", kRetryKeys);
  options.retry.initial_backoff = retry.Duration("initial_backoff");
  options.retry.max_backoff = retry.Duration("max_backoff");
  if (retry.Has("max_elapsed")) options.retry.max_elapsed = retry.Duration("max_elapsed");
  if (options.retry.initial_backoff <= Millis::zero()) {
    retry.Error("initial_backoff", "must be longer than 0");
  }
  if (options.retry.max_backoff < options.retry.initial_backoff) {
    retry.Error(retry.Has("max_backoff") ? "max_backoff" : "initial_backoff",
                "max_backoff must be at least initial_backoff");
  }
  return options;
}

AdminOptions ParseAdmin(const Section& section) {
  AdminOptions options;
  options.listen = section.String("listen");
  options.token = section.SecretString("token");
  if (options.listen.empty()) return options;
  const size_t colon = options.listen.rfind(':');
  const std::optional<int64_t> port =
      colon == std::string::npos ? std::nullopt : ParseInt(options.listen.substr(colon + 1));
  if (!port || *port < 0 || *port > 65535) {  // 0: a free port, logged at start
    section.Error("listen", "expected host:port like 127.0.0.1:8090, got " + Shown(options.listen));
    return options;
  }
  if (options.token.empty() && !IsLoopbackHost(options.listen.substr(0, colon))) {
    section.Error("listen", options.listen +
                                " is not a loopback address, so admin.token is required "
                                "(e.g. token: ${SEARCHSYNC_ADMIN_TOKEN}); or listen on "
                                "127.0.0.1");
  }
  return options;
}

bool IsPipelineName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void ParseSource(const Section& pipeline, std::span<const SourceRegistration> sources,
                 PipelineConfig& out) {
  if (!pipeline.Has("source") || !pipeline.Node("source").IsMap()) return;  // already reported
  const YAML::Node source = pipeline.Node("source");
  const YAML::Node type = Lookup(source, "type");
  std::string registered;
  for (const SourceRegistration& registration : sources) {
    if (!registered.empty()) registered += ", ";
    registered += registration.type;
  }
  if (!Present(type) || !type.IsScalar()) {
    pipeline.Error("source", "needs `type`, one of: " + registered);
    return;
  }
  const std::string& name = type.Scalar();
  const auto registration =
      std::find_if(sources.begin(), sources.end(),
                   [&](const SourceRegistration& r) { return r.type == name; });
  if (registration == sources.end()) {
    std::vector<std::string_view> types;
    for (const SourceRegistration& r : sources) types.push_back(r.type);
    const std::string near = Nearest(name, types);
    pipeline.ErrorAt(type, pipeline.PathOf("source") + ".type: unknown source type " + Shown(name) +
                               (near.empty() ? "; known types: " + registered
                                             : " (did you mean '" + near + "'?)"));
    return;
  }
  std::vector<KeySpec> keys{kSourceTypeKey};
  keys.insert(keys.end(), registration->keys.begin(), registration->keys.end());
  const Section section = pipeline.Child("source", keys);
  out.source_type = name;
  // A null factory means the connector recorded its errors through `section`.
  out.make_source = registration->parse(section, out.name);
}

void ParseTransforms(const Section& pipeline, std::span<const TransformRegistration> registered,
                     PipelineConfig& out) {
  const YAML::Node transforms = pipeline.Node("transforms");
  if (!transforms.IsSequence()) return;
  const std::string path = pipeline.PathOf("transforms");
  size_t index = 0;
  for (auto it = transforms.begin(); it != transforms.end(); ++it, ++index) {
    const YAML::Node item = *it;
    if (!item.IsMap()) continue;  // reported by the sequence check
    const std::string item_path = Indexed(path, index);
    if (item.size() != 1) {
      pipeline.ErrorAt(item, item_path +
                                 ": expected one transform per item, like "
                                 "`- rename: { from: to }`, got " +
                                 std::to_string(item.size()) + " keys");
      continue;
    }
    const auto entry = item.begin();
    const std::string name = entry->first.IsScalar() ? entry->first.Scalar() : "";
    const auto registration =
        std::find_if(registered.begin(), registered.end(),
                     [&](const TransformRegistration& r) { return r.name == name; });
    if (registration == registered.end()) {
      std::vector<std::string_view> names;
      std::string known;
      for (const TransformRegistration& r : registered) {
        names.push_back(r.name);
        known += (known.empty() ? "" : ", ") + std::string(r.name);
      }
      const std::string near = Nearest(name, names);
      pipeline.ErrorAt(entry->first, item_path + ": unknown transform " + Shown(name) +
                                         (near.empty() ? "; known transforms: " + known
                                                       : " (did you mean '" + near + "'?)"));
      continue;
    }
    Transform transform = registration->parse(entry->second, item_path + "." + name, pipeline);
    if (transform) out.transforms.push_back(std::move(transform));
  }
}

// Reads a JSON schema file; "" and the compact JSON, or a message.
std::string ReadSchemaFile(const std::filesystem::path& path, std::string& json) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) return path.string() + ": " + text.status().message();
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const std::string& content = *text;
  if (const auto error = parser.parse(content).get(root); error) {
    return path.string() + " is not valid JSON: " + simdjson::error_message(error);
  }
  simdjson::dom::object object;
  if (root.get_object().get(object)) return path.string() + " must hold a JSON object";
  simdjson::dom::element ignored;
  if (object["name"].get(ignored) == simdjson::SUCCESS) {
    return path.string() + " must not set \"name\": the engine names collections behind the alias";
  }
  simdjson::dom::array fields;
  if (object["fields"].get_array().get(fields)) {
    return path.string() + " needs a \"fields\" array";
  }
  json = simdjson::minify(root);
  return "";
}

// ---- The collection schema, checked as Typesense checks it (API-NOTES.md, POST /collections) --

constexpr std::string_view kFieldTypes[] = {
    "string",     "int32",    "int64",    "float",   "bool",    "geopoint",
    "geopolygon", "string[]", "int32[]",  "int64[]", "float[]", "bool[]",
    "geopoint[]", "object",   "object[]", "auto",    "string*", "image",
};
constexpr std::string_view kFieldFlags[] = {"optional", "facet", "index", "sort",
                                            "infix",    "store", "stem",  "range_index"};

// One thing Typesense would refuse: at `fields[field].key`, or at the top-level `key`.
struct SchemaProblem {
  std::optional<size_t> field;
  std::string key;  // empty: the field (or schema) as a whole
  std::string message;
};

std::string Backticked(std::string_view text) { return "`" + std::string(text) + "`"; }

// Every problem Typesense would answer a create-collection call for `schema_json` with 400.
// REQUIRES: `schema_json` is a JSON object with a "fields" array.
std::vector<SchemaProblem> CheckSchema(const std::string& schema_json) {
  std::vector<SchemaProblem> problems;
  simdjson::dom::parser parser;
  simdjson::dom::object schema;
  if (parser.parse(schema_json).get_object().get(schema)) return problems;
  const auto add = [&](std::optional<size_t> field, std::string key, std::string message) {
    problems.push_back({field, std::move(key), std::move(message)});
  };
  const auto flag = [](simdjson::dom::object object, std::string_view key) {
    bool value = false;
    return object[key].get_bool().get(value) == simdjson::SUCCESS ? std::optional(value)
                                                                  : std::nullopt;
  };
  const std::optional<bool> nested = flag(schema, "enable_nested_fields");
  simdjson::dom::element element;
  if (schema["enable_nested_fields"].get(element) == simdjson::SUCCESS && !nested) {
    add(std::nullopt, "enable_nested_fields", "expected true or false");
  }
  for (const std::string_view key : {"token_separators", "symbols_to_index"}) {
    if (schema[key].get(element) != simdjson::SUCCESS) continue;
    simdjson::dom::array characters;
    bool usable = element.get_array().get(characters) == simdjson::SUCCESS;
    for (size_t index = 0; usable && index < characters.size(); ++index) {
      std::string_view text;
      usable = characters.at(index).get_string().get(text) == simdjson::SUCCESS && text.size() == 1;
    }
    if (!usable) add(std::nullopt, std::string(key), "expected a list of single characters");
  }

  struct Field {
    std::string name, type;
    bool optional = false, sort = false;
  };
  std::map<std::string, Field> fields;  // by name, `id` left out (Typesense drops it)
  simdjson::dom::array specs;
  if (schema["fields"].get_array().get(specs)) return problems;
  if (specs.size() == 0) {
    add(std::nullopt, "fields", "is empty; Typesense needs at least one field");
  }
  size_t index = 0;
  for (simdjson::dom::element spec_element : specs) {
    const size_t at = index++;
    simdjson::dom::object spec;
    if (spec_element.get_object().get(spec)) {
      add(at, "", "expected a mapping like { name: title, type: string }");
      continue;
    }
    Field field;
    std::string_view text;
    if (spec["name"].get_string().get(text) || text.empty()) {
      add(at, "name", "needs a name, a non-empty string");
      continue;
    }
    field.name = text;
    if (spec["type"].get_string().get(text)) {
      add(at, "type", "needs a type, one of: string, int32, int64, float, bool, string[], ...");
      continue;
    }
    field.type = text;
    if (std::find(std::begin(kFieldTypes), std::end(kFieldTypes), field.type) ==
        std::end(kFieldTypes)) {
      const std::string near = Nearest(field.type, kFieldTypes);
      std::string known;
      for (const std::string_view type : kFieldTypes) {
        known += (known.empty() ? "" : ", ") + std::string(type);
      }
      add(at, "type",
          "field " + Backticked(field.name) + " has the unknown type " + Backticked(field.type) +
              (near.empty() ? "; Typesense's types: " + known
                            : " (did you mean " + Backticked(near) + "?)"));
      continue;
    }
    if ((field.type == "object" || field.type == "object[]") && !nested.value_or(false)) {
      add(at, "type",
          "type " + Backticked(field.type) + " needs enable_nested_fields: true in the schema");
    }
    bool flags_usable = true;
    for (const std::string_view key : kFieldFlags) {
      if (spec[key].get(element) == simdjson::SUCCESS && !flag(spec, key)) {
        add(at, std::string(key), "expected true or false");
        flags_usable = false;
      }
    }
    if (spec["locale"].get(element) == simdjson::SUCCESS && !element.is_string()) {
      add(at, "locale", "expected a string");
    }
    if (!flags_usable) continue;
    const bool dynamic = field.name.find(".*") != std::string::npos;
    const bool is_array = field.type.ends_with("[]");
    field.optional =
        flag(spec, "optional").value_or(dynamic || field.type == "auto" || field.type == "string*");
    const bool default_sort = field.type == "int32" || field.type == "int64" ||
                              field.type == "float" || field.type == "bool" ||
                              field.type.starts_with("geopoint") || field.type == "geopolygon";
    field.sort = flag(spec, "sort").value_or(default_sort);
    if (dynamic && !field.optional) {
      add(at, "optional",
          "field " + Backticked(field.name) + " has .* in its name, so it must be optional");
    }
    if (flag(spec, "facet").value_or(false) && !flag(spec, "index").value_or(true)) {
      add(at, "facet", "field " + Backticked(field.name) + " cannot be a facet with index: false");
    }
    if (field.sort &&
        ((is_array && field.type != "geopoint[]") || field.type.starts_with("object"))) {
      add(at, "sort",
          "field " + Backticked(field.name) + " of type " + Backticked(field.type) +
              " cannot be sortable");
    }
    if (field.name == "id") continue;
    if (!fields.emplace(field.name, field).second) {
      add(at, "name", "duplicate field name " + Backticked(field.name));
    }
  }

  if (schema["default_sorting_field"].get(element) != simdjson::SUCCESS) return problems;
  std::string_view sorting;
  if (element.get_string().get(sorting)) {
    add(std::nullopt, "default_sorting_field", "expected the name of a field");
    return problems;
  }
  if (sorting.empty()) return problems;  // what Typesense reports for "no default"
  const std::string name(sorting);
  const auto found = fields.find(name);
  if (name == "id") {
    add(std::nullopt, "default_sorting_field", "cannot be `id`");
  } else if (found == fields.end()) {
    std::vector<std::string_view> names;
    std::string known;
    for (const auto& [field_name, field] : fields) {
      names.push_back(field_name);
      known += (known.empty() ? "" : ", ") + field_name;
    }
    const std::string near = Nearest(name, names);
    add(std::nullopt, "default_sorting_field",
        Backticked(name) + " is not a field of the schema" +
            (!near.empty()   ? " (did you mean " + Backticked(near) + "?)"
             : known.empty() ? ""
                             : "; its fields: " + known));
  } else if (const Field& field = found->second;
             !(field.type == "int32" || field.type == "int64" || field.type == "float" ||
               field.type == "bool" || (field.type == "string" && field.sort))) {
    add(std::nullopt, "default_sorting_field",
        Backticked(name) + " has type " + Backticked(field.type) +
            "; it must be an int32, int64, float or bool field, or a string with sort: true");
  } else if (field.optional) {
    add(std::nullopt, "default_sorting_field",
        Backticked(name) + " is optional; the default sorting field must be in every document");
  }
  return problems;
}

// Records each CheckSchema problem: for an inline schema at its YAML node, for a schema file at
// the schema_file key.
void ReportSchemaProblems(const Section& sink, const std::string& schema_json,
                          const std::string& schema_file) {
  const YAML::Node schema = sink.Node("schema");
  const YAML::Node fields = Lookup(schema, "fields");
  for (const SchemaProblem& problem : CheckSchema(schema_json)) {
    std::string where = problem.field ? Indexed("fields", *problem.field) : "";
    if (!problem.key.empty()) where = where.empty() ? problem.key : where + "." + problem.key;
    if (!schema_file.empty()) {
      sink.Error("schema_file", schema_file + ": " + where + ": " + problem.message);
      continue;
    }
    // (Never assign one YAML::Node to another: that rebinds the node inside the document.)
    const YAML::Node base = problem.field ? Element(fields, *problem.field) : schema;
    const YAML::Node value = Lookup(base, problem.key);
    sink.ErrorAt(value.IsDefined() ? value : base,
                 sink.PathOf("schema") + "." + where + ": " + problem.message);
  }
}

SinkOptions ParseSink(const Section& sink, const Section& batch, bool present,
                      const std::string& config_dir) {
  SinkOptions options;
  options.collection = sink.String("collection");
  if (sink.Has("collection") && options.collection.empty()) sink.Error("collection", "is empty");
  const bool has_schema = sink.Has("schema");
  const bool has_schema_file = sink.Has("schema_file");
  if (has_schema && has_schema_file) {
    sink.Error("schema_file", "set either schema or schema_file, not both");
  } else if (!has_schema && !has_schema_file) {
    if (present) {
      sink.Error("schema",
                 "missing; set `schema` (a mapping with fields) or `schema_file` (a "
                 "JSON file)");
    }
  } else if (has_schema) {
    const YAML::Node schema = sink.Node("schema");
    if (schema.IsMap()) {
      const YAML::Node fields = Lookup(schema, "fields");
      bool usable = true;
      if (!Present(fields) || !fields.IsSequence()) {
        sink.Error("schema", "needs `fields`, a sequence like [{ name: title, type: string }]");
        usable = false;
      }
      if (const YAML::Node name = KeyNode(schema, "name"); name.IsDefined()) {
        sink.ErrorAt(name, sink.PathOf("schema") +
                               ".name: remove it; the engine names collections itself and "
                               "points the alias `collection` at them");
        usable = false;
      }
      if (usable) {
        AppendYamlAsJson(options.schema_json, schema);
        ReportSchemaProblems(sink, options.schema_json, "");
      }
    }
  } else {
    std::filesystem::path path = sink.String("schema_file");
    if (path.is_relative()) path = std::filesystem::path(config_dir) / path;
    const std::string problem = ReadSchemaFile(path, options.schema_json);
    if (!problem.empty()) {
      sink.Error("schema_file", problem);
    } else {
      ReportSchemaProblems(sink, options.schema_json, path.string());
    }
  }

  const int64_t max_events = batch.Int("max_events");
  if (max_events < 1) batch.Error("max_events", "must be at least 1");
  options.batch.max_events = static_cast<size_t>(std::max<int64_t>(max_events, 1));
  options.batch.max_bytes = static_cast<size_t>(batch.Size("max_bytes"));
  if (options.batch.max_bytes < 1) batch.Error("max_bytes", "must be at least 1 byte");
  options.batch.flush_interval = batch.Duration("flush_interval");
  if (options.batch.flush_interval <= Millis::zero()) {
    batch.Error("flush_interval", "must be longer than 0");
  }

  const int64_t concurrency = sink.Int("concurrency");
  if (concurrency < 1 || concurrency > kMaxConcurrency) {
    sink.Error("concurrency", "must be between 1 and " + std::to_string(kMaxConcurrency) +
                                  ", got " + std::to_string(concurrency));
  }
  options.concurrency = static_cast<int>(std::clamp<int64_t>(concurrency, 1, kMaxConcurrency));
  return options;
}

QueueOptions ParseQueue(const Section& queue, const Section& batch,
                        const BatchOptions& batch_options) {
  QueueOptions options;
  const int64_t max_events = queue.Int("max_events");
  options.max_events = static_cast<size_t>(std::max<int64_t>(max_events, 0));
  options.max_bytes = static_cast<size_t>(queue.Size("max_bytes"));
  const int64_t batch_events = static_cast<int64_t>(batch_options.max_events);
  const uint64_t batch_bytes = batch_options.max_bytes;
  // Blame the key the user wrote: the queue's when set, else the batch's.
  if (max_events < batch_events) {
    if (queue.Has("max_events")) {
      queue.Error("max_events", "must be at least sink.batch.max_events (" +
                                    std::to_string(batch_events) + "), got " +
                                    std::to_string(max_events));
    } else {
      batch.Error("max_events", "must be at most queue.max_events (" + std::to_string(max_events) +
                                    "); raise queue.max_events");
    }
  }
  if (options.max_bytes < batch_bytes) {
    if (queue.Has("max_bytes")) {
      queue.Error("max_bytes", "must be at least sink.batch.max_bytes (" +
                                   std::to_string(batch_bytes) + " bytes), got " +
                                   std::to_string(options.max_bytes));
    } else {
      batch.Error("max_bytes", "must be at most queue.max_bytes (" +
                                   std::to_string(options.max_bytes) +
                                   " bytes); raise queue.max_bytes");
    }
  }
  return options;
}

// Records an error unless `schedule` (when present) is a 5-field cron expression.
void CheckSchedule(const Section& section, const std::string& schedule) {
  if (!section.Has("schedule")) return;
  std::istringstream fields(schedule);
  std::string field;
  int count = 0;
  while (fields >> field) ++count;
  if (count != 5 && !schedule.starts_with('@')) {
    section.Error("schedule", "expected a 5-field cron expression like \"0 3 * * *\", got " +
                                  Shown(schedule));
  } else if (Result<CronSchedule> cron = CronSchedule::Parse(schedule); !cron.ok()) {
    section.Error("schedule",
                  "cron expression " + Shown(schedule) + ": " + cron.status().message());
  }
}

ReindexOptions ParseReindex(const Section& section) {
  ReindexOptions options;
  options.schedule = section.String("schedule");
  CheckSchedule(section, options.schedule);
  const int64_t keep = section.Int("keep");
  if (keep < 0 || keep > std::numeric_limits<int>::max()) {
    section.Error("keep", "must be 0 or more");
  }
  options.keep = static_cast<int>(std::clamp<int64_t>(keep, 0, std::numeric_limits<int>::max()));
  return options;
}

BackupOptions ParseBackup(const Section& section, const S3Options& s3, bool s3_configured) {
  BackupOptions options;
  options.to = section.String("to");
  options.schedule = section.String("schedule");
  CheckSchedule(section, options.schedule);
  if (section.Has("schedule") && options.to.empty()) {
    section.Error("schedule", "needs backup.to: where the scheduled backups go");
  }
  if (options.to.starts_with("s3://")) {
    if (options.to.size() == 5 || options.to[5] == '/') {
      section.Error("to", "expected s3://BUCKET/PREFIX, got " + Shown(options.to));
    } else if (!s3_configured || s3.access_key_id.empty() || s3.secret_access_key.empty()) {
      section.Error("to", "is an s3:// location, so the top-level s3 section needs "
                          "access_key_id and secret_access_key");
    }
  }
  const int64_t keep = section.Int("keep");
  if (keep < 0 || keep > std::numeric_limits<int>::max()) section.Error("keep", "must be 0 or more");
  options.keep = static_cast<int>(std::clamp<int64_t>(keep, 0, std::numeric_limits<int>::max()));
  return options;
}

S3Options ParseS3(const Section& section) {
  S3Options options;
  options.endpoint = section.String("endpoint");
  options.region = section.String("region");
  options.access_key_id = section.SecretString("access_key_id");
  options.secret_access_key = section.SecretString("secret_access_key");
  if (!options.endpoint.empty() && !options.endpoint.starts_with("http://") &&
      !options.endpoint.starts_with("https://")) {
    section.Error("endpoint", "expected a URL like https://s3.example.com:9000, got " +
                                  Shown(options.endpoint));
  }
  if (options.region.empty()) section.Error("region", "is empty");
  if (options.endpoint.empty()) {
    options.endpoint = "https://s3." + options.region + ".amazonaws.com";
  }
  return options;
}

void ParseDocument(const YAML::Node& root, const std::string& file,
                   const ConnectorParsers& connectors, Config& config,
                   ConfigErrors& errors) {
  const Section top(file, root, "", kTopKeys, errors);
  config.typesense = ParseTypesense(top.Child("typesense", kTypesenseKeys));
  const Section state = top.Child("state", kStateKeys);
  config.state.path = state.String("path");
  if (config.state.path.empty()) state.Error("path", "is empty");
  config.admin = ParseAdmin(top.Child("admin", kAdminKeys));
  config.s3 = ParseS3(top.Child("s3", kS3Keys));
  const Section snapshot = top.Child("snapshot", kSnapshotKeys);
  config.snapshot.path = snapshot.String("path");
  config.snapshot.schedule = snapshot.String("schedule");
  CheckSchedule(snapshot, config.snapshot.schedule);
  if (snapshot.Has("schedule") && config.snapshot.path.empty()) {
    snapshot.Error("schedule", "needs snapshot.path: where the server copies the snapshot");
  }

  const YAML::Node pipelines = top.Node("pipelines");
  if (!pipelines.IsSequence()) return;
  if (pipelines.size() == 0) top.Error("pipelines", "needs at least one pipeline");
  const std::string config_dir = std::filesystem::path(file).parent_path().string();
  std::map<std::string, int> names;  // name -> 1-based line
  for (size_t index = 0; index < pipelines.size(); ++index) {
    if (!Element(pipelines, index).IsMap()) continue;  // reported by the sequence check
    const Section pipeline = top.Item("pipelines", index, kPipelineKeys);
    PipelineConfig out;
    out.name = pipeline.String("name");
    if (pipeline.Has("name")) {
      if (!IsPipelineName(out.name)) {
        pipeline.Error("name",
                       "expected lowercase letters, digits, '_' and '-', got " + Shown(out.name));
      } else if (const auto [first, inserted] =
                     names.emplace(out.name, MarkOf(pipeline.Node("name")).line + 1);
                 !inserted) {
        pipeline.Error("name", "duplicate pipeline name '" + out.name + "' (first used on line " +
                                   std::to_string(first->second) + ")");
      }
    }
    ParseSource(pipeline, connectors.sources, out);
    ParseTransforms(pipeline, connectors.transforms, out);
    const Section sink = pipeline.Child("sink", kSinkKeys);
    const Section batch = sink.Child("batch", kBatchKeys);
    out.sink = ParseSink(sink, batch, pipeline.Has("sink"), config_dir);
    out.queue = ParseQueue(pipeline.Child("queue", kQueueKeys), batch, out.sink.batch);
    out.reindex = ParseReindex(pipeline.Child("reindex", kReindexKeys));
    out.backup = ParseBackup(pipeline.Child("backup", kBackupKeys), config.s3, top.Has("s3"));
    config.pipelines.push_back(std::move(out));
  }
}

Result<Config> Failed(ConfigErrors& errors) {
  std::vector<ConfigError> sorted = errors.all();
  std::stable_sort(sorted.begin(), sorted.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  ConfigErrors out;
  for (ConfigError& error : sorted) out.Add(std::move(error));
  return InvalidArgument(out.ToString());
}

void AppendTable(std::string& out, std::string_view title, std::span<const KeySpec> keys) {
  auto cell = [](std::string_view text) {
    std::string escaped;
    for (const char c : text) {
      if (c == '|') escaped += '\\';
      escaped += c;
    }
    return escaped;
  };
  out += "### ";
  out += title;
  out += "\n\n| key | type | default | required | description |\n|---|---|---|---|---|\n";
  for (const KeySpec& spec : keys) {
    out += "| `" + std::string(spec.name) + "` | " + TypeName(spec.type) + " | ";
    if (!spec.default_value.empty()) out += "`" + cell(spec.default_value) + "`";
    out += spec.required ? " | yes | " : " | | ";
    out += cell(spec.help);
    out += " |\n";
  }
  out += "\n";
}

}  // namespace

std::string YamlToJson(const YAML::Node& node) {
  std::string json;
  AppendYamlAsJson(json, node);
  return json;
}

// ---- Public API ----------------------------------------------------------------------------

std::ostream& operator<<(std::ostream& out, const Secret&) { return out << Secret::kRedacted; }

std::string ConfigError::ToString() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string ConfigErrors::ToString() const {
  std::string out;
  for (const ConfigError& error : errors_) {
    if (!out.empty()) out.push_back('\n');
    out += error.ToString();
  }
  return out;
}

Section::Section(std::string file, YAML::Node node, std::string path, std::span<const KeySpec> keys,
                 ConfigErrors& errors)
    : file_(std::move(file)),
      node_(std::move(node)),
      path_(std::move(path)),
      keys_(keys),
      errors_(&errors) {
  std::set<int> expanded;
  ExpandTree(node_, path_, file_, errors, expanded);
  ValidateMapping(*this, node_, keys_, /*report_shape=*/true, /*check_required=*/true);
}

Section::Section(Nested, std::string file, YAML::Node node, std::string path,
                 std::span<const KeySpec> keys, ConfigErrors& errors)
    : file_(std::move(file)),
      node_(std::move(node)),
      path_(std::move(path)),
      keys_(keys),
      errors_(&errors) {
  // The parent's type check has reported a value that is not a mapping.
  ValidateMapping(*this, node_, keys_, /*report_shape=*/false,
                  /*check_required=*/node_.IsDefined());
}

const KeySpec* Section::Spec(std::string_view key) const {
  for (const KeySpec& spec : keys_) {
    if (spec.name == key) return &spec;
  }
  assert(false && "key missing from the section's table");
  return nullptr;
}

bool Section::Has(std::string_view key) const { return Present(Lookup(node_, key)); }

YAML::Node Section::Node(std::string_view key) const { return Lookup(node_, key); }

std::string Section::PathOf(std::string_view key) const { return Join(path_, key); }

void Section::Error(std::string_view key, std::string_view message) const {
  const YAML::Node value = Lookup(node_, key);
  ErrorAt(value.IsDefined() ? value : node_, PathOf(key) + ": " + std::string(message));
}

void Section::ErrorAt(const YAML::Node& node, std::string_view message) const {
  if (node.IsDefined() && node.Tag() == kUnexpandedTag) return;
  YAML::Mark mark = MarkOf(node);
  if (mark.is_null()) mark = MarkOf(node_);
  Record(*errors_, file_, mark, std::string(message));
}

std::string Section::String(std::string_view key) const {
  const KeySpec* spec = Spec(key);
  const YAML::Node value = Lookup(node_, key);
  if (!Present(value)) return spec ? std::string(spec->default_value) : std::string();
  return value.IsScalar() ? value.Scalar() : std::string();
}

Secret Section::SecretString(std::string_view key) const { return Secret(String(key)); }

bool Section::Bool(std::string_view key) const {
  return Read(Lookup(node_, key), Spec(key), ParseBool, false);
}

int64_t Section::Int(std::string_view key) const {
  return Read(Lookup(node_, key), Spec(key), ParseInt, int64_t{0});
}

Millis Section::Duration(std::string_view key) const {
  return Read(Lookup(node_, key), Spec(key), ParseDuration, Millis::zero());
}

uint64_t Section::Size(std::string_view key) const {
  return Read(Lookup(node_, key), Spec(key), ParseSize, uint64_t{0});
}

std::vector<std::string> Section::StringList(std::string_view key) const {
  const KeySpec* spec = Spec(key);
  const YAML::Node value = Lookup(node_, key);
  std::vector<std::string> out;
  if (!Present(value)) {
    // A list default is written comma-separated.
    std::string_view rest = spec ? spec->default_value : std::string_view();
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      out.emplace_back(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  } else if (value.IsScalar()) {
    out.push_back(value.Scalar());
  } else if (value.IsSequence()) {
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (it->IsScalar()) out.push_back(it->Scalar());
    }
  }
  return out;
}

Section Section::Child(std::string_view key, std::span<const KeySpec> keys) const {
  return Section(Nested{}, file_, Lookup(node_, key), PathOf(key), keys, *errors_);
}

Section Section::Item(std::string_view key, size_t index, std::span<const KeySpec> keys) const {
  return Section(Nested{}, file_, Element(Lookup(node_, key), index), Indexed(PathOf(key), index),
                 keys, *errors_);
}

std::optional<Millis> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // Components add up: "1h30m".
  uint64_t total = 0;
  while (!text.empty()) {
    const std::optional<uint64_t> part = ParseQuantity(text, kDurationUnits, true);
    if (!part || total > std::numeric_limits<int64_t>::max() - *part) return std::nullopt;
    total += *part;
  }
  return Millis(static_cast<int64_t>(total));
}

std::optional<uint64_t> ParseSize(std::string_view text) {
  const std::optional<uint64_t> size = ParseQuantity(text, kSizeUnits, false);
  if (!size || !text.empty()) return std::nullopt;
  return size;
}

Result<std::string> ExpandEnv(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  while (at < text.size()) {
    const size_t dollar = text.find('$', at);
    if (dollar == std::string_view::npos) {
      out.append(text.substr(at));
      break;
    }
    out.append(text.substr(at, dollar - at));
    // "$${" is a literal "${".
    if (text.substr(dollar).starts_with("$${")) {
      out += "${";
      at = dollar + 3;
      continue;
    }
    if (!text.substr(dollar).starts_with("${")) {
      out.push_back('$');
      at = dollar + 1;
      continue;
    }
    // The matching '}': a default may hold references of its own, ${A:-${B}}.
    size_t close = std::string_view::npos;
    for (size_t pos = dollar + 2, depth = 1; pos < text.size(); ++pos) {
      if (text.substr(pos).starts_with("$${")) {
        pos += 2;
      } else if (text.substr(pos).starts_with("${")) {
        ++depth;
        ++pos;
      } else if (text[pos] == '}' && --depth == 0) {
        close = pos;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return InvalidArgument("unterminated ${ (write $${ for a literal ${)");
    }
    std::string_view reference = text.substr(dollar + 2, close - dollar - 2);
    std::optional<std::string_view> fallback;
    if (const size_t sep = reference.find(":-"); sep != std::string_view::npos) {
      fallback = reference.substr(sep + 2);
      reference = reference.substr(0, sep);
    }
    const bool valid_name = !reference.empty() && !(reference[0] >= '0' && reference[0] <= '9') &&
                            std::all_of(reference.begin(), reference.end(), [](char c) {
                              return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                     (c >= '0' && c <= '9') || c == '_';
                            });
    if (!valid_name) {
      return InvalidArgument(
          "a ${...} reference needs a variable name of letters, digits and '_' (write $${ for "
          "a literal ${)");
    }
    const char* value = std::getenv(std::string(reference).c_str());
    // As in the shell, ${VAR:-default} also applies when VAR is set but empty.
    if (value != nullptr && (*value != '\0' || !fallback)) {
      out.append(value);
    } else if (fallback) {
      Result<std::string> expanded = ExpandEnv(*fallback);  // only when used, as in the shell
      if (!expanded.ok()) return expanded.status();
      out.append(*expanded);
    } else {
      return InvalidArgument("environment variable " + std::string(reference) + " is not set");
    }
    at = close + 1;
  }
  return out;
}

std::string DidYouMean(std::string_view key, std::span<const KeySpec> keys) {
  std::vector<std::string_view> names;
  for (const KeySpec& spec : keys) names.push_back(spec.name);
  return Nearest(key, names);
}

Result<Config> ParseConfig(const std::string& text, const std::string& file,
                           const ConnectorParsers& connectors) {
  ConfigErrors errors;
  Config config;
  config.file = file;
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const size_t line_start = text.rfind('\n', nul);
    YAML::Mark mark;
    mark.line = static_cast<int>(std::count(text.begin(), text.begin() + nul, '\n'));
    mark.column = static_cast<int>(nul - (line_start == std::string::npos ? 0 : line_start + 1));
    Record(errors, file, mark, "a NUL byte: this is not a YAML text file");
    return Failed(errors);
  }
  try {
    YAML::Node root = YAML::Load(text);
    if (size_t budget = kMaxExpandedNodes; !WithinExpansionBounds(root, budget)) {
      Record(errors, file, YAML::Mark::null_mark(),
             "the document's aliases expand to more than " + std::to_string(kMaxExpandedNodes) +
                 " nodes or " + std::to_string(kMaxExpandedDepth) +
                 " levels (aliases of aliases, or an alias inside its own anchor); use fewer");
      return Failed(errors);
    }
    ApplyMergeKeys(root, file, errors);
    ParseDocument(root, file, connectors, config, errors);
  } catch (const YAML::ParserException& e) {
    std::string message = "YAML syntax error: " + e.msg;
    // `{ tags: string[] }` is the usual culprit: inside { } and [ ], brackets end a plain value.
    std::istringstream lines(text);
    std::string line;
    for (int at = 0; at <= e.mark.line && std::getline(lines, line); ++at) {
    }
    if (line.find("[]") != std::string::npos) {
      message += " (inside { } or [ ], quote a value that holds brackets: \"string[]\")";
    }
    Record(errors, file, e.mark, std::move(message));
  } catch (const YAML::Exception& e) {
    Record(errors, file, e.mark, "YAML error: " + e.msg);
  }
  if (!errors.empty()) return Failed(errors);
  return config;
}

Result<Config> LoadConfig(const std::string& path, const ConnectorParsers& connectors) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return InvalidArgument(
        ConfigError{.file = path, .message = text.status().message()}.ToString());
  }
  return ParseConfig(*text, path, connectors);
}

std::string ConfigReferenceMarkdown(const ConnectorParsers& connectors) {
  std::string out =
      "Durations carry units: `250ms`, `5s`, `30m`, `24h` (`1h30m` adds up). Sizes are `512KiB`, "
      "`8MiB`, `1GiB` (binary), `KB`/`MB`/`GB` (decimal) or a plain byte count. `${VAR}` and "
      "`${VAR:-default}` are replaced from the environment in every value (a default may hold "
      "references itself: `${A:-${B}}`); `$${` is a literal `${`. YAML anchors, aliases and "
      "merge keys (`<<: *defaults`) work. Unknown keys are errors.\n\n";
  AppendTable(out, "Top level", kTopKeys);
  AppendTable(out, "`typesense`", kTypesenseKeys);
  AppendTable(out, "`typesense.retry`", kRetryKeys);
  AppendTable(out, "`state`", kStateKeys);
  AppendTable(out, "`admin`", kAdminKeys);
  AppendTable(out, "`s3`", kS3Keys);
  AppendTable(out, "`snapshot`", kSnapshotKeys);
  AppendTable(out, "`pipelines[]`", kPipelineKeys);
  for (const SourceRegistration& registration : connectors.sources) {
    std::vector<KeySpec> keys{kSourceTypeKey};
    keys.insert(keys.end(), registration.keys.begin(), registration.keys.end());
    AppendTable(out, "`pipelines[].source` with `type: " + std::string(registration.type) + "`",
                keys);
  }
  out += "### `pipelines[].transforms[]`\n\n| transform | description |\n|---|---|\n";
  for (const TransformRegistration& registration : connectors.transforms) {
    out +=
        "| `" + std::string(registration.name) + "` | " + std::string(registration.help) + " |\n";
  }
  out += "\n";
  AppendTable(out, "`pipelines[].sink`", kSinkKeys);
  AppendTable(out, "`pipelines[].sink.batch`", kBatchKeys);
  AppendTable(out, "`pipelines[].queue`", kQueueKeys);
  AppendTable(out, "`pipelines[].reindex`", kReindexKeys);
  AppendTable(out, "`pipelines[].backup`", kBackupKeys);
  return out;
}

}  // namespace searchsync
