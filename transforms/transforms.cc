#include "transforms/transforms.h"

namespace searchsync {
Transform ParseRename(const YAML::Node&, const std::string&, const Section&) { return {}; }
Transform ParseDrop(const YAML::Node&, const std::string&, const Section&) { return {}; }
Transform ParseCast(const YAML::Node&, const std::string&, const Section&) { return {}; }
}  // namespace searchsync
