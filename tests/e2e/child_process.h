// File: tests/e2e/child_process.h
//
// Runs tests/e2e/e2e_client as a real child process (posix_spawn, so it is
// safe from a process with gRPC threads) and reads its standard output.

#ifndef STATEHUB_TESTS_E2E_CHILD_PROCESS_H_
#define STATEHUB_TESTS_E2E_CHILD_PROCESS_H_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

extern char** environ;

namespace statehub::testing {

class ChildProcess {
 public:
  // Starts STATEHUB_E2E_CLIENT_PATH with `args`; returns nullopt on failure.
  static std::optional<ChildProcess> Start(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) return std::nullopt;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), STATEHUB_E2E_CLIENT_PATH);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    const int rc =
        posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    if (rc != 0) {
      close(fds[0]);
      return std::nullopt;
    }
    return ChildProcess(pid, fds[0]);
  }

  ChildProcess(ChildProcess&& other) noexcept
      : pid_(other.pid_), out_(other.out_) {
    other.pid_ = -1;
    other.out_ = -1;
  }
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_ >= 0) close(out_);
  }

  pid_t pid() const { return pid_; }

  // Reads one line of output, waiting up to `timeout_ms`.
  std::optional<std::string> ReadLine(int timeout_ms = 10'000) {
    std::string line;
    char c;
    while (true) {
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
      if (read(out_, &c, 1) != 1) return std::nullopt;
      if (c == '\n') return line;
      line += c;
    }
  }

  void Signal(int signal) { kill(pid_, signal); }

  // Kills the child with SIGKILL and reaps it.
  void Kill() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  ChildProcess(pid_t pid, int out) : pid_(pid), out_(out) {}
  pid_t pid_;
  int out_;
};

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_E2E_CHILD_PROCESS_H_
