#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void Check(bool condition, std::string_view what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

namespace {

// nlohmann's validator, noting where it stopped at a number too large for a double.
struct OverflowNotingAcceptor : nlohmann::detail::json_sax_acceptor<nlohmann::json> {
  size_t overflow_end = 0;  // just past the number; 0: no overflow
  size_t overflow_size = 0;
  template <typename Exception>
  bool parse_error(size_t position, const std::string& token, const Exception& error) {
    if (error.id == 406) {
      overflow_end = position;
      overflow_size = token.size();
    }
    return false;
  }
};

}  // namespace

bool IsJson(std::string_view text) {
  // A number beyond a double's range (numeric 1e400) is valid JSON that nlohmann, like
  // Typesense's own parser, refuses as "number overflow": the document is Typesense's to reject.
  // Validate the rest with each such number overwritten by 0.
  std::string copy(text);
  for (int round = 0; round < 64; ++round) {
    OverflowNotingAcceptor acceptor;
    if (nlohmann::json::sax_parse(copy, &acceptor)) return true;
    if (acceptor.overflow_end == 0 || acceptor.overflow_size > acceptor.overflow_end) return false;
    const size_t start = acceptor.overflow_end - acceptor.overflow_size;
    copy[start] = '0';  // and blanks for the rest of the number: whitespace between tokens
    for (size_t i = start + 1; i < acceptor.overflow_end; ++i) copy[i] = ' ';
  }
  return false;
}

bool IsUtf8(std::string_view text) {
  // A JSON string of the text is valid exactly when the text is valid UTF-8.
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      quoted += ' ';
    } else {
      quoted += c;
    }
  }
  quoted += '"';
  return nlohmann::json::accept(quoted);
}

}  // namespace searchsync::fuzz
