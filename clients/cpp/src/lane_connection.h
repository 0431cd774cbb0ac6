// One lane connection (api/LANE.md) of the C++ client: a blocking stream
// socket, Unix or TCP, that has said HELLO and been welcomed. The client
// runs one call at a time on a connection (a pool in LaneTransport gives
// each call its own), so a connection needs no lock: whoever holds it owns
// it. The frame codec is statehub/internal/lane.h, shared with the server.
//
// Deadlines are poll() on the socket. A call whose deadline passes sends
// CANCEL and reads on until the server answers that request: with ERROR
// CANCELLED (then the call fails DEADLINE_EXCEEDED) or with the real reply,
// which won the race and stands (an acquire granted just before the cancel
// is returned as acquired, so nothing is held unknowingly).

#ifndef STATEHUB_CLIENTS_CPP_SRC_LANE_CONNECTION_H_
#define STATEHUB_CLIENTS_CPP_SRC_LANE_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message_lite.h"
#include "reconnect.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/session.pb.h"

namespace statehub::client_internal {

// LaneAddress is where a lane connection goes: a Unix socket path (abstract
// if it starts with '\0') or a TCP host and port.
struct LaneAddress {
  bool is_unix = false;
  std::string path;
  std::string host;
  std::string port;
  // target is the address as the caller gave it, for messages.
  std::string target;
};

// ParseLaneAddress reads the gRPC-style targets statehub takes:
// "unix:///abs/path", "unix:relative/path", "unix-abstract:name",
// "host:port", "[v6addr]:port", "dns:///host:port", "ipv4:a.b.c.d:port",
// "ipv6:[addr]:port". Errors: INVALID_ARGUMENT naming the target.
absl::StatusOr<LaneAddress> ParseLaneAddress(absl::string_view target);

// LaneErrorStatus converts the body of an ERROR frame to the status the same
// call over gRPC fails with (code, message, ErrorDetail kind/object/limit).
absl::Status LaneErrorStatus(absl::string_view body);

class LaneConnection {
 public:
  // Open connects to `address`, sends the preface and `hello`, and waits
  // for WELCOME (copied to *welcome), all by `deadline`. Errors: UNAVAILABLE
  // if the server cannot be reached or closes; DEADLINE_EXCEEDED; the
  // server's own refusal (UNAUTHENTICATED, SESSION_ERROR, LIMIT_EXCEEDED,
  // ...) as the gRPC path reports it.
  static absl::StatusOr<std::unique_ptr<LaneConnection>> Open(
      const LaneAddress& address, const v1::LaneHello& hello,
      absl::Time deadline, v1::Welcome* welcome);

  // Probe connects to `address` by `deadline` and closes again, saying
  // nothing: whether a server listens there. Errors as for Open's connect.
  static absl::Status Probe(const LaneAddress& address, absl::Time deadline);

  LaneConnection(const LaneConnection&) = delete;
  LaneConnection& operator=(const LaneConnection&) = delete;
  // ~LaneConnection closes the socket (on a Unix socket, the server ends the
  // session this connection owns).
  ~LaneConnection();

  // Call sends `prefix` (whole frames, e.g. RELEASE; may be empty) and a
  // REQUEST of `method` carrying `request`, NUMBERED if number.number is
  // not 0, then reads until its reply and parses a RESPONSE into *response.
  // Frames for other ids and server-started frames it does not know are
  // skipped. At `deadline` it sends CANCEL and waits up to `cancel_grace`
  // more for the reply (see the file comment). *sent is set once the whole
  // REQUEST is written: from then on the server may have run it.
  // Errors: the server's ERROR as a statehub status; DEADLINE_EXCEEDED;
  // UNAVAILABLE if the connection breaks (then broken() is true).
  absl::Status Call(uint16_t method, const CallNumber& number,
                    const google::protobuf::MessageLite& request,
                    google::protobuf::MessageLite* response,
                    absl::string_view prefix, absl::Time deadline,
                    absl::Duration cancel_grace, bool* sent);

  // Ping sends `prefix` and a PING and waits for its PONG by `deadline`.
  absl::Status Ping(absl::string_view prefix, absl::Time deadline);

  // StartCall sends a REQUEST of `method` carrying `request` by `deadline`
  // and returns its request id, without waiting for a reply: for a call
  // answered by frames of its own (Watches.Watch, answered by EVENT frames
  // until an ERROR), read with Read. Errors: UNAVAILABLE if the connection
  // is or becomes broken; DEADLINE_EXCEEDED (then broken too).
  absl::StatusOr<uint32_t> StartCall(
      uint16_t method, const google::protobuf::MessageLite& request,
      absl::Time deadline);

  // SendPing sends a PING by `deadline` without waiting for its PONG (a
  // reader of StartCall's frames skips it). Errors as StartCall's.
  absl::Status SendPing(absl::Time deadline);

  // Read waits for the next whole frame by `deadline`; `frame->body` points
  // into this connection's buffer until the next read. Errors:
  // DEADLINE_EXCEEDED at the deadline (the connection stays usable);
  // UNAVAILABLE if it broke or the server closed it.
  absl::Status Read(lane::Frame* frame, absl::Time deadline) {
    return ReadFrame(frame, deadline);
  }

  // Shutdown shuts the socket down in both directions, without closing it:
  // a thread blocked reading it wakes up and finds it closed. The one
  // method that may be called while another thread uses the connection.
  void Shutdown();

  // Goodbye sends GOODBYE and waits (until `deadline`) for the server to
  // close the connection. Leaves the connection broken.
  void Goodbye(absl::Time deadline);

  // broken is true once the stream is unusable (an I/O error, a framing
  // error, a deadline left a reply unread, the server closed it).
  bool broken() const { return broken_; }

  // PeerClosed polls the idle socket without blocking: true (and broken)
  // if the server closed it or sent something unasked. Call only between
  // calls.
  bool PeerClosed();

  bool is_unix() const { return is_unix_; }

  // Detached is a welcomed connection's socket handed over to another
  // owner, with the frame reader holding whatever arrived after WELCOME.
  struct Detached {
    int fd;
    lane::FrameReader reader;
  };
  // Detach hands the socket and its reader over (the asynchronous client
  // runs it on its event loop from then on); this connection is left
  // broken and closes nothing. Call once, between calls.
  Detached Detach();

 private:
  LaneConnection(int fd, bool is_unix);

  // AppendNumbered appends a NUMBERED REQUEST frame to out_.
  void AppendNumbered(uint32_t id, uint16_t method, const CallNumber& number,
                      const google::protobuf::MessageLite& request);
  // WriteAll writes `bytes` by `deadline`.
  absl::Status WriteAll(absl::string_view bytes, absl::Time deadline);
  // ReadFrame waits for the next whole frame by `deadline`.
  absl::Status ReadFrame(lane::Frame* frame, absl::Time deadline);
  // Wait polls for `events` until `deadline`: OK when ready,
  // DEADLINE_EXCEEDED at the deadline, UNAVAILABLE on a poll error.
  absl::Status Wait(short events, absl::Time deadline);
  // Break marks the stream unusable and returns UNAVAILABLE with `why`.
  absl::Status Break(absl::string_view why);

  // fd_ is -1 once detached.
  int fd_;
  const bool is_unix_;
  bool broken_ = false;
  uint32_t next_id_ = 1;
  lane::FrameReader reader_;
  // out_ and in_ are reused across calls to spare an allocation each.
  std::string out_;
  std::string in_;
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_LANE_CONNECTION_H_
