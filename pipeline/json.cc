#include "pipeline/json.h"

#include <simdjson.h>

#include <nlohmann/json.hpp>

namespace searchsync {

namespace {

// The length of the valid UTF-8 sequence at the start of `text` (1 to 4), or 0 when it starts
// with a byte that begins none (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char min = 0x80;
  unsigned char max = 0xBF;  // the second byte's range
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min = 0xA0;  // overlong
    if (lead == 0xED) max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min = 0x90;  // overlong
    if (lead == 0xF4) max = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < min || byte(1) > max) return 0;
  for (size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// `text` with each byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string ReplaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    if (const size_t length = Utf8SequenceLength(text.substr(i)); length > 0) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    }
  }
  return out;
}

// Makes every string and key of `value` valid UTF-8, so dumping it cannot throw.
void ReplaceInvalidUtf8(nlohmann::ordered_json& value) {
  if (value.is_string()) {
    auto& text = value.get_ref<std::string&>();
    if (!IsValidUtf8(text)) text = ReplaceInvalidUtf8(text);
  } else if (value.is_array()) {
    for (auto& element : value) ReplaceInvalidUtf8(element);
  } else if (value.is_object()) {
    nlohmann::ordered_json valid = nlohmann::ordered_json::object();
    for (auto& [key, element] : value.items()) {
      ReplaceInvalidUtf8(element);
      valid[IsValidUtf8(key) ? key : ReplaceInvalidUtf8(key)] = std::move(element);
    }
    value = std::move(valid);
  }
}

}  // namespace

std::string DumpJson(nlohmann::ordered_json value) {
  ReplaceInvalidUtf8(value);
  return value.dump();
}

bool IsValidUtf8(std::string_view text) {
  return simdjson::validate_utf8(text.data(), text.size());
}

std::string DocumentIdProblem(std::string_view id) {
  if (IsValidUtf8(id)) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string bytes;
  for (size_t i = 0; i < id.size() && i < 64; ++i) {
    if (!bytes.empty()) bytes.push_back(' ');
    bytes.push_back(kHex[static_cast<unsigned char>(id[i]) >> 4]);
    bytes.push_back(kHex[static_cast<unsigned char>(id[i]) & 0xF]);
  }
  if (id.size() > 64) bytes += " ...";
  return "the document id is not valid UTF-8 (bytes " + bytes +
         "), and Typesense ids are UTF-8 text (a SQL_ASCII database?): fix the row, or "
         "convert the key to UTF-8 in the source's query";
}

namespace {

// Whether `c` can be copied into a JSON string as it is: printable ASCII other than '"' and '\\'.
constexpr bool IsPlainJsonChar(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte >= 0x20 && byte < 0x80 && c != '"' && c != '\\';
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Most values are plain ASCII: copied in one piece, without the UTF-8 check.
  size_t plain = 0;
  while (plain < value.size() && IsPlainJsonChar(value[plain])) ++plain;
  out.reserve(out.size() + value.size() + 2);
  out.push_back('"');
  out.append(value.data(), plain);
  if (plain == value.size()) {
    out.push_back('"');
    return;
  }
  const bool valid = IsValidUtf8(value);
  for (size_t i = plain; i < value.size(); ++i) {
    const char c = value[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xF]);
          out.push_back(kHex[c & 0xF]);
        } else if (valid || static_cast<unsigned char>(c) < 0x80) {
          out.push_back(c);
        } else if (const size_t length = Utf8SequenceLength(value.substr(i)); length > 0) {
          out.append(value.substr(i, length));
          i += length - 1;
        } else {
          out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
        }
    }
  }
  out.push_back('"');
}

}  // namespace searchsync

#include "pipeline/event.h"

namespace searchsync {

void AppendDocumentJson(std::string& out, const Event& event) {
  out += "{\"id\":";
  AppendJsonString(out, event.id);
  for (const Field& field : event.document) {
    if (field.name == "id") continue;
    out.push_back(',');
    AppendJsonString(out, field.name);
    out.push_back(':');
    // A raw CR or LF can only be whitespace between JSON tokens (inside strings they are
    // escaped); a line break would split the document's JSONL line in two.
    const size_t start = out.size();
    out += field.json;
    for (size_t i = start; i < out.size(); ++i) {
      if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
    }
  }
  out.push_back('}');
}

}  // namespace searchsync
