#pragma once
// A transform maps one event to one event. Pure: no I/O, no clock, no globals. An error sends
// the event to the dead-letter store with its message, and the pipeline goes on.
// Transforms see upserts only; deletes pass through untouched.

#include <functional>

#include "pipeline/event.h"
#include "pipeline/status.h"

namespace searchsync {

using Transform = std::function<Result<Event>(Event)>;

}  // namespace searchsync
