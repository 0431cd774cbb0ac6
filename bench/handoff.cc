// handoff: how long a contended lock takes to pass from one process to
// another.
//
// Two processes (this one and a copy of itself it spawns), each with its
// own channel and session, play ping-pong with one lock. The holder waits
// until Locks.State shows the other parked in Acquire, reads
// CLOCK_MONOTONIC, calls Release, and sends that time over a pipe; the
// other's Acquire returns, it reads the clock again, and the difference is
// one hand-off: the release call's trip to the server, the grant, and the
// parked call's reply. Then the roles swap. CLOCK_MONOTONIC is one clock for
// both processes on one machine. The table also shows the round trip of the
// Release call alone, for scale.
//
// With no --address it starts a private statehub-server and dials it on TCP
// loopback (--unix_socket: its Unix socket).
//
//   scripts/build.sh release handoff && build/bench/handoff [--rounds=2000]
//       [--address=host:port] [--unix_socket]

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"

extern char** environ;

ABSL_FLAG(std::string, address, "",
          "Server to use (host:port or unix:///path); empty starts a private "
          "server.");
ABSL_FLAG(bool, unix_socket, false,
          "With no --address, dial the private server's Unix socket instead "
          "of TCP loopback.");
ABSL_FLAG(int, rounds, 2000,
          "Hand-offs each way; the table has 2 x rounds samples.");
ABSL_FLAG(std::string, lock, "bench/handoff", "Name of the lock.");
// Set by the first process for the one it spawns.
ABSL_FLAG(int, peer_read_fd, -1, "Internal: pipe from the first process.");
ABSL_FLAG(int, peer_write_fd, -1, "Internal: pipe to the first process.");

namespace statehub::bench {
namespace {

void ReadFull(int fd, void* buffer, size_t size) {
  auto* out = static_cast<char*>(buffer);
  while (size > 0) {
    const ssize_t n = read(fd, out, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "handoff: the peer's pipe closed\n");
      std::exit(1);
    }
    out += n;
    size -= static_cast<size_t>(n);
  }
}

void WriteFull(int fd, const void* buffer, size_t size) {
  const auto* in = static_cast<const char*>(buffer);
  while (size > 0) {
    const ssize_t n = write(fd, in, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "handoff: write to the peer: %s\n",
                   std::strerror(errno));
      std::exit(1);
    }
    in += n;
    size -= static_cast<size_t>(n);
  }
}

// Player is one side of the ping-pong.
class Player {
 public:
  Player(const std::string& address, const std::string& lock, int read_fd,
         int write_fd)
      : lock_(lock), read_fd_(read_fd), write_fd_(write_fd) {
    channel_ = MakeChannel(address, 0);
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Open(channel_, absl::StrCat("handoff-", getpid()));
    DieIfError(session.status(), "session");
    session_ = std::move(*session);
    locks_ = v1::Locks::NewStub(channel_);
  }

  // Acquire takes the lock, parking while the peer holds it.
  void Acquire() {
    v1::LockAcquireRequest request;
    request.set_name(lock_);
    request.set_blocking(true);
    v1::LockAcquireResponse response;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, session_->id());
    DieIfError(locks_->Acquire(&ctx, request, &response), "acquire");
  }

  // Release releases the lock; returns the call's round trip in ns.
  int64_t Release() {
    v1::LockReleaseRequest request;
    request.set_name(lock_);
    v1::LockReleaseResponse response;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, session_->id());
    const int64_t start = MonotonicNanos();
    DieIfError(locks_->Release(&ctx, request, &response), "release");
    return MonotonicNanos() - start;
  }

  // HandOff waits until the peer is parked on the lock, releases it and
  // sends the peer the time the release started.
  void HandOff() {
    WaitForParkedPeer();
    const int64_t released_at = MonotonicNanos();
    release_ns_.push_back(Release());
    WriteFull(write_fd_, &released_at, sizeof(released_at));
  }

  // Take parks until the peer hands the lock over and records the hand-off.
  void Take() {
    Acquire();
    const int64_t acquired_at = MonotonicNanos();
    int64_t released_at = 0;
    ReadFull(read_fd_, &released_at, sizeof(released_at));
    handoff_ns_.push_back(acquired_at - released_at);
  }

  std::vector<int64_t>& handoff_ns() { return handoff_ns_; }
  std::vector<int64_t>& release_ns() { return release_ns_; }
  int read_fd() const { return read_fd_; }
  int write_fd() const { return write_fd_; }

 private:
  void WaitForParkedPeer() {
    v1::LockStateRequest request;
    request.set_name(lock_);
    while (true) {
      v1::LockStateResponse response;
      grpc::ClientContext ctx;
      DieIfError(locks_->State(&ctx, request, &response), "lock state");
      if (response.waiters_size() > 0) return;
      absl::SleepFor(absl::Microseconds(50));
    }
  }

  const std::string lock_;
  const int read_fd_;
  const int write_fd_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Session> session_;
  std::unique_ptr<v1::Locks::Stub> locks_;
  std::vector<int64_t> handoff_ns_;
  std::vector<int64_t> release_ns_;
};

// RunSpawned is the spawned process: take first, then hand back; finally
// send its samples.
int RunSpawned(const std::string& address) {
  const int rounds = absl::GetFlag(FLAGS_rounds);
  Player player(address, absl::GetFlag(FLAGS_lock),
                absl::GetFlag(FLAGS_peer_read_fd),
                absl::GetFlag(FLAGS_peer_write_fd));
  for (int i = 0; i < rounds; ++i) {
    player.Take();
    player.HandOff();
  }
  WriteFull(player.write_fd(), player.handoff_ns().data(),
            player.handoff_ns().size() * sizeof(int64_t));
  return 0;
}

// Spawn starts this binary as the other player; returns its pid.
pid_t Spawn(const std::string& address, int read_fd, int write_fd) {
  std::vector<std::string> args = {
      "handoff",
      absl::StrCat("--address=", address),
      absl::StrCat("--rounds=", absl::GetFlag(FLAGS_rounds)),
      absl::StrCat("--lock=", absl::GetFlag(FLAGS_lock)),
      absl::StrCat("--peer_read_fd=", read_fd),
      absl::StrCat("--peer_write_fd=", write_fd)};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr,
                              argv.data(), environ);
  if (err != 0) {
    std::fprintf(stderr, "handoff: spawn: %s\n", std::strerror(err));
    std::exit(1);
  }
  return pid;
}

int RunFirst() {
  const int rounds = absl::GetFlag(FLAGS_rounds);
  absl::StatusOr<Target> target = Target::Resolve(
      absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_unix_socket));
  DieIfError(target.status(), "server");

  // to_peer and from_peer are close-on-exec except the ends the peer uses.
  int to_peer[2];
  int from_peer[2];
  if (pipe2(to_peer, O_CLOEXEC) != 0 || pipe2(from_peer, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "handoff: pipe: %s\n", std::strerror(errno));
    return 1;
  }
  fcntl(to_peer[0], F_SETFD, 0);
  fcntl(from_peer[1], F_SETFD, 0);

  Player player(target->address(), absl::GetFlag(FLAGS_lock), from_peer[0],
                to_peer[1]);
  {
    auto objects = v1::Objects::NewStub(MakeChannel(target->address(), 1));
    v1::OpenRequest request;
    request.set_name(absl::GetFlag(FLAGS_lock));
    request.set_type(v1::LOCK);
    v1::OpenResponse response;
    grpc::ClientContext ctx;
    DieIfError(objects->Open(&ctx, request, &response), "open lock");
  }
  // Hold the lock before the peer exists, so its first Acquire parks.
  player.Acquire();
  const pid_t peer = Spawn(target->address(), to_peer[0], from_peer[1]);
  close(to_peer[0]);
  close(from_peer[1]);

  for (int i = 0; i < rounds; ++i) {
    player.HandOff();
    player.Take();
  }
  player.Release();
  std::vector<int64_t> handoffs = player.handoff_ns();
  std::vector<int64_t> peer_handoffs(rounds);
  ReadFull(player.read_fd(), peer_handoffs.data(),
           peer_handoffs.size() * sizeof(int64_t));
  handoffs.insert(handoffs.end(), peer_handoffs.begin(), peer_handoffs.end());
  int status = 0;
  waitpid(peer, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "handoff: the peer process failed (status %d)\n",
                 status);
    return 1;
  }

  std::vector<int64_t>& releases = player.release_ns();
  std::printf(
      "\nhandoff: one lock between two processes, %d hand-offs each way; "
      "server %s\n",
      rounds, target->address().c_str());
  std::printf("%-44s %8s %10s %10s\n", "measure", "samples", "p50 us",
              "p99 us");
  std::printf("%-44s %8zu %10.1f %10.1f\n",
              "hand-off (release call -> peer's acquire)", handoffs.size(),
              Percentile(handoffs, 0.50) / 1e3,
              Percentile(handoffs, 0.99) / 1e3);
  std::printf("%-44s %8zu %10.1f %10.1f\n",
              "release call round trip (the releaser's view)", releases.size(),
              Percentile(releases, 0.50) / 1e3,
              Percentile(releases, 0.99) / 1e3);
  return 0;
}

}  // namespace
}  // namespace statehub::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_peer_read_fd) >= 0) {
    return statehub::bench::RunSpawned(absl::GetFlag(FLAGS_address));
  }
  return statehub::bench::RunFirst();
}
