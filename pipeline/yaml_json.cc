#include "pipeline/yaml_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

#include "pipeline/config_section.h"
#include "pipeline/json.h"

namespace searchsync {
namespace {

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

}  // namespace

std::string YamlToJson(const YAML::Node& node) {
  std::string json;
  AppendYamlAsJson(json, node);
  return json;
}

}  // namespace searchsync
