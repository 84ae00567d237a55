#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"

namespace searchsync {
namespace {

TEST_CASE("README's key reference equals the one generated from the key tables", "[config]") {
  std::ifstream in(std::string(SEARCHSYNC_SOURCE_DIR) + "/README.md");
  std::stringstream readme;
  readme << in.rdbuf();
  const std::string text = readme.str();
  const std::string begin = "<!-- reference:begin -->\n";
  const auto start = text.find(begin);
  const auto stop = text.find("<!-- reference:end -->");
  REQUIRE(start != std::string::npos);
  REQUIRE(stop != std::string::npos);
  INFO("run scripts/update-readme-reference.sh to regenerate it");
  CHECK(text.substr(start + begin.size(), stop - start - begin.size()) ==
        ConfigReferenceMarkdown());
}

}  // namespace
}  // namespace searchsync
