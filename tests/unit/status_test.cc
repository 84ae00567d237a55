#include <catch2/catch.hpp>

#include "pipeline/json.h"
#include "pipeline/status.h"

namespace searchsync {

TEST_CASE("Result carries a value or a non-OK status", "[status]") {
  Result<int> value = 7;
  REQUIRE(value.ok());
  CHECK(*value == 7);
  Result<int> error = Unavailable("typesense: HTTP 503");
  REQUIRE_FALSE(error.ok());
  CHECK(error.status().code() == StatusCode::kUnavailable);
  CHECK(error.status().ToString() == "UNAVAILABLE: typesense: HTTP 503");
}

TEST_CASE("JsonString escapes quotes, backslashes and control characters", "[json]") {
  CHECK(JsonString("a\"b\\c") == R"("a\"b\\c")");
  CHECK(JsonString("line\nnext\x01") == R"("line\nnext\u0001")");
  CHECK(JsonString("ü-1") == "\"ü-1\"");
}

}  // namespace searchsync
