// File: tests/testing/server_process.h
//
// `statehub::testing::ServerProcess` runs the real statehub-server binary as
// a child process for tests that cross the process boundary. The server
// listens on a Unix socket in a fresh temporary directory and on a TCP
// loopback port the kernel picks; Start returns once the server has printed
// that it is ready.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<statehub::testing::ServerProcess>> server =
//       statehub::testing::ServerProcess::Start({"--max_depth=8"});
//   ASSERT_TRUE(server.ok()) << server.status();
//   auto client = statehub::Client::Connect((*server)->unix_address());
//   ...
//   EXPECT_TRUE((*server)->Stop().ok());  // or let the destructor stop it
//
// The binary is the one CMake built: STATEHUB_SERVER_PATH, a compile
// definition set to $<TARGET_FILE:statehub-server>.
//
// Thread safety: a ServerProcess is not safe for concurrent use; call it from
// one thread at a time. The child is killed (SIGKILL) if the thread that
// called Start exits (PR_SET_PDEATHSIG), so that a crashed test never leaves
// a server behind holding the test runner's output pipes; start servers from
// a thread that lives as long as they should.

#ifndef STATEHUB_TESTS_TESTING_SERVER_PROCESS_H_
#define STATEHUB_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace statehub::testing {

class ServerProcess {
 public:
  // Start runs `statehub-server --listen=unix://<tmp>/s.sock,127.0.0.1:0
  // --lease_ttl=2s --metrics_listen=127.0.0.1:0 <extra_flags...>` (a later flag
  // overrides an earlier one of the same name), waits up to 20 s for its
  // "statehub-server ready" line on stdout and returns it running. The child's
  // stderr is the test's stderr; stdout after the ready line is copied to the
  // test's stdout. Errors: INTERNAL if the binary cannot be started,
  // DEADLINE_EXCEEDED if it is not ready in time (it is then killed),
  // UNAVAILABLE if it exits before it is ready (the message gives its exit
  // status). Blocks until the server is ready or failed.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      std::vector<std::string> extra_flags = {});
  // StartBinary is Start with another statehub-server binary (a benchmark's
  // baseline build).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> StartBinary(
      const std::string& binary, std::vector<std::string> extra_flags = {});

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // ~ServerProcess stops the server if Stop was not called (a failure is
  // then logged to stderr) and removes the temporary directory.
  ~ServerProcess();

  // unix_address is the server's Unix socket as a gRPC target,
  // "unix:///tmp/statehub-test-XXXXXX/s.sock".
  const std::string& unix_address() const { return unix_address_; }
  // tcp_address is the server's TCP address, "127.0.0.1:<port>".
  const std::string& tcp_address() const { return tcp_address_; }
  // metrics_url is "http://127.0.0.1:<port>/metrics", or "" with metrics
  // turned off (--metrics_listen=).
  const std::string& metrics_url() const { return metrics_url_; }
  // pid is the child's process id (still valid after it exited, until this
  // object is destroyed).
  pid_t pid() const { return pid_; }

  // Stop sends SIGTERM and waits up to 10 s for the server to exit, then
  // kills it (SIGKILL). Returns OK if it exited with status 0 on its own;
  // INTERNAL if it needed SIGKILL, exited non-zero or died of a signal.
  // Idempotent: later calls return the first call's result. Blocks up to
  // about 10 s.
  absl::Status Stop();

  // KillAndRestart SIGKILLs the server, as a crash would, and starts the
  // same binary with the same flags again on the same Unix socket (the TCP
  // port may change), returning once it is ready: with --data_dir, a
  // restart on the same state. Errors as Start's. Blocks until ready.
  absl::Status KillAndRestart();

  // Alive returns true while the child runs. Reaps it if it has exited; a
  // later Stop then reports how it exited.
  bool Alive();

 private:
  ServerProcess() = default;
  // StartIn is StartBinary in `reuse_dir` (its socket) when not empty, or
  // a fresh temporary directory.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> StartIn(
      const std::string& binary, std::vector<std::string> extra_flags,
      const std::string& reuse_dir);

  // Reaps the child if it exited (waits up to `timeout_ms`, 0 polls once).
  // Returns true once the child has been reaped.
  bool Reap(int timeout_ms);
  // Describes exit_status_ ("exited with status 1", "killed by signal 9").
  std::string ExitDescription() const;

  // Swaps in everything about the running child of `other` (a restart).
  void TakeChild(ServerProcess& other);

  std::string binary_;
  std::vector<std::string> extra_flags_;
  std::string temp_dir_;
  std::string unix_address_;
  std::string tcp_address_;
  std::string metrics_url_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  // Copies the child's stdout after the ready line until EOF, so a chatty
  // server never blocks on a full pipe.
  std::thread stdout_forwarder_;
  // exit_status_ is waitpid's status once the child has been reaped.
  std::optional<int> exit_status_;
  // stop_result_ is Stop's result once it ran.
  std::optional<absl::Status> stop_result_;
};

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now
// (bound, read and released), or 0 if none could be had: for a server a
// test starts on a fixed port, so that it can start it again there.
int FreePort();

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_TESTING_SERVER_PROCESS_H_
