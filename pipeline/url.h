#pragma once
// URLs and the secrets in them: percent-encoding both ways, where "scheme://user:password@host"
// keeps its credentials, and masking secrets in messages.
//
// Secrets are masked by knowing where they are (the password of a URL's user info, the password
// a DSN parser found), never by hoping a message lacks them. Every connector masks through these
// functions. Pure functions; any thread.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace searchsync {

// Percent-encodes every byte except the unreserved characters A-Z a-z 0-9 - . _ ~, so the
// result is safe as a path segment or a query value ('+' and ' ' included). Upper-case hex.
std::string PercentEncode(std::string_view text);
void AppendPercentEncoded(std::string& out, std::string_view text);
size_t PercentEncodedSize(std::string_view text);  // == PercentEncode(text).size()
// Decodes %XX escapes; nullopt on a malformed escape ("%", "%4", "%zz").
std::optional<std::string> PercentDecode(std::string_view text);

// The user info of "scheme://user:password@host...". It ends at the last '@' after "://" (a
// password may hold an '@' as well as the host can follow it), so a password is found whole
// even when it holds an unencoded '/', '?', '#' or '@' that a strict URL parser would read as
// the start of the path, query or fragment, or as the end of the user info.
struct UrlUserInfo {
  size_t begin = 0;                          // offset just after "://"
  size_t end = 0;                            // offset of the '@' that ends the user info
  std::string_view user;                     // as written (percent-encoded)
  std::optional<std::string_view> password;  // after the first ':', as written
  // Parsers disagree on where the host starts: the user info holds an unencoded '/', '?', '#'
  // or '@'. Connectors refuse such URLs (percent-encoding the password fixes them).
  bool ambiguous = false;
};
// nullopt when `url` has no "scheme://" or no '@' after it.
std::optional<UrlUserInfo> FindUrlUserInfo(std::string_view url);

// `url` with its password replaced by ***: "http://admin:***@db:5984". When the user info is
// ambiguous, everything between "://" and the host is masked: "http://***@db:5984".
std::string RedactUrl(std::string_view url);

// The strings a message could carry the password of `url` as: as written, percent-decoded,
// and for an ambiguous user info each piece a URL parser could split it into. Empty when the
// URL carries no password.
std::vector<std::string> UrlSecrets(std::string_view url);

// `text` with every occurrence of each non-empty secret replaced by ***, longest secrets first
// (so a secret holding another is masked whole).
std::string RedactSecrets(std::string text, std::span<const std::string> secrets);

}  // namespace searchsync
