// File: bench/bench_util.h
//
// What the C++ benchmarks (loadgen, handoff, memory_bench) share: a server
// to talk to (a private one, or --address), one gRPC channel per benchmark
// connection, a statehub session on that channel kept alive in the
// background, and latency percentiles.
//
// The benchmarks drive the generated stubs directly (not statehub::Client)
// so that one connection can carry many calls in flight.
//
// Example:
//
//   absl::StatusOr<bench::Target> target = bench::Target::Resolve("", false);
//   std::shared_ptr<grpc::Channel> channel =
//       bench::MakeChannel(target->address(), /*index=*/0);
//   absl::StatusOr<std::unique_ptr<bench::Session>> session =
//       bench::Session::Open(channel, "loadgen");
//   grpc::ClientContext ctx;
//   ctx.AddMetadata(statehub::internal::kSessionKey, (*session)->id());
//
// Thread safety: Session is safe for concurrent use; the rest are values or
// free functions.

#ifndef STATEHUB_BENCH_BENCH_UTIL_H_
#define STATEHUB_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "statehub/v1/session.grpc.pb.h"
#include "tests/testing/server_process.h"

namespace statehub::bench {

// Target is the server a benchmark talks to.
class Target {
 public:
  // Resolve returns `address` if it is not empty. Otherwise it starts a
  // private statehub-server (tests/testing/server_process.h) with a 10 s
  // lease and warnings-only logging, and returns its TCP loopback address,
  // or its Unix socket if `unix_socket`. The private server stops when the
  // Target is destroyed. Errors: those of ServerProcess::Start. Blocks until
  // the server is ready.
  static absl::StatusOr<Target> Resolve(const std::string& address,
                                        bool unix_socket);

  // address is the gRPC target to dial.
  const std::string& address() const { return address_; }
  // server_pid is the private server's pid, or nullopt for --address.
  std::optional<pid_t> server_pid() const;

 private:
  std::string address_;
  std::shared_ptr<testing::ServerProcess> server_;
};

// MakeChannel creates an insecure channel to `address` with its own TCP
// connection: gRPC shares one subchannel (one connection) among channels
// with equal arguments, so each channel gets a local subchannel pool and
// `index` as a distinguishing argument. Does not block.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           int index);

// Session is a statehub session (Sessions.Connect) on one channel: a bidi
// stream that says Hello, then sends a Keepalive every lease/3 from a
// background thread until Close, which says Goodbye (the server then ends
// the session and every call still parked under it). No reconnect: a
// benchmark whose session breaks reports the errors that follow.
class Session final
    : public grpc::ClientBidiReactor<v1::SessionRequest, v1::SessionResponse> {
 public:
  // Open starts the stream and waits up to `timeout` for Welcome.
  // Errors: UNAVAILABLE if the stream ends first (with the server's
  // message), DEADLINE_EXCEEDED if no Welcome arrives in time.
  static absl::StatusOr<std::unique_ptr<Session>> Open(
      const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
      absl::Duration timeout = absl::Seconds(10));

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // ~Session calls Close.
  ~Session() override;

  // id is the session id to send as `statehub-session` metadata.
  const std::string& id() const { return id_; }

  // Close says Goodbye and waits (at most about 5 s, then cancels) for the
  // stream to end. Idempotent.
  void Close();

  // Reactions; gRPC calls these.
  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  explicit Session(const std::shared_ptr<grpc::Channel>& channel);
  // Writes `message` now, or after the write in progress.
  void Write(v1::SessionRequest message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KeepaliveLoop(absl::Duration interval);

  std::unique_ptr<v1::Sessions::Stub> stub_;
  grpc::ClientContext ctx_;
  std::string id_;                // set once, before Open returns
  v1::SessionResponse response_;  // touched only by the read reactions

  absl::Mutex mu_;
  v1::SessionRequest in_flight_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::SessionRequest> queued_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<v1::Welcome> welcome_ ABSL_GUARDED_BY(mu_);
  bool read_done_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> done_ ABSL_GUARDED_BY(mu_);
  std::thread keepalive_;
};

// MonotonicNanos reads CLOCK_MONOTONIC, which is one clock for every
// process on the machine.
int64_t MonotonicNanos();

// Percentile returns the q-quantile (0 <= q <= 1) of `samples`, reordering
// them; 0 for no samples.
int64_t Percentile(std::vector<int64_t>& samples, double q);

// RssBytes returns VmRSS of process `pid` from /proc/<pid>/status.
// Errors: NOT_FOUND if the process or the line is gone.
absl::StatusOr<int64_t> RssBytes(pid_t pid);

// DieIfError prints `status` with `what` to stderr and exits 1 unless OK.
void DieIfError(const absl::Status& status, absl::string_view what);
void DieIfError(const grpc::Status& status, absl::string_view what);

}  // namespace statehub::bench

#endif  // STATEHUB_BENCH_BENCH_UTIL_H_
