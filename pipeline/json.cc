#include "pipeline/json.h"

namespace searchsync {

void AppendJsonString(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + value.size() + 2);
  out.push_back('"');
  for (const char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xF]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(c);
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
