// The YAML configuration: ParseConfig never crashes or throws, whatever the text; a config it
// accepts has what the runner relies on.
#include <string>

#include "pipeline/app/registry.h"
#include "pipeline/config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace searchsync::fuzz {

void FuzzConfig(std::string_view input) {
  Result<Config> config = ParseConfig(std::string(input), "fuzz.yaml");
  if (!config.ok()) {
    Check(!config.status().message().empty(), "a refused config says why");
    return;
  }
  for (const PipelineConfig& pipeline : config->pipelines) {
    Check(!pipeline.name.empty(), "an accepted pipeline has a name");
    Check(static_cast<bool>(pipeline.make_source), "an accepted pipeline has a source factory");
  }
}

}  // namespace searchsync::fuzz
