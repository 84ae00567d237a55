// Replays each fuzz target's corpus (tests/fuzz/corpus/<target>/): the seeds, and every input
// that once crashed a parser or broke an invariant, so that a fix cannot quietly regress in a
// build without libFuzzer. A failure aborts inside the target, naming the broken invariant.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("Every fuzz target's corpus replays without a crash or a broken invariant", "[fuzz]") {
  for (const FuzzTarget& target : kFuzzTargets) {
    const std::filesystem::path corpus =
        std::filesystem::path(SEARCHSYNC_SOURCE_DIR) / "tests/fuzz/corpus" / target.name;
    size_t inputs = 0;
    for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
      INFO("fuzz_" << target.name << " " << entry.path().string());
      target.run(ReadFile(entry.path()));
      ++inputs;
    }
    INFO("fuzz_" << target.name);
    CHECK(inputs > 0);
  }
}

TEST_CASE("The fuzz targets' JSON check takes numbers beyond a double and nothing invalid",
          "[fuzz]") {
  CHECK(IsJson(R"({"a":[1,2.5e3,"\u00e9",null]})"));
  CHECK(IsJson("1e400"));
  CHECK(IsJson("[1e400,-2e999,3]"));
  CHECK(IsJson(R"({"big":123456789012345678901234567890e300,"b":true})"));
  CHECK_FALSE(IsJson("[1e400,]"));
  CHECK_FALSE(IsJson("1e400 x"));
  CHECK_FALSE(IsJson("\"\xff\""));  // not UTF-8
  CHECK_FALSE(IsJson(""));
  CHECK(IsUtf8("caf\xc3\xa9 \"q\""));
  CHECK_FALSE(IsUtf8("\xc3"));
}

}  // namespace
}  // namespace searchsync::fuzz
