// File: server/lane/lane_session.h
//
// `LaneSession` is the lane's protocol on one connection (api/LANE.md),
// without the socket: bytes in through Feed, frames out through its Link.
// It checks the preface and HELLO (version, token, the session to open,
// resume or join), serves each REQUEST through the method table's handler,
// keeps the calls that parked so CANCEL and the connection's close can
// withdraw them, and owns the connection's side of its session: on a Unix
// socket an owning connection pins the session while open and ends it when
// it closes.
//
// The Link is the connection: it writes bytes in order and runs functions
// in the connection's serial context (its event loop's thread, or the
// caller's thread in tests and fuzzing). Feed and Closed run in that
// context; replies of parked calls, finished on whatever thread granted
// them, are carried into it with Link::Dispatch.
//
// Example:
//
//   auto session = std::make_shared<LaneSession>(engine, table, timers,
//                                                observer, options, link);
//   session->Feed(bytes);   // for every read
//   session->Closed();      // once, when the connection is gone
//
// Thread safety: see above; Deliver (internal) is thread-safe.

#ifndef STATEHUB_SERVER_LANE_LANE_SESSION_H_
#define STATEHUB_SERVER_LANE_LANE_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "server/engine/engine.h"
#include "server/engine/mutex.h"
#include "server/engine/watches.h"
#include "server/handlers/call.h"
#include "server/handlers/methods.h"
#include "statehub/internal/lane.h"

namespace statehub::lane {

class LaneSession final : public std::enable_shared_from_this<LaneSession> {
 public:
  class Link {
   public:
    virtual ~Link() = default;
    // Write sends bytes after everything written before. Serial context.
    virtual void Write(std::string bytes) = 0;
    // Close closes the connection once what was written is sent. Serial
    // context.
    virtual void Close() = 0;
    // Dispatch runs `fn` in the serial context: now if the caller is in it,
    // else soon. Any thread.
    virtual void Dispatch(std::function<void()> fn) = 0;
    // Defer runs `fn` in the serial context once what is ready to run there
    // now has run (on an event loop: after the other connections that are
    // ready, before it waits again). Serial context. The default runs it
    // at once.
    virtual void Defer(std::function<void()> fn) { fn(); }
    // Post runs `fn` in the serial context later, never before it returns.
    // Any thread, with any lock held (a watch's wake). The default is
    // Dispatch, for links whose Dispatch never runs inline.
    virtual void Post(std::function<void()> fn) { Dispatch(std::move(fn)); }
    // pending_output is how many bytes were written and are not yet sent.
    // Serial context.
    virtual size_t pending_output() const { return 0; }
  };

  struct Options {
    // max_message_bytes bounds a frame's body (--max_message_bytes).
    uint32_t max_message_bytes = 64 << 20;
    // unix_socket: the peer is a local process whose death closes the
    // connection, so an owning connection pins its session.
    bool unix_socket = false;
  };

  // Everything but `link` must outlive the session; the session keeps
  // `link` until Closed.
  LaneSession(Engine& engine, const handlers::MethodTable& table,
              handlers::Timers& timers, handlers::RpcObserver* observer,
              Options options, std::shared_ptr<Link> link);
  LaneSession(const LaneSession&) = delete;
  LaneSession& operator=(const LaneSession&) = delete;
  ~LaneSession();

  // Feed takes bytes read from the connection and serves the whole frames
  // among them; replies are written before it returns (parked calls'
  // later). After a protocol error it writes an ERROR and closes the link;
  // later bytes are ignored.
  void Feed(absl::string_view bytes);

  // Closed is told that the connection is gone: parked calls are
  // withdrawn, and the session ends if this connection owned it on a Unix
  // socket. Idempotent.
  void Closed();

  // OutputDrained is told that what was written has been sent: watches
  // that waited for room go on. Serial context.
  void OutputDrained();

  // session_id is the session this connection belongs to; 0 before HELLO.
  SessionId session_id() const { return session_; }
  // parked_calls counts calls in flight that parked.
  size_t parked_calls() const;

 private:
  class LaneCall;
  class ImmediateCall;

  void OnFrame(const Frame& frame);
  void OnHello(const Frame& frame);
  void OnRequest(const Frame& frame);
  void OnCancel(uint32_t request_id);
  // OnWatch starts a watch (Watches.Watch): EVENT frames with the call's
  // request id carry its responses until an ERROR frame ends it.
  void OnWatch(uint32_t request_id, absl::string_view body);
  // FlushWatch sends what the watch has pending, while the connection's
  // output has room. Serial context.
  void FlushWatch(uint32_t request_id);
  // Fails the connection: an ERROR frame, then close.
  void Fail(uint32_t request_id, const absl::Status& status);
  void SendError(uint32_t request_id, const absl::Status& status);
  // Admit checks that the session is live and renews its lease.
  absl::Status Admit();
  // Deliver writes a parked call's reply (any thread) and forgets it.
  void Deliver(uint32_t request_id, std::string frame);
  // CurrentLink is the link, or null once the connection is closed.
  std::shared_ptr<Link> CurrentLink() const;
  // Out appends a frame for the current Feed, or writes it at once; behind
  // held replies while there are any.
  void Out(std::string frame);
  // Hold keeps the reply of an immediate call until the log has been
  // written for this loop's pass (EndPass), on a data dir whose log answers
  // inline (--fsync=everysec or no): one write for every call the loop
  // answered in that pass, rather than one per call.
  void Hold(uint32_t request_id, bool read_only, std::string frame);
  // EndPass writes the log once and releases every held reply of the
  // sessions in this thread's pass. Serial context.
  static void EndPass();
  // WriteLog makes everything published so far durable (the log answers
  // inline) and returns why not if it cannot.
  static absl::Status WriteLog(Engine& engine);
  // Release sends the held replies: as they are if `durable` is OK (or for
  // a call that only read), else as that error.
  void Release(const absl::Status& durable);

  Engine& engine_;
  const handlers::MethodTable& table_;
  handlers::Timers& timers_;
  handlers::RpcObserver* const observer_;
  const Options options_;
  FrameReader reader_;
  // Serial-context state.
  enum class State { kHello, kReady, kClosed } state_ = State::kHello;
  SessionId session_ = 0;
  bool owner_ = false;
  bool pinned_ = false;
  bool feeding_ = false;
  std::string batch_;
  // Replies held for the pass's log write (Hold), in order; a frame that is
  // not a held reply but came after one (request_id 0 here) waits too.
  struct HeldReply {
    uint32_t request_id = 0;
    bool held = false;
    bool read_only = false;
    std::string frame;
  };
  std::vector<HeldReply> held_;
  // Reused request and response messages of immediate calls, by method
  // index: an immediate call is finished before the next frame is read.
  std::vector<std::unique_ptr<google::protobuf::Message>> requests_;
  std::vector<std::unique_ptr<google::protobuf::Message>> responses_;

  // The connection's watches, by request id. Serial context.
  struct LaneWatch {
    std::shared_ptr<Watch> watch;
    // blocked: output was full; OutputDrained flushes it.
    bool blocked = false;
  };
  absl::flat_hash_map<uint32_t, LaneWatch> watches_;

  mutable Mutex mu_;
  std::shared_ptr<Link> link_ ABSL_GUARDED_BY(mu_);
  // Calls that may park, until finished; after Closed too, for those
  // another thread finishes (a LaneCall keeps its session: the cycle ends
  // at Deliver).
  absl::flat_hash_map<uint32_t, std::shared_ptr<LaneCall>> parked_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub::lane

#endif  // STATEHUB_SERVER_LANE_LANE_SESSION_H_
