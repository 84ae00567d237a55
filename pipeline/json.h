#pragma once
// Small JSON writing helpers shared by sources, transforms and sinks. Parsing uses simdjson.
// What the product prints or serves (status, admin API, JSON logs) is built as an
// nlohmann::ordered_json (fields stay in the order they are set) and written by DumpJson.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace searchsync {

// Appends `value` as a JSON string literal (quotes included), escaping `"`, `\` and control
// characters. Valid UTF-8 passes through unchanged; each byte that is not part of a valid UTF-8
// sequence (Latin-1 text from a SQL_ASCII database) becomes U+FFFD, so the output is always
// valid JSON: for Typesense, logs and `status --json` alike.
void AppendJsonString(std::string& out, std::string_view value);

bool IsValidUtf8(std::string_view text);

// `value` on one line, without a trailing newline. As in AppendJsonString, each byte of a
// string (or key) that is not part of a valid UTF-8 sequence becomes U+FFFD.
std::string DumpJson(nlohmann::ordered_json value);

// Why `id` cannot be a Typesense document id, naming the fix; "" when it can.
std::string DocumentIdProblem(std::string_view id);

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
