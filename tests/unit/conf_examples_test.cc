#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"

namespace searchsync {
namespace {

TEST_CASE("Every example pipeline in conf/ is a valid configuration", "[config]") {
  setenv("TYPESENSE_API_KEY", "example-key", 1);
  setenv("PG_DSN", "postgresql://sync@127.0.0.1/shop", 1);
  setenv("TYPESENSE_URL", "http://127.0.0.1:8108", 1);
  setenv("DEMO_STATE_DIR", "/tmp/demo-state", 1);
  int files = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(SEARCHSYNC_SOURCE_DIR) + "/conf")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    INFO(entry.path().string());
    const Result<Config> config = LoadConfig(entry.path().string());
    CHECK(config.status().message() == "");
    CHECK(config.ok());
  }
  CHECK(files >= 2);
}

}  // namespace
}  // namespace searchsync
