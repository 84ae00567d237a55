#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sources/common.h"

namespace searchsync {
namespace {

TEST_CASE("AppendBase64 encodes every padding case", "[sources]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
      {std::string("\x00\xff\xfe", 3), "AP/+"},
  };
  for (const auto& [bytes, expected] : cases) {
    std::string out = "<";
    AppendBase64(out, bytes);
    CHECK(out == "<" + expected);
  }
}

TEST_CASE("RawJson gives whole objects and arrays, and scalars without trailing space",
          "[sources]") {
  simdjson::ondemand::parser parser;
  const simdjson::padded_string json(std::string(
      R"({"o": {"a": [1, 2]} , "a": [ "x" ] , "n": 12.50 , "s": "t\"x" , "b": true })"));
  simdjson::ondemand::document document = parser.iterate(json);
  simdjson::ondemand::object object = document.get_object();
  std::vector<std::string> raws;
  for (auto field : object) {
    std::string_view raw;
    REQUIRE(RawJson(field.value(), raw) == simdjson::SUCCESS);
    raws.emplace_back(raw);
  }
  CHECK(raws ==
        std::vector<std::string>{R"({"a": [1, 2]})", R"([ "x" ])", "12.50", R"("t\"x")", "true"});
}

TEST_CASE("JoinKeyParts keeps distinct keys distinct", "[sources]") {
  CHECK(JoinKeyParts(std::vector<std::string>{"a|b"}) == "a|b");  // one part: as is
  CHECK(JoinKeyParts(std::vector<std::string>{"a|b", "c"}) == "a\\|b|c");
  CHECK(JoinKeyParts(std::vector<std::string>{"a", "b|c"}) == "a|b\\|c");
  CHECK(JoinKeyParts(std::vector<std::string>{"a\\", "b"}) == "a\\\\|b");
}

}  // namespace
}  // namespace searchsync
