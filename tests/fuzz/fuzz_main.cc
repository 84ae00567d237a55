// The libFuzzer entry point of one target, chosen at build time by SEARCHSYNC_FUZZ_TARGET.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/fuzz_targets.h"

namespace {

const searchsync::fuzz::FuzzTarget& Target() {
  for (const auto& target : searchsync::fuzz::kFuzzTargets) {
    if (target.name == SEARCHSYNC_FUZZ_TARGET) return target;
  }
  __builtin_trap();  // CMake only builds fuzzers for names in the table
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const searchsync::fuzz::FuzzTarget& target = Target();
  target.run(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
