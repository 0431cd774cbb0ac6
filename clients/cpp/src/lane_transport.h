// The lane side of a Client (api/LANE.md): its session and its connections.
//
// The session is owned by a primary connection (HELLO with the session to
// resume, the label and the token) that carries no calls: only RELEASE,
// PING and GOODBYE. Calls run on further connections that JOIN the session,
// kept in a pool: a call takes an idle one (or opens one), writes its
// REQUEST, reads until its reply and puts the connection back. So a thread
// never waits for another thread's call, a parked call simply keeps its
// connection until answered, and nothing a call does can close the owning
// connection (the server closes a connection after a frame over its
// --max_message_bytes; on a Unix socket closing the owner ends the session).
//
// On a Unix socket the owning connection holds the session by being open:
// the kernel closes it when the process dies, and the server frees what the
// session held at once. No thread runs then. Over TCP the lease runs, and a
// keepalive thread PINGs every lease_ttl/3 on the primary connection and
// reconnects it (resuming the session) when it breaks.
//
// Holds released as handles die are queued (never a network call in a
// destructor) and sent as RELEASE frames ahead of the next call's REQUEST,
// or by the keepalive thread.
//
// Without a session (open_session false, or after Close) each pooled
// connection says HELLO with no session id, so it runs under a session of
// its own: the lane has no sessionless connection.

#ifndef STATEHUB_CLIENTS_CPP_SRC_LANE_TRANSPORT_H_
#define STATEHUB_CLIENTS_CPP_SRC_LANE_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message_lite.h"
#include "lane_connection.h"
#include "reconnect.h"
#include "session.h"
#include "statehub/client.h"

namespace statehub::client_internal {

// RpcOf describes the rpc whose request message is `request`: its name,
// its `(statehub.v1.lane_method)` and `(statehub.v1.read_only)` options and
// what becomes of it when parked and broken (reconnect.h); lane_method 0
// if no statehub rpc takes it. The table is built once, on first use, and
// lives as long as the process. Thread-safe.
const Rpc& RpcOf(const google::protobuf::Descriptor* request);

// ReleaseFrames returns RELEASE frames dropping one hold on each of `names`,
// in batches that stay far below the server's message size limit.
std::string ReleaseFrames(std::vector<std::string> names);

// HelloRefused is the error a client returns when opening its session on
// `address` failed with `status`: as it is if no server was reached there
// (the message names the address), else prefixed with what was being done.
absl::Status HelloRefused(const absl::Status& status,
                          absl::string_view address);

class LaneTransport {
 public:
  // Connect opens the session's primary connection to `address` (if
  // options.open_session; else it only checks that the address is
  // reachable), within options.connect_timeout. Errors: INVALID_ARGUMENT
  // for an address it cannot read, UNAVAILABLE if the server cannot be
  // reached, DEADLINE_EXCEEDED, the server's refusal of HELLO.
  static absl::StatusOr<std::unique_ptr<LaneTransport>> Connect(
      absl::string_view address, const ClientOptions& options);

  LaneTransport(const LaneTransport&) = delete;
  LaneTransport& operator=(const LaneTransport&) = delete;
  // ~LaneTransport calls Close().
  ~LaneTransport();

  // Call runs one call of `plan` on a pooled connection under the current
  // session (`wait` and the deadline as for Core::Call) and returns the
  // session it ran under. A call that could not be sent waits for the
  // server (kReconnectWait, within its deadline) and is made once more; one
  // whose connection broke after it was sent is handled as
  // plan.after_break says (reconnect.h): for kRepark, Call waits until the
  // session is back, sets *remake and returns the break's error, for the
  // caller to make the call again. Thread-safe; blocks for the call.
  absl::StatusOr<SessionTag> Call(const CallPlan& plan,
                                  const google::protobuf::MessageLite& request,
                                  google::protobuf::MessageLite* response,
                                  absl::Duration wait, bool* remake);

  // WatchConnection is a connection of a watch's own (api/LANE.md,
  // "Watches"), and how often it must PING to keep its session's lease
  // (InfiniteDuration when it need not: it joined this client's session,
  // whose primary connection keeps it, or it is on a Unix socket).
  struct WatchConnection {
    std::unique_ptr<LaneConnection> conn;
    absl::Duration ping_every = absl::InfiniteDuration();
  };
  // OpenWatchConnection opens a connection that joins the current session
  // (without one, that runs under a session of its own), by `deadline`.
  // `resuming` (a watch whose connection broke) first waits, until
  // `deadline`, for the primary connection to be back. A join the server
  // refuses (the session was lost) or that cannot reach it has the session
  // replaced for the next attempt, as Take does. Errors: as
  // LaneConnection::Open. Thread-safe.
  absl::StatusOr<WatchConnection> OpenWatchConnection(bool resuming,
                                                      absl::Time deadline);

  // number_calls is the server's advice, in the primary connection's
  // WELCOME, to number calls that change state. Thread-safe; lock-free.
  bool number_calls() const {
    return number_calls_.load(std::memory_order_relaxed);
  }

  // target is the address as the caller gave it, for messages.
  const std::string& target() const { return address_.target; }

  // Current, lease_ttl and Release are Session's. Thread-safe; never block
  // on the network.
  SessionTag Current() const;
  absl::Duration lease_ttl() const;
  void Release(uint64_t generation, std::string name);

  // Close says GOODBYE on the primary connection (the server releases
  // everything the session held), stops the keepalive thread and drops the
  // pool; idempotent. Blocks at most a few seconds. Thread-safe.
  void Close();

 private:
  struct Pooled {
    std::unique_ptr<LaneConnection> conn;
    // session is the id the connection joined ("" for a connection that
    // owns a session of its own); generation that session's.
    std::string session;
    uint64_t generation = 0;
  };

  LaneTransport(LaneAddress address, const ClientOptions& options);

  // Delivery is how far one attempt at a call got.
  enum class Delivery {
    kAnswered,  // the server answered (or the call failed before going out
                // for a reason a retry would not mend)
    kNotSent,   // no connection, or the request was not wholly written
    kLost,      // the request went out and the connection broke
  };

  // Take returns an idle connection of the current session or opens one;
  // *tag is the session it runs under.
  absl::StatusOr<Pooled> Take(SessionTag* tag);
  // Attempt makes one attempt at a call by `deadline`; *delivery says how
  // far it got. A numbered call is only sent in session `generation`: in
  // another one it fails with SessionEndedError, unsent.
  absl::Status Attempt(const CallPlan& plan,
                       const google::protobuf::MessageLite& request,
                       google::protobuf::MessageLite* response,
                       absl::Time deadline, uint64_t generation,
                       SessionTag* tag, Delivery* delivery);
  // ReconnectLimit is how long a call that found the server gone at `now`
  // waits for it: kReconnectWait after the server was first found gone (so
  // that calls to a server that stays away soon fail at once), and never
  // past the call's `deadline`.
  absl::Time ReconnectLimit(absl::Time deadline);
  // PauseUntil waits until `until`; false if the transport was closed.
  bool PauseUntil(absl::Time until);
  // AwaitSession waits until the primary connection is open (reopening it,
  // resuming the session if the server still has it, with a backoff) or
  // `limit` passes, and returns the session then current. Errors:
  // UNAVAILABLE with the last reason the server could not be reached;
  // CANCELLED once closed.
  absl::StatusOr<SessionTag> AwaitSession(absl::Time limit);
  // Put returns a connection to the pool if it is still good for its
  // session.
  void Put(Pooled pooled);
  // TakeReleases returns RELEASE frames for the queued names of session
  // `generation` and clears the queue.
  std::string TakeReleases(uint64_t generation);
  // OpenPrimary opens (or reopens, resuming the session) the primary
  // connection by `deadline` and adopts the session it names.
  absl::Status OpenPrimary(absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(primary_mu_);
  // Recover replaces a primary connection that broke or whose session the
  // server no longer knows (calls of `generation` failed with SESSION_ERROR
  // or could not join): reconnects, resuming if the server still has it.
  void Recover(uint64_t generation);
  // KeepaliveLoop is the TCP keepalive thread.
  void KeepaliveLoop();

  const LaneAddress address_;
  const std::string label_;
  const std::string token_;
  const absl::Duration call_timeout_;
  const absl::Duration connect_timeout_;

  // primary_mu_ serializes the I/O of the primary connection (keepalive
  // thread, Recover, Close). Taken before mu_, never while holding it.
  absl::Mutex primary_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::unique_ptr<LaneConnection> primary_ ABSL_GUARDED_BY(primary_mu_);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::string id_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration lease_ttl_ ABSL_GUARDED_BY(mu_);
  // number_calls_ is the last WELCOME's number_calls, read without mu_ on
  // every call.
  std::atomic<bool> number_calls_{false};
  // lost_since_ is when a call first found the server gone, InfiniteFuture
  // while it is not.
  absl::Time lost_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // pending_ holds names to release, all of the current generation.
  std::vector<std::string> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Pooled> pool_ ABSL_GUARDED_BY(mu_);

  absl::Mutex join_mu_;
  std::thread keepalive_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_LANE_TRANSPORT_H_
