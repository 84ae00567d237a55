#pragma once
// The searchsync command line. Exit codes: 0 success; 2 bad usage or bad configuration;
// 1 runtime failure.

namespace searchsync {

// The exit codes of every command (README: "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  // runtime failure
inline constexpr int kExitUsage = 2;    // bad usage or bad configuration

int RunCli(int argc, char** argv);

}  // namespace searchsync
