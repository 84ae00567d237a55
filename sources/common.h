#pragma once
// What the sources share: how a composite key becomes an id, how bytes that are not text reach
// a document, and the raw JSON of a parsed value. One definition each, so every source builds ids
// and documents the same way (a Maxwell stream and its MySQL full read must agree on every id).
// Pure functions; any thread.

#include <simdjson.h>

#include <span>
#include <string>
#include <string_view>

namespace searchsync {

// Event::id of a key: one part as is; several joined by '|', each with '\' and '|' escaped by
// '\': ("a|b", "c") -> "a\|b|c". Distinct keys always give distinct ids.
std::string JoinKeyParts(std::span<const std::string> parts);

// Appends `bytes` in standard base64 (RFC 4648, with '=' padding).
void AppendBase64(std::string& out, std::string_view bytes);

// The JSON text of a value: a whole object or array, or one scalar token (without the
// whitespace simdjson keeps after a token).
simdjson::error_code RawJson(simdjson::ondemand::value value, std::string_view& raw);

}  // namespace searchsync
