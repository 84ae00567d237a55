#pragma once
// Small JSON writing helpers shared by sources, transforms and sinks. Parsing uses simdjson.

#include <string>
#include <string_view>

namespace searchsync {

// Appends `value` as a JSON string literal (quotes included), escaping `"`, `\` and control
// characters. Bytes >= 0x80 pass through unchanged (input is expected to be UTF-8).
void AppendJsonString(std::string& out, std::string_view value);

inline std::string JsonString(std::string_view value) {
  std::string out;
  AppendJsonString(out, value);
  return out;
}

}  // namespace searchsync

namespace searchsync {

struct Event;
// Appends the event's document as one JSON object on one line: {"id":"<event.id>",<fields>}.
// A field named "id" in the document is skipped: Event::id is the document id. Field values are
// copied as they are (already JSON); raw CR/LF in them (JSON whitespace) become spaces.
void AppendDocumentJson(std::string& out, const Event& event);

}  // namespace searchsync
