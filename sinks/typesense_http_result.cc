#include "sinks/typesense_http_result.h"

#include <simdjson.h>

namespace searchsync {

std::string_view TrimBlank(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

std::string ServerMessage(std::string_view body) {
  const std::string_view trimmed = TrimBlank(body);
  std::string message;
  simdjson::dom::parser parser;
  simdjson::dom::element element;
  std::string_view parsed;
  if (parser.parse(trimmed.data(), trimmed.size()).get(element) == simdjson::SUCCESS &&
      element["message"].get_string().get(parsed) == simdjson::SUCCESS) {
    message = parsed;
  } else if (const size_t key = trimmed.find("\"message\""); key != std::string_view::npos) {
    // Typesense builds most error bodies by concatenation, without escaping: a message that
    // contains a quote is invalid JSON. Take everything between the value's opening quote and
    // the last quote.
    const size_t open = trimmed.find('"', trimmed.find(':', key + 9));
    const size_t close = trimmed.rfind('"');
    if (open != std::string_view::npos && close > open) {
      message = trimmed.substr(open + 1, close - open - 1);
    } else {
      message = trimmed;
    }
  } else {
    message = trimmed;
  }
  if (message.size() > kMaxServerMessageBytes) {
    message.resize(kMaxServerMessageBytes);
    message += "...";
  }
  return message;
}

std::string NodeOfUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  const size_t authority_start = scheme_end + 3;
  const size_t authority_end = url.find_first_of("/?#", authority_start);
  std::string_view authority = url.substr(authority_start, authority_end - authority_start);
  // Credentials in a redirect target are never repeated.
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  if (authority.empty()) return "";
  return std::string(url.substr(0, authority_start)) + std::string(authority);
}

Status ClassifyHttpResult(std::string_view context, std::string_view transport_error,
                          long http_status, std::string_view body, std::string_view redirect_to) {
  std::string prefix(context);
  prefix += ": ";
  if (!transport_error.empty()) return Unavailable(prefix + std::string(transport_error));
  if (http_status >= 200 && http_status < 300) return Status::Ok();

  prefix += "HTTP " + std::to_string(http_status);
  if (http_status >= 300 && http_status < 400) {
    // A redirect says where the server is, never what is wrong with the documents. It is not
    // followed: libcurl would turn a POST into a GET and send the API key to another host.
    const std::string node = NodeOfUrl(redirect_to);
    if (node.empty()) {
      return Unavailable(prefix +
                         ": a redirect without a usable Location (typesense.nodes must name the "
                         "Typesense server itself, not a redirecting proxy)");
    }
    return Unavailable(prefix + ": redirected to " + node +
                       " (searchsync does not follow redirects: set typesense.nodes to " + node +
                       ")");
  }
  const std::string message = ServerMessage(body);
  const std::string with_message = message.empty() ? prefix : prefix + ": " + message;
  if (http_status == 401 || http_status == 403) {
    return FailedPrecondition(prefix +
                              ": the Typesense API key was refused (check typesense.api_key)");
  }
  if (http_status == 404) {
    return FailedPrecondition(with_message + " (the collection or alias does not exist)");
  }
  if (http_status == 408 || http_status == 422 || http_status == 429 || http_status >= 500) {
    return Unavailable(with_message);
  }
  return InvalidArgument(with_message);
}

}  // namespace searchsync
