#include "pipeline/url.h"

#include <algorithm>

#include "pipeline/config.h"

namespace searchsync {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Characters that end a URL's user info for a strict parser (RFC 3986 section 3.2).
constexpr std::string_view kUserInfoEnders = "/?#@";
// Shorter pieces of an ambiguous password are not masked on their own: masking "ab" in every
// message would garble them. (Connectors refuse ambiguous URLs before anything is logged.)
constexpr size_t kShortestMaskedPiece = 3;

}  // namespace

void AppendPercentEncoded(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (IsUnreserved(byte)) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xF]);
    }
  }
}

std::string PercentEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  AppendPercentEncoded(out, text);
  return out;
}

size_t PercentEncodedSize(std::string_view text) {
  size_t size = 0;
  for (const char c : text) size += IsUnreserved(static_cast<unsigned char>(c)) ? 1 : 3;
  return size;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] != '%') {
      out.push_back(text[pos]);
      continue;
    }
    if (pos + 2 >= text.size()) return std::nullopt;
    const int high = HexValue(text[pos + 1]);
    const int low = HexValue(text[pos + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
    pos += 2;
  }
  return out;
}

std::optional<UrlUserInfo> FindUrlUserInfo(std::string_view url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::nullopt;
  UrlUserInfo info;
  info.begin = scheme + 3;
  const size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < info.begin) return std::nullopt;
  info.end = at;
  const std::string_view text = url.substr(info.begin, at - info.begin);
  const size_t colon = text.find(':');
  info.user = text.substr(0, colon);
  if (colon != std::string_view::npos) info.password = text.substr(colon + 1);
  info.ambiguous = text.find_first_of(kUserInfoEnders) != std::string_view::npos;
  return info;
}

std::string RedactUrl(std::string_view url) {
  const std::optional<UrlUserInfo> info = FindUrlUserInfo(url);
  if (!info || (!info->password && !info->ambiguous)) return std::string(url);
  const size_t masked_from = info->ambiguous ? info->begin : info->begin + info->user.size() + 1;
  return std::string(url.substr(0, masked_from)) + std::string(Secret::kRedacted) +
         std::string(url.substr(info->end));
}

std::vector<std::string> UrlSecrets(std::string_view url) {
  const std::optional<UrlUserInfo> info = FindUrlUserInfo(url);
  if (!info || (!info->password && !info->ambiguous)) return {};
  // Without a ':' an ambiguous user info may be a password or token as a whole.
  const std::string_view written =
      info->password ? *info->password : url.substr(info->begin, info->end - info->begin);
  std::vector<std::string> secrets{std::string(written)};
  if (std::optional<std::string> decoded = PercentDecode(written); decoded && *decoded != written) {
    secrets.push_back(std::move(*decoded));
  }
  if (info->ambiguous) {
    // What a strict parser may have taken for a port, a host, a path or a query.
    size_t start = 0;
    while (start <= written.size()) {
      size_t stop = written.find_first_of(kUserInfoEnders, start);
      if (stop == std::string_view::npos) stop = written.size();
      if (stop - start >= kShortestMaskedPiece) {
        secrets.emplace_back(written.substr(start, stop - start));
      }
      start = stop + 1;
    }
  }
  return secrets;
}

std::string RedactSecrets(std::string text, std::span<const std::string> secrets) {
  std::vector<const std::string*> longest_first;
  for (const std::string& secret : secrets) {
    if (!secret.empty()) longest_first.push_back(&secret);
  }
  std::stable_sort(
      longest_first.begin(), longest_first.end(),
      [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* secret : longest_first) {
    for (size_t found = text.find(*secret); found != std::string::npos;
         found = text.find(*secret, found + Secret::kRedacted.size())) {
      text.replace(found, secret->size(), Secret::kRedacted);
    }
  }
  return text;
}

}  // namespace searchsync
