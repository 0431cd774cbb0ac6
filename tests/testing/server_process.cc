#include "tests/testing/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

#ifndef STATEHUB_SERVER_PATH
#error "STATEHUB_SERVER_PATH must name the statehub-server binary"
#endif

namespace statehub::testing {
namespace {

constexpr char kListeningPrefix[] = "statehub-server listening on ";
constexpr char kMetricsPrefix[] = "statehub-server metrics on ";
constexpr char kReadyLine[] = "statehub-server ready";
constexpr auto kReadyTimeout = std::chrono::seconds(20);
constexpr int kStopTimeoutMs = 10'000;

// Writes all of `data` to `fd`, retrying short writes; errors are dropped
// (this only forwards diagnostics).
void WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string ErrnoMessage(absl::string_view what) {
  return absl::StrCat(what, ": ", std::strerror(errno));
}

// Makes a fresh private directory under $TMPDIR (default /tmp). Unix socket
// paths are limited to 107 bytes, so keep it short.
absl::StatusOr<std::string> MakeTempDir() {
  const char* tmp = getenv("TMPDIR");
  std::string pattern = absl::StrCat(
      tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/statehub-test-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::InternalError(ErrnoMessage(absl::StrCat("mkdtemp ", pattern)));
  }
  return std::string(buffer.data());
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    std::vector<std::string> extra_flags) {
  return StartBinary(STATEHUB_SERVER_PATH, std::move(extra_flags));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::StartBinary(
    const std::string& binary, std::vector<std::string> extra_flags) {
  // The object owns everything from here on, so every early return cleans
  // up (kills the child, removes the directory) in the destructor.
  return StartIn(binary, std::move(extra_flags), "");
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::StartIn(
    const std::string& binary, std::vector<std::string> extra_flags,
    const std::string& reuse_dir) {
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  server->binary_ = binary;
  server->extra_flags_ = extra_flags;
  absl::StatusOr<std::string> dir =
      reuse_dir.empty() ? MakeTempDir()
                        : absl::StatusOr<std::string>(reuse_dir);
  if (!dir.ok()) return dir.status();
  // A restart's directory stays the first server's to remove.
  if (reuse_dir.empty()) server->temp_dir_ = *dir;
  const std::string socket_path = absl::StrCat(*dir, "/s.sock");

  std::vector<std::string> args = {
      binary,
      absl::StrCat("--listen=unix://", socket_path, ",127.0.0.1:0"),
      "--lease_ttl=2s",
      "--metrics_listen=127.0.0.1:0",
  };
  for (std::string& flag : extra_flags) args.push_back(std::move(flag));
  // Built before fork: the child may only make async-signal-safe calls.
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return absl::InternalError(ErrnoMessage("pipe2"));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return absl::InternalError(ErrnoMessage("fork"));
  }
  if (pid == 0) {
    // Child. Die with the parent so that no server outlives a crashed test.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    // The test process (gRPC, gtest) may block or ignore signals; exec keeps
    // both, and the server must see SIGTERM.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(pipe_fds[1], STDOUT_FILENO) < 0) _exit(126);
    execv(argv[0], argv.data());
    static constexpr char kExecFailed[] = "ServerProcess: execv failed\n";
    (void)!write(STDERR_FILENO, kExecFailed, sizeof(kExecFailed) - 1);
    _exit(127);
  }
  close(pipe_fds[1]);
  server->pid_ = pid;
  server->stdout_fd_ = pipe_fds[0];

  // Read stdout line by line until the ready line, echoing it.
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  std::string pending;
  bool ready = false;
  while (!ready) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      server->Reap(-1);
      server->stop_result_ = absl::OkStatus();  // nothing left to stop
      return absl::DeadlineExceededError(
          absl::StrCat("statehub-server (", args[0], ") did not print \"",
                       kReadyLine, "\" within ", kReadyTimeout.count(), " s"));
    }
    pollfd pfd = {server->stdout_fd_, POLLIN, 0};
    int polled = poll(&pfd, 1, static_cast<int>(left.count()));
    if (polled < 0 && errno == EINTR) continue;
    if (polled < 0) return absl::InternalError(ErrnoMessage("poll"));
    if (polled == 0) continue;
    char buffer[4096];
    ssize_t n = read(server->stdout_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // EOF: the server exited (or closed stdout) before it was ready.
      std::string how = "closed its stdout";
      if (server->Reap(kStopTimeoutMs)) {
        how = server->ExitDescription();
        server->stop_result_ = absl::OkStatus();  // reported here instead
      }
      return absl::UnavailableError(absl::StrCat("statehub-server (",
                                                 absl::StrJoin(args, " "), ") ",
                                                 how, " before it was ready"));
    }
    WriteAll(STDOUT_FILENO, absl::string_view(buffer, n));
    pending.append(buffer, n);
    size_t newline;
    while (!ready && (newline = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, newline);
      pending.erase(0, newline + 1);
      absl::string_view text = absl::StripTrailingAsciiWhitespace(line);
      absl::string_view address = text;
      if (text == kReadyLine) {
        ready = true;
      } else if (absl::ConsumePrefix(&address, kMetricsPrefix)) {
        server->metrics_url_ = std::string(address);
      } else if (absl::ConsumePrefix(&address, kListeningPrefix)) {
        if (absl::StartsWith(address, "unix:")) {
          server->unix_address_ = std::string(address);
        } else {
          server->tcp_address_ = std::string(address);
        }
      }
    }
  }
  if (server->unix_address_.empty() || server->tcp_address_.empty()) {
    return absl::InternalError(absl::StrCat(
        "statehub-server was ready without printing both addresses (unix \"",
        server->unix_address_, "\", tcp \"", server->tcp_address_, "\")"));
  }
  server->stdout_forwarder_ = std::thread([fd = server->stdout_fd_] {
    char buffer[4096];
    for (;;) {
      ssize_t n = read(fd, buffer, sizeof(buffer));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      WriteAll(STDOUT_FILENO, absl::string_view(buffer, n));
    }
  });
  return server;
}

absl::Status ServerProcess::KillAndRestart() {
  if (Alive()) {
    kill(pid_, SIGKILL);
    Reap(-1);
  }
  if (stdout_forwarder_.joinable()) stdout_forwarder_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
  absl::StatusOr<std::unique_ptr<ServerProcess>> next =
      StartIn(binary_, extra_flags_, temp_dir_);
  if (!next.ok()) return next.status();
  TakeChild(**next);
  return absl::OkStatus();
}

void ServerProcess::TakeChild(ServerProcess& other) {
  std::swap(unix_address_, other.unix_address_);
  std::swap(tcp_address_, other.tcp_address_);
  std::swap(metrics_url_, other.metrics_url_);
  std::swap(pid_, other.pid_);
  std::swap(stdout_fd_, other.stdout_fd_);
  std::swap(stdout_forwarder_, other.stdout_forwarder_);
  std::swap(exit_status_, other.exit_status_);
  std::swap(stop_result_, other.stop_result_);
  // `other` now holds the killed child: nothing left for it to stop.
  other.stop_result_ = absl::OkStatus();
}

ServerProcess::~ServerProcess() {
  // A result Stop already returned to the caller is not logged again.
  const bool reported = stop_result_.has_value();
  if (absl::Status status = Stop(); !status.ok() && !reported) {
    std::fprintf(stderr, "ServerProcess: %s\n", status.ToString().c_str());
  }
  if (stdout_forwarder_.joinable()) stdout_forwarder_.join();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (!temp_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(temp_dir_, ignored);
  }
}

absl::Status ServerProcess::Stop() {
  if (stop_result_.has_value()) return *stop_result_;
  if (pid_ <= 0) {
    stop_result_ = absl::OkStatus();
    return *stop_result_;
  }
  if (exit_status_.has_value()) {
    stop_result_ = absl::InternalError(
        absl::StrCat("statehub-server (pid ", pid_, ") ", ExitDescription(),
                     " before Stop was called"));
  } else {
    kill(pid_, SIGTERM);
    if (!Reap(kStopTimeoutMs)) {
      kill(pid_, SIGKILL);
      Reap(-1);
      stop_result_ = absl::InternalError(
          absl::StrCat("statehub-server (pid ", pid_, ") did not exit within ",
                       kStopTimeoutMs / 1000, " s of SIGTERM; killed"));
    } else if (WIFEXITED(*exit_status_) && WEXITSTATUS(*exit_status_) == 0) {
      stop_result_ = absl::OkStatus();
    } else {
      stop_result_ = absl::InternalError(
          absl::StrCat("statehub-server (pid ", pid_, ") ", ExitDescription(),
                       " after SIGTERM"));
    }
  }
  // The child is gone, so its stdout reaches EOF and the forwarder ends.
  if (stdout_forwarder_.joinable()) stdout_forwarder_.join();
  return *stop_result_;
}

bool ServerProcess::Alive() {
  if (pid_ <= 0) return false;
  return !Reap(0);
}

bool ServerProcess::Reap(int timeout_ms) {
  if (exit_status_.has_value()) return true;
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status = 0;
    pid_t reaped = waitpid(pid_, &status, timeout_ms < 0 ? 0 : WNOHANG);
    if (reaped == pid_) {
      exit_status_ = status;
      return true;
    }
    if (reaped < 0 && errno == EINTR) continue;
    if (reaped < 0) {
      // Someone else reaped it (ECHILD): it is gone, how is unknown.
      exit_status_ = -1;
      return true;
    }
    if (timeout_ms >= 0 && std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    usleep(10'000);
  }
}

std::string ServerProcess::ExitDescription() const {
  if (!exit_status_.has_value()) return "is running";
  const int status = *exit_status_;
  if (status == -1) return "was reaped by someone else";
  if (WIFEXITED(status)) {
    return absl::StrCat("exited with status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return absl::StrCat("was killed by signal ", WTERMSIG(status), " (",
                        strsignal(WTERMSIG(status)), ")");
  }
  return absl::StrCat("ended with wait status ", status);
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(address.sin_port);
}

}  // namespace statehub::testing
