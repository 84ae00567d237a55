#include "sinks/typesense.h"

namespace searchsync {
std::unique_ptr<Sink> MakeTypesenseSink(const TypesenseOptions&, const SinkOptions&, std::string) {
  return nullptr;
}
}  // namespace searchsync
