// lane_session_fuzz: a client's byte stream, appended in chunks of varying
// sizes, through the lane's per-connection protocol (lane::LaneSession,
// server/lane/lane_session.h) over a real Engine and method table, without
// a socket: the Link records what the server writes, runs Dispatch at once,
// and the timers are fake_transport.h's, fired after every chunk (a zero
// timeout then; a long one never). Then the connection closes.
//
// Input: lane_frame_fuzz's format (corpus/lane_frame/ seeds fit), but bit 2
// of byte 0 makes the connection a Unix socket's instead of TCP's:
//   byte 0, bits 0-1: --max_message_bytes = 64 MiB, 4096, 16 or 0;
//   byte 0, bit 2:    a Unix socket (the owning connection pins its session
//                     and ends it on close);
//   byte 1:           chunking: 0 feeds the stream at once; n > 0 feeds
//                     chunks of 0 .. n bytes drawn from a generator seeded
//                     with n.
//
// Invariants (api/LANE.md), besides "no sanitizer report, no abort, no
// leak":
//   - the server writes whole frames of the kinds a server sends (WELCOME,
//     RESPONSE, ERROR, PONG, EVENT), method and flags 0; WELCOME only first,
//     once,
//     naming the connection's session; every ERROR a LaneError with a
//     nonzero code, a message and a kind that agrees with the code;
//   - it never answers a call twice or one never made: per request id, no
//     more replies than REQUEST and PING frames (one connection-ending
//     ERROR aside); while the connection is open every REQUEST and PING is
//     answered except the calls parked;
//   - a watch (Watches.Watch) is answered by EVENT frames carrying its
//     request id and a WatchResponse, the first one `started`, revisions
//     never going back, events in revision order; a CANCELLED or
//     WATCH_TOO_OLD ERROR for its id ends it (no EVENT after); the started
//     EVENT counts as the call's reply;
//   - nothing is written after the server closed the connection;
//   - once it is closed, no call is parked (the engine's count of parked
//     calls is back to 0), no timeout is armed, no watch is left in the
//     engine, the LaneSession is freed,
//     and a Unix socket's own session has ended.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/engine/engine.h"
#include "server/engine/observer.h"
#include "server/engine/sessions.h"
#include "server/handlers/methods.h"
#include "server/lane/lane_session.h"
#include "spdlog/spdlog.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/session.pb.h"
#include "statehub/v1/watch.pb.h"
#include "tests/fuzz/check.h"
#include "tests/fuzz/error_kinds.h"
#include "tests/fuzz/fake_transport.h"

namespace statehub::lane {
namespace {

using fuzz::FakeTimers;

constexpr uint32_t kMaxLengths[] = {64 << 20, 4096, 16, 0};

Limits SessionLimits() {
  Limits limits;
  limits.max_value_bytes = 64 << 10;
  limits.max_objects = 48;
  limits.max_elements = 256;
  limits.max_sessions = 4;
  limits.max_waiters_per_session = 8;
  return limits;
}

// RecordingLink is the connection: it keeps what the server writes.
class RecordingLink final : public LaneSession::Link {
 public:
  void Write(std::string bytes) override {
    FUZZ_CHECK(!closed_, "%d bytes written after Close", bytes.size());
    out_ += bytes;
  }
  void Close() override {
    FUZZ_CHECK(!closed_, "the connection was closed twice");
    closed_ = true;
  }
  // One thread: every context is the serial one.
  void Dispatch(std::function<void()> fn) override { fn(); }
  // Posted work (a watch's flush) waits for RunPosted, as an event loop's
  // posted handler waits for the loop.
  void Post(std::function<void()> fn) override {
    posted_.push_back(std::move(fn));
  }
  void RunPosted() {
    while (!posted_.empty()) {
      std::vector<std::function<void()>> now;
      now.swap(posted_);
      for (auto& fn : now) fn();
    }
  }

  const std::string& out() const { return out_; }
  bool closed() const { return closed_; }

 private:
  std::string out_;
  bool closed_ = false;
  std::vector<std::function<void()>> posted_;
};

// ParkedCount counts the blocking calls parked on the engine's objects
// (RunBlocking reports +1 when one parks, -1 when it finishes).
class ParkedCount final : public Observers {
 public:
  std::shared_ptr<AcquireObserver> ForLock(const std::string&) override {
    return nullptr;
  }
  std::shared_ptr<AcquireObserver> ForSemaphore(const std::string&) override {
    return nullptr;
  }
  void Parked(ObjectType, int delta) override { parked_ += delta; }
  int64_t parked() const { return parked_; }

 private:
  int64_t parked_ = 0;
};

// Chunks draws chunk sizes of 0 .. max (all at once for max 0), as
// lane_frame_fuzz does.
class Chunks {
 public:
  explicit Chunks(uint8_t max) : max_(max), state_(max) {}
  size_t Next(size_t left) {
    if (max_ == 0) return left;
    state_ = state_ * 1103515245u + 12345u;
    return std::min<size_t>(left, (state_ >> 16) % (max_ + 1u));
  }

 private:
  const uint8_t max_;
  uint32_t state_;
};

// What the client asked for: REQUEST and PING frames per request id, and
// whether it sent a HELLO, read with the reader the server uses (which
// lane_frame_fuzz checks).
struct Asked {
  std::map<uint32_t, int64_t> replies_due;
  int64_t total = 0;
  bool hello = false;

  Asked(absl::string_view stream, uint32_t max_length) {
    FrameReader reader(max_length, /*expect_preface=*/true);
    reader.Append(stream);
    Frame frame;
    std::optional<FrameError> error;
    while (reader.Next(&frame, &error)) {
      const auto kind = static_cast<Kind>(frame.header.kind);
      if (kind == Kind::kHello) hello = true;
      if (kind == Kind::kRequest || kind == Kind::kPing) {
        ++replies_due[frame.header.request_id];
        ++total;
      }
    }
  }
};

// CheckOutput reads what the server wrote; returns the replies per id.
std::map<uint32_t, int64_t> CheckOutput(const std::string& out,
                                        SessionId session, bool closed) {
  FrameReader reader(UINT32_MAX, /*expect_preface=*/false);
  reader.Append(out);
  Frame frame;
  std::optional<FrameError> error;
  std::map<uint32_t, int64_t> replies;
  // The watches running, by request id: the last revision each sent.
  std::map<uint32_t, uint64_t> watches;
  size_t n = 0;
  bool last_closes = false;
  uint32_t last_id = 0;
  while (reader.Next(&frame, &error)) {
    const Header& h = frame.header;
    const auto kind = static_cast<Kind>(h.kind);
    FUZZ_CHECK(h.method == 0, "the server sent %s with method %d",
               KindName(h.kind), h.method);
    switch (kind) {
      case Kind::kWelcome: {
        FUZZ_CHECK(n == 0 && h.request_id == 0,
                   "WELCOME as frame %d, request id %d", n, h.request_id);
        v1::Welcome welcome;
        FUZZ_CHECK(welcome.ParseFromArray(frame.body.data(),
                                          static_cast<int>(frame.body.size())),
                   "WELCOME's body is not a statehub.v1.Welcome");
        FUZZ_CHECK(welcome.session_id() == SessionTable::FormatId(session) &&
                       welcome.lease_ttl_ms() > 0,
                   "WELCOME names session %s (the connection's is %s), "
                   "ttl %d ms",
                   welcome.session_id(), SessionTable::FormatId(session),
                   welcome.lease_ttl_ms());
        break;
      }
      case Kind::kError: {
        v1::LaneError e;
        FUZZ_CHECK(e.ParseFromArray(frame.body.data(),
                                    static_cast<int>(frame.body.size())),
                   "ERROR %d: the body is not a statehub.v1.LaneError",
                   h.request_id);
        const auto code = static_cast<absl::StatusCode>(e.code());
        FUZZ_CHECK(e.code() > 0 && e.code() <= 16 && !e.message().empty(),
                   "ERROR %d: code %d, message '%s'", h.request_id, e.code(),
                   e.message());
        FUZZ_CHECK(e.detail().kind() == v1::ERROR_KIND_UNSPECIFIED ||
                       fuzz::KindAgrees(e.detail().kind(), code),
                   "ERROR %d: code %s with kind %s ('%s')", h.request_id,
                   absl::StatusCodeToString(code),
                   v1::ErrorKind_Name(e.detail().kind()), e.message());
        // A running watch ends with CANCELLED or WATCH_TOO_OLD; any other
        // ERROR for its id answers a REQUEST that reused the id.
        const bool ends_watch = code == absl::StatusCode::kCancelled ||
                                e.detail().kind() == v1::WATCH_TOO_OLD;
        if (!ends_watch || watches.erase(h.request_id) == 0) {
          ++replies[h.request_id];
        }
        break;
      }
      case Kind::kEvent: {
        v1::WatchResponse r;
        FUZZ_CHECK(r.ParseFromArray(frame.body.data(),
                                    static_cast<int>(frame.body.size())),
                   "EVENT %d: the body is not a statehub.v1.WatchResponse",
                   h.request_id);
        auto it = watches.find(h.request_id);
        FUZZ_CHECK(h.request_id != 0 && r.started() == (it == watches.end()),
                   "EVENT %d: started %d, the watch %s", h.request_id,
                   r.started(), it == watches.end() ? "was not" : "was on");
        if (it == watches.end()) {
          ++replies[h.request_id];
          it = watches.emplace(h.request_id, 0).first;
        }
        uint64_t last = it->second;
        FUZZ_CHECK(r.revision() >= last, "EVENT %d: revision %d after %d",
                   h.request_id, r.revision(), last);
        for (const v1::WatchEvent& e : r.events()) {
          FUZZ_CHECK(e.change().revision() > last &&
                         e.change().revision() <= r.revision(),
                     "EVENT %d: a change of revision %d after %d, in a "
                     "response of revision %d",
                     h.request_id, e.change().revision(), last, r.revision());
          last = e.change().revision();
        }
        it->second = r.revision();
        break;
      }
      case Kind::kResponse:
      case Kind::kPong:
        ++replies[h.request_id];
        break;
      default:
        FUZZ_CHECK(false, "the server sent a %s frame", KindName(h.kind));
    }
    last_closes = kind == Kind::kError;
    last_id = h.request_id;
    ++n;
  }
  FUZZ_CHECK(!error, "the server's frames do not parse: %s",
             error->status.ToString());
  FUZZ_CHECK(reader.buffered() == 0, "the server wrote %d bytes of a frame",
             reader.buffered());
  // The ERROR that ended the connection answers no call.
  if (closed && last_closes) --replies[last_id];
  return replies;
}

}  // namespace
}  // namespace statehub::lane

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A line per session opened and ended would slow the fuzzer down.
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statehub;
  using namespace statehub::lane;
  if (size < 2) return 0;
  LaneSession::Options options;
  options.max_message_bytes = kMaxLengths[data[0] & 3];
  options.unix_socket = (data[0] & 4) != 0;
  const absl::string_view stream(reinterpret_cast<const char*>(data + 2),
                                 size - 2);

  ParkedCount parked;
  Engine engine(SessionLimits(), absl::Hours(1));
  engine.registry().set_observers(&parked);
  handlers::MethodTable table(engine);
  FakeTimers timers;
  auto link = std::make_shared<RecordingLink>();
  auto session =
      std::make_shared<LaneSession>(engine, table, timers,
                                    /*observer=*/nullptr, options, link);
  Chunks chunks(data[1]);
  for (size_t fed = 0; fed < stream.size();) {
    const size_t n = chunks.Next(stream.size() - fed);
    session->Feed(stream.substr(fed, n));
    fed += n;
    timers.FireDue(absl::Now());
    link->RunPosted();
  }

  const SessionId id = session->session_id();
  const size_t parked_calls = session->parked_calls();
  FUZZ_CHECK(parked.parked() <= static_cast<int64_t>(parked_calls),
             "%d calls parked in the engine, %d on the connection",
             parked.parked(), parked_calls);
  const Asked asked(stream, options.max_message_bytes);
  const std::map<uint32_t, int64_t> replies =
      CheckOutput(link->out(), id, link->closed());
  int64_t answered = 0;
  for (const auto& [request_id, n] : replies) {
    auto it = asked.replies_due.find(request_id);
    const int64_t due = it == asked.replies_due.end() ? 0 : it->second;
    FUZZ_CHECK(n <= due, "request id %d answered %d times, asked %d times",
               request_id, n, due);
    answered += n;
  }
  if (!link->closed()) {
    FUZZ_CHECK(asked.total - answered == static_cast<int64_t>(parked_calls),
               "%d calls and pings, %d answered, %d parked", asked.total,
               answered, parked_calls);
    FUZZ_CHECK(asked.hello == (id != 0), "HELLO sent: %d; session %d",
               asked.hello, id);
  }

  session->Closed();
  FUZZ_CHECK(session->parked_calls() == 0, "%d calls parked after Closed",
             session->parked_calls());
  FUZZ_CHECK(parked.parked() == 0,
             "%d calls still parked in the engine after the connection closed",
             parked.parked());
  timers.FireDue(absl::Now());
  FUZZ_CHECK(timers.armed() == 0, "%d timeouts armed after the close",
             timers.armed());
  FUZZ_CHECK(engine.watches().watches() == 0,
             "%d watches left after the connection closed",
             engine.watches().watches());
  link->RunPosted();
  if (options.unix_socket && id != 0) {
    FUZZ_CHECK(!engine.sessions().IsLive(id, absl::Now()),
               "session %d outlived its Unix socket connection", id);
  }
  std::weak_ptr<LaneSession> weak = session;
  session.reset();
  FUZZ_CHECK(weak.expired(), "the LaneSession outlived its connection");
  return 0;
}
