#include "pipeline/status.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

#include "pipeline/json.h"
#include "pipeline/run_state.h"

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

TEST_CASE("JsonString always writes valid UTF-8: each invalid byte becomes U+FFFD", "[json]") {
  const std::string kReplacement = "\xEF\xBF\xBD";
  struct Case {
    std::string in, out;
  };
  for (const Case& c : {
           Case{"caf\xe9", "caf" + kReplacement},  // Latin-1
           Case{"\xe9t\xe9 \xe2\x82\xac", kReplacement + "t" + kReplacement + " €"},
           Case{"a\xe2\x82", "a" + kReplacement + kReplacement},              // truncated sequence
           Case{"\xc0\xaf", kReplacement + kReplacement},                     // overlong '/'
           Case{"\xed\xa0\x80", kReplacement + kReplacement + kReplacement},  // surrogate
           Case{"\xf4\x90\x80\x80", kReplacement + kReplacement + kReplacement + kReplacement},
           Case{"\xf0\x9f\x98\x80\xff\"", "😀" + kReplacement + "\\\""},
       }) {
    INFO(c.in);
    CHECK(JsonString(c.in) == "\"" + c.out + "\"");
    CHECK(IsValidUtf8(JsonString(c.in)));
  }
  CHECK(IsValidUtf8("ü 😀"));
  CHECK_FALSE(IsValidUtf8("caf\xe9"));
}

TEST_CASE("DumpJson keeps field order and replaces each invalid byte as JsonString does",
          "[json]") {
  const std::string latin1 = "caf\xe9 a\xe2\x82";
  const std::string dumped = DumpJson({{"zeta", latin1},
                                       {"alpha", {{"caf\xe9", 1}, {"list", {latin1, "ok"}}}},
                                       {"n", uint64_t{18446744073709551615u}},
                                       {"none", nullptr}});
  const std::string replaced = JsonString(latin1);
  CHECK(dumped == "{\"zeta\":" + replaced + ",\"alpha\":{\"caf\xEF\xBF\xBD\":1,\"list\":[" +
                      replaced + ",\"ok\"]},\"n\":18446744073709551615,\"none\":null}");
  CHECK(IsValidUtf8(dumped));
  CHECK(DumpJson("line\nnext\x01\"") == JsonString("line\nnext\x01\""));
}

TEST_CASE("Every run state has one name, and the name reads back as that state", "[status]") {
  std::set<std::string_view> names;
  for (RunState state :
       {RunState::kNeverRun, RunState::kStarting, RunState::kRunning, RunState::kCaughtUp,
        RunState::kRetrying, RunState::kStopping, RunState::kStopped, RunState::kFailed}) {
    INFO(RunStateName(state));
    CHECK(names.insert(RunStateName(state)).second);
    CHECK(ParseRunState(RunStateName(state)) == state);
  }
  CHECK(RunStateName(RunState::kCaughtUp) == "caught_up");
  CHECK(RunStateName(RunState::kNeverRun) == "never_run");
  CHECK_FALSE(ParseRunState("caught up").has_value());
  CHECK_FALSE(ParseRunState("").has_value());
}

TEST_CASE("A document id that is not UTF-8 has a problem that names its bytes", "[json]") {
  CHECK(DocumentIdProblem("café").empty());
  const std::string problem = DocumentIdProblem("caf\xe9");
  CHECK(problem.find("not valid UTF-8 (bytes 63 61 66 e9)") != std::string::npos);
  CHECK(IsValidUtf8(problem));
}

}  // namespace searchsync
