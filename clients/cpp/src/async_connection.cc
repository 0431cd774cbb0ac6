#include "async_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/post.hpp"
#include "asio/write.hpp"
#include "core.h"
#include "lane_transport.h"
#include "statehub/internal/value_codec.h"
#include "statehub/v1/lane.pb.h"

namespace statehub::client_internal {
namespace {

// Reads take what the socket has, up to this much at a time.
constexpr size_t kReadChunk = 64 * 1024;

// The async client has one session, never replaced: every hold is of it.
constexpr uint64_t kGeneration = 1;

absl::Status Unavailable(absl::string_view target, absl::string_view why,
                         const Rpc& rpc) {
  return absl::UnavailableError(
      absl::StrCat("statehub: lane connection to ", target, " ", why, "; ",
                   rpc.name, " was in flight (it may or may not have run)"));
}

}  // namespace

AsyncLoopState::AsyncLoopState() : work_(asio::make_work_guard(io_)) {}

void AsyncLoopState::Register(const std::shared_ptr<AsyncConnection>& conn) {
  absl::MutexLock lock(&mu_);
  std::erase_if(conns_, [](const std::weak_ptr<AsyncConnection>& c) {
    return c.expired();
  });
  conns_.push_back(conn);
}

void AsyncLoopState::Shutdown() {
  std::vector<std::shared_ptr<AsyncConnection>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const std::weak_ptr<AsyncConnection>& c : conns_) {
      if (std::shared_ptr<AsyncConnection> conn = c.lock()) {
        live.push_back(std::move(conn));
      }
    }
    conns_.clear();
  }
  for (const auto& conn : live) conn->Shutdown();
  // Run what is left (aborted reads and writes, posted completions) so that
  // no handler outlives the loop holding a connection.
  work_.reset();
  io_.restart();
  while (io_.poll() > 0) {
  }
}

absl::StatusOr<std::shared_ptr<AsyncConnection>> AsyncConnection::Open(
    AsyncLoopState& loop, absl::string_view address,
    const AsyncClientOptions& options) {
  absl::StatusOr<LaneAddress> parsed = ParseLaneAddress(address);
  if (!parsed.ok()) return parsed.status();
  v1::LaneHello hello;
  hello.set_protocol_version(lane::kProtocolVersion);
  hello.set_token(options.token);
  hello.set_label(options.label.empty() ? DefaultLabel() : options.label);
  hello.set_join_session_id(options.join_session_id);
  v1::Welcome welcome;
  absl::StatusOr<std::unique_ptr<LaneConnection>> opened = LaneConnection::Open(
      *parsed, hello, absl::Now() + options.connect_timeout, &welcome);
  if (!opened.ok()) return HelloRefused(opened.status(), address);
  const absl::Duration lease = welcome.lease_ttl_ms() > 0
                                   ? absl::Milliseconds(welcome.lease_ttl_ms())
                                   : absl::InfiniteDuration();
  std::shared_ptr<AsyncConnection> conn(new AsyncConnection(
      loop, *parsed, welcome.session_id(), options.join_session_id.empty(),
      lease, (*opened)->Detach()));
  if (!conn->socket_->is_open()) {
    return absl::InternalError(
        absl::StrCat("statehub: cannot put the lane connection to ",
                     parsed->target, " on the event loop"));
  }
  loop.Register(conn);
  asio::post(conn->io_, [conn] {
    conn->StartRead();
    conn->ArmKeepalive();
  });
  return conn;
}

AsyncConnection::AsyncConnection(AsyncLoopState& loop,
                                 const LaneAddress& address,
                                 std::string session_id, bool owns_session,
                                 absl::Duration lease,
                                 LaneConnection::Detached detached)
    : io_(loop.io()),
      target_(address.target),
      is_unix_(address.is_unix),
      session_id_(std::move(session_id)),
      owns_session_(owns_session),
      lease_(lease),
      reader_(std::move(detached.reader)),
      read_buffer_(kReadChunk) {
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  getsockname(detached.fd, reinterpret_cast<sockaddr*>(&local), &length);
  const asio::generic::stream_protocol protocol(
      local.ss_family, address.is_unix ? 0 : IPPROTO_TCP);
  socket_.emplace(io_);
  std::error_code error;
  socket_->assign(protocol, detached.fd, error);
  if (!error) socket_->non_blocking(true, error);
  if (error) {
    if (!socket_->is_open()) ::close(detached.fd);
    socket_->close(error);
  }
  keepalive_.emplace(io_);
}

AsyncConnection::~AsyncConnection() = default;

bool AsyncConnection::OnLoopThread() const {
  return io_.get_executor().running_in_this_thread();
}

void AsyncConnection::Send(const Rpc& rpc,
                           const google::protobuf::MessageLite& request,
                           Completion done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  if (dead_.load(std::memory_order_acquire)) {
    // No loop is left to complete it on.
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    done(Unavailable(target_, "is closed: its event loop was destroyed", rpc),
         {});
    return;
  }
  if (OnLoopThread()) {
    Start(rpc, &request, {}, std::move(done));
    return;
  }
  asio::post(
      io_, [self = shared_from_this(), &rpc, body = request.SerializeAsString(),
            done = std::move(done)]() mutable {
        self->Start(rpc, nullptr, body, std::move(done));
      });
}

void AsyncConnection::Start(const Rpc& rpc,
                            const google::protobuf::MessageLite* request,
                            absl::string_view body, Completion done) {
  if (rpc.lane_method == 0) {
    return CompleteSoon(
        std::move(done),
        absl::InternalError(absl::StrCat(
            "statehub: ", rpc.name, " is not a request of a lane method")));
  }
  if (broken_ || closing_) {
    return CompleteSoon(std::move(done),
                        Unavailable(target_, "is closed", rpc));
  }
  uint32_t id;
  while (true) {
    id = next_id_++;
    if (next_id_ == 0) next_id_ = 1;  // 0 is the server's own
    if (pending_.try_emplace(id, Pending{&rpc, std::move(done)}).second) break;
  }
  if (request != nullptr) {
    lane::AppendFrame(&out_, lane::Kind::kRequest, id, rpc.lane_method,
                      request);
  } else {
    lane::AppendFrame(&out_, lane::Kind::kRequest, id, rpc.lane_method, body);
  }
  ScheduleFlush();
}

void AsyncConnection::CompleteSoon(Completion done, absl::Status status) {
  asio::post(io_, [this, self = shared_from_this(), done = std::move(done),
                   status = std::move(status)]() mutable {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    done(std::move(status), {});
  });
}

void AsyncConnection::Complete(Pending& pending, absl::Status status,
                               absl::string_view body) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  pending.done(std::move(status), body);
}

void AsyncConnection::ScheduleFlush() {
  // The read handler flushes when its callbacks are done; a write in
  // flight flushes when it completes.
  if (in_read_ || write_in_flight_ || flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->Flush();
  });
}

void AsyncConnection::Flush() {
  if (broken_ || write_in_flight_) return;
  if (out_.empty()) return;
  writing_.swap(out_);
  out_.clear();
  write_in_flight_ = true;
  wrote_since_tick_ = true;
  asio::async_write(
      *socket_, asio::buffer(writing_),
      [self = shared_from_this()](const std::error_code& error, size_t) {
        self->write_in_flight_ = false;
        if (self->broken_) return;
        if (error) {
          return self->Fail(absl::StrCat("broke: write: ", error.message()));
        }
        self->writing_.clear();
        self->Flush();
      });
}

void AsyncConnection::StartRead() {
  if (broken_) return;
  socket_->async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const std::error_code& error, size_t bytes) {
        self->OnRead(error, bytes);
      });
}

void AsyncConnection::OnRead(const std::error_code& error, size_t bytes) {
  if (broken_) return;
  if (error) {
    return Fail(error == asio::error::eof
                    ? "was closed by the server"
                    : absl::StrCat("broke: read: ", error.message()));
  }
  reader_.Append(absl::string_view(read_buffer_.data(), bytes));
  lane::Frame frame;
  std::optional<lane::FrameError> frame_error;
  in_read_ = true;
  while (!broken_ && reader_.Next(&frame, &frame_error)) Dispatch(frame);
  in_read_ = false;
  if (broken_) return;
  if (frame_error.has_value()) {
    return Fail(absl::StrCat("from the server is malformed: ",
                             frame_error->status.message()));
  }
  CloseIfDrained();
  if (broken_) return;
  Flush();
  StartRead();
}

void AsyncConnection::Dispatch(const lane::Frame& frame) {
  const auto kind = static_cast<lane::Kind>(frame.header.kind);
  if (frame.header.request_id == 0) {
    // An ERROR about the connection itself: the server closes it. Other
    // frames the server starts (EVENT and newer kinds) are not ours.
    if (kind == lane::Kind::kError) {
      Fail(absl::StrCat("was refused by the server (",
                        LaneErrorStatus(frame.body).ToString(), ")"));
    }
    return;
  }
  if (kind != lane::Kind::kResponse && kind != lane::Kind::kError) return;
  auto it = pending_.find(frame.header.request_id);
  if (it == pending_.end()) return;
  Pending pending = std::move(it->second);
  pending_.erase(it);
  if (kind == lane::Kind::kResponse) {
    Complete(pending, absl::OkStatus(), frame.body);
  } else {
    Complete(pending, LaneErrorStatus(frame.body), {});
  }
}

void AsyncConnection::ArmKeepalive() {
  // On a Unix socket the owning connection holds the session by being
  // open; over TCP the lease runs and wants a frame every lease/3.
  if (broken_ || is_unix_ || lease_ == absl::InfiniteDuration()) return;
  keepalive_->expires_after(absl::ToChronoNanoseconds(lease_ / 3));
  keepalive_->async_wait(
      [self = shared_from_this()](const std::error_code& error) {
        if (error || self->broken_) return;
        if (!self->wrote_since_tick_ && !self->closing_) {
          lane::AppendFrame(&self->out_, lane::Kind::kPing, 0, 0,
                            absl::string_view());
          self->Flush();
        }
        self->wrote_since_tick_ = false;
        self->ArmKeepalive();
      });
}

void AsyncConnection::Close() {
  if (dead_.load(std::memory_order_acquire)) return;
  if (OnLoopThread()) return DoClose();
  asio::post(io_, [self = shared_from_this()] { self->DoClose(); });
}

void AsyncConnection::DoClose() {
  if (closing_ || broken_) return;
  closing_ = true;
  if (!owns_session_) {
    // GOODBYE would end the session it joined: close once answered.
    CloseIfDrained();
    return;
  }
  // The server answers what came before, then closes: the read handler
  // sees the end of the stream and fails whatever is left.
  lane::AppendFrame(&out_, lane::Kind::kGoodbye, 0, 0, absl::string_view());
  ScheduleFlush();
}

void AsyncConnection::CloseIfDrained() {
  if (closing_ && !owns_session_ && pending_.empty()) Fail("is closed");
}

void AsyncConnection::Fail(absl::string_view why) {
  if (broken_) return;
  broken_ = true;
  std::error_code ignored;
  socket_->close(ignored);
  keepalive_->cancel();
  out_.clear();
  // In the order the calls were issued (ids only grow, short of wrapping).
  std::vector<std::pair<uint32_t, Pending>> failed;
  failed.reserve(pending_.size());
  for (auto& [id, pending] : pending_) {
    failed.emplace_back(id, std::move(pending));
  }
  pending_.clear();
  std::sort(failed.begin(), failed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [id, pending] : failed) {
    Complete(pending, Unavailable(target_, why, *pending.rpc), {});
  }
}

void AsyncConnection::Shutdown() {
  dead_.store(true, std::memory_order_release);
  Fail("is closed: its event loop was destroyed");
  keepalive_.reset();
  socket_.reset();
}

absl::StatusOr<Value> AsyncConnection::Decode(const v1::Value& wire) const {
  absl::StatusOr<Value> value = internal::DecodeValue(wire, kMaxDecodeDepth);
  if (value.ok()) {
    AttachHolds(*value,
                [&](const std::string& name) { return MakeHold(name); });
  }
  return value;
}

std::shared_ptr<const void> AsyncConnection::MakeHold(std::string name) const {
  return MakeHoldToken(weak_from_this(), std::move(name), kGeneration);
}

void AsyncConnection::ReleaseHold(uint64_t, std::string name) const {
  {
    absl::MutexLock lock(&release_mu_);
    releases_.push_back(std::move(name));
    if (release_posted_) return;
    release_posted_ = true;
  }
  if (dead_.load(std::memory_order_acquire)) return;
  // The loop sends them, ahead of whatever it writes next.
  auto self = std::const_pointer_cast<AsyncConnection>(shared_from_this());
  asio::post(io_, [self] {
    std::vector<std::string> names;
    {
      absl::MutexLock lock(&self->release_mu_);
      names.swap(self->releases_);
      self->release_posted_ = false;
    }
    if (self->broken_ || self->closing_) return;
    self->out_.append(ReleaseFrames(std::move(names)));
    self->ScheduleFlush();
  });
}

}  // namespace statehub::client_internal
