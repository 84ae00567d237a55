#include "sources/common.h"

#include <cctype>
#include <cstdint>

namespace searchsync {

std::string JoinKeyParts(std::span<const std::string> parts) {
  if (parts.size() == 1) return parts.front();
  std::string out;
  for (size_t part_idx = 0; part_idx < parts.size(); ++part_idx) {
    if (part_idx > 0) out.push_back('|');
    for (const char c : parts[part_idx]) {
      if (c == '\\' || c == '|') out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

void AppendBase64(std::string& out, std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t pos = 0;
  for (; pos + 2 < bytes.size(); pos += 3) {
    const uint32_t n =
        (uint8_t(bytes[pos]) << 16) | (uint8_t(bytes[pos + 1]) << 8) | uint8_t(bytes[pos + 2]);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63],
            kAlphabet[n & 63]};
  }
  if (pos + 1 == bytes.size()) {
    const uint32_t n = uint8_t(bytes[pos]) << 16;
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], '=', '='};
  } else if (pos + 2 == bytes.size()) {
    const uint32_t n = (uint8_t(bytes[pos]) << 16) | (uint8_t(bytes[pos + 1]) << 8);
    out += {kAlphabet[n >> 18], kAlphabet[(n >> 12) & 63], kAlphabet[(n >> 6) & 63], '='};
  }
}

namespace {

simdjson::error_code UntrimmedRawJson(simdjson::ondemand::value value, std::string_view& raw) {
  namespace od = simdjson::ondemand;
  od::json_type type;
  if (auto error = value.type().get(type)) return error;
  if (type == od::json_type::object) {
    od::object object;
    if (auto error = value.get_object().get(object)) return error;
    return object.raw_json().get(raw);
  }
  if (type == od::json_type::array) {
    od::array array;
    if (auto error = value.get_array().get(array)) return error;
    return array.raw_json().get(raw);
  }
  raw = value.raw_json_token();
  return simdjson::SUCCESS;
}

}  // namespace

simdjson::error_code RawJson(simdjson::ondemand::value value, std::string_view& raw) {
  if (auto error = UntrimmedRawJson(value, raw)) return error;
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  return simdjson::SUCCESS;
}

}  // namespace searchsync
