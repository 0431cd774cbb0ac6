// The machinery behind statehub/async.h: an event loop (AsyncLoopState, a
// standalone Asio io_context run by the caller) and one lane connection on
// it (AsyncConnection) with any number of calls in flight.
//
// A connection is opened and welcomed by LaneConnection, blocking, as the
// blocking client's connections are; its socket is then handed to the loop.
// From then on everything about it runs on the loop's thread: requests are
// appended to one output buffer and written back to back, one write in
// flight at a time (Asio's chat-server shape); replies are cut from the
// stream by lane::FrameReader and matched to their calls by request id in
// a hash map, so parked calls answered late complete in their turn.
// Requests issued inside the connection's own read handler (a callback
// issuing the next call) go out in one write after the handler; others are
// flushed by a handler posted to the loop, so that all the requests issued
// in one turn go out together.
//
// When the stream ends, fails or carries a malformed frame, every call in
// flight fails with UNAVAILABLE and the connection is done: nothing is
// retried (docs/decisions.md, "The asynchronous C++ client").

#ifndef STATEHUB_CLIENTS_CPP_SRC_ASYNC_CONNECTION_H_
#define STATEHUB_CLIENTS_CPP_SRC_ASYNC_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "asio/executor_work_guard.hpp"
#include "asio/generic/stream_protocol.hpp"
#include "asio/io_context.hpp"
#include "asio/steady_timer.hpp"
#include "google/protobuf/message_lite.h"
#include "holds.h"
#include "lane_connection.h"
#include "reconnect.h"
#include "statehub/async.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/value.pb.h"
#include "statehub/value.h"

namespace statehub::client_internal {

class AsyncConnection;

// AsyncLoopState is an AsyncLoop's: its io_context (concurrency hint 1: run
// by one thread at a time) and the connections on it, so that destroying
// the loop can close them first.
class AsyncLoopState {
 public:
  AsyncLoopState();
  AsyncLoopState(const AsyncLoopState&) = delete;
  AsyncLoopState& operator=(const AsyncLoopState&) = delete;

  asio::io_context& io() { return io_; }

  // Register adds a connection to close at Shutdown. Thread-safe.
  void Register(const std::shared_ptr<AsyncConnection>& conn);

  // Shutdown closes every connection on the loop (their calls in flight
  // fail with UNAVAILABLE) and runs what that leaves to run, so that no
  // handler is left holding one. REQUIRES: no thread runs the loop.
  void Shutdown();

 private:
  asio::io_context io_{1};
  // work_ keeps Run and RunUntil waiting while nothing is in flight.
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>>
      work_;
  absl::Mutex mu_;
  std::vector<std::weak_ptr<AsyncConnection>> conns_ ABSL_GUARDED_BY(mu_);
};

// Completion receives a call's status and, if OK, its serialized response
// (valid during the call only).
using Completion = absl::AnyInvocable<void(absl::Status, absl::string_view)>;

class AsyncConnection final
    : public HoldKeeper,
      public std::enable_shared_from_this<AsyncConnection> {
 public:
  // Open connects to `address`, says HELLO (opening a session, or joining
  // options.join_session_id) and waits for WELCOME, blocking up to
  // options.connect_timeout; then hands the socket to `loop`. Errors as
  // AsyncClient::Connect's.
  static absl::StatusOr<std::shared_ptr<AsyncConnection>> Open(
      AsyncLoopState& loop, absl::string_view address,
      const AsyncClientOptions& options);

  AsyncConnection(const AsyncConnection&) = delete;
  AsyncConnection& operator=(const AsyncConnection&) = delete;
  ~AsyncConnection() override;

  const std::string& session_id() const { return session_id_; }

  // Send issues one call of `rpc` carrying `request`; `done` runs on the
  // loop's thread with its reply, or UNAVAILABLE if the connection closes
  // first. Any thread.
  void Send(const Rpc& rpc, const google::protobuf::MessageLite& request,
            Completion done);

  // Decode converts a value from a reply, giving each ref to an anonymous
  // object the hold the server granted this session for it.
  absl::StatusOr<Value> Decode(const v1::Value& wire) const;
  // MakeHold returns the token of one hold on anonymous object `name`.
  std::shared_ptr<const void> MakeHold(std::string name) const;

  // in_flight counts calls issued and not completed. Any thread.
  size_t in_flight() const {
    return in_flight_.load(std::memory_order_relaxed);
  }

  // Close sends GOODBYE after what was issued before it. Any thread.
  void Close();

  // Shutdown fails every call in flight with UNAVAILABLE and drops the
  // socket: the loop is being destroyed. REQUIRES: no thread runs the loop.
  void Shutdown();

  // ReleaseHold queues a RELEASE and has the loop send it. Any thread.
  void ReleaseHold(uint64_t generation, std::string name) const override;

 private:
  struct Pending {
    // rpc names the call in the error of a broken connection.
    const Rpc* rpc;
    Completion done;
  };

  AsyncConnection(AsyncLoopState& loop, const LaneAddress& address,
                  std::string session_id, bool owns_session,
                  absl::Duration lease, LaneConnection::Detached detached);

  bool OnLoopThread() const;
  // Start queues a REQUEST frame of `rpc`: `request` serialized now, or
  // `body` already serialized (one of them). Loop thread.
  void Start(const Rpc& rpc, const google::protobuf::MessageLite* request,
             absl::string_view body, Completion done);
  // CompleteSoon completes `done` with `status` on the loop's next turn.
  void CompleteSoon(Completion done, absl::Status status);
  void Complete(Pending& pending, absl::Status status, absl::string_view body);
  // ScheduleFlush makes sure what is in out_ gets written. Loop thread.
  void ScheduleFlush();
  // Flush writes out_ (and queued RELEASEs) unless a write is in flight.
  void Flush();
  void StartRead();
  void OnRead(const std::error_code& error, size_t bytes);
  // Dispatch hands one frame from the server to its call.
  void Dispatch(const lane::Frame& frame);
  // ArmKeepalive PINGs every lease/3 while nothing else is written (TCP).
  void ArmKeepalive();
  void DoClose();
  // CloseIfDrained closes a joined connection that is closing once its
  // last call is answered.
  void CloseIfDrained();
  // Fail ends the connection: every call in flight fails with UNAVAILABLE
  // saying `why`. Loop thread (or Shutdown's).
  void Fail(absl::string_view why);

  asio::io_context& io_;
  const std::string target_;
  const bool is_unix_;
  const std::string session_id_;
  // owns_session_ is false for a connection that joined another's session:
  // its Close must not say GOODBYE, which would end that session.
  const bool owns_session_;
  const absl::Duration lease_;

  // dead_ is set once the loop is gone: calls then fail inside Send.
  std::atomic<bool> dead_{false};
  std::atomic<size_t> in_flight_{0};

  // The rest is the loop thread's.
  std::optional<asio::generic::stream_protocol::socket> socket_;
  std::optional<asio::steady_timer> keepalive_;
  lane::FrameReader reader_;
  std::vector<char> read_buffer_;
  // out_ collects frames to write; writing_ is the buffer being written.
  std::string out_;
  std::string writing_;
  bool write_in_flight_ = false;
  bool flush_posted_ = false;
  bool in_read_ = false;
  bool wrote_since_tick_ = false;
  bool closing_ = false;
  bool broken_ = false;
  uint32_t next_id_ = 1;
  absl::flat_hash_map<uint32_t, Pending> pending_;

  // Names whose holds died, to RELEASE; filled from any thread.
  mutable absl::Mutex release_mu_;
  mutable std::vector<std::string> releases_ ABSL_GUARDED_BY(release_mu_);
  mutable bool release_posted_ ABSL_GUARDED_BY(release_mu_) = false;
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_ASYNC_CONNECTION_H_
