#pragma once
// ServerProcess: a child process for integration tests (a database server, test-typesense, or the
// searchsync binary itself). Spawn it, poll a readiness condition until a deadline, stop it in the
// destructor. Output goes to files so a failing test can show the tail of stderr.
//
//   auto server = ServerProcess::Start({.argv = {SEARCHSYNC_BINARY, "run", "-c", config}});
//   REQUIRE(server.ok());
//   REQUIRE((*server)->WaitReady([&] { return AdminAnswers(port); }, 10s).ok());
//   (*server)->Kill9();
//
// Deadlines given to these helpers are multiplied by SEARCHSYNC_TEST_TIMEOUT_SCALE (a float,
// default 1) so sanitizer builds can run the same tests with more time.
//
// Thread safety: one test thread owns a ServerProcess; the helper functions are thread-safe.

#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/status.h"

namespace searchsync::test {

using namespace std::chrono_literals;

// `base` multiplied by SEARCHSYNC_TEST_TIMEOUT_SCALE.
std::chrono::milliseconds ScaledTimeout(std::chrono::milliseconds base);

// Calls `condition` every `interval` until it returns true (-> true) or the scaled `timeout` has
// passed (-> false). The condition runs at least once.
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = 20ms);

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
// Returns 0 if no socket could be bound.
int PickFreePort();

// A fresh directory under $TMPDIR (or /tmp) named `prefix` + random suffix; empty on failure.
std::string MakeTempDir(const std::string& prefix);

// The last `max_bytes` of a file ("" if unreadable), for failure messages.
std::string FileTail(const std::string& path, size_t max_bytes = 4096);

struct ProcessOptions {
  // argv[0] is the program; looked up in PATH when it has no '/'.
  std::vector<std::string> argv;
  // "KEY=VALUE" entries set on top of this process's environment.
  std::vector<std::string> env;
  // Non-empty: run as this user (setgid/initgroups/setuid in the child, like `runuser -u USER`,
  // with HOME, USER and LOGNAME set). Requires root.
  std::string run_as_user;
  std::string working_dir;  // empty: inherit
  // Where stdout/stderr go; empty: files in a temp dir removed by the destructor.
  std::string stdout_path;
  std::string stderr_path;
  // Sent by Stop() and the destructor; SIGKILL follows if the process outlives `stop_timeout`.
  // (PostgreSQL wants SIGINT for a fast shutdown: SIGTERM waits for clients to disconnect.)
  int stop_signal = SIGTERM;
  std::chrono::milliseconds stop_timeout = 10s;
};

class ServerProcess {
 public:
  // Forks and execs. Fails with kInternal when the program could not be started (the exec error
  // is reported, not left for WaitReady to find).
  static Result<std::unique_ptr<ServerProcess>> Start(ProcessOptions options);

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Stop(): stop_signal, then SIGKILL to the process group after stop_timeout.
  ~ServerProcess();

  // Polls `ready` until it returns true. kUnavailable when the process exits first or the
  // (scaled) deadline passes; the message carries the exit status and the tail of stderr.
  Status WaitReady(const std::function<bool()>& ready, std::chrono::milliseconds timeout);

  // Sends stop_signal, waits up to stop_timeout (scaled), then SIGKILLs the process group.
  // Returns the exit code (see exit_code()). Idempotent.
  std::optional<int> Stop();
  // SIGKILL to the whole process group, then reaps. Returns the exit code.
  std::optional<int> Kill9();
  // Sends `signal` to the process (not its group).
  void Signal(int signal);
  // Waits for the process to exit by itself for up to `timeout` (scaled). The exit code, or
  // nullopt while it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);

  // True until the process has been reaped (checked without blocking).
  bool running();
  int pid() const { return pid_; }
  // After exit: the exit status, or 128 + signal number when a signal ended it.
  std::optional<int> exit_code() const { return exit_code_; }

  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  std::string ReadStdout() const;
  std::string ReadStderr() const;
  // "pid=123 exited with 1; stderr tail: ..." for test messages.
  std::string Describe() const;

 private:
  explicit ServerProcess(ProcessOptions options) : options_(std::move(options)) {}
  bool Reap(bool block);

  ProcessOptions options_;
  int pid_ = -1;
  std::optional<int> exit_code_;
  std::string stdout_path_;
  std::string stderr_path_;
  std::string log_dir_;  // our temp dir for output files, removed in the destructor
};

// Waits until `process` prints `prefix` followed by a port number (on stdout or stderr) and
// returns that number; 0 when it does not within the (scaled) `timeout` or the process exits.
// For servers told to listen on port 0 that log the port they got.
int WaitForLoggedPort(ServerProcess& process, const std::string& prefix,
                      std::chrono::milliseconds timeout);

}  // namespace searchsync::test
