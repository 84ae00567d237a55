#include "tests/support/typesense_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <stack>
#include <string_view>
#include <thread>
#include <unordered_map>

namespace searchsync::test {
namespace {

using json = nlohmann::json;

constexpr char kJsonType[] = "application/json; charset=utf-8";
constexpr char kTextType[] = "text/plain; charset=utf-8";
constexpr char kHtmlType[] = "text/html";  // what proxies answer with
constexpr size_t kMaxWriteAttempts = 100'000;
constexpr size_t kMaxFilterOps = 100;        // --filter-by-max-ops default
constexpr int kMaxPerPage = 250;             // --max-per-page default
constexpr size_t kMaxSearchQuery = 4000;     // GET .../search query-string cap
constexpr size_t kRaftChunkBytes = 196'605;  // a streamed write is logged in chunks of this size
// Each keep-alive connection holds a worker, so leave room for many concurrent clients.
constexpr size_t kWorkerThreads = 32;

// ---- Replies and the three error-body styles (API-NOTES §1) -----------------------------------

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = kJsonType;
  std::string location;  // a Location header, when not empty
};

// Never throws on invalid UTF-8 (ids come from URLs, which may hold any bytes).
std::string Dump(const json& value, int indent = -1) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

Reply JsonReply(int status, const json& body, const char* content_type = kJsonType) {
  return {status, Dump(body), content_type};
}

// Most handlers build `{"message": "<text>"}` by concatenation: a space after the colon and no
// escaping, so a message holding `"` yields invalid JSON, as on the real server.
Reply ErrorReply(int status, const std::string& message) {
  return {status, "{\"message\": \"" + message + "\"}"};
}
// Routing, readiness and rate-limit refusals put a space after the brace instead.
Reply RouteErrorReply(int status, const std::string& message) {
  return {status, "{ \"message\": \"" + message + "\"}"};
}
// Single-document POST errors are real (compact, escaped) JSON.
Reply CompactErrorReply(int status, const std::string& message) {
  return JsonReply(status, json{{"message", message}});
}

struct ApiError {
  int status;
  std::string message;
};

// ---- Strings, URLs and query strings (API-NOTES §1) -------------------------------------------

// Typesense trims spaces only, not tabs or newlines.
std::string TrimSpaces(std::string_view s) {
  const size_t begin = s.find_first_not_of(' ');
  if (begin == std::string_view::npos) return "";
  return std::string(s.substr(begin, s.find_last_not_of(' ') - begin + 1));
}

// StringUtils::split: pieces trimmed of spaces, empty ones dropped.
std::vector<std::string> SplitTrimmed(std::string_view s, std::string_view separator) {
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(separator, start);
    if (end == std::string_view::npos) end = s.size();
    std::string piece = TrimSpaces(s.substr(start, end - start));
    if (!piece.empty()) pieces.push_back(std::move(piece));
    start = end + separator.size();
  }
  return pieces;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// `%XX` -> byte, `+` -> space, a `%` without two following characters is dropped.
std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] != '%') {
      out += s[i];
    } else if (i + 2 < s.size()) {
      const int high = HexValue(s[i + 1]), low = HexValue(s[i + 2]);
      if (high < 0 || low < 0) {
        out += s[i];
        continue;
      }
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
  }
  return out;
}

// Path segments split on `/` (empty ones dropped), each decoded after splitting so that `%2F`
// stays inside an id.
std::vector<std::string> SplitPath(std::string_view raw_path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= raw_path.size()) {
    size_t end = raw_path.find('/', start);
    if (end == std::string_view::npos) end = raw_path.size();
    if (end > start) segments.push_back(UrlDecode(raw_path.substr(start, end - start)));
    start = end + 1;
  }
  return segments;
}

// Params split on a single `&` only, so an unencoded `&&` stays inside a value
// (`filter_by=a:1&&b:2`). Keys are not decoded, values are. A repeated filter_by is joined with
// `&&`; any other repeated key: last wins.
std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> params;
  auto flush = [&](const std::string& pair) {
    const size_t eq = pair.find('=');
    const std::string key = pair.substr(0, eq);
    if (key.empty() || key == "&") return;
    const std::string value = eq == std::string::npos ? "" : UrlDecode(pair.substr(eq + 1));
    auto [it, inserted] = params.emplace(key, value);
    if (!inserted) it->second = key == "filter_by" ? it->second + "&&" + value : value;
  };
  std::string pair;
  for (size_t i = 0; i < query.size(); ++i) {
    const bool single_amp = query[i] == '&' && i > 0 && i + 1 < query.size() &&
                            query[i - 1] != '&' && query[i + 1] != '&';
    if (single_amp) {
      flush(pair);
      pair.clear();
    } else if (!(query[i] == '&' && i + 1 == query.size())) {
      pair += query[i];
    }
  }
  flush(pair);
  return params;
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool IsPositiveUint32(const std::string& s) {
  if (s.empty() || s.size() > 10 || !AllDigits(s)) return false;
  const uint64_t value = std::stoull(s);
  return value > 0 && value <= UINT32_MAX;
}

std::optional<double> ParseNumber(const std::string& s) {
  if (s.empty() || std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size()) return std::nullopt;
  return value;
}

bool IsInteger(const std::string& s) {
  const size_t digits = !s.empty() && s[0] == '-' ? 1 : 0;
  return s.size() > digits && AllDigits(std::string_view(s).substr(digits));
}

// ---- Schema (API-NOTES §3) --------------------------------------------------------------------

const std::set<std::string> kFieldTypes = {
    "string",     "int32",    "int64",    "float",   "bool",    "geopoint",
    "geopolygon", "string[]", "int32[]",  "int64[]", "float[]", "bool[]",
    "geopoint[]", "object",   "object[]", "auto",    "string*", "image"};

struct Field {
  std::string name;
  std::string type;
  bool optional = false;
  bool facet = false;
  bool index = true;
  bool sort = false;
  bool infix = false;
  bool store = true;
  bool stem = false;
  bool range_index = false;
  std::string locale;

  // `.*` and regex names like `price_.*` apply to every matching field not named in the schema.
  bool IsDynamic() const { return name.find(".*") != std::string::npos; }
  // `auto` and `string*` take whatever the document holds.
  bool AcceptsAnything() const { return type == "auto" || type == "string*"; }

  // With enable_nested_fields: a field whose name is a path into an object (`brand.name`),
  // declared or found inside an `object`/`object[]` field; `nested_array` when the path
  // crosses an array of objects, so the flattened value is an array.
  bool nested = false;
  bool nested_array = false;

  json ToJson() const {
    json out = {{"facet", facet},   {"index", index}, {"infix", infix},
                {"locale", locale}, {"name", name},   {"optional", optional},
                {"sort", sort},     {"stem", stem},   {"stem_dictionary", ""},
                {"store", store},   {"type", type}};
    if (range_index) out["range_index"] = true;
    if (nested) out["nested"] = true;
    if (nested_array) out["nested_array"] = 1;
    return out;
  }
};

// The value at a dotted path (`brand.name`) of a document with nested fields, as Typesense
// flattens it: objects are descended into, and a path that crosses an array of objects gives
// the array of the values found in its elements (arrays found there are spliced in). nullopt
// when nothing is there. `crossed_array` reports whether an array was crossed.
std::optional<json> Flattened(const json& value, std::string_view path, bool* crossed_array) {
  if (path.empty()) return value.is_null() ? std::nullopt : std::optional<json>(value);
  if (value.is_array()) {
    *crossed_array = true;
    json out = json::array();
    for (const json& element : value) {
      std::optional<json> found = Flattened(element, path, crossed_array);
      if (!found) continue;
      if (found->is_array()) {
        for (json& item : *found) out.push_back(std::move(item));
      } else {
        out.push_back(std::move(*found));
      }
    }
    return out.empty() ? std::nullopt : std::optional<json>(std::move(out));
  }
  if (!value.is_object()) return std::nullopt;
  const size_t dot = path.find('.');
  const std::string key(path.substr(0, dot));
  const auto it = value.find(key);
  if (it == value.end()) return std::nullopt;
  return Flattened(*it, dot == std::string_view::npos ? "" : path.substr(dot + 1), crossed_array);
}

bool PatternMatches(const std::string& pattern, const std::string& name) {
  try {
    return std::regex_match(name, std::regex(pattern));
  } catch (const std::regex_error&) {
    return false;
  }
}

struct Schema {
  std::vector<Field> fields;  // declaration order; `id` is never in here
  std::string default_sorting_field;
  bool enable_nested_fields = false;
  json token_separators = json::array();
  json symbols_to_index = json::array();
  std::optional<json> metadata;

  const Field* Find(const std::string& name) const {
    for (const Field& field : fields) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }
  // The field that governs `name`: the one declared with that name, else the first dynamic field
  // whose pattern matches it.
  const Field* Governing(const std::string& name) const {
    if (const Field* field = Find(name)) return field;
    for (const Field& field : fields) {
      if (field.IsDynamic() && (field.name == ".*" || PatternMatches(field.name, name))) {
        return &field;
      }
    }
    return nullptr;
  }
  // Whether `name` is a path into an object rather than a top-level key.
  bool IsNestedPath(const std::string& name) const {
    return enable_nested_fields && name.find('.') != std::string::npos;
  }
  // The value filters and searches see for field `name`: a top-level key, or a flattened path.
  std::optional<json> ValueOf(const json& doc, const std::string& name) const {
    if (IsNestedPath(name)) {
      bool crossed_array = false;
      return Flattened(doc, name, &crossed_array);
    }
    const auto it = doc.find(name);
    return it == doc.end() ? std::nullopt : std::optional<json>(*it);
  }
  bool HasDynamicFields() const {
    return std::any_of(fields.begin(), fields.end(),
                       [](const Field& f) { return f.IsDynamic() || f.type == "auto"; });
  }
};

const char kWrongFieldsFormat[] =
    "Wrong format for `fields`. It should be an array of objects containing `name`, `type`, "
    "`optional` and `facet` properties.";

bool IsArrayType(const std::string& type) { return type.size() > 2 && type.ends_with("[]"); }

std::optional<ApiError> ParseField(const json& spec, bool nested_enabled, Field* out) {
  if (!spec.is_object() || !spec.contains("name") || !spec["name"].is_string() ||
      !spec.contains("type") || !spec["type"].is_string()) {
    return ApiError{400, kWrongFieldsFormat};
  }
  Field field;
  field.name = spec["name"];
  field.type = spec["type"];
  if (!kFieldTypes.count(field.type)) {
    return ApiError{400, "Field `" + field.name + "` has an invalid data type `" + field.type +
                             "`, see docs for supported data types."};
  }
  if ((field.type == "object" || field.type == "object[]") && !nested_enabled) {
    return ApiError{400,
                    "Type `object` or `object[]` can be used only when nested fields are "
                    "enabled by setting` enable_nested_fields` to true."};
  }
  field.optional = field.IsDynamic() || field.AcceptsAnything();
  field.sort = field.type == "int32" || field.type == "int64" || field.type == "float" ||
               field.type == "bool" || field.type == "geopoint" || field.type == "geopoint[]" ||
               field.type == "geopolygon";
  const std::pair<const char*, bool*> flags[] = {
      {"optional", &field.optional}, {"facet", &field.facet},
      {"index", &field.index},       {"sort", &field.sort},
      {"infix", &field.infix},       {"store", &field.store},
      {"stem", &field.stem},         {"range_index", &field.range_index}};
  for (auto [key, target] : flags) {
    if (!spec.contains(key)) continue;
    if (!spec[key].is_boolean()) return ApiError{400, kWrongFieldsFormat};
    *target = spec[key];
  }
  if (spec.contains("locale")) {
    if (!spec["locale"].is_string()) return ApiError{400, kWrongFieldsFormat};
    field.locale = spec["locale"];
  }
  if (field.IsDynamic() && !field.optional) {
    return ApiError{400, "Field `" + field.name + "` must be an optional field."};
  }
  if (field.facet && !field.index) {
    return ApiError{
        400, "Field `" + field.name + "` cannot be a facet since it's marked as non-indexable."};
  }
  const bool sortable_type = !(IsArrayType(field.type) && field.type != "geopoint[]") &&
                             field.type != "object" && field.type != "object[]";
  if (field.sort && !sortable_type) {
    return ApiError{400, "Field `" + field.name + "` cannot be a sortable field."};
  }
  *out = std::move(field);
  return std::nullopt;
}

std::optional<ApiError> ParseSchema(const json& body, std::string* name, Schema* out) {
  if (!body.contains("name")) return ApiError{400, "Parameter `name` is required."};
  if (!body["name"].is_string() || body["name"].get<std::string>().empty()) {
    return ApiError{400, "Parameter `name` must be a non-empty string."};
  }
  *name = body["name"];
  if (!body.contains("fields")) return ApiError{400, "Parameter `fields` is required."};
  if (!body["fields"].is_array() || body["fields"].empty()) {
    return ApiError{400,
                    "The `fields` value should be an array of objects containing `name`, "
                    "`type` and optionally, `facet` properties."};
  }
  Schema schema;
  if (body.contains("enable_nested_fields")) {
    if (!body["enable_nested_fields"].is_boolean()) return ApiError{400, kWrongFieldsFormat};
    schema.enable_nested_fields = body["enable_nested_fields"];
  }
  if (body.contains("default_sorting_field")) {
    if (!body["default_sorting_field"].is_string()) {
      return ApiError{400,
                      "`default_sorting_field` should be a string. It should be the name of "
                      "an int32/float field."};
    }
    schema.default_sorting_field = body["default_sorting_field"];
  }
  if (body.contains("token_separators") && body["token_separators"].is_array()) {
    schema.token_separators = body["token_separators"];
  }
  if (body.contains("symbols_to_index") && body["symbols_to_index"].is_array()) {
    schema.symbols_to_index = body["symbols_to_index"];
  }
  if (body.contains("metadata") && body["metadata"].is_object()) schema.metadata = body["metadata"];

  std::set<std::string> names;
  for (const json& spec : body["fields"]) {
    Field field;
    if (auto error = ParseField(spec, schema.enable_nested_fields, &field)) return error;
    if (field.name == "id") continue;  // built in, always a string
    field.nested =
        schema.IsNestedPath(field.name) || field.type == "object" || field.type == "object[]";
    if (field.name == ".*" && names.count(".*")) {
      return ApiError{400, "There can be only one field named `.*`."};
    }
    if (!names.insert(field.name).second) {
      return ApiError{400, "There are duplicate field names in the schema."};
    }
    schema.fields.push_back(std::move(field));
  }

  const std::string& dsf = schema.default_sorting_field;
  if (!dsf.empty()) {
    if (dsf == "id") return ApiError{400, "Invalid `default_sorting_field` value: cannot be `id`."};
    const Field* field = schema.Find(dsf);
    if (field == nullptr) {
      return ApiError{
          400, "Default sorting field is defined as `" + dsf + "` but is not found in the schema."};
    }
    const bool sortable = field->type == "int32" || field->type == "int64" ||
                          field->type == "float" || field->type == "bool" ||
                          (field->type == "string" && field->sort);
    if (!sortable) {
      return ApiError{400, "Default sorting field `" + dsf + "` is not a sortable type."};
    }
    if (field->optional) {
      return ApiError{400, "Default sorting field `" + dsf + "` cannot be an optional field."};
    }
  }
  *out = std::move(schema);
  return std::nullopt;
}

// ---- Document validation (API-NOTES §4.3) -----------------------------------------------------

enum class DirtyValues { kReject, kDrop, kCoerceOrReject, kCoerceOrDrop };

DirtyValues ParseDirtyValues(const std::string& param, const Schema& schema) {
  const std::string value = Lower(param);
  if (value == "reject") return DirtyValues::kReject;
  if (value == "drop") return DirtyValues::kDrop;
  if (value == "coerce_or_reject") return DirtyValues::kCoerceOrReject;
  if (value == "coerce_or_drop") return DirtyValues::kCoerceOrDrop;
  return schema.HasDynamicFields() ? DirtyValues::kCoerceOrReject : DirtyValues::kReject;
}

enum class ValueCheck { kOk, kWrongType, kOutOfInt32 };

// Checks one scalar against `type`; with `coerce`, converts it in place where Typesense would.
ValueCheck CheckScalar(const std::string& type, json& value, bool coerce) {
  if (type == "string") {
    if (value.is_string()) return ValueCheck::kOk;
    if (!coerce || !(value.is_number() || value.is_boolean())) return ValueCheck::kWrongType;
    value = value.is_boolean() ? (value.get<bool>() ? "true" : "false") : Dump(value);
    return ValueCheck::kOk;
  }
  if (type == "int32" || type == "int64") {
    // Under `reject`, int32 range is not checked: the real validator only checks it when coercing.
    if (value.is_number_integer()) return ValueCheck::kOk;
    if (!coerce) return ValueCheck::kWrongType;
    std::optional<double> number;
    if (value.is_number()) number = value.get<double>();
    if (value.is_boolean()) number = value.get<bool>() ? 1 : 0;
    if (value.is_string()) number = ParseNumber(value.get<std::string>());
    if (!number || !std::isfinite(*number)) return ValueCheck::kWrongType;
    if (type == "int32" && (*number > INT32_MAX || *number < INT32_MIN)) {
      return ValueCheck::kOutOfInt32;
    }
    value = static_cast<int64_t>(*number);
    return ValueCheck::kOk;
  }
  if (type == "float") {
    if (value.is_number()) return ValueCheck::kOk;
    if (!coerce) return ValueCheck::kWrongType;
    std::optional<double> number;
    if (value.is_boolean()) number = value.get<bool>() ? 1 : 0;
    if (value.is_string()) number = ParseNumber(value.get<std::string>());
    if (!number) return ValueCheck::kWrongType;
    value = *number;
    return ValueCheck::kOk;
  }
  if (type == "bool") {
    if (value.is_boolean()) return ValueCheck::kOk;
    if (!coerce) return ValueCheck::kWrongType;
    const std::string text = value.is_string() ? Lower(value.get<std::string>()) : "";
    if (text == "true" || text == "false") {
      value = text == "true";
      return ValueCheck::kOk;
    }
    if (value.is_number_integer() && (value == 0 || value == 1)) {
      value = value == 1;
      return ValueCheck::kOk;
    }
    return ValueCheck::kWrongType;
  }
  if (type == "geopoint") {
    const bool ok =
        value.is_array() && value.size() == 2 && value[0].is_number() && value[1].is_number();
    return ok ? ValueCheck::kOk : ValueCheck::kWrongType;
  }
  if (type == "object") return value.is_object() ? ValueCheck::kOk : ValueCheck::kWrongType;
  return ValueCheck::kOk;  // geopolygon, image: not checked here
}

// The message for a value of field `name` that is not of `type`.
std::string TypeError(const std::string& name, const std::string& type) {
  static const std::map<std::string, std::string> kExpected = {
      {"string", "a string"},
      {"int32", "an int32"},
      {"int64", "an int64"},
      {"float", "a float"},
      {"bool", "a bool"},
      {"geopoint", "a 2 element array: [lat, lng]"},
      {"object", "an object"},
      {"string[]", "an array of string"},
      {"int32[]", "an array of int32"},
      {"int64[]", "an array of int64"},
      {"float[]", "a array of float"},  // sic
      {"bool[]", "a array of bool"},    // sic
      {"geopoint[]", "an array of geopoint"},
      {"object[]", "an array of objects"}};
  const auto it = kExpected.find(type);
  return "Field `" + name + "` must be " + (it == kExpected.end() ? type : it->second) + ".";
}

std::optional<std::string> CheckValue(const std::string& name, const std::string& type, json& value,
                                      DirtyValues dirty_values) {
  const bool coerce =
      dirty_values == DirtyValues::kCoerceOrReject || dirty_values == DirtyValues::kCoerceOrDrop;
  ValueCheck check = ValueCheck::kOk;
  if (IsArrayType(type)) {
    if (!value.is_array()) return "Field `" + name + "` must be an array.";
    const std::string element_type = type.substr(0, type.size() - 2);
    for (json& element : value) {
      check = CheckScalar(element_type, element, coerce);
      if (check != ValueCheck::kOk) break;
    }
  } else {
    check = CheckScalar(type, value, coerce);
  }
  if (check == ValueCheck::kOutOfInt32) {
    return "Field `" + name + "` exceeds maximum value of int32.";
  }
  if (check == ValueCheck::kWrongType) return TypeError(name, type);
  return std::nullopt;
}

enum class Action { kCreate, kUpsert, kUpdate, kEmplace };

// A declared `brand.name` (or `variants.sku` inside an `object[]`): checked on its flattened
// value, which is never coerced in place (Typesense keeps the document as sent).
std::optional<ApiError> CheckNestedPath(const Field& field, const json& doc, bool is_update) {
  bool crossed_array = false;
  std::optional<json> value = Flattened(doc, field.name, &crossed_array);
  if (!value) {
    if (field.optional || is_update) return std::nullopt;
    return ApiError{400, "Field `" + field.name +
                             "` has been declared in the schema, but is not found in the "
                             "document."};
  }
  if (crossed_array && !IsArrayType(field.type) && !field.AcceptsAnything()) {
    return ApiError{400, "Field `" + field.name +
                             "` has an incorrect type. Hint: field inside an array of objects "
                             "must be an array type as well."};
  }
  if (field.AcceptsAnything()) return std::nullopt;
  if (auto message = CheckValue(field.name, field.type, *value, DirtyValues::kReject)) {
    return ApiError{400, *message};
  }
  return std::nullopt;
}

// The Typesense type of a leaf value found inside an object field; empty for null and for
// values no type describes (an empty array, mixed arrays).
std::string DetectedType(const json& value) {
  if (value.is_string()) return "string";
  if (value.is_boolean()) return "bool";
  if (value.is_number_integer()) return "int64";
  if (value.is_number()) return "float";
  if (value.is_array() && !value.empty()) {
    const std::string element = DetectedType(value[0]);
    if (element.empty() || IsArrayType(element)) return "";
    for (const json& item : value) {
      const std::string type = DetectedType(item);
      if (type != element && !(element == "float" && type == "int64")) return "";
    }
    return element + "[]";
  }
  return "";
}

// Every leaf inside the `object`/`object[]` fields of `doc`, as (flattened name, value,
// crossed an array): what Typesense indexes as `brand.name`, `variants.sku`, ...
void CollectNestedLeaves(const std::string& prefix, const json& value, bool in_array,
                         std::vector<std::tuple<std::string, json, bool>>* leaves) {
  if (value.is_object()) {
    for (const auto& item : value.items()) {
      CollectNestedLeaves(prefix + "." + item.key(), item.value(), in_array, leaves);
    }
  } else if (value.is_array() && !value.empty() && value[0].is_object()) {
    for (const json& element : value) CollectNestedLeaves(prefix, element, true, leaves);
  } else if (!value.is_null()) {
    leaves->emplace_back(prefix, value, in_array);
  }
}

// Adds to `schema` the flattened fields of `doc`'s object fields not seen before, with the
// type of their first value (in an array of objects: an array type), as Typesense does; a
// value whose type differs from its field's is refused.
std::optional<ApiError> IndexNestedFields(Schema& schema, const json& doc) {
  if (!schema.enable_nested_fields) return std::nullopt;
  std::vector<std::tuple<std::string, json, bool>> leaves;
  for (const Field& field : schema.fields) {
    if ((field.type != "object" && field.type != "object[]") || field.IsDynamic()) continue;
    const auto it = doc.find(field.name);
    if (it == doc.end() || it->is_null()) continue;
    if (it->is_array()) {
      for (const json& element : *it) CollectNestedLeaves(field.name, element, true, &leaves);
    } else {
      CollectNestedLeaves(field.name, *it, false, &leaves);
    }
  }
  std::vector<Field> discovered;
  for (const auto& [name, value, in_array] : leaves) {
    if (schema.Find(name) != nullptr ||
        std::any_of(discovered.begin(), discovered.end(),
                    [&name = name](const Field& f) { return f.name == name; })) {
      continue;
    }
    std::string type = DetectedType(value);
    if (type.empty()) continue;
    if (in_array && !IsArrayType(type)) type += "[]";
    Field field{
        .name = name, .type = type, .optional = true, .nested = true, .nested_array = in_array};
    field.sort = !IsArrayType(type) && type != "string";
    discovered.push_back(std::move(field));
  }
  // Each flattened value against its field, including the ones just discovered (two objects of
  // one object[] with different types for one key are refused).
  std::vector<const Field*> checked;
  for (const Field& field : schema.fields) checked.push_back(&field);
  for (const Field& field : discovered) checked.push_back(&field);
  for (const Field* field : checked) {
    if (!field->nested || field->AcceptsAnything()) continue;
    bool crossed_array = false;
    std::optional<json> value = Flattened(doc, field->name, &crossed_array);
    if (!value) continue;
    if (auto message = CheckValue(field->name, field->type, *value, DirtyValues::kReject)) {
      return ApiError{400, *message};
    }
  }
  for (Field& field : discovered) schema.fields.push_back(std::move(field));
  return std::nullopt;
}

std::optional<Action> ParseAction(const std::string& value) {
  if (value == "create") return Action::kCreate;
  if (value == "upsert") return Action::kUpsert;
  if (value == "update") return Action::kUpdate;
  if (value == "emplace") return Action::kEmplace;
  return std::nullopt;
}

// Validates `doc` in place: drops nulls of optional fields (kept on updates, where they delete),
// coerces or drops dirty values as asked. `is_update` skips the required-field checks.
std::optional<ApiError> ValidateDocument(const Schema& schema, json& doc, Action action,
                                         bool is_update, DirtyValues dirty_values) {
  const std::string& dsf = schema.default_sorting_field;
  if ((action == Action::kCreate || action == Action::kUpsert) && !dsf.empty() &&
      !doc.contains(dsf)) {
    return ApiError{400, "Field `" + dsf +
                             "` has been declared as a default sorting field, but "
                             "is not found in the document."};
  }
  const bool drop =
      dirty_values == DirtyValues::kDrop || dirty_values == DirtyValues::kCoerceOrDrop;
  auto check = [&](const std::string& name, const Field& field) -> std::optional<ApiError> {
    json& value = doc[name];
    if (field.optional && value.is_null()) {
      if (!is_update) doc.erase(name);
      return std::nullopt;
    }
    if (field.AcceptsAnything()) return std::nullopt;
    if (auto message = CheckValue(name, field.type, value, dirty_values)) {
      if (drop && field.optional) {
        doc.erase(name);
        return std::nullopt;
      }
      return ApiError{400, *message};
    }
    return std::nullopt;
  };

  std::vector<const Field*> declared;
  for (const Field& field : schema.fields) {
    if (!field.IsDynamic() && field.index) declared.push_back(&field);
  }
  std::sort(declared.begin(), declared.end(),
            [](const Field* a, const Field* b) { return a->name < b->name; });
  for (const Field* field : declared) {
    if (schema.IsNestedPath(field->name)) {
      if (auto error = CheckNestedPath(*field, doc, is_update)) return error;
      continue;
    }
    if (!doc.contains(field->name)) {
      if (field->optional || is_update) continue;
      return ApiError{400, "Field `" + field->name +
                               "` has been declared in the schema, but is not found in the "
                               "document."};
    }
    if (auto error = check(field->name, *field)) return error;
  }
  std::vector<std::string> keys;
  for (const auto& item : doc.items()) keys.push_back(item.key());
  for (const std::string& key : keys) {
    if (key == "id" || schema.Find(key) != nullptr) continue;
    const Field* field = schema.Governing(key);
    if (field == nullptr || !field->index) continue;
    if (auto error = check(key, *field)) return error;
  }
  return std::nullopt;
}

// ---- Collections ------------------------------------------------------------------------------

struct StoredCollection {
  std::string name;
  int64_t created_at = 0;
  uint64_t creation_order = 0;  // lists are newest first

  // Held for a whole write request, so writes to one collection apply one request at a time.
  mutable std::mutex mu;
  Schema schema;
  std::map<uint64_t, json> docs;                     // by sequence id = insertion order
  std::unordered_map<std::string, uint64_t> seq_of;  // document id -> sequence id
  uint64_t next_seq = 0;

  // REQUIRES: mu held.
  json Summary() const {
    json fields = json::array();
    for (const Field& field : schema.fields) fields.push_back(field.ToJson());
    json out = {{"created_at", created_at},
                {"default_sorting_field", schema.default_sorting_field},
                {"enable_nested_fields", schema.enable_nested_fields},
                {"fields", fields},
                {"name", name},
                {"num_documents", docs.size()},
                {"symbols_to_index", schema.symbols_to_index},
                {"token_separators", schema.token_separators}};
    if (schema.metadata) out["metadata"] = *schema.metadata;
    return out;
  }

  // REQUIRES: mu held.
  const json* Get(const std::string& id) const {
    const auto it = seq_of.find(id);
    return it == seq_of.end() ? nullptr : &docs.at(it->second);
  }
  void Put(uint64_t seq, json doc) {
    const std::string id = doc["id"];
    if (const auto it = seq_of.find(id); it != seq_of.end() && it->second != seq) {
      docs.erase(it->second);  // an auto id equal to an existing id
    }
    seq_of[id] = seq;
    docs[seq] = std::move(doc);
  }
  std::optional<json> Remove(const std::string& id) {
    const auto it = seq_of.find(id);
    if (it == seq_of.end()) return std::nullopt;
    json doc = std::move(docs[it->second]);
    docs.erase(it->second);
    seq_of.erase(it);
    return doc;
  }
};

struct WriteResult {
  std::optional<ApiError> error;
  json stored;  // the document as stored (for update/emplace: merged)
};

// Applies one document, as one import line or a single-document write does (API-NOTES §4.3,
// §4.4). With `discard`, answers as if every document were new and stores nothing.
// REQUIRES: c.mu held.
WriteResult WriteDocument(StoredCollection& c, json doc, Action action, DirtyValues dirty_values,
                          bool discard) {
  if (!doc.is_object()) return {ApiError{400, "Bad JSON: not a properly formed document."}, {}};
  std::optional<uint64_t> existing;
  if (!doc.contains("id")) {
    if (action == Action::kUpdate) {
      return {ApiError{400, "For update, the `id` key must be provided."}, {}};
    }
    doc["id"] = std::to_string(c.next_seq);  // the auto id is the sequence id
  } else {
    if (!doc["id"].is_string()) {
      return {ApiError{400, "Document's `id` field should be a string."}, {}};
    }
    const std::string id = doc["id"];
    if (id.empty()) return {ApiError{400, "The `id` should not be empty."}, {}};
    if (!discard) {
      if (const auto it = c.seq_of.find(id); it != c.seq_of.end()) existing = it->second;
    }
    if (existing && action == Action::kCreate) {
      return {ApiError{409, "A document with id " + id + " already exists."}, {}};
    }
    if (!existing && action == Action::kUpdate && !discard) {
      return {ApiError{404, "Could not find a document with id: " + id}, {}};
    }
  }
  const uint64_t seq = existing ? *existing : c.next_seq++;
  const bool is_update = action == Action::kUpdate || (action == Action::kEmplace && existing);
  if (auto error = ValidateDocument(c.schema, doc, action, is_update, dirty_values)) {
    return {error, {}};
  }
  json stored = doc;
  if (is_update) {
    stored = existing ? c.docs[*existing] : json::object();
    stored.merge_patch(doc);  // nested objects merge, null deletes
  }
  if (auto error = IndexNestedFields(c.schema, stored)) return {error, {}};
  for (const Field& field : c.schema.fields) {
    if (!field.store) stored.erase(field.name);
  }
  if (!discard) c.Put(seq, stored);
  return {std::nullopt, std::move(stored)};
}

// include_fields / exclude_fields (comma-separated, top-level keys).
json Project(const json& doc, const std::map<std::string, std::string>& params) {
  auto list = [&](const char* key) {
    const auto it = params.find(key);
    const std::vector<std::string> names =
        it == params.end() ? std::vector<std::string>{} : SplitTrimmed(it->second, ",");
    return std::set<std::string>(names.begin(), names.end());
  };
  const std::set<std::string> include = list("include_fields"), exclude = list("exclude_fields");
  json out = json::object();
  for (const auto& item : doc.items()) {
    if ((include.empty() || include.count(item.key())) && !exclude.count(item.key())) {
      out[item.key()] = item.value();
    }
  }
  return out;
}

// ---- filter_by (API-NOTES §6, §6.1) -----------------------------------------------------------

// StringUtils::split_to_values: `,` separates unless inside backticks; a backtick closes only
// when the value so far is non-empty; `\`` never toggles and keeps its backslash; values are
// trimmed of spaces, also inside backticks.
std::vector<std::string> SplitToValues(std::string_view s) {
  std::vector<std::string> values;
  bool inside_tick = false;
  std::string buffer;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '`') {
      if (i > 0 && s[i - 1] == '\\') {
        buffer += c;
      } else if (inside_tick && !buffer.empty()) {
        inside_tick = false;
      } else {
        inside_tick = true;
      }
    } else if (c == ',' && !inside_tick) {
      values.push_back(TrimSpaces(buffer));
      buffer.clear();
    } else {
      buffer += c;
    }
  }
  if (!buffer.empty()) values.push_back(TrimSpaces(buffer));
  return values;
}

bool Bracketed(const std::string& s) {
  return s.size() >= 2 && s.front() == '[' && s.back() == ']';
}

// Outside backticks, `(`, `)`, `&&` and `||` end a token; a `(` right after `:` opens a geo value
// that only `)` closes.
std::optional<ApiError> TokenizeFilter(const std::string& q, std::vector<std::string>* tokens) {
  const size_t n = q.size();
  auto at = [&](size_t i) { return i < n ? q[i] : '\0'; };
  for (size_t i = 0; i < n;) {
    char c = q[i];
    if (c == ' ') {
      ++i;
    } else if (c == '(' || c == ')') {
      tokens->push_back(std::string(1, c));
      ++i;
    } else if (c == '&' || c == '|') {
      if (at(i + 1) != c) return ApiError{400, "Could not parse the filter filter_query."};  // sic
      tokens->push_back(std::string(2, c));
      i += 2;
    } else {
      std::string token;
      bool in_backtick = false, preceding_colon = false, geo_value = false;
      do {
        if (c == ':') preceding_colon = true;
        if (c == ')' && geo_value) geo_value = false;
        token += c;
        c = at(++i);
        if (c == '`') in_backtick = !in_backtick;
        if (preceding_colon && c == '(') {
          geo_value = true;
          preceding_colon = false;
        } else if (preceding_colon && c != ' ') {
          preceding_colon = false;
        }
      } while (i < n && (in_backtick || geo_value ||
                         (c != '(' && c != ')' && !(c == '&' && at(i + 1) == '&') &&
                          !(c == '|' && at(i + 1) == '|'))));
      tokens->push_back(TrimSpaces(token));
    }
  }
  return std::nullopt;
}

using SeqSet = std::set<uint64_t>;

class FilterEvaluator {
 public:
  explicit FilterEvaluator(const StoredCollection& c) : c_(c) {}  // REQUIRES: c.mu held

  // Sets *matched to the sequence ids matching `filter_by`; leaves it nullopt for an empty
  // (all-space) expression, which callers read as "no filter".
  std::optional<ApiError> Evaluate(const std::string& filter_by, std::optional<SeqSet>* matched) {
    if (TrimSpaces(filter_by).empty()) return std::nullopt;
    std::vector<std::string> tokens, postfix;
    if (auto e = TokenizeFilter(filter_by, &tokens)) return e;
    if (auto e = ToPostfix(tokens, &postfix)) return e;
    if (postfix.size() > kMaxFilterOps) {
      return ApiError{400, "`filter_by` has too many operations. Maximum allowed: " +
                               std::to_string(kMaxFilterOps) +
                               ". Use `--filter-by-max-ops` command line argument to customize "
                               "this value."};
    }
    std::stack<SeqSet> operands;
    for (const std::string& token : postfix) {
      if (token == "&&" || token == "||") {
        if (operands.size() < 2) {
          return ApiError{400,
                          "Could not parse the filter query: unbalanced `" + token + "` operands."};
        }
        SeqSet b = std::move(operands.top());
        operands.pop();
        SeqSet a = std::move(operands.top());
        operands.pop();
        SeqSet result;
        if (token == "&&") {
          std::set_intersection(a.begin(), a.end(), b.begin(), b.end(),
                                std::inserter(result, result.end()));
        } else {
          std::set_union(a.begin(), a.end(), b.begin(), b.end(),
                         std::inserter(result, result.end()));
        }
        operands.push(std::move(result));
      } else {
        SeqSet matched;
        if (auto e = Clause(token, &matched)) return e;
        operands.push(std::move(matched));
      }
    }
    if (operands.empty()) return ApiError{400, "Filter query cannot be empty."};
    *matched = std::move(operands.top());
    return std::nullopt;
  }

 private:
  // A value predicate; a document matches when its field (or any array element) satisfies one.
  using Predicate = std::function<bool(const json&)>;

  // Shunting-yard; `&&` and `||` have the same precedence and are left associative.
  static std::optional<ApiError> ToPostfix(const std::vector<std::string>& tokens,
                                           std::vector<std::string>* postfix) {
    const ApiError unbalanced{400, "Could not parse the filter query: unbalanced parentheses."};
    std::vector<std::string> ops;
    for (const std::string& token : tokens) {
      if (token == "&&" || token == "||") {
        while (!ops.empty() && ops.back() != "(") {
          postfix->push_back(ops.back());
          ops.pop_back();
        }
        ops.push_back(token);
      } else if (token == "(") {
        ops.push_back(token);
      } else if (token == ")") {
        while (!ops.empty() && ops.back() != "(") {
          postfix->push_back(ops.back());
          ops.pop_back();
        }
        if (ops.empty()) return unbalanced;
        ops.pop_back();
      } else {
        postfix->push_back(token);
      }
    }
    for (; !ops.empty(); ops.pop_back()) {
      if (ops.back() == "(") return unbalanced;
      postfix->push_back(ops.back());
    }
    return std::nullopt;
  }

  SeqSet All() const {
    SeqSet all;
    for (const auto& [seq, doc] : c_.docs) all.insert(all.end(), seq);
    return all;
  }
  SeqSet Complement(const SeqSet& matched) const {
    SeqSet out;
    for (const auto& [seq, doc] : c_.docs) {
      if (!matched.count(seq)) out.insert(out.end(), seq);
    }
    return out;
  }

  std::optional<ApiError> Clause(const std::string& expression, SeqSet* out) const {
    const size_t colon = expression.find(':');
    if (colon == std::string::npos) return ApiError{400, "Could not parse the filter query."};
    const std::string name = TrimSpaces(expression.substr(0, colon));
    std::string raw = TrimSpaces(expression.substr(colon + 1));
    if (name == "id") return IdClause(raw, out);
    const Field* field = c_.schema.Governing(name);
    if (field == nullptr || !field->index) {
      return ApiError{404, "Could not find a filter field named `" + name + "` in the schema."};
    }
    bool negate = false;
    std::vector<Predicate> any_of;
    std::string type = field->type;
    if (IsArrayType(type)) type.resize(type.size() - 2);
    std::optional<ApiError> error;
    if (type == "int32" || type == "int64" || type == "float") {
      error = NumericClause(name, type, raw, &negate, &any_of);
    } else if (type == "bool") {
      error = BoolClause(name, raw, &negate, &any_of);
    } else if (type == "string" || field->AcceptsAnything()) {
      error = StringClause(name, raw, &negate, &any_of);
    } else {
      error = ApiError{400, "Error with filter field `" + name +
                                "`: Unidentified field data type, see docs for supported data "
                                "types."};
    }
    if (error) return error;
    SeqSet matched;
    for (const auto& [seq, doc] : c_.docs) {
      const std::optional<json> found = c_.schema.ValueOf(doc, name);
      if (!found) continue;
      const json& value = *found;
      auto hit = [&](const json& element) {
        return std::any_of(any_of.begin(), any_of.end(),
                           [&](const Predicate& p) { return p(element); });
      };
      const bool match =
          value.is_array() ? std::any_of(value.begin(), value.end(), hit) : hit(value);
      if (match) matched.insert(matched.end(), seq);
    }
    *out = negate ? Complement(matched) : std::move(matched);
    return std::nullopt;
  }

  // id:X, id:=X, id:[a,b], id:!=X, id:!=[a,b]; a value equal to `*` means every document.
  std::optional<ApiError> IdClause(std::string raw, SeqSet* out) const {
    const ApiError empty{400, "Error with filter field `id`: Filter value cannot be empty."};
    if (raw.empty()) return empty;
    bool negate = false;
    size_t start = 0;
    if (raw[0] == '=') {
      start = 1;
    } else if (raw.starts_with("!=")) {
      negate = true;
      start = 2;
    }
    while (start > 0 && start < raw.size() && raw[start] == ' ') ++start;
    raw = raw.substr(start);
    if (raw.empty()) return empty;
    std::vector<std::string> ids;
    if (Bracketed(raw)) {
      ids = SplitToValues(std::string_view(raw).substr(1, raw.size() - 2));
    } else {
      ids = SplitToValues(raw);  // backticks allowed; only the first value counts
      if (ids.size() > 1) ids.resize(1);
    }
    SeqSet matched;
    if (std::find(ids.begin(), ids.end(), "*") != ids.end()) {
      matched = All();
    } else {
      for (const std::string& id : ids) {
        if (const auto it = c_.seq_of.find(id); it != c_.seq_of.end()) matched.insert(it->second);
      }
    }
    *out = negate ? Complement(matched) : std::move(matched);
    return std::nullopt;
  }

  static std::optional<ApiError> NumericClause(const std::string& name, const std::string& type,
                                               std::string raw, bool* negate,
                                               std::vector<Predicate>* any_of) {
    if (!raw.empty() && raw[0] == '=') raw = TrimSpaces(raw.substr(1));
    auto validate = [&](const std::string& value) -> std::optional<ApiError> {
      const std::string prefix = "Error with filter field `" + name + "`: ";
      if (type == "int32") {
        if (!IsInteger(value)) return ApiError{400, prefix + "Not an int32."};
        const double number = std::stod(value);
        if (number > INT32_MAX || number < INT32_MIN) {
          return ApiError{400, prefix + "`" + value + "` exceeds the range of an int32."};
        }
      } else if (type == "int64" && !IsInteger(value)) {
        return ApiError{400, prefix + "Not an int64."};
      } else if (type == "float" && !ParseNumber(value)) {
        return ApiError{400, prefix + "Not a float."};
      }
      return std::nullopt;
    };
    // One value with its optional comparator: 5, >5, <=5, !=5, 1..9.
    auto add = [&](std::string value) -> std::optional<ApiError> {
      std::string op;
      if (!ParseNumber(value)) {
        for (const char* candidate : {"<=", ">=", "!=", "<", ">"}) {
          if (value.starts_with(candidate)) {
            op = candidate;
            break;
          }
        }
        if (op.empty() && value.find("..") == std::string::npos) {
          return ApiError{400, "Error with filter field `" + name +
                                   "`: Numerical field has an invalid comparator."};
        }
        value = TrimSpaces(value.substr(op.size()));
      }
      if (op.empty() && value.find("..") != std::string::npos) {
        const std::vector<std::string> bounds = SplitTrimmed(value, "..");
        for (const std::string& bound : bounds) {
          if (auto e = validate(bound)) return e;
        }
        if (bounds.size() != 2) return ApiError{400, "Could not parse the filter query."};
        const double low = std::stod(bounds[0]), high = std::stod(bounds[1]);
        any_of->push_back([=](const json& v) {
          return v.is_number() && v.get<double>() >= low && v.get<double>() <= high;
        });
        return std::nullopt;
      }
      if (auto e = validate(value)) return e;
      const double x = std::stod(value);
      any_of->push_back([=](const json& v) {
        if (!v.is_number()) return false;
        const double d = v.get<double>();
        if (op == "<") return d < x;
        if (op == "<=") return d <= x;
        if (op == ">") return d > x;
        if (op == ">=") return d >= x;
        if (op == "!=") return d != x;
        return d == x;
      });
      return std::nullopt;
    };
    if (raw.starts_with("!=") && Bracketed(TrimSpaces(raw.substr(2)))) {
      *negate = true;
      raw = TrimSpaces(raw.substr(2));
    }
    if (Bracketed(raw)) {
      for (const std::string& value : SplitTrimmed(raw.substr(1, raw.size() - 2), ",")) {
        if (auto e = add(value)) return e;
      }
      return std::nullopt;
    }
    if (raw.starts_with("!=")) {  // everything without that value, also documents lacking it
      *negate = true;
      raw = TrimSpaces(raw.substr(2));
    }
    return add(raw);
  }

  static std::optional<ApiError> BoolClause(const std::string& name, std::string raw, bool* negate,
                                            std::vector<Predicate>* any_of) {
    if (raw.starts_with("=")) {
      raw = TrimSpaces(raw.substr(1));
    } else if (raw.starts_with("!=")) {
      *negate = true;
      raw = TrimSpaces(raw.substr(2));
    }
    if (raw.empty()) {
      return ApiError{400, "Error with filter field `" + name + "`: Filter value cannot be empty."};
    }
    if (Bracketed(raw)) {
      for (const std::string& value : SplitTrimmed(raw.substr(1, raw.size() - 2), ",")) {
        if (value != "true" && value != "false") {
          return ApiError{400, "Values of filter field `" + name + "`: must be `true` or `false`."};
        }
        any_of->push_back([want = value == "true"](const json& v) { return v == want; });
      }
      return std::nullopt;
    }
    if (raw != "true" && raw != "false") {
      return ApiError{400, "Value of filter field `" + name + "` must be `true` or `false`."};
    }
    any_of->push_back([want = raw == "true"](const json& v) { return v == want; });
    return std::nullopt;
  }

  // `:=` is an exact match; a plain `:` matches a whole word, case-insensitively (a stand-in for
  // Typesense's token match); `!` / `!=` negate.
  static std::optional<ApiError> StringClause(const std::string& name, std::string raw,
                                              bool* negate, std::vector<Predicate>* any_of) {
    bool exact = false;
    size_t start = 0;
    if (!raw.empty() && raw[0] == '=') {
      exact = true;
      start = 1;
    } else if (raw.size() >= 2 && raw[0] == '!') {
      *negate = true;
      exact = raw[1] == '=';
      start = exact ? 2 : 1;
    }
    raw = TrimSpaces(raw.substr(start));
    const std::string prefix = "Error with filter field `" + name + "`: ";
    if (raw.empty()) return ApiError{400, prefix + "Filter value cannot be empty."};
    std::vector<std::string> values;
    if (Bracketed(raw)) {
      values = SplitToValues(std::string_view(raw).substr(1, raw.size() - 2));
      if (values.empty()) return ApiError{400, prefix + "Filter value array cannot be empty."};
    } else {
      if (raw.size() >= 2 && raw.front() == '`' && raw.back() == '`') {
        raw = raw.substr(1, raw.size() - 2);
      }
      values.push_back(raw);
    }
    for (const std::string& value : values) {
      any_of->push_back([=, lower = Lower(value)](const json& v) {
        const std::string text = v.is_string() ? v.get<std::string>() : Dump(v);
        if (exact) return text == value;
        const std::string haystack = " " + Lower(text) + " ";
        return haystack.find(" " + lower + " ") != std::string::npos;
      });
    }
    return std::nullopt;
  }

  const StoredCollection& c_;
};

// REQUIRES: c.mu held.
std::optional<ApiError> EvaluateFilter(const StoredCollection& c, const std::string& filter_by,
                                       std::optional<SeqSet>* matched) {
  return FilterEvaluator(c).Evaluate(filter_by, matched);
}

// ---- Connection cutting -----------------------------------------------------------------------

struct Endpoint {
  std::string address;
  int port = -1;
};

std::optional<Endpoint> ToEndpoint(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    return Endpoint{text, ntohs(in->sin_port)};
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    return Endpoint{text, ntohs(in6->sin6_port)};
  }
  return std::nullopt;
}

// cpp-httplib 0.11 gives handlers no access to their socket, so find it among the process's
// descriptors by its two endpoints and shut it down. The descriptor stays open (httplib closes
// it), so it cannot be reused under our feet. The client then sees EOF or a reset with no
// response at all. Linux only (/proc).
void CutConnection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == dirfd(dir)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
        getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
      continue;
    }
    const auto l = ToEndpoint(local), p = ToEndpoint(peer);
    if (l && p && l->port == req.local_port && p->port == req.remote_port &&
        p->address == req.remote_addr) {
      shutdown(fd, SHUT_RDWR);
    }
  }
  closedir(dir);
}

}  // namespace

const char* TypesenseRouteName(TypesenseRoute route) {
  switch (route) {
    case TypesenseRoute::kHealth:
      return "health";
    case TypesenseRoute::kCollection:
      return "collection";
    case TypesenseRoute::kImport:
      return "import";
    case TypesenseRoute::kExport:
      return "export";
    case TypesenseRoute::kSearch:
      return "search";
    case TypesenseRoute::kDocument:
      return "document";
    case TypesenseRoute::kDeleteByFilter:
      return "delete_by_filter";
    case TypesenseRoute::kUpdateByFilter:
      return "update_by_filter";
    case TypesenseRoute::kAlias:
      return "alias";
    case TypesenseRoute::kOperations:
      return "operations";
    case TypesenseRoute::kStats:
      return "stats";
    case TypesenseRoute::kNotFound:
      return "not_found";
  }
  return "unknown";
}

// ---- The server -------------------------------------------------------------------------------

struct TypesenseServer::Impl {
  // One parsed request, as handlers see it.
  struct Call {
    const httplib::Request& req;
    std::vector<std::string> segments;  // decoded
    std::map<std::string, std::string> params;
    const std::string& body;

    std::string Param(const std::string& key, const std::string& fallback = "") const {
      const auto it = params.find(key);
      return it == params.end() ? fallback : it->second;
    }
    const std::string& Segment(size_t i) const { return segments[i]; }
  };
  using Handler = Reply (Impl::*)(const Call&);

  // Routes in match order: method, path pattern (`*` = any one segment), kind, handler.
  struct RouteEntry {
    const char* method;
    std::vector<std::string_view> pattern;
    TypesenseRoute kind;
    Handler handler;
  };

  explicit Impl(TypesenseServerOptions o) : options(std::move(o)), rng(options.seed) {}

  TypesenseServerOptions options;
  httplib::Server http;
  std::thread thread;
  int port = 0;

  std::atomic<double> write_unavailable_rate{0};
  std::atomic<double> drop_rate{0};
  std::atomic<bool> unavailable{false};
  std::atomic<int64_t> latency_ms{0};
  std::atomic<int64_t> jitter_ms{0};
  std::mutex faults_mu;
  std::optional<TypesenseProxyReply> proxy_reply;     // guarded by faults_mu
  std::map<std::string, json> import_line_overrides;  // guarded by faults_mu
  std::mutex rng_mu;
  std::mt19937_64 rng;
  mutable std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;      // guarded by stop_mu
  bool hold_imports = false;  // guarded by stop_mu
  int held_imports = 0;       // guarded by stop_mu

  // The write queue model (TypesenseWriteQueueModel); all guarded by queue_mu.
  mutable std::mutex queue_mu;
  std::optional<TypesenseWriteQueueModel> queue_model;
  double pending_chunks = 0;
  std::chrono::steady_clock::time_point drained_at, next_refresh;
  bool write_ready = true, read_ready = true;

  mutable std::mutex counters_mu;
  TypesenseServerCounters counters;
  std::deque<TypesenseWriteAttempt> write_attempts;
  int64_t writes_in_flight = 0;  // guarded by counters_mu

  // Lock order: mu before any StoredCollection::mu.
  mutable std::mutex mu;
  std::map<std::string, std::shared_ptr<StoredCollection>> collections;
  std::map<std::string, std::string> aliases;
  uint64_t next_collection_order = 0;
  std::atomic<uint64_t> applied_writes{0};  // names snapshot directories, like a raft index

  static const std::vector<RouteEntry>& Routes() {
    static const std::vector<RouteEntry> kRoutes = {
        {"GET", {"health"}, TypesenseRoute::kHealth, &Impl::Health},
        {"POST", {"health"}, TypesenseRoute::kHealth, &Impl::Health},
        {"GET", {"collections"}, TypesenseRoute::kCollection, &Impl::ListCollections},
        {"POST", {"collections"}, TypesenseRoute::kCollection, &Impl::CreateCollection},
        {"GET", {"collections", "*"}, TypesenseRoute::kCollection, &Impl::GetCollection},
        {"DELETE", {"collections", "*"}, TypesenseRoute::kCollection, &Impl::DropCollection},
        {"PATCH", {"collections", "*"}, TypesenseRoute::kCollection, &Impl::AlterCollection},
        {"POST",
         {"collections", "*", "documents", "import"},
         TypesenseRoute::kImport,
         &Impl::Import},
        {"GET",
         {"collections", "*", "documents", "export"},
         TypesenseRoute::kExport,
         &Impl::Export},
        {"GET",
         {"collections", "*", "documents", "search"},
         TypesenseRoute::kSearch,
         &Impl::Search},
        {"POST", {"collections", "*", "documents"}, TypesenseRoute::kDocument, &Impl::AddDocument},
        {"PATCH",
         {"collections", "*", "documents"},
         TypesenseRoute::kUpdateByFilter,
         &Impl::UpdateByFilter},
        {"DELETE",
         {"collections", "*", "documents"},
         TypesenseRoute::kDeleteByFilter,
         &Impl::DeleteByFilter},
        {"GET",
         {"collections", "*", "documents", "*"},
         TypesenseRoute::kDocument,
         &Impl::GetDocument},
        {"PATCH",
         {"collections", "*", "documents", "*"},
         TypesenseRoute::kDocument,
         &Impl::PatchDocument},
        {"DELETE",
         {"collections", "*", "documents", "*"},
         TypesenseRoute::kDocument,
         &Impl::DeleteDocument},
        {"GET", {"aliases"}, TypesenseRoute::kAlias, &Impl::ListAliases},
        {"GET", {"aliases", "*"}, TypesenseRoute::kAlias, &Impl::GetAlias},
        {"PUT", {"aliases", "*"}, TypesenseRoute::kAlias, &Impl::PutAlias},
        {"DELETE", {"aliases", "*"}, TypesenseRoute::kAlias, &Impl::DeleteAlias},
        {"POST", {"operations", "snapshot"}, TypesenseRoute::kOperations, &Impl::Snapshot},
        {"GET", {"stats.json"}, TypesenseRoute::kStats, &Impl::Stats},
        {"GET", {"metrics.json"}, TypesenseRoute::kStats, &Impl::Metrics},
        {"GET", {"status"}, TypesenseRoute::kStats, &Impl::RaftStatus},
        {"GET", {"debug"}, TypesenseRoute::kStats, &Impl::Debug},
    };
    return kRoutes;
  }

  static const RouteEntry* MatchRoute(const std::string& method,
                                      const std::vector<std::string>& segments) {
    for (const RouteEntry& route : Routes()) {
      if (method != route.method || segments.size() != route.pattern.size()) continue;
      bool match = true;
      for (size_t i = 0; i < segments.size() && match; ++i) {
        match = route.pattern[i] == "*" || route.pattern[i] == segments[i];
      }
      if (match) return &route;
    }
    return nullptr;
  }

  bool Chance(double rate) {
    std::lock_guard lock(rng_mu);
    return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
  }

  std::chrono::milliseconds RandomDelay(int64_t max_ms) {
    if (max_ms <= 0) return std::chrono::milliseconds(0);
    std::lock_guard lock(rng_mu);
    return std::chrono::milliseconds(std::uniform_int_distribution<int64_t>(0, max_ms)(rng));
  }

  // Waits `delay`, cut short when the server stops.
  void Pause(std::chrono::milliseconds delay) {
    if (delay.count() <= 0) return;
    std::unique_lock lock(stop_mu);
    stop_cv.wait_for(lock, delay, [&] { return stopping; });
  }

  // An import that took effect waits here, unanswered, while imports are held.
  void WhileImportsHeld() {
    std::unique_lock lock(stop_mu);
    if (!hold_imports || stopping) return;
    ++held_imports;
    stop_cv.wait(lock, [&] { return !hold_imports || stopping; });
    --held_imports;
  }

  // ---- The write queue model ----

  // Brings the queue to `now`: drains what the indexer got through since the last call, and on
  // a refresh tick recomputes the readiness flags, which then hold until the next tick.
  void AdvanceQueueLocked(std::chrono::steady_clock::time_point now) {
    if (!queue_model) return;
    const double elapsed = std::chrono::duration<double>(now - drained_at).count();
    pending_chunks = std::max(0.0, pending_chunks - elapsed * queue_model->drained_per_second);
    drained_at = now;
    if (now < next_refresh) return;
    write_ready = pending_chunks <= static_cast<double>(queue_model->healthy_write_lag);
    read_ready = pending_chunks <= static_cast<double>(queue_model->healthy_read_lag);
    const auto interval = std::max(queue_model->refresh_interval, std::chrono::milliseconds(1));
    next_refresh += ((now - next_refresh) / interval + 1) * interval;
  }

  bool QueueReady(bool write) {
    std::lock_guard lock(queue_mu);
    AdvanceQueueLocked(std::chrono::steady_clock::now());
    return !queue_model || (write ? write_ready : read_ready);
  }

  void Enqueue(double chunks) {
    std::lock_guard lock(queue_mu);
    AdvanceQueueLocked(std::chrono::steady_clock::now());
    if (queue_model) pending_chunks += chunks;
  }

  int64_t PendingChunks() {
    std::lock_guard lock(queue_mu);
    AdvanceQueueLocked(std::chrono::steady_clock::now());
    return static_cast<int64_t>(std::ceil(pending_chunks));
  }

  void Log(const TypesenseWriteAttempt& attempt) {
    std::lock_guard lock(counters_mu);
    write_attempts.push_back(attempt);
    if (write_attempts.size() > kMaxWriteAttempts) write_attempts.pop_front();
  }

  void Count(const std::function<void(TypesenseServerCounters&)>& update) {
    std::lock_guard lock(counters_mu);
    update(counters);
  }

  bool Authorized(const Call& call) const {
    // The header wins when present, even if wrong; an empty key never passes.
    const std::string key = call.req.has_header("X-TYPESENSE-API-KEY")
                                ? call.req.get_header_value("X-TYPESENSE-API-KEY")
                                : call.Param("x-typesense-api-key");
    return !key.empty() && key == options.api_key;
  }

  // Runs one request through the real server's order of checks (API-NOTES §1), with the fault
  // switches where the real readiness gate sits.
  void Serve(const httplib::Request& req, httplib::Response& res, const std::string& body) {
    Pause(RandomDelay(jitter_ms.load()));  // on the way in: the request has not arrived yet
    const auto arrived = std::chrono::steady_clock::now();
    Pause(std::chrono::milliseconds(latency_ms.load()));
    const size_t question = req.target.find('?');
    const std::string raw_path = req.target.substr(0, question);
    const std::string query = question == std::string::npos ? "" : req.target.substr(question + 1);
    Call call{req, SplitPath(raw_path), ParseQuery(query), body};
    auto send = [&](const Reply& reply) {
      Pause(RandomDelay(jitter_ms.load()));  // on the way back
      res.status = reply.status;
      res.set_content(reply.body, reply.content_type);
      if (!reply.location.empty()) res.set_header("Location", reply.location);
    };

    if (req.method == "GET" && !call.segments.empty() && call.segments.back() == "search" &&
        query.size() > kMaxSearchQuery) {
      return send(ErrorReply(400,
                             "Query string exceeds max allowed length of 4000. Use the "
                             "/multi_search end-point for larger payloads."));
    }
    const RouteEntry* route = MatchRoute(req.method, call.segments);
    const TypesenseRoute kind = route ? route->kind : TypesenseRoute::kNotFound;
    Count([&](TypesenseServerCounters& c) { ++c.requests[kind]; });
    if (route == nullptr) return send(RouteErrorReply(404, "Not Found"));

    const bool gated = call.segments[0] == "collections" || call.segments[0] == "aliases";
    const bool write = gated && req.method != "GET";
    if (write) {
      Count([&](TypesenseServerCounters& c) {
        c.writes_in_flight_peak = std::max(c.writes_in_flight_peak, ++writes_in_flight);
      });
    }
    struct InFlight {
      Impl* impl;
      bool write;
      ~InFlight() {
        if (!write) return;
        std::lock_guard lock(impl->counters_mu);
        --impl->writes_in_flight;
      }
    } in_flight{this, write};
    TypesenseWriteAttempt attempt{arrived, req.method, raw_path, kind, 0, false};
    auto finish = [&](const Reply& reply) {
      if (write) {
        attempt.status = reply.status;
        Log(attempt);
      }
      send(reply);
    };

    if (std::optional<Reply> proxied = ProxyReply(kind, body.size())) return finish(*proxied);
    if (gated && (unavailable.load() || (write && Chance(write_unavailable_rate.load())) ||
                  !QueueReady(write))) {
      Count([](TypesenseServerCounters& c) { ++c.unavailable; });
      return finish(RouteErrorReply(503, "Not Ready or Lagging"));
    }
    if (kind != TypesenseRoute::kHealth && !Authorized(call)) {
      Count([](TypesenseServerCounters& c) { ++c.unauthorized; });
      return finish(ErrorReply(401,
                               "Forbidden - a valid `x-typesense-api-key` header must be "
                               "sent."));
    }
    // Counters and the log are updated before cutting, so they are current once the client
    // sees the error.
    const bool drop = write && Chance(drop_rate.load());
    if (drop && Chance(0.5)) {
      Count([](TypesenseServerCounters& c) { ++c.dropped_before_apply; });
      Log(attempt);
      CutConnection(req);
      return send(Reply{500, "", kTextType});  // the write fails: the client never sees it
    }
    const Reply reply = (this->*(route->handler))(call);
    attempt.handled = true;
    if (write) {
      ++applied_writes;
      Enqueue(std::max<double>(1, std::ceil(static_cast<double>(body.size()) / kRaftChunkBytes)));
    }
    if (kind == TypesenseRoute::kImport) WhileImportsHeld();
    if (drop) {
      Count([](TypesenseServerCounters& c) { ++c.dropped_after_apply; });
      Log(attempt);
      CutConnection(req);
      return send(reply);
    }
    finish(reply);
  }

  // What the proxy in front answers instead of the server, if anything.
  std::optional<Reply> ProxyReply(TypesenseRoute kind, size_t body_bytes) {
    std::lock_guard lock(faults_mu);
    if (!proxy_reply || proxy_reply->route != kind || body_bytes < proxy_reply->min_body_bytes) {
      return std::nullopt;
    }
    return Reply{.status = proxy_reply->status,
                 .body = proxy_reply->body,
                 .content_type = kHtmlType,
                 .location = proxy_reply->location};
  }

  std::optional<json> ImportLineOverride(const json& doc) {
    if (!doc.is_object() || !doc.contains("id") || !doc["id"].is_string()) return std::nullopt;
    std::lock_guard lock(faults_mu);
    const auto it = import_line_overrides.find(doc["id"].get<std::string>());
    if (it == import_line_overrides.end()) return std::nullopt;
    return it->second;
  }

  // Resolves a collection name, then an alias (a real name wins). REQUIRES: mu not held.
  std::shared_ptr<StoredCollection> Find(const std::string& name) const {
    std::lock_guard lock(mu);
    return FindLocked(name);
  }
  std::shared_ptr<StoredCollection> FindLocked(const std::string& name) const {
    if (const auto it = collections.find(name); it != collections.end()) return it->second;
    if (const auto alias = aliases.find(name); alias != aliases.end()) {
      if (const auto it = collections.find(alias->second); it != collections.end()) {
        return it->second;
      }
    }
    return nullptr;
  }

  // ---- Health and stats (API-NOTES §2, §9) ----

  Reply Health(const Call&) {
    return unavailable.load() || !QueueReady(/*write=*/false) ? JsonReply(503, json{{"ok", false}})
                                                              : JsonReply(200, json{{"ok", true}});
  }

  Reply Stats(const Call&) {
    json stats = {{"delete_latency_ms", 0},
                  {"delete_requests_per_second", 0},
                  {"import_latency_ms", 0},
                  {"import_requests_per_second", 0},
                  {"latency_ms", json::object()},
                  {"overloaded_requests_per_second", 0},
                  {"pending_write_batches", PendingChunks()},
                  {"requests_per_second", json::object()},
                  {"search_latency_ms", 0},
                  {"search_requests_per_second", 0},
                  {"total_requests_per_second", 0},
                  {"write_latency_ms", 0},
                  {"write_requests_per_second", 0}};
    return {200, Dump(stats, 2)};
  }

  Reply Metrics(const Call&) {
    json metrics = {{"system_cpu_active_percentage", "0.00"},
                    {"system_memory_total_bytes", "0"},
                    {"system_memory_used_bytes", "0"},
                    {"typesense_memory_active_bytes", "0"}};
    return {200, Dump(metrics, 2)};
  }

  Reply RaftStatus(const Call&) {
    return JsonReply(200, json{{"committed_index", applied_writes.load()},
                               {"queued_writes", PendingChunks()},
                               {"state", "LEADER"}});
  }

  Reply Debug(const Call&) { return JsonReply(200, json{{"state", 1}, {"version", "test"}}); }

  // ---- Collections (API-NOTES §3) ----

  Reply ListCollections(const Call& call) {
    std::vector<std::shared_ptr<StoredCollection>> all;
    {
      std::lock_guard lock(mu);
      for (const auto& [name, c] : collections) all.push_back(c);
    }
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a->creation_order > b->creation_order; });
    size_t offset = 0, limit = all.size();
    if (const std::string value = call.Param("offset"); !value.empty()) {
      if (!IsInteger(value) || value[0] == '-') {
        return ErrorReply(400, "Offset param should be unsigned integer.");
      }
      offset = std::stoull(value);
      if (offset >= all.size()) return ErrorReply(400, "Invalid offset param.");
    }
    if (const std::string value = call.Param("limit"); !value.empty()) {
      if (!IsInteger(value) || value[0] == '-') {
        return ErrorReply(400, "Limit param should be unsigned integer.");
      }
      limit = std::stoull(value);
    }
    json list = json::array();
    for (size_t i = offset; i < all.size() && list.size() < limit; ++i) {
      std::lock_guard lock(all[i]->mu);
      list.push_back(
          Project(all[i]->Summary(), {{"exclude_fields", call.Param("exclude_fields")}}));
    }
    return JsonReply(200, list);
  }

  Reply CreateCollection(const Call& call) {
    json body = json::parse(call.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return ErrorReply(400, "Bad JSON.");
    if (const std::string source = call.Param("src_name"); !source.empty()) {
      // Clone the schema of a real collection (not an alias) under the new name.
      std::shared_ptr<StoredCollection> original;
      {
        std::lock_guard lock(mu);
        if (const auto it = collections.find(source); it != collections.end()) {
          original = it->second;
        }
      }
      if (!original) return ErrorReply(400, "Collection with name `" + source + "` not found.");
      json name = body.contains("name") ? body["name"] : json();
      {
        std::lock_guard lock(original->mu);
        body = original->Summary();
      }
      body["name"] = name;
    }
    std::string name;
    Schema schema;
    if (auto error = ParseSchema(body, &name, &schema)) {
      return ErrorReply(error->status, error->message);
    }
    auto c = std::make_shared<StoredCollection>();
    c->name = name;
    c->created_at = static_cast<int64_t>(std::time(nullptr));
    c->schema = std::move(schema);
    const json summary = c->Summary();  // c is not shared yet
    std::lock_guard lock(mu);
    if (collections.count(name)) {
      return ErrorReply(409, "A collection with name `" + name + "` already exists.");
    }
    c->creation_order = next_collection_order++;
    collections[name] = std::move(c);
    return JsonReply(201, summary);
  }

  Reply GetCollection(const Call& call) {
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    std::lock_guard lock(c->mu);
    return JsonReply(200, c->Summary());
  }

  // An alias name drops the collection it points to; the alias itself stays, dangling.
  Reply DropCollection(const Call& call) {
    std::lock_guard lock(mu);
    const auto c = FindLocked(call.Segment(1));
    if (!c) return ErrorReply(404, "No collection with name `" + call.Segment(1) + "` found.");
    json summary;
    {
      std::lock_guard collection_lock(c->mu);
      summary = c->Summary();
    }
    collections.erase(c->name);
    return JsonReply(200, summary);
  }

  Reply AlterCollection(const Call& call) {
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    const json body = json::parse(call.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return ErrorReply(400, "Bad JSON.");
    if (body.empty()) return ErrorReply(400, "Alter payload is empty.");
    for (const auto& item : body.items()) {
      if (item.key() != "fields" && item.key() != "metadata") {
        return ErrorReply(400, "Only `fields` and `metadata` can be updated at the moment.");
      }
    }
    std::lock_guard lock(c->mu);
    Schema schema = c->schema;
    if (body.contains("fields")) {
      if (!body["fields"].is_array()) return ErrorReply(400, kWrongFieldsFormat);
      for (const json& spec : body["fields"]) {
        if (spec.is_object() && spec.value("drop", false)) {
          const std::string name = spec.value("name", "");
          const auto it = std::find_if(schema.fields.begin(), schema.fields.end(),
                                       [&](const Field& f) { return f.name == name; });
          if (it == schema.fields.end()) {
            return ErrorReply(400, "Field `" + name + "` is not part of collection schema.");
          }
          schema.fields.erase(it);
          continue;
        }
        Field field;
        if (auto error = ParseField(spec, schema.enable_nested_fields, &field)) {
          return ErrorReply(error->status, error->message);
        }
        if (schema.Find(field.name)) {
          return ErrorReply(400, "Field `" + field.name +
                                     "` is already part of the schema: To change this field, "
                                     "drop it first before adding it back to the schema.");
        }
        schema.fields.push_back(std::move(field));
      }
    }
    if (body.contains("metadata")) schema.metadata = body["metadata"];
    c->schema = std::move(schema);
    return JsonReply(200, body);
  }

  // ---- Documents (API-NOTES §4, §5) ----

  Reply Import(const Call& call) {
    const std::string action_param = call.Param("action", "create");
    const std::string return_doc = call.Param("return_doc", "false");
    const std::string return_id = call.Param("return_id", "false");
    if (!IsPositiveUint32(call.Param("batch_size", "40"))) {
      return ErrorReply(400, "Parameter `batch_size` must be a positive integer.");
    }
    const std::optional<Action> action = ParseAction(action_param);
    if (!action) return ErrorReply(400, "Parameter `action` must be a create|update|upsert.");
    if (return_doc != "true" && return_doc != "false") {
      return ErrorReply(400, "Parameter `return_doc` must be a true|false.");
    }
    if (return_id != "true" && return_id != "false") {
      return ErrorReply(400, "Parameter `return_id` must be a true|false.");
    }
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");

    std::lock_guard lock(c->mu);
    const DirtyValues dirty_values = ParseDirtyValues(call.Param("dirty_values"), c->schema);
    std::string out;
    int64_t written = 0;
    size_t start = 0;
    while (start < call.body.size()) {
      size_t end = call.body.find('\n', start);
      if (end == std::string::npos) end = call.body.size();
      const std::string line = call.body.substr(start, end - start);
      start = end + 1;
      if (line.empty()) continue;  // blank lines get no result line; "   " or "\r" do

      json result;
      json doc;
      try {
        doc = json::parse(line);
      } catch (const json::parse_error& e) {
        result = {
            {"code", 400}, {"error", std::string("Bad JSON: ") + e.what()}, {"success", false}};
      }
      if (result.is_null()) {
        if (std::optional<json> forced = ImportLineOverride(doc)) result = std::move(*forced);
      }
      if (result.is_null()) {
        const json id = doc.is_object() && doc.contains("id") ? doc["id"] : json();
        WriteResult write =
            WriteDocument(*c, std::move(doc), *action, dirty_values, options.discard);
        if (!write.error) {
          ++written;
          result = {{"success", true}};
          if (return_id == "true") result["id"] = write.stored["id"];
          if (return_doc == "true") result["document"] = std::move(write.stored);
        } else {
          result = {
              {"code", write.error->status}, {"error", write.error->message}, {"success", false}};
          if (!id.is_null() && return_id == "true") result["id"] = id;
        }
      }
      if (!result.value("success", false) && return_doc == "true") result["document"] = line;
      if (!out.empty()) out += '\n';
      out += Dump(result);
    }
    Count([&](TypesenseServerCounters& counters) { counters.documents_written += written; });
    return {200, std::move(out), kTextType};
  }

  Reply AddDocument(const Call& call) {
    const std::optional<Action> action = ParseAction(call.Param("action", "create"));
    if (!action) return ErrorReply(400, "Parameter `action` must be a create|update|upsert.");
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    json doc;
    try {
      doc = json::parse(call.body);
    } catch (const json::parse_error& e) {
      return CompactErrorReply(400, std::string("Bad JSON: ") + e.what());
    }
    std::lock_guard lock(c->mu);
    WriteResult write =
        WriteDocument(*c, std::move(doc), *action,
                      ParseDirtyValues(call.Param("dirty_values"), c->schema), options.discard);
    if (write.error) return CompactErrorReply(write.error->status, write.error->message);
    Count([](TypesenseServerCounters& counters) { ++counters.documents_written; });
    return JsonReply(201, write.stored);
  }

  Reply GetDocument(const Call& call) {
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    std::lock_guard lock(c->mu);
    const json* doc = c->Get(call.Segment(3));
    if (doc == nullptr) {
      return ErrorReply(404, "Could not find a document with id: " + call.Segment(3));
    }
    return JsonReply(200, Project(*doc, call.params));
  }

  Reply PatchDocument(const Call& call) {
    const std::string& id = call.Segment(3);
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    json doc = json::parse(call.body, nullptr, false);
    if (doc.is_discarded()) return ErrorReply(400, "Bad JSON.");
    if (!doc.is_object()) return ErrorReply(400, "Bad JSON: not a properly formed document.");
    if (doc.contains("id") && doc["id"] != id) {
      return ErrorReply(400, "The `id` of the resource does not match the `id` in the JSON body.");
    }
    doc["id"] = id;
    std::lock_guard lock(c->mu);
    WriteResult write =
        WriteDocument(*c, std::move(doc), Action::kUpdate,
                      ParseDirtyValues(call.Param("dirty_values"), c->schema), options.discard);
    if (write.error) return ErrorReply(write.error->status, write.error->message);
    Count([](TypesenseServerCounters& counters) { ++counters.documents_written; });
    return JsonReply(200, write.stored);
  }

  Reply DeleteDocument(const Call& call) {
    const std::string& id = call.Segment(3);
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    std::lock_guard lock(c->mu);
    if (std::optional<json> doc = c->Remove(id)) {
      Count([](TypesenseServerCounters& counters) { ++counters.documents_deleted; });
      return JsonReply(200, *doc);
    }
    if (call.Param("ignore_not_found") == "true") return JsonReply(200, json{{"id", id}});
    return ErrorReply(404, "Could not find a document with id: " + id);
  }

  Reply DeleteByFilter(const Call& call) {
    const bool truncate = call.Param("truncate") == "true";
    if (!truncate && !call.params.count("filter_by")) {
      return ErrorReply(400, "Parameter `filter_by` must be provided.");
    }
    if (call.params.count("batch_size") && !IsPositiveUint32(call.Param("batch_size"))) {
      return ErrorReply(400, "Parameter `batch_size` must be a positive integer.");
    }
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    std::lock_guard lock(c->mu);
    SeqSet matched;
    if (truncate) {
      for (const auto& [seq, doc] : c->docs) matched.insert(seq);
    } else {
      std::optional<SeqSet> result;
      if (auto error = EvaluateFilter(*c, call.Param("filter_by"), &result)) {
        return ErrorReply(error->status, error->message);
      }
      if (result) matched = std::move(*result);  // an empty expression deletes nothing
    }
    json ids = json::array(), documents = json::array();
    for (const uint64_t seq : matched) {
      json doc = std::move(c->docs[seq]);
      c->docs.erase(seq);
      c->seq_of.erase(doc["id"].get<std::string>());
      if (call.Param("return_id") == "true") ids.push_back(doc["id"]);
      if (call.Param("return_doc") == "true") documents.push_back(std::move(doc));
    }
    Count([&](TypesenseServerCounters& counters) {
      counters.documents_deleted += static_cast<int64_t>(matched.size());
    });
    json out = {{"num_deleted", matched.size()}};
    if (!ids.empty()) out["ids"] = ids;
    if (!documents.empty()) out["documents"] = documents;
    return JsonReply(200, out, "application/json");
  }

  Reply UpdateByFilter(const Call& call) {
    if (!call.params.count("filter_by")) {
      return ErrorReply(400, "Parameter `filter_by` must be provided.");
    }
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    const json partial = json::parse(call.body, nullptr, false);
    if (partial.is_discarded() || !partial.is_object()) return ErrorReply(400, "Bad JSON.");
    std::lock_guard lock(c->mu);
    std::optional<SeqSet> matched;
    if (auto error = EvaluateFilter(*c, call.Param("filter_by"), &matched)) {
      return ErrorReply(error->status, error->message);
    }
    const DirtyValues dirty_values = ParseDirtyValues(call.Param("dirty_values"), c->schema);
    int64_t updated = 0;
    for (const uint64_t seq : matched.value_or(SeqSet{})) {
      json doc = partial;
      doc["id"] = c->docs[seq]["id"];
      WriteResult write =
          WriteDocument(*c, std::move(doc), Action::kUpdate, dirty_values, options.discard);
      if (write.error) return ErrorReply(write.error->status, write.error->message);
      ++updated;
    }
    Count([&](TypesenseServerCounters& counters) { counters.documents_written += updated; });
    return JsonReply(200, json{{"num_updated", updated}});
  }

  // ---- Export and search (API-NOTES §7, §10) ----

  Reply Export(const Call& call) {
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");
    std::lock_guard lock(c->mu);
    std::optional<SeqSet> matched;
    if (auto error = EvaluateFilter(*c, call.Param("filter_by"), &matched)) {
      return ErrorReply(error->status, error->message);
    }
    std::string out;
    for (const auto& [seq, doc] : c->docs) {
      if (matched && !matched->count(seq)) continue;
      if (!out.empty()) out += '\n';
      out += Dump(Project(doc, call.params));
    }
    return {200, std::move(out), kTextType};
  }

  Reply Search(const Call& call) {
    if (!call.params.count("q")) return ErrorReply(400, "Parameter `q` is required.");
    const std::string q = call.Param("q");
    const std::vector<std::string> query_by = SplitTrimmed(call.Param("query_by"), ",");
    if (q != "*" && query_by.empty()) {
      return ErrorReply(400, "No search fields specified for the query.");
    }
    const std::string per_page_param = call.Param("per_page", "10"),
                      page_param = call.Param("page", "1");
    if (!IsInteger(per_page_param) || per_page_param[0] == '-') {
      return ErrorReply(400, "Parameter `per_page` must be an unsigned integer.");
    }
    if (!IsInteger(page_param) || page_param[0] == '-') {
      return ErrorReply(400, "Parameter `page` must be an unsigned integer.");
    }
    const size_t per_page = std::stoull(per_page_param);
    const size_t page = std::max<size_t>(1, std::stoull(page_param));
    if (per_page > kMaxPerPage) {
      return ErrorReply(400, "Only upto 250 hits can be fetched per page.");
    }
    const auto c = Find(call.Segment(1));
    if (!c) return ErrorReply(404, "Collection not found");

    std::lock_guard lock(c->mu);
    std::optional<SeqSet> matched;
    if (auto error = EvaluateFilter(*c, call.Param("filter_by"), &matched)) {
      return ErrorReply(error->status, error->message);
    }
    const std::string needle = Lower(q);
    std::vector<std::pair<uint64_t, const json*>> hits;
    for (const auto& [seq, doc] : c->docs) {
      if (matched && !matched->count(seq)) continue;
      const bool text_match =
          q == "*" ||
          std::any_of(query_by.begin(), query_by.end(), [&, &doc = doc](const std::string& f) {
            const std::optional<json> value = c->schema.ValueOf(doc, f);
            if (!value) return false;
            return Lower(value->is_string() ? value->get<std::string>() : Dump(*value))
                       .find(needle) != std::string::npos;
          });
      if (text_match) hits.emplace_back(seq, &doc);
    }
    // default_sorting_field descending, then newest first.
    const std::string& dsf = c->schema.default_sorting_field;
    auto sort_key = [&](const json& doc) {
      if (dsf.empty() || !doc.contains(dsf)) return -HUGE_VAL;
      const json& value = doc[dsf];
      if (value.is_boolean()) return value.get<bool>() ? 1.0 : 0.0;
      return value.is_number() ? value.get<double>() : -HUGE_VAL;
    };
    // Only the hits up to the requested page are put in order, so that counting a large
    // collection (per_page=1) stays cheap; (key, seq) is a total order, so pages are stable.
    const size_t needed = page > hits.size() ? 0 : std::min(hits.size(), page * per_page);
    std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(needed), hits.end(),
                      [&](const auto& a, const auto& b) {
                        const double ka = sort_key(*a.second), kb = sort_key(*b.second);
                        return ka != kb ? ka > kb : a.first > b.first;
                      });
    json page_hits = json::array();
    for (size_t i = (page - 1) * per_page; i < hits.size() && page_hits.size() < per_page; ++i) {
      page_hits.push_back({{"document", Project(*hits[i].second, call.params)},
                           {"highlight", json::object()},
                           {"highlights", json::array()}});
    }
    return JsonReply(
        200,
        json{{"facet_counts", json::array()},
             {"found", hits.size()},
             {"hits", page_hits},
             {"out_of", c->docs.size()},
             {"page", page},
             {"request_params",
              {{"collection_name", c->name}, {"first_q", q}, {"per_page", per_page}, {"q", q}}},
             {"search_cutoff", false},
             {"search_time_ms", 0}});
  }

  // ---- Aliases (API-NOTES §8) ----

  Reply ListAliases(const Call&) {
    std::lock_guard lock(mu);
    json list = json::array();
    for (const auto& [name, target] : aliases) {
      list.push_back({{"collection_name", target}, {"name", name}});
    }
    return JsonReply(200, json{{"aliases", list}});
  }

  Reply GetAlias(const Call& call) {
    std::lock_guard lock(mu);
    const auto it = aliases.find(call.Segment(1));
    if (it == aliases.end()) return ErrorReply(404, "Collection not found");
    return JsonReply(200, json{{"collection_name", it->second}, {"name", it->first}});
  }

  // An upsert; the target collection is not checked for existence.
  Reply PutAlias(const Call& call) {
    const std::string& name = call.Segment(1);
    json body = json::parse(call.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return ErrorReply(400, "Bad JSON.");
    if (!body.contains("collection_name") || !body["collection_name"].is_string()) {
      return ErrorReply(400, "Parameter `collection_name` is required.");
    }
    std::lock_guard lock(mu);
    if (collections.count(name)) {
      return ErrorReply(500, "Name `" + name + "` conflicts with an existing collection name.");
    }
    aliases[name] = body["collection_name"];
    body["name"] = name;
    return JsonReply(200, body);
  }

  Reply DeleteAlias(const Call& call) {
    std::lock_guard lock(mu);
    const auto it = aliases.find(call.Segment(1));
    if (it == aliases.end()) return ErrorReply(404, "Collection not found");
    const json out = {{"collection_name", it->second}, {"name", it->first}};
    aliases.erase(it);
    return JsonReply(200, out);
  }

  // ---- Snapshot (API-NOTES §9) and the data directory ----

  // The whole state: aliases, and every collection's summary and documents in insertion order.
  // Snapshots write it; LoadState reads it back.
  json State() const {
    json state = {{"aliases", json::object()}, {"collections", json::array()}};
    std::lock_guard lock(mu);
    for (const auto& [name, target] : aliases) state["aliases"][name] = target;
    for (const auto& [name, c] : collections) {
      std::lock_guard collection_lock(c->mu);
      json documents = json::array();
      for (const auto& [seq, doc] : c->docs) documents.push_back(doc);
      state["collections"].push_back({{"schema", c->Summary()}, {"documents", documents}});
    }
    return state;
  }

  // Replaces the collections and aliases with a State(); an error says what is malformed.
  std::optional<std::string> LoadState(const json& state) {
    if (!state.is_object() || !state.value("aliases", json()).is_object() ||
        !state.value("collections", json()).is_array()) {
      return "expected {\"aliases\": {...}, \"collections\": [...]}";
    }
    std::map<std::string, std::shared_ptr<StoredCollection>> loaded;
    for (const json& entry : state["collections"]) {
      if (!entry.is_object() || !entry.contains("schema") ||
          !entry.value("documents", json()).is_array()) {
        return "a collection without `schema` and `documents`";
      }
      auto c = std::make_shared<StoredCollection>();
      if (auto error = ParseSchema(entry["schema"], &c->name, &c->schema)) {
        return "collection schema: " + error->message;
      }
      c->created_at = entry["schema"].value("created_at", int64_t{0});
      for (const json& doc : entry["documents"]) {
        if (!doc.is_object() || !doc.value("id", json()).is_string()) {
          return "collection `" + c->name + "`: a document without a string `id`";
        }
        c->Put(c->next_seq++, doc);
      }
      loaded[c->name] = std::move(c);
    }
    std::lock_guard lock(mu);
    collections = std::move(loaded);
    for (auto& [name, c] : collections) c->creation_order = next_collection_order++;
    aliases = state["aliases"].get<std::map<std::string, std::string>>();
    return std::nullopt;
  }

  std::filesystem::path StateFile() const {
    return std::filesystem::path(options.data_dir) / "state.json";
  }

  // Writes State() to <data_dir>/state.json through a rename, so a crash mid-write leaves the
  // previous state whole.
  bool SaveStateFile() const {
    const std::filesystem::path path = StateFile();
    const std::filesystem::path temp = path.string() + ".tmp";
    {
      std::ofstream out(temp);
      out << Dump(State());
      if (!out) return false;
    }
    std::error_code ec;
    std::filesystem::rename(temp, path, ec);
    return !ec;
  }

  // Writes <dir>/state/snapshot/snapshot_<20-digit index>/ with the whole state as JSON in
  // db_snapshot/state.json, plus <dir>/state/meta/, mirroring the real layout's outline.
  Reply Snapshot(const Call& call) {
    const std::string dir = call.Param("snapshot_path");
    if (dir.empty()) return JsonReply(201, json{{"success", true}}, "application/json");
    const json state = State();
    char index[32];
    std::snprintf(index, sizeof index, "%020llu",
                  static_cast<unsigned long long>(applied_writes.load()));
    const std::filesystem::path root = std::filesystem::path(dir) / "state";
    const std::filesystem::path snapshot = root / "snapshot" / (std::string("snapshot_") + index);
    std::error_code ec;
    std::filesystem::create_directories(snapshot / "db_snapshot", ec);
    if (!ec) std::filesystem::create_directories(root / "meta", ec);
    std::ofstream(snapshot / "__raft_snapshot_meta") << Dump(json{{"last_included_index", index}});
    std::ofstream(snapshot / "db_snapshot" / "state.json") << Dump(state);
    std::ofstream meta(root / "meta" / "raft_meta");
    meta << Dump(json{{"term", 1}});
    if (ec || !meta) {
      return JsonReply(500, json{{"error", "Copy failed."}, {"success", false}},
                       "application/json");
    }
    return JsonReply(201, json{{"success", true}}, "application/json");
  }
};

// ---- Public API -------------------------------------------------------------------------------

TypesenseServer::TypesenseServer(TypesenseServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {
  std::signal(SIGPIPE, SIG_IGN);
  Impl& impl = *impl_;
  if (!impl.options.data_dir.empty() && std::filesystem::exists(impl.StateFile())) {
    std::ifstream in(impl.StateFile());
    const json state = json::parse(in, nullptr, false);
    const std::optional<std::string> error =
        state.is_discarded() ? std::optional<std::string>("not JSON") : impl.LoadState(state);
    if (error) {
      std::cerr << "test-typesense: cannot load " << impl.StateFile() << ": " << *error
                << " (remove it to start empty)\n";
      std::exit(1);
    }
  }
  impl.http.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  // Catch-all routes: we route on the raw target ourselves (httplib decodes the path first,
  // which would split ids holding `%2F`, and splits the query on every `&`).
  const std::string any = "[\\s\\S]*";
  auto plain = [&impl](const httplib::Request& req, httplib::Response& res) {
    impl.Serve(req, res, req.body);
  };
  // Reading writes through a ContentReader keeps httplib from refusing form-encoded bodies over
  // 8 KiB with 413: curl's default Content-Type must not matter, as it does not for Typesense.
  auto streamed = [&impl](const httplib::Request& req, httplib::Response& res,
                          const httplib::ContentReader& reader) {
    if (req.is_multipart_form_data()) {
      res.status = 400;
      return;
    }
    std::string body;
    reader([&](const char* data, size_t size) {
      body.append(data, size);
      return true;
    });
    impl.Serve(req, res, body);
  };
  impl.http.Get(any, plain);
  impl.http.Post(any, plain).Post(any, streamed);
  impl.http.Put(any, plain).Put(any, streamed);
  impl.http.Patch(any, plain).Patch(any, streamed);
  impl.http.Delete(any, plain).Delete(any, streamed);

  const std::string& host = impl.options.host;
  impl.port = impl.options.port == 0
                  ? impl.http.bind_to_any_port(host)
                  : (impl.http.bind_to_port(host, impl.options.port) ? impl.options.port : -1);
  if (impl.port <= 0) {
    std::cerr << "test-typesense: cannot listen on " << host << ":" << impl.options.port << "\n";
    std::exit(1);
  }
  impl.thread = std::thread([&impl] { impl.http.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs, so a server destroyed right away would hang.
  while (!impl.http.is_running()) std::this_thread::yield();
}

TypesenseServer::~TypesenseServer() {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = true;  // also releases held imports
  }
  impl_->stop_cv.notify_all();
  impl_->http.stop();
  impl_->thread.join();
  // After the workers stopped, so no write is half applied.
  if (!impl_->options.data_dir.empty() && !impl_->SaveStateFile()) {
    std::cerr << "test-typesense: cannot save the state to " << impl_->StateFile() << "\n";
  }
}

int TypesenseServer::port() const { return impl_->port; }
std::string TypesenseServer::url() const {
  return "http://" + impl_->options.host + ":" + std::to_string(impl_->port);
}
const std::string& TypesenseServer::api_key() const { return impl_->options.api_key; }

void TypesenseServer::SetWriteUnavailableRate(double rate) { impl_->write_unavailable_rate = rate; }
void TypesenseServer::SetUnavailable(bool down) { impl_->unavailable = down; }
void TypesenseServer::SetLatency(std::chrono::milliseconds latency) {
  impl_->latency_ms = latency.count();
}
void TypesenseServer::SetDropRate(double rate) { impl_->drop_rate = rate; }
void TypesenseServer::SetJitter(std::chrono::milliseconds max) { impl_->jitter_ms = max.count(); }

void TypesenseServer::SetWriteQueueModel(std::optional<TypesenseWriteQueueModel> model) {
  std::lock_guard lock(impl_->queue_mu);
  impl_->queue_model = model;
  impl_->pending_chunks = 0;
  impl_->write_ready = impl_->read_ready = true;
  impl_->drained_at = std::chrono::steady_clock::now();
  impl_->next_refresh =
      impl_->drained_at + (model ? model->refresh_interval : std::chrono::milliseconds(0));
}

void TypesenseServer::AddPendingWriteBatches(int64_t chunks) {
  impl_->Enqueue(static_cast<double>(chunks));
}

int64_t TypesenseServer::PendingWriteBatches() const { return impl_->PendingChunks(); }
bool TypesenseServer::WritesRefusedForLag() const { return !impl_->QueueReady(/*write=*/true); }

void TypesenseServer::HoldImports(bool hold) {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->hold_imports = hold;
  }
  impl_->stop_cv.notify_all();
}

int TypesenseServer::HeldImports() const {
  std::lock_guard lock(impl_->stop_mu);
  return impl_->held_imports;
}

void TypesenseServer::SetProxyReply(std::optional<TypesenseProxyReply> reply) {
  std::lock_guard lock(impl_->faults_mu);
  impl_->proxy_reply = std::move(reply);
}
void TypesenseServer::SetImportLineResults(std::map<std::string, nlohmann::json> results) {
  std::lock_guard lock(impl_->faults_mu);
  impl_->import_line_overrides = std::move(results);
}

TypesenseServerCounters TypesenseServer::Counters() const {
  std::lock_guard lock(impl_->counters_mu);
  return impl_->counters;
}

std::vector<TypesenseWriteAttempt> TypesenseServer::WriteAttempts() const {
  std::lock_guard lock(impl_->counters_mu);
  return {impl_->write_attempts.begin(), impl_->write_attempts.end()};
}

void TypesenseServer::ResetCounters() {
  std::lock_guard lock(impl_->counters_mu);
  impl_->counters = {};
  impl_->write_attempts.clear();
}

std::optional<std::map<std::string, nlohmann::json>> TypesenseServer::Documents(
    const std::string& name) const {
  const auto c = impl_->Find(name);
  if (!c) return std::nullopt;
  std::lock_guard lock(c->mu);
  std::map<std::string, nlohmann::json> out;
  for (const auto& [seq, doc] : c->docs) out[doc["id"].get<std::string>()] = doc;
  return out;
}

std::optional<nlohmann::json> TypesenseServer::Document(const std::string& name,
                                                        const std::string& id) const {
  const auto c = impl_->Find(name);
  if (!c) return std::nullopt;
  std::lock_guard lock(c->mu);
  const json* doc = c->Get(id);
  return doc ? std::optional<json>(*doc) : std::nullopt;
}

std::optional<nlohmann::json> TypesenseServer::Collection(const std::string& name) const {
  const auto c = impl_->Find(name);
  if (!c) return std::nullopt;
  std::lock_guard lock(c->mu);
  return c->Summary();
}

std::vector<std::string> TypesenseServer::CollectionNames() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> names;
  for (const auto& [name, c] : impl_->collections) names.push_back(name);
  return names;
}

std::map<std::string, std::string> TypesenseServer::Aliases() const {
  std::lock_guard lock(impl_->mu);
  return impl_->aliases;
}

}  // namespace searchsync::test
