// The client side of a statehub session (statehub.v1.Sessions.Connect): one
// bidi stream per process that keeps the session's lease alive, releases
// holds on anonymous objects as handles die, and resumes the session when the
// stream breaks.
//
// Threads: a session thread owns the stream's write side (Hello, Keepalive,
// Release, Goodbye) and reconnects; a reader thread per stream consumes the
// server's messages (Welcome, KeepaliveAck) so the session thread never
// blocks on a read and can time the handshake and the lease out.

#ifndef STATEHUB_CLIENTS_CPP_SRC_SESSION_H_
#define STATEHUB_CLIENTS_CPP_SRC_SESSION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "statehub/v1/session.grpc.pb.h"

namespace statehub::client_internal {

// SessionTag names the session a call ran under. Holds granted in the reply
// belong to that session; `generation` tells them apart from holds of a
// session that was lost and replaced.
struct SessionTag {
  // id is the session id sent with the call; "" without a session.
  std::string id;
  // generation counts the sessions this client has had (0 before the first).
  uint64_t generation = 0;
  // stream counts the session streams opened so far (gRPC only; 0 on the
  // lane): a call that broke waits for a later one (Session::AwaitStream).
  uint64_t stream = 0;
};

class Session {
 public:
  // `token`, if not empty, is sent as the stream's bearer token.
  Session(std::shared_ptr<grpc::Channel> channel, std::string label,
          std::string token = {});
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  // ~Session calls Close().
  ~Session();

  // Start opens the session and starts the session thread. Blocks until the
  // server's Welcome or failure, at most about `timeout`. Call once.
  // Errors: the stream's status if the server ends it, DEADLINE_EXCEEDED if
  // no Welcome arrives in time.
  absl::Status Start(absl::Duration timeout);

  // Current returns the session calls should name now. Thread-safe.
  SessionTag Current() const;

  // lease_ttl returns the lease granted by the server (zero before Start and
  // after Close). Thread-safe.
  absl::Duration lease_ttl() const;

  // number_calls is the server's advice, in its last Welcome, to number
  // calls that change state. Thread-safe; lock-free.
  bool number_calls() const {
    return number_calls_.load(std::memory_order_relaxed);
  }

  // welcomed_at is when the server last welcomed a session stream
  // (InfinitePast before Start). Thread-safe.
  absl::Time welcomed_at() const;

  // AwaitStream waits until a session stream later than stream number
  // `after` (SessionTag::stream) has been welcomed and is still up, and
  // returns the session then current: after a call broke because the
  // server went away, the session it comes back with (resumed, or new).
  // Errors: DEADLINE_EXCEEDED at `limit`; CANCELLED once closed.
  // Thread-safe; blocks.
  absl::StatusOr<SessionTag> AwaitStream(uint64_t after, absl::Time limit);

  // Release queues the release of one hold on `name` granted under session
  // `generation`; the session thread sends it promptly. Holds of an earlier
  // session, or after Close, are dropped. Thread-safe; never blocks on the
  // network.
  void Release(uint64_t generation, std::string name);

  // Kick tells the session thread that the server refused a call of session
  // `generation` as not live: it reconnects now if the stream is down, or
  // sends a keepalive at once (which the server answers by ending the stream
  // of an ended session). Kicks coalesce. Thread-safe; never blocks on the
  // network.
  void Kick(uint64_t generation);

  // Close says Goodbye (the server releases everything the session held),
  // stops the threads and clears the id; idempotent. Blocks at most a few
  // seconds. Thread-safe.
  void Close();

 private:
  using Stream =
      grpc::ClientReaderWriter<v1::SessionRequest, v1::SessionResponse>;
  struct Connection;
  enum class Outcome { kClosing, kBroken };

  // Run is the session thread: connect, serve, reconnect until closed.
  void Run(absl::Duration first_timeout);
  // Handshake sends Hello on a fresh stream and waits for Welcome, then
  // adopts the session it names.
  absl::Status Handshake(Stream* stream, absl::Duration timeout);
  // ReadLoop is the reader thread of one stream.
  void ReadLoop(Stream* stream);
  // Serve sends keepalives and releases until the session closes or the
  // stream breaks.
  Outcome Serve(Stream* stream);
  // Teardown ends a stream (after Goodbye if `goodbye`), joins its reader
  // and returns its final status.
  absl::Status Teardown(Connection& conn, bool goodbye);

  const std::unique_ptr<v1::Sessions::Stub> stub_;
  const std::string label_;
  const std::string token_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::string id_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration lease_ttl_ ABSL_GUARDED_BY(mu_);
  // streams_ counts the streams welcomed; live_ is true while the last one
  // is served.
  uint64_t streams_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time welcomed_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> number_calls_{false};
  // start_result_ is set once, by the first handshake.
  std::optional<absl::Status> start_result_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool thread_done_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  // pending_ holds names to release, all of the current generation.
  std::vector<std::string> pending_ ABSL_GUARDED_BY(mu_);
  // State of the current stream, shared with its reader thread.
  grpc::ClientContext* stream_ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<v1::Welcome> welcome_ ABSL_GUARDED_BY(mu_);
  bool reader_done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_received_ ABSL_GUARDED_BY(mu_);

  // join_mu_ serializes joining the session thread between Close callers.
  absl::Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_SESSION_H_
