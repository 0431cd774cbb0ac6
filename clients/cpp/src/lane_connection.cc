#include "lane_connection.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "statehub/status.h"

namespace statehub::client_internal {
namespace {

// Replies can be large (Items of a big dict); the same bound as the gRPC
// channel's receive limit.
constexpr uint32_t kMaxReceiveBytes = 64u << 20;
constexpr size_t kReadChunk = 64 * 1024;

// PollTimeoutMs is poll()'s timeout for `deadline`: -1 for none, rounded up
// so a wait never ends before the deadline.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  const int64_t ms =
      absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

std::string ErrnoText(int error) { return std::strerror(error); }

// SplitHostPort splits "host:port" or "[v6]:port".
absl::Status SplitHostPort(absl::string_view hp, LaneAddress* out) {
  if (absl::ConsumePrefix(&hp, "[")) {
    const size_t close = hp.find(']');
    if (close == absl::string_view::npos || hp.size() < close + 2 ||
        hp[close + 1] != ':') {
      return absl::InvalidArgumentError("");
    }
    out->host = std::string(hp.substr(0, close));
    out->port = std::string(hp.substr(close + 2));
  } else {
    const size_t colon = hp.rfind(':');
    if (colon == absl::string_view::npos) return absl::InvalidArgumentError("");
    out->host = std::string(hp.substr(0, colon));
    out->port = std::string(hp.substr(colon + 1));
  }
  int port = 0;
  if (out->host.empty() || !absl::SimpleAtoi(out->port, &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError("");
  }
  return absl::OkStatus();
}

// ConnectSocket opens a connected socket by `deadline`.
absl::StatusOr<int> ConnectSocket(const LaneAddress& address,
                                  absl::Time deadline) {
  auto unavailable = [&](absl::string_view what, int error) {
    return absl::UnavailableError(
        absl::StrFormat("statehub: cannot connect to %s: %s: %s",
                        address.target, what, ErrnoText(error)));
  };
  // Connect without blocking so the deadline holds, then go back to
  // blocking I/O with poll() for deadlines.
  auto finish = [&](int fd, const sockaddr* sa,
                    socklen_t len) -> absl::StatusOr<int> {
    if (connect(fd, sa, len) != 0) {
      if (errno != EINPROGRESS) {
        const int error = errno;
        close(fd);
        return unavailable("connect", error);
      }
      pollfd p{fd, POLLOUT, 0};
      const int ready = poll(&p, 1, PollTimeoutMs(deadline));
      int error = 0;
      socklen_t error_len = sizeof(error);
      if (ready == 0) {
        close(fd);
        return absl::DeadlineExceededError(absl::StrFormat(
            "statehub: cannot connect to %s in time", address.target));
      }
      if (ready < 0 ||
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0 ||
          error != 0) {
        if (error == 0) error = errno;
        close(fd);
        return unavailable("connect", error);
      }
    }
    const int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
  };

  if (address.is_unix) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof(sa.sun_path)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "statehub: Unix socket path too long: %s", address.target));
    }
    std::memcpy(sa.sun_path, address.path.data(), address.path.size());
    const int fd =
        socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return unavailable("socket", errno);
    const socklen_t len = static_cast<socklen_t>(
        offsetof(sockaddr_un, sun_path) + address.path.size() +
        (address.path.empty() || address.path[0] != '\0' ? 1 : 0));
    return finish(fd, reinterpret_cast<const sockaddr*>(&sa), len);
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(address.host.c_str(), address.port.c_str(),
                                 &hints, &found);
      rc != 0) {
    return absl::UnavailableError(absl::StrFormat(
        "statehub: cannot resolve %s: %s", address.target, gai_strerror(rc)));
  }
  absl::Status last = absl::UnavailableError(
      absl::StrFormat("statehub: %s resolves to no address", address.target));
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
               ai->ai_protocol);
    if (fd < 0) {
      last = unavailable("socket", errno);
      continue;
    }
    // One small frame per call: never let Nagle hold a request back.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::StatusOr<int> connected = finish(fd, ai->ai_addr, ai->ai_addrlen);
    if (connected.ok()) {
      freeaddrinfo(found);
      return connected;
    }
    last = connected.status();
  }
  freeaddrinfo(found);
  return last;
}

}  // namespace

absl::StatusOr<LaneAddress> ParseLaneAddress(absl::string_view target) {
  LaneAddress out;
  out.target = std::string(target);
  absl::string_view rest = target;
  if (absl::ConsumePrefix(&rest, "unix-abstract:")) {
    out.is_unix = true;
    out.path = absl::StrCat(absl::string_view("\0", 1), rest);
    return out;
  }
  if (absl::ConsumePrefix(&rest, "unix:")) {
    out.is_unix = true;
    // "unix:///abs" and "unix:/abs" are absolute; "unix:rel" is relative.
    if (absl::StartsWith(rest, "//")) rest.remove_prefix(2);
    out.path = std::string(rest);
    if (out.path.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "statehub: no socket path in address \"%s\"", target));
    }
    return out;
  }
  if (!absl::ConsumePrefix(&rest, "dns:///") &&
      !absl::ConsumePrefix(&rest, "ipv4:")) {
    absl::ConsumePrefix(&rest, "ipv6:");
  }
  if (!SplitHostPort(rest, &out).ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "statehub: address \"%s\" is neither unix:///path nor host:port",
        target));
  }
  return out;
}

absl::Status LaneErrorStatus(absl::string_view body) {
  v1::LaneError error;
  if (!error.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::InternalError("statehub: the server sent a malformed ERROR");
  }
  const auto code = static_cast<absl::StatusCode>(error.code());
  if (code == absl::StatusCode::kOk) {
    return absl::InternalError(
        "statehub: the server sent an ERROR with code 0");
  }
  // The lane refuses a frame over --max_message_bytes before any handler
  // sees it, so no ErrorDetail names the limit (kind unspecified): name it,
  // as the gRPC path does for gRPC's own refusal.
  if (code == absl::StatusCode::kResourceExhausted &&
      error.detail().kind() == v1::ERROR_KIND_UNSPECIFIED &&
      absl::StrContains(error.message(), "max_message_bytes")) {
    return MakeError(
        code, ErrorKind::kLimitExceeded,
        absl::StrCat("the message exceeds the server's --max_message_bytes (",
                     error.message(), ")"),
        {}, "max_message_bytes");
  }
  std::string detail;
  if (error.has_detail()) detail = error.detail().SerializeAsString();
  return StatusFromWire(code, error.message(), detail);
}

LaneConnection::LaneConnection(int fd, bool is_unix)
    : fd_(fd), is_unix_(is_unix), reader_(kMaxReceiveBytes, false) {}

LaneConnection::~LaneConnection() {
  if (fd_ >= 0) close(fd_);
}

LaneConnection::Detached LaneConnection::Detach() {
  Detached detached{fd_, std::move(reader_)};
  fd_ = -1;
  broken_ = true;
  return detached;
}

absl::Status LaneConnection::Probe(const LaneAddress& address,
                                   absl::Time deadline) {
  absl::StatusOr<int> fd = ConnectSocket(address, deadline);
  if (!fd.ok()) return fd.status();
  close(*fd);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<LaneConnection>> LaneConnection::Open(
    const LaneAddress& address, const v1::LaneHello& hello, absl::Time deadline,
    v1::Welcome* welcome) {
  absl::StatusOr<int> fd = ConnectSocket(address, deadline);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<LaneConnection> conn(
      new LaneConnection(*fd, address.is_unix));
  std::string& out = conn->out_;
  out.assign(lane::kPreface.data(), lane::kPreface.size());
  lane::AppendFrame(&out, lane::Kind::kHello, 0, 0, &hello);
  if (absl::Status s = conn->WriteAll(out, deadline); !s.ok()) return s;
  while (true) {
    lane::Frame frame;
    if (absl::Status s = conn->ReadFrame(&frame, deadline); !s.ok()) {
      if (absl::IsDeadlineExceeded(s)) {
        return absl::DeadlineExceededError(absl::StrFormat(
            "statehub: no lane WELCOME from %s in time", address.target));
      }
      return s;
    }
    const auto kind = static_cast<lane::Kind>(frame.header.kind);
    if (kind == lane::Kind::kWelcome) {
      if (!welcome->ParseFromArray(frame.body.data(),
                                   static_cast<int>(frame.body.size())) ||
          welcome->session_id().empty()) {
        return absl::InternalError(
            "statehub: the server's lane WELCOME has no session id");
      }
      return conn;
    }
    if (kind == lane::Kind::kError) return LaneErrorStatus(frame.body);
    if (frame.header.request_id != 0 || kind != lane::Kind::kEvent) {
      return absl::InternalError(
          absl::StrCat("statehub: the server answered HELLO with ",
                       lane::KindName(frame.header.kind)));
    }
  }
}

absl::Status LaneConnection::Call(uint16_t method, const CallNumber& number,
                                  const google::protobuf::MessageLite& request,
                                  google::protobuf::MessageLite* response,
                                  absl::string_view prefix, absl::Time deadline,
                                  absl::Duration cancel_grace, bool* sent) {
  *sent = false;
  if (broken_)
    return absl::UnavailableError("statehub: lane connection broken");
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;  // 0 is the server's own
  out_.assign(prefix.data(), prefix.size());
  if (number.number == 0) {
    lane::AppendFrame(&out_, lane::Kind::kRequest, id, method, &request);
  } else {
    AppendNumbered(id, method, number, request);
  }
  if (absl::Status s = WriteAll(out_, deadline); !s.ok()) {
    // A request not wholly written leaves the stream mid-frame.
    broken_ = true;
    return s;
  }
  *sent = true;
  bool cancelled = false;
  while (true) {
    lane::Frame frame;
    absl::Status read = ReadFrame(&frame, deadline);
    if (absl::IsDeadlineExceeded(read) && !cancelled) {
      cancelled = true;
      out_.clear();
      lane::AppendFrame(&out_, lane::Kind::kCancel, id, 0, absl::string_view());
      deadline = absl::Now() + cancel_grace;
      if (absl::Status s = WriteAll(out_, deadline); !s.ok()) {
        broken_ = true;
        return s;
      }
      continue;
    }
    if (!read.ok()) {
      // Past the grace too: the reply may still come, so the stream is out
      // of step with us.
      broken_ = true;
      if (absl::IsDeadlineExceeded(read)) {
        return absl::DeadlineExceededError(
            "statehub: lane call deadline exceeded and the server did not "
            "answer its CANCEL");
      }
      return read;
    }
    const auto kind = static_cast<lane::Kind>(frame.header.kind);
    if (frame.header.request_id == 0) {
      // An ERROR about the connection itself: the server closes it.
      if (kind == lane::Kind::kError) {
        broken_ = true;
        return LaneErrorStatus(frame.body);
      }
      continue;  // EVENT and newer server-started frames: not ours
    }
    if (frame.header.request_id != id) continue;  // a stale PONG
    if (kind == lane::Kind::kResponse) {
      if (!response->ParseFromArray(frame.body.data(),
                                    static_cast<int>(frame.body.size()))) {
        return absl::InternalError(absl::StrCat(
            "statehub: malformed lane reply for ", response->GetTypeName()));
      }
      return absl::OkStatus();
    }
    if (kind == lane::Kind::kError) {
      absl::Status s = LaneErrorStatus(frame.body);
      if (cancelled && absl::IsCancelled(s)) {
        return absl::DeadlineExceededError(
            "statehub: lane call deadline exceeded");
      }
      // A transport error about our request (a frame over the server's
      // limit): the server closes the connection after it.
      if (GetErrorKind(s) == ErrorKind::kLimitExceeded &&
          GetErrorLimit(s) == "max_message_bytes") {
        broken_ = true;
      }
      return s;
    }
  }
}

void LaneConnection::AppendNumbered(
    uint32_t id, uint16_t method, const CallNumber& number,
    const google::protobuf::MessageLite& request) {
  // The header goes in last: the body's length is known once it is
  // serialized in place.
  const size_t at = out_.size();
  out_.resize(at + lane::kHeaderSize + lane::kNumberSize);
  char* prefix = out_.data() + at + lane::kHeaderSize;
  absl::little_endian::Store64(prefix, number.number);
  absl::little_endian::Store64(prefix + 8, number.seen);
  request.AppendToString(&out_);
  lane::Header header;
  header.length = static_cast<uint32_t>(out_.size() - at - lane::kHeaderSize);
  header.request_id = id;
  header.method = method;
  header.kind = static_cast<uint8_t>(lane::Kind::kRequest);
  header.flags = lane::kNumbered;
  lane::EncodeHeader(header, out_.data() + at);
}

absl::Status LaneConnection::Ping(absl::string_view prefix,
                                  absl::Time deadline) {
  if (broken_)
    return absl::UnavailableError("statehub: lane connection broken");
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  out_.assign(prefix.data(), prefix.size());
  lane::AppendFrame(&out_, lane::Kind::kPing, id, 0, absl::string_view());
  if (absl::Status s = WriteAll(out_, deadline); !s.ok()) {
    broken_ = true;
    return s;
  }
  while (true) {
    lane::Frame frame;
    if (absl::Status s = ReadFrame(&frame, deadline); !s.ok()) {
      broken_ = true;
      return s;
    }
    const auto kind = static_cast<lane::Kind>(frame.header.kind);
    if (frame.header.request_id == 0 && kind == lane::Kind::kError) {
      broken_ = true;
      return LaneErrorStatus(frame.body);
    }
    if (kind == lane::Kind::kPong && frame.header.request_id == id) {
      return absl::OkStatus();
    }
  }
}

absl::StatusOr<uint32_t> LaneConnection::StartCall(
    uint16_t method, const google::protobuf::MessageLite& request,
    absl::Time deadline) {
  if (broken_)
    return absl::UnavailableError("statehub: lane connection broken");
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  out_.clear();
  lane::AppendFrame(&out_, lane::Kind::kRequest, id, method, &request);
  if (absl::Status s = WriteAll(out_, deadline); !s.ok()) {
    broken_ = true;
    return s;
  }
  return id;
}

absl::Status LaneConnection::SendPing(absl::Time deadline) {
  if (broken_)
    return absl::UnavailableError("statehub: lane connection broken");
  const uint32_t id = next_id_++;
  if (next_id_ == 0) next_id_ = 1;
  out_.clear();
  lane::AppendFrame(&out_, lane::Kind::kPing, id, 0, absl::string_view());
  if (absl::Status s = WriteAll(out_, deadline); !s.ok()) {
    broken_ = true;
    return s;
  }
  return absl::OkStatus();
}

void LaneConnection::Shutdown() {
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

void LaneConnection::Goodbye(absl::Time deadline) {
  if (broken_) return;
  out_.clear();
  lane::AppendFrame(&out_, lane::Kind::kGoodbye, 0, 0, absl::string_view());
  if (WriteAll(out_, deadline).ok()) {
    // The server closes once the session's end is done: read to EOF.
    lane::Frame frame;
    while (ReadFrame(&frame, deadline).ok()) {
    }
  }
  broken_ = true;
}

bool LaneConnection::PeerClosed() {
  if (broken_) return true;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) != 0) broken_ = true;
  return broken_;
}

absl::Status LaneConnection::Break(absl::string_view why) {
  broken_ = true;
  return absl::UnavailableError(
      absl::StrCat("statehub: lane connection ", why));
}

absl::Status LaneConnection::Wait(short events, absl::Time deadline) {
  while (true) {
    pollfd p{fd_, events, 0};
    const int ready = poll(&p, 1, PollTimeoutMs(deadline));
    if (ready > 0) return absl::OkStatus();
    if (ready == 0) {
      if (absl::Now() < deadline) continue;  // woke a hair early
      return absl::DeadlineExceededError("statehub: lane deadline exceeded");
    }
    if (errno != EINTR) return Break(absl::StrCat("poll: ", ErrnoText(errno)));
  }
}

absl::Status LaneConnection::WriteAll(absl::string_view bytes,
                                      absl::Time deadline) {
  while (!bytes.empty()) {
    const ssize_t n =
        send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (absl::Status s = Wait(POLLOUT, deadline); !s.ok()) {
        broken_ = true;
        return s;
      }
      continue;
    }
    return Break(absl::StrCat("write: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::Status LaneConnection::ReadFrame(lane::Frame* frame,
                                       absl::Time deadline) {
  in_.resize(kReadChunk);
  while (true) {
    std::optional<lane::FrameError> error;
    if (reader_.Next(frame, &error)) return absl::OkStatus();
    if (error.has_value()) {
      return Break(absl::StrCat("from the server is malformed: ",
                                error->status.message()));
    }
    // Without a deadline a blocking recv is one syscall; with one, poll
    // first (the reply is rarely there before we ask).
    if (deadline != absl::InfiniteFuture()) {
      if (absl::Status s = Wait(POLLIN, deadline); !s.ok()) return s;
    }
    const ssize_t n = recv(fd_, in_.data(), in_.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n == 0) return Break("closed by the server");
    if (n < 0) return Break(absl::StrCat("read: ", ErrnoText(errno)));
    reader_.Append(absl::string_view(in_.data(), static_cast<size_t>(n)));
  }
}

}  // namespace statehub::client_internal
