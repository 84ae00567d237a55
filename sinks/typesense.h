#pragma once
// The Typesense sink: bulk import (action=upsert) and delete by id, over libcurl.

#include <memory>
#include <string>

#include "pipeline/config.h"
#include "pipeline/sink.h"

namespace searchsync {

// `component` names the instance in logs, e.g. "pipeline=products sink=typesense".
std::unique_ptr<Sink> MakeTypesenseSink(const TypesenseOptions& typesense,
                                        const SinkOptions& sink, std::string component);

}  // namespace searchsync
