#include "transforms/cast.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

#include "pipeline/json.h"

namespace searchsync {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

struct TypeName {
  CastType type;
  std::string_view name;
};

constexpr TypeName kTypeNames[] = {
    {CastType::kString, "string"},
    {CastType::kInt32, "int32"},
    {CastType::kInt64, "int64"},
    {CastType::kFloat, "float"},
    {CastType::kBool, "bool"},
    {CastType::kObject, "object"},
    {CastType::kStringArray, "string[]"},
    {CastType::kInt32Array, "int32[]"},
    {CastType::kInt64Array, "int64[]"},
    {CastType::kFloatArray, "float[]"},
    {CastType::kBoolArray, "bool[]"},
    {CastType::kObjectArray, "object[]"},
};

// The same names as a key table, for DidYouMean.
constexpr KeySpec kTypeKeys[] = {
    {"string", KeyType::kString, "", false, ""},   {"int32", KeyType::kString, "", false, ""},
    {"int64", KeyType::kString, "", false, ""},    {"float", KeyType::kString, "", false, ""},
    {"bool", KeyType::kString, "", false, ""},     {"object", KeyType::kString, "", false, ""},
    {"string[]", KeyType::kString, "", false, ""}, {"int32[]", KeyType::kString, "", false, ""},
    {"int64[]", KeyType::kString, "", false, ""},  {"float[]", KeyType::kString, "", false, ""},
    {"bool[]", KeyType::kString, "", false, ""},   {"object[]", KeyType::kString, "", false, ""},
};

constexpr size_t kMaxShownValue = 64;  // longest value echoed in an error

bool IsArray(CastType type) { return type >= CastType::kStringArray; }

// The element type of an array type; scalar types map to themselves.
CastType ElementType(CastType type) {
  switch (type) {
    case CastType::kStringArray:
      return CastType::kString;
    case CastType::kInt32Array:
      return CastType::kInt32;
    case CastType::kInt64Array:
      return CastType::kInt64;
    case CastType::kFloatArray:
      return CastType::kFloat;
    case CastType::kBoolArray:
      return CastType::kBool;
    case CastType::kObjectArray:
      return CastType::kObject;
    default:
      return type;
  }
}

std::string Shown(std::string_view json) {
  if (json.size() <= kMaxShownValue) return std::string(json);
  size_t cut = kMaxShownValue;
  while (cut > 0 && (static_cast<unsigned char>(json[cut]) & 0xC0) == 0x80) --cut;
  return std::string(json.substr(0, cut)) + "...";
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

template <class Number>
void AppendNumber(std::string& out, Number value) {
  char buffer[32];
  out.append(buffer, std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
}

std::optional<double> ParseDouble(std::string_view text) {
  text = Trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// An integer from a float: only when integral and representable.
std::optional<int64_t> IntegerOf(double value, std::string& reason) {
  if (value != std::trunc(value)) {
    reason = "not an integer";
    return std::nullopt;
  }
  // [-2^63, 2^63): both bounds are exact doubles.
  if (value < -9223372036854775808.0 || value >= 9223372036854775808.0) {
    reason = "out of range";
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

std::optional<int64_t> ToInteger(element value, std::string& reason) {
  switch (value.type()) {
    case element_type::INT64:
      return value.get_int64().value_unsafe();
    case element_type::UINT64:
      reason = "out of range";
      return std::nullopt;  // > INT64_MAX
    case element_type::DOUBLE:
      return IntegerOf(value.get_double().value_unsafe(), reason);
    case element_type::STRING: {
      std::string_view text = Trim(value.get_string().value_unsafe());
      if (!text.empty() && text.front() == '+') text.remove_prefix(1);
      int64_t integer = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
      if (!text.empty() && end == text.data() + text.size()) {
        if (ec == std::errc()) return integer;
        if (ec == std::errc::result_out_of_range) {
          reason = "out of range";
          return std::nullopt;
        }
      }
      if (const std::optional<double> number = ParseDouble(text)) {
        return IntegerOf(*number, reason);
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

std::optional<bool> ToBool(element value) {
  switch (value.type()) {
    case element_type::BOOL:
      return value.get_bool().value_unsafe();
    case element_type::INT64: {
      const int64_t integer = value.get_int64().value_unsafe();
      if (integer == 0 || integer == 1) return integer == 1;
      return std::nullopt;
    }
    case element_type::STRING: {
      std::string text(Trim(value.get_string().value_unsafe()));
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (text == "true" || text == "t" || text == "1") return true;
      if (text == "false" || text == "f" || text == "0") return false;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// Appends `value` converted to the scalar type `type`. On failure returns false, with `reason`
// set when there is more to say than "cannot be converted".
bool AppendAs(std::string& out, element value, CastType type, std::string& reason) {
  switch (type) {
    case CastType::kString:
      switch (value.type()) {
        case element_type::STRING:
          AppendJsonString(out, value.get_string().value_unsafe());
          break;
        case element_type::INT64:
          out.push_back('"');
          AppendNumber(out, value.get_int64().value_unsafe());
          out.push_back('"');
          break;
        case element_type::UINT64:
          out.push_back('"');
          AppendNumber(out, value.get_uint64().value_unsafe());
          out.push_back('"');
          break;
        case element_type::DOUBLE:
          out.push_back('"');
          AppendNumber(out, value.get_double().value_unsafe());
          out.push_back('"');
          break;
        case element_type::BOOL:
          out += value.get_bool().value_unsafe() ? "\"true\"" : "\"false\"";
          break;
        case element_type::ARRAY:
        case element_type::OBJECT:
          AppendJsonString(out, simdjson::minify(value));
          break;
        case element_type::NULL_VALUE:
          out += "null";
          break;
      }
      return true;
    case CastType::kInt32:
    case CastType::kInt64: {
      const std::optional<int64_t> integer = ToInteger(value, reason);
      if (!integer) return false;
      if (type == CastType::kInt32 && (*integer < std::numeric_limits<int32_t>::min() ||
                                       *integer > std::numeric_limits<int32_t>::max())) {
        reason = "out of range";
        return false;
      }
      AppendNumber(out, *integer);
      return true;
    }
    case CastType::kFloat:
      switch (value.type()) {
        case element_type::INT64:
          AppendNumber(out, value.get_int64().value_unsafe());
          return true;
        case element_type::UINT64:
          AppendNumber(out, value.get_uint64().value_unsafe());
          return true;
        case element_type::DOUBLE:
          AppendNumber(out, value.get_double().value_unsafe());
          return true;
        case element_type::STRING:
          if (const std::optional<double> number = ParseDouble(value.get_string().value_unsafe())) {
            AppendNumber(out, *number);
            return true;
          }
          return false;
        default:
          return false;
      }
    case CastType::kBool: {
      const std::optional<bool> flag = ToBool(value);
      if (!flag) return false;
      out += *flag ? "true" : "false";
      return true;
    }
    case CastType::kObject:
      if (value.type() != element_type::OBJECT) return false;
      out += simdjson::minify(value);
      return true;
    default:
      return false;  // array types are handled by the caller
  }
}

// Whether `value` already has the scalar type `type`, so its text can be kept as it is.
bool AlreadyIs(element value, CastType type) {
  switch (type) {
    case CastType::kString:
      return value.type() == element_type::STRING;
    case CastType::kInt64:
      return value.type() == element_type::INT64;
    case CastType::kInt32: {
      if (value.type() != element_type::INT64) return false;
      const int64_t integer = value.get_int64().value_unsafe();
      return integer >= std::numeric_limits<int32_t>::min() &&
             integer <= std::numeric_limits<int32_t>::max();
    }
    case CastType::kFloat:
      return value.type() == element_type::INT64 || value.type() == element_type::UINT64 ||
             value.type() == element_type::DOUBLE;
    case CastType::kBool:
      return value.type() == element_type::BOOL;
    case CastType::kObject:
      return value.type() == element_type::OBJECT;
    default:
      return false;
  }
}

// Whether `json` is, without parsing it, a number that AlreadyIs `type` (a cast then leaves it as
// it is): an integer literal short enough for int32/int64 (never "-0", a double to simdjson),
// or a plain decimal for float (no exponent, so it cannot overflow). Anything else goes through
// the parser; this only skips it for the common case of a numeric column.
bool IsPlainNumberOf(std::string_view json, CastType type) {
  size_t max_digits = 0;
  bool fraction_allowed = false;
  switch (type) {
    case CastType::kInt32:
      max_digits = 9;
      break;
    case CastType::kInt64:
      max_digits = 18;
      break;
    case CastType::kFloat:
      max_digits = 30;
      fraction_allowed = true;
      break;
    default:
      return false;
  }
  size_t i = 0;
  if (i < json.size() && json[i] == '-') ++i;
  const size_t first_digit = i;
  while (i < json.size() && json[i] >= '0' && json[i] <= '9') ++i;
  const size_t integer_digits = i - first_digit;
  if (integer_digits == 0 || integer_digits > max_digits) return false;
  if (json[first_digit] == '0' && integer_digits > 1) return false;  // no leading zeros in JSON
  if (i == json.size()) return !(json[first_digit] == '0' && first_digit > 0);  // "-0"
  if (!fraction_allowed || json[i] != '.') return false;
  const size_t fraction_start = ++i;
  while (i < json.size() && json[i] >= '0' && json[i] <= '9') ++i;
  return i == json.size() && i > fraction_start && i - first_digit <= max_digits + 1;
}

// Parses with a per-thread parser and padded buffer, so steady state allocates nothing. The
// element is valid until the thread's next Parse.
simdjson::error_code Parse(std::string_view json, element& root) {
  thread_local simdjson::dom::parser parser;
  thread_local std::string buffer;
  buffer.resize(json.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buffer.data(), json.data(), json.size());
  return parser.parse(buffer.data(), json.size(), /*realloc_if_needed=*/false).get(root);
}

Status CannotConvert(std::string_view json, CastType type, const std::string& reason) {
  return InvalidArgument("cannot be converted to " + std::string(CastTypeName(type)) +
                         (reason.empty() ? "" : " (" + reason + ")") + ": " + Shown(json));
}

}  // namespace

std::string_view CastTypeName(CastType type) {
  for (const TypeName& entry : kTypeNames) {
    if (entry.type == type) return entry.name;
  }
  return "?";
}

std::optional<CastType> CastTypeFromName(std::string_view name) {
  for (const TypeName& entry : kTypeNames) {
    if (entry.name == name) return entry.type;
  }
  return std::nullopt;
}

Result<std::string> CastJson(std::string_view json, CastType type) {
  element root;
  if (Parse(json, root) != simdjson::SUCCESS) return CannotConvert(json, type, "invalid JSON");
  if (root.type() == element_type::NULL_VALUE) return std::string("null");
  std::string out;
  std::string reason;
  if (!IsArray(type)) {
    if (AlreadyIs(root, type)) return std::string(json);
    if (!AppendAs(out, root, type, reason)) return CannotConvert(json, type, reason);
    return out;
  }
  const CastType item_type = ElementType(type);
  out.push_back('[');
  if (root.type() != element_type::ARRAY) {
    if (!AppendAs(out, root, item_type, reason)) return CannotConvert(json, type, reason);
  } else {
    simdjson::dom::array items;
    if (root.get_array().get(items) != simdjson::SUCCESS) return CannotConvert(json, type, "");
    size_t index = 0;
    bool first = true;
    for (const element item : items) {
      if (item.type() != element_type::NULL_VALUE) {
        if (!first) out.push_back(',');
        first = false;
        std::string item_reason;
        if (!AppendAs(out, item, item_type, item_reason)) {
          return CannotConvert(json, type,
                               "element " + std::to_string(index) +
                                   (item_reason.empty() ? " is " + Shown(simdjson::minify(item))
                                                        : ": " + item_reason));
        }
      }
      ++index;
    }
  }
  out.push_back(']');
  return out;
}

Transform MakeCast(std::vector<FieldCast> casts) {
  return [casts = std::move(casts)](Event event) -> Result<Event> {
    if (event.op != Op::kUpsert) return event;
    for (Field& field : event.document) {
      for (const FieldCast& cast : casts) {
        if (cast.field != field.name) continue;
        if (IsPlainNumberOf(field.json, cast.type)) continue;
        Result<std::string> converted = CastJson(field.json, cast.type);
        if (!converted.ok()) {
          return InvalidArgument("cast: field '" + field.name + "' " +
                                 converted.status().message());
        }
        field.json = std::move(converted).value();
      }
    }
    return event;
  };
}

Transform ParseCast(const YAML::Node& value, const std::string& path, const Section& where) {
  if (!value.IsMap() || value.size() == 0) {
    where.ErrorAt(value, path +
                             ": expected a mapping of field: type, like { price: float, tags: "
                             "\"string[]\" }");
    return {};
  }
  std::vector<FieldCast> casts;
  bool ok = true;
  for (auto it = value.begin(); it != value.end(); ++it) {
    const std::string field = it->first.IsScalar() ? it->first.Scalar() : "";
    if (field.empty()) {
      where.ErrorAt(it->first, path + ": expected a field name as the key");
      ok = false;
      continue;
    }
    const std::string field_path = path + "." + field;
    if (!it->second.IsScalar()) {
      where.ErrorAt(it->second, field_path + ": expected a type name like float or string[], got " +
                                    (it->second.IsMap() ? "a mapping" : "a sequence"));
      ok = false;
      continue;
    }
    const std::string& name = it->second.Scalar();
    const std::optional<CastType> type = CastTypeFromName(name);
    if (!type) {
      std::string known;
      for (const TypeName& entry : kTypeNames) {
        known += (known.empty() ? "" : ", ") + std::string(entry.name);
      }
      const std::string near = DidYouMean(name, kTypeKeys);
      where.ErrorAt(it->second,
                    field_path + ": unknown type " + JsonString(name) +
                        (near.empty() ? "; types: " + known : " (did you mean '" + near + "'?)"));
      ok = false;
      continue;
    }
    if (std::any_of(casts.begin(), casts.end(),
                    [&](const FieldCast& cast) { return cast.field == field; })) {
      where.ErrorAt(it->first, field_path + ": cast twice");
      ok = false;
      continue;
    }
    casts.push_back({.field = field, .type = *type});
  }
  if (!ok) return {};
  return MakeCast(std::move(casts));
}

}  // namespace searchsync
