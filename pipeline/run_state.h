#pragma once
// The state of a pipeline, as `status`, the admin API and /metrics name it.

#include <optional>
#include <string_view>

namespace searchsync {

enum class RunState {
  kNeverRun,  // the state store holds no run of it (`status` only)
  kStarting,  // preparing the sink
  kRunning,   // reading and writing
  kCaughtUp,  // the source had nothing more to give at its last poll
  kRetrying,  // the sink or the source keeps failing (caught up or not)
  kStopping,  // flushing what it holds before it stops
  kStopped,   // stopped; what was not acknowledged is read again on the next start
  kFailed,    // stopped by an error that retrying does not fix (see last_error)
};

// The name output shows and the state store keeps: "never_run", "starting", "running",
// "caught_up", "retrying", "stopping", "stopped", "failed".
constexpr std::string_view RunStateName(RunState state) {
  switch (state) {
    case RunState::kNeverRun:
      return "never_run";
    case RunState::kStarting:
      return "starting";
    case RunState::kRunning:
      return "running";
    case RunState::kCaughtUp:
      return "caught_up";
    case RunState::kRetrying:
      return "retrying";
    case RunState::kStopping:
      return "stopping";
    case RunState::kStopped:
      return "stopped";
    case RunState::kFailed:
      return "failed";
  }
  return "unknown";
}

// The state a stored name stands for; nullopt for a name no state has.
constexpr std::optional<RunState> ParseRunState(std::string_view name) {
  for (RunState state :
       {RunState::kNeverRun, RunState::kStarting, RunState::kRunning, RunState::kCaughtUp,
        RunState::kRetrying, RunState::kStopping, RunState::kStopped, RunState::kFailed}) {
    if (RunStateName(state) == name) return state;
  }
  return std::nullopt;
}

}  // namespace searchsync
