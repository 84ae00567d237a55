#include "pipeline/schema_check.h"

#include <simdjson.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>

#include "pipeline/config_section.h"

namespace searchsync {
namespace {

constexpr std::string_view kFieldTypes[] = {
    "string",     "int32",    "int64",    "float",   "bool",    "geopoint",
    "geopolygon", "string[]", "int32[]",  "int64[]", "float[]", "bool[]",
    "geopoint[]", "object",   "object[]", "auto",    "string*", "image",
};
constexpr std::string_view kFieldFlags[] = {"optional", "facet", "index", "sort",
                                            "infix",    "store", "stem",  "range_index"};

std::string Backticked(std::string_view text) { return "`" + std::string(text) + "`"; }

}  // namespace

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

}  // namespace searchsync
