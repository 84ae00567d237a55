#pragma once
// How an HTTP exchange with Typesense becomes a Status, and what the server said.
// Pure functions: no I/O, no clock, no globals; safe to call from any thread.

#include <cstddef>
#include <string>
#include <string_view>

#include "pipeline/status.h"

namespace searchsync {

// Error texts quoted from the server are cut to this many bytes.
inline constexpr size_t kMaxServerMessageBytes = 300;

// `text` without leading and trailing JSON whitespace (space, tab, CR, LF).
std::string_view TrimBlank(std::string_view text);

// The one place an HTTP exchange with Typesense becomes a Status. `context` names the call
// ("typesense POST /collections/products/documents/import") and starts every message.
//   transport_error non-empty (no response: refused, reset, timed out) -> kUnavailable
//   2xx                               -> OK
//   3xx                               -> kUnavailable, naming the node `redirect_to` (the
//                                        absolute Location) points at: a misconfigured node,
//                                        never a verdict on documents
//   401, 403                          -> kFailedPrecondition: the API key was refused
//   404                               -> kFailedPrecondition: collection or alias missing
//   408, 422 (server busy, out of disk or memory, writes skipped), 429, 5xx -> kUnavailable
//   other 4xx                         -> kInvalidArgument with the server's message
// `body` need not be valid JSON; the server's "message" is quoted when it can be read.
Status ClassifyHttpResult(std::string_view context, std::string_view transport_error,
                          long http_status, std::string_view body,
                          std::string_view redirect_to = {});

// "scheme://host[:port]" of an absolute URL, without credentials; "" when it has none.
std::string NodeOfUrl(std::string_view url);

// The server's error text from an error body: the "message" string of a JSON body, or else
// the body itself, trimmed and cut to a few hundred bytes.
std::string ServerMessage(std::string_view body);

}  // namespace searchsync
