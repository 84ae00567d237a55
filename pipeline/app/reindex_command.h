#pragma once
// `searchsync reindex -c FILE PIPELINE [--wait]`: asks the `run` daemon of the same config to
// reindex (POST /pipelines/NAME/reindex on admin.listen), or reindexes in this process when no
// daemon answers there. With --wait, follows the reindex to its end: a progress bar on a
// terminal, plain progress lines otherwise.

#include <cstdint>
#include <string>

#include "pipeline/app/reindex.h"
#include "pipeline/config.h"

namespace searchsync {

// Returns the exit code: 0 the reindex succeeded (or, without --wait, the daemon started it);
// 1 it failed, was cancelled, or is already running; 2 no such pipeline.
int RunReindexCommand(const Config& config, const std::string& pipeline, bool wait);

// One progress report. `rows_per_second` < 0: not known yet. With `bar`, a one-line bar of
// `width` columns for a terminal (no line feed); otherwise a plain log-style line.
std::string FormatReindexProgress(const ReindexProgress& progress, double rows_per_second, bool bar,
                                  int width = 80);

// 1234567 -> "1,234,567"
std::string Grouped(uint64_t value);

}  // namespace searchsync
