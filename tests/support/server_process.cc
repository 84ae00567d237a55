#include "tests/support/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace searchsync::test {
namespace {

constexpr auto kReapPollInterval = 10ms;

double TimeoutScale() {
  const char* text = std::getenv("SEARCHSYNC_TEST_TIMEOUT_SCALE");
  if (text == nullptr || *text == '\0') return 1.0;
  char* end = nullptr;
  const double scale = std::strtod(text, &end);
  return (end != text && scale > 0) ? scale : 1.0;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string KeyOf(const std::string& entry) { return entry.substr(0, entry.find('=')); }

// This process's environment with `overrides` ("KEY=VALUE") replacing or adding entries.
std::vector<std::string> BuildEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string text(*entry);
    bool overridden = false;
    for (const std::string& override_entry : overrides) {
      if (KeyOf(override_entry) == KeyOf(text)) overridden = true;
    }
    if (!overridden) result.push_back(text);
  }
  result.insert(result.end(), overrides.begin(), overrides.end());
  return result;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// What the child reports through the exec pipe when it fails before exec succeeds.
struct ChildFailure {
  int stage;  // index into kChildStages
  int error;  // errno
};
constexpr const char* kChildStages[] = {"open /dev/null", "chdir",  "setgroups",
                                        "setgid",         "setuid", "exec"};

}  // namespace

std::chrono::milliseconds ScaledTimeout(std::chrono::milliseconds base) {
  return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(
      static_cast<double>(base.count()) * TimeoutScale()));
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + ScaledTimeout(timeout);
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

int PickFreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

int WaitForLoggedPort(ServerProcess& process, const std::string& prefix,
                      std::chrono::milliseconds timeout) {
  int port = 0;
  auto find = [&] {
    for (const std::string& text : {process.ReadStderr(), process.ReadStdout()}) {
      const size_t at = text.find(prefix);
      if (at == std::string::npos) continue;
      size_t end = at + prefix.size();
      while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
      if (end == at + prefix.size() || end == text.size()) continue;  // the number may be partial
      port = std::stoi(text.substr(at + prefix.size(), end - at - prefix.size()));
      return true;
    }
    return false;
  };
  const Status ready = process.WaitReady(find, timeout);
  return ready.ok() && port > 0 && port <= 65535 ? port : 0;
}

std::string MakeTempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  const std::string text = ReadWholeFile(path);
  return text.size() <= max_bytes ? text : text.substr(text.size() - max_bytes);
}

Result<std::unique_ptr<ServerProcess>> ServerProcess::Start(ProcessOptions options) {
  if (options.argv.empty()) return Internal("ServerProcess: empty argv");
  std::unique_ptr<ServerProcess> process(new ServerProcess(std::move(options)));
  const ProcessOptions& opts = process->options_;

  process->stdout_path_ = opts.stdout_path;
  process->stderr_path_ = opts.stderr_path;
  if (process->stdout_path_.empty() || process->stderr_path_.empty()) {
    process->log_dir_ = MakeTempDir("searchsync-proc-");
    if (process->log_dir_.empty()) return Internal("ServerProcess: mkdtemp failed");
    if (process->stdout_path_.empty()) process->stdout_path_ = process->log_dir_ + "/stdout";
    if (process->stderr_path_.empty()) process->stderr_path_ = process->log_dir_ + "/stderr";
  }

  // Everything the child needs is prepared here: after fork only async-signal-safe calls.
  std::vector<std::string> env_overrides = opts.env;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  const bool switch_user = !opts.run_as_user.empty();
  if (switch_user) {
    const passwd* user = ::getpwnam(opts.run_as_user.c_str());
    if (user == nullptr) return Internal("ServerProcess: no such user " + opts.run_as_user);
    uid = user->pw_uid;
    gid = user->pw_gid;
    int group_count = 64;
    groups.resize(static_cast<size_t>(group_count));
    if (::getgrouplist(user->pw_name, gid, groups.data(), &group_count) < 0) {
      groups.resize(static_cast<size_t>(group_count));
      ::getgrouplist(user->pw_name, gid, groups.data(), &group_count);
    }
    groups.resize(static_cast<size_t>(group_count));
    // Defaults for a login as that user, unless the caller set them.
    std::vector<std::string> user_env = {"HOME=" + std::string(user->pw_dir),
                                         "USER=" + opts.run_as_user, "LOGNAME=" + opts.run_as_user};
    env_overrides.insert(env_overrides.begin(), user_env.begin(), user_env.end());
  }
  std::vector<std::string> env = BuildEnvironment(env_overrides);
  // Later entries win: drop earlier duplicates of a key.
  std::vector<std::string> unique_env;
  for (size_t env_idx = 0; env_idx < env.size(); ++env_idx) {
    bool later = false;
    for (size_t later_idx = env_idx + 1; later_idx < env.size(); ++later_idx) {
      if (KeyOf(env[later_idx]) == KeyOf(env[env_idx])) later = true;
    }
    if (!later) unique_env.push_back(env[env_idx]);
  }
  std::vector<std::string> argv_strings = opts.argv;
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(unique_env);

  const int out_fd =
      ::open(process->stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd =
      ::open(process->stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) {
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    return Internal("ServerProcess: cannot open output files: " + std::string(strerror(errno)));
  }
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    ::close(out_fd);
    ::close(err_fd);
    return Internal("ServerProcess: pipe2: " + std::string(strerror(errno)));
  }

  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out_fd);
    ::close(err_fd);
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return Internal("ServerProcess: fork: " + std::string(strerror(errno)));
  }
  if (pid == 0) {
    auto fail = [&](int stage) {
      const ChildFailure failure{stage, errno};
      [[maybe_unused]] const ssize_t written = ::write(exec_pipe[1], &failure, sizeof(failure));
      ::_exit(127);
    };
    ::setpgid(0, 0);  // its own group, so Kill9 reaches every child it forks
    // An ignored signal stays ignored across exec: the child starts as a shell would start it,
    // not with the SIGPIPE this test process ignores (TypesenseServer).
    ::signal(SIGPIPE, SIG_DFL);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd < 0) fail(0);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    if (!opts.working_dir.empty() && ::chdir(opts.working_dir.c_str()) != 0) fail(1);
    if (switch_user) {
      if (::setgroups(groups.size(), groups.data()) != 0) fail(2);
      if (::setgid(gid) != 0) fail(3);
      if (::setuid(uid) != 0) fail(4);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    fail(5);
  }

  ::setpgid(pid, pid);  // also from the parent, so the group exists before we might signal it
  ::close(out_fd);
  ::close(err_fd);
  ::close(exec_pipe[1]);
  process->pid_ = pid;
  ChildFailure failure{};
  ssize_t got;
  do {
    got = ::read(exec_pipe[0], &failure, sizeof(failure));
  } while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (got == static_cast<ssize_t>(sizeof(failure))) {
    process->Reap(/*block=*/true);
    return Internal("ServerProcess: cannot start " + opts.argv[0] + ": " +
                    kChildStages[failure.stage] + ": " + strerror(failure.error));
  }
  return process;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop();
  if (!log_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(log_dir_, ignored);
  }
}

bool ServerProcess::Reap(bool block) {
  if (exit_code_.has_value()) return true;
  if (pid_ <= 0) return false;
  // Look without reaping first: while the exited process is a zombie its pid (and so its process
  // group id) cannot be reused, so killing the leftovers of its group cannot hit a stranger.
  siginfo_t info{};
  int rc;
  do {
    rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {  // not our child any more (cannot happen unless someone else reaped it)
    exit_code_ = -1;
    return true;
  }
  if (info.si_pid != pid_) return false;  // still running
  ::kill(-pid_, SIGKILL);
  int status = 0;
  pid_t got;
  do {
    got = ::waitpid(pid_, &status, 0);
  } while (got < 0 && errno == EINTR);
  exit_code_ = got == pid_ ? DecodeWaitStatus(status) : -1;
  return true;
}

bool ServerProcess::running() { return pid_ > 0 && !Reap(/*block=*/false); }

void ServerProcess::Signal(int signal) {
  if (running()) ::kill(pid_, signal);  // not yet reaped, so pid_ is still ours
}

std::optional<int> ServerProcess::Wait(std::chrono::milliseconds timeout) {
  WaitUntil([&] { return Reap(/*block=*/false); }, timeout, kReapPollInterval);
  return exit_code_;
}

std::optional<int> ServerProcess::Stop() {
  if (pid_ <= 0) return exit_code_;
  if (running()) {
    ::kill(pid_, options_.stop_signal);
    if (!Wait(options_.stop_timeout).has_value()) return Kill9();
  }
  return exit_code_;
}

std::optional<int> ServerProcess::Kill9() {
  if (pid_ <= 0 || exit_code_.has_value()) return exit_code_;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  Reap(/*block=*/true);
  return exit_code_;
}

Status ServerProcess::WaitReady(const std::function<bool()>& ready,
                                std::chrono::milliseconds timeout) {
  bool exited = false;
  const bool ok = WaitUntil(
      [&] {
        if (!running()) {
          exited = true;
          return true;
        }
        return ready();
      },
      timeout);
  if (ok && !exited) return Status::Ok();
  return Unavailable(std::string(exited ? "exited before it was ready: " : "not ready in time: ") +
                     Describe());
}

std::string ServerProcess::ReadStdout() const { return ReadWholeFile(stdout_path_); }
std::string ServerProcess::ReadStderr() const { return ReadWholeFile(stderr_path_); }

std::string ServerProcess::Describe() const {
  std::string text = options_.argv.front() + " pid=" + std::to_string(pid_);
  text += exit_code_.has_value() ? " exited with " + std::to_string(*exit_code_) : " running";
  text += "; stderr tail:\n" + FileTail(stderr_path_);
  return text;
}

}  // namespace searchsync::test
