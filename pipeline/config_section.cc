#include "pipeline/config_section.h"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <system_error>

#include "pipeline/json.h"

namespace searchsync {
namespace {

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

std::string JoinNames(std::span<const KeySpec> keys) {
  std::string out;
  for (const KeySpec& spec : keys) {
    if (!out.empty()) out += ", ";
    out += spec.name;
  }
  return out;
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
  return ", got " + ShownValue(node.Scalar());
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
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

}  // namespace

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

std::string Nearest(std::string_view key, std::span<const std::string_view> names) {
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

// `text` quoted for a message, cut at kMaxShownValue bytes on a UTF-8 boundary.
std::string ShownValue(std::string_view text) {
  if (text.size() > kMaxShownValue) {
    size_t cut = kMaxShownValue;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return JsonString(text.substr(0, cut)) + "...";
  }
  return JsonString(text);
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

const char* KeyTypeName(KeyType type) {
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

// ---- Key tables that fill an options struct ---------------------------------------------------

namespace {

// `value` in the largest of `units` (largest first) that holds it whole; `zero` for 0.
std::string WholeUnits(uint64_t value, std::span<const Unit> units, std::string_view zero) {
  if (value == 0) return std::string(zero);
  for (const Unit& unit : units) {
    if (value % unit.multiplier == 0) {
      return std::to_string(value / unit.multiplier) + std::string(unit.name);
    }
  }
  return std::to_string(value);
}

constexpr Unit kDurationUnitsLargestFirst[] = {
    {"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1},
};
// Binary units only: defaults are powers of two, and "8MiB" reads better than "8388608".
constexpr Unit kSizeUnitsLargestFirst[] = {
    {"TiB", uint64_t{1} << 40},
    {"GiB", uint64_t{1} << 30},
    {"MiB", uint64_t{1} << 20},
    {"KiB", uint64_t{1} << 10},
};

}  // namespace

std::string DefaultText(KeyType, const std::string& value) { return value; }
std::string DefaultText(KeyType, const Secret&) { return ""; }
std::string DefaultText(KeyType, bool value) { return value ? "true" : "false"; }
std::string DefaultText(KeyType, int value) { return std::to_string(value); }

std::string DefaultText(KeyType type, size_t value) {
  if (type == KeyType::kSize) return WholeUnits(value, kSizeUnitsLargestFirst, "0");
  return std::to_string(value);
}

std::string DefaultText(KeyType, Millis value) {
  return WholeUnits(static_cast<uint64_t>(std::max<int64_t>(value.count(), 0)),
                    kDurationUnitsLargestFirst, "0s");
}

std::string DefaultText(KeyType type, const std::optional<Millis>& value) {
  return value ? DefaultText(type, *value) : "";
}

// A list default is written comma-separated (as Section::StringList reads it).
std::string DefaultText(KeyType, const std::vector<std::string>& value) {
  std::string out;
  for (const std::string& item : value) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

void ReadKey(const Section& section, std::string_view key, KeyType, std::string& out) {
  out = section.String(key);
}

void ReadKey(const Section& section, std::string_view key, KeyType, Secret& out) {
  out = section.SecretString(key);
}

void ReadKey(const Section& section, std::string_view key, KeyType, bool& out) {
  out = section.Bool(key);
}

void ReadKey(const Section& section, std::string_view key, KeyType, int& out) {
  out = static_cast<int>(std::clamp<int64_t>(section.Int(key), std::numeric_limits<int>::min(),
                                             std::numeric_limits<int>::max()));
}

void ReadKey(const Section& section, std::string_view key, KeyType type, size_t& out) {
  out = type == KeyType::kSize ? static_cast<size_t>(section.Size(key))
                               : static_cast<size_t>(std::max<int64_t>(section.Int(key), 0));
}

void ReadKey(const Section& section, std::string_view key, KeyType, Millis& out) {
  out = section.Duration(key);
}

void ReadKey(const Section& section, std::string_view key, KeyType, std::optional<Millis>& out) {
  out = section.Duration(key);
}

void ReadKey(const Section& section, std::string_view key, KeyType, std::vector<std::string>& out) {
  out = section.StringList(key);
}

std::optional<YAML::Node> LoadYamlDocument(const std::string& text, const std::string& file,
                                           ConfigErrors& errors) {
  if (const size_t nul = text.find('\0'); nul != std::string::npos) {
    const size_t line_start = text.rfind('\n', nul);
    YAML::Mark mark;
    mark.line = static_cast<int>(std::count(text.begin(), text.begin() + nul, '\n'));
    mark.column = static_cast<int>(nul - (line_start == std::string::npos ? 0 : line_start + 1));
    Record(errors, file, mark, "a NUL byte: this is not a YAML text file");
    return std::nullopt;
  }
  try {
    YAML::Node root = YAML::Load(text);
    if (size_t budget = kMaxExpandedNodes; !WithinExpansionBounds(root, budget)) {
      Record(errors, file, YAML::Mark::null_mark(),
             "the document's aliases expand to more than " + std::to_string(kMaxExpandedNodes) +
                 " nodes or " + std::to_string(kMaxExpandedDepth) +
                 " levels (aliases of aliases, or an alias inside its own anchor); use fewer");
      return std::nullopt;
    }
    ApplyMergeKeys(root, file, errors);
    return root;
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
  return std::nullopt;
}

}  // namespace searchsync
