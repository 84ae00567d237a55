#pragma once
// The searchsync command line. Exit codes: 0 success; 2 bad usage or bad configuration;
// 1 runtime failure.

namespace searchsync {

int RunCli(int argc, char** argv);

}  // namespace searchsync
