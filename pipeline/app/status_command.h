#pragma once
// `searchsync status -c FILE [--json]`: each pipeline's state, counters, checkpoint and last
// error. From the `run` daemon of the same config when one answers on admin.listen (live lag
// and reindex progress too), else from the state store, read only. Without --json, also the
// complete backups in each pipeline's backup.to.

#include "pipeline/config.h"

namespace searchsync {

// Returns the exit code: 0 shown; 1 the daemon or the state store could not be read.
int RunStatusCommand(const Config& config, bool json);

}  // namespace searchsync
