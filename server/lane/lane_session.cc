#include "server/lane/lane_session.h"

#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/engine/object.h"
#include "server/handlers/watch_handlers.h"
#include "spdlog/spdlog.h"
#include "statehub/status.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/session.pb.h"
#include "statehub/v1/watch.pb.h"

namespace statehub::lane {
namespace {

using google::protobuf::Message;
using handlers::Method;

// The session whose Feed runs on this thread, if any: a call finished
// inside Feed joins the batch Feed writes at its end.
thread_local const LaneSession* current_feed = nullptr;

// The sessions of this thread (an event loop) with replies held for the
// log write at the end of the loop's pass (LaneSession::Hold).
thread_local std::vector<std::shared_ptr<LaneSession>> pass_sessions;

std::string ErrorFrame(uint32_t request_id, const absl::Status& status) {
  v1::LaneError error;
  error.set_code(static_cast<int32_t>(status.code()));
  error.set_message(std::string(status.message()));
  const std::string detail = SerializeErrorDetail(status);
  if (!detail.empty()) (void)error.mutable_detail()->ParseFromString(detail);
  std::string frame;
  AppendFrame(&frame, Kind::kError, request_id, 0, &error);
  return frame;
}

std::string ReplyFrame(uint32_t request_id, const absl::Status& status,
                       const Message& response) {
  if (!status.ok()) return ErrorFrame(request_id, status);
  std::string frame;
  AppendFrame(&frame, Kind::kResponse, request_id, 0, &response);
  return frame;
}

absl::Status Parse(const Method& m, absl::string_view body, Message* out) {
  if (out->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: the request is not a valid %s", m.full_name,
                      m.request->GetDescriptor()->full_name()));
}

absl::Status Protocol(absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrFormat("lane protocol error: %s (api/LANE.md)", message));
}

}  // namespace

// A call that may park: shared by the session's table of parked calls and
// whoever is finishing it; owns its messages.
class LaneSession::LaneCall final : public handlers::Call {
 public:
  LaneCall(std::shared_ptr<LaneSession> session, uint32_t request_id,
           const Method& m, Caller caller)
      : Call(handlers::Transport::kLane, caller, &session->timers_,
             session->observer_, m.index, &session->engine_.changes(),
             m.read_only),
        session_(std::move(session)),
        request_id_(request_id),
        request_(m.request->New()),
        response_(m.response->New()) {}
  ~LaneCall() override = default;

  Message* request() { return request_.get(); }
  Message* response() { return response_.get(); }

 private:
  void Send(const absl::Status& status) override {
    // Deliver drops the table's reference: keep the session alive here.
    std::shared_ptr<LaneSession> session = session_;
    session->Deliver(request_id_, ReplyFrame(request_id_, status, *response_));
  }

  const std::shared_ptr<LaneSession> session_;
  const uint32_t request_id_;
  const std::unique_ptr<Message> request_;
  const std::unique_ptr<Message> response_;
};

// A call that answers before its handler returns: on Feed's stack. On a
// data dir its reply is held for the log write at the end of the loop's
// pass (Hold) rather than waiting for a write of its own (Call::Finish).
class LaneSession::ImmediateCall final : public handlers::Call {
 public:
  ImmediateCall(LaneSession& session, uint32_t request_id, const Method& m,
                Message* response)
      : Call(handlers::Transport::kLane, Caller{session.session_},
             &session.timers_, session.observer_, m.index,
             /*changes=*/nullptr, m.read_only),
        session_(session),
        request_id_(request_id),
        read_only_(m.read_only),
        hold_(session.engine_.changes().durable()),
        response_(response) {}
  ~ImmediateCall() override = default;

 private:
  void Send(const absl::Status& status) override {
    std::string frame = ReplyFrame(request_id_, status, *response_);
    if (hold_) {
      session_.Hold(request_id_, read_only_, std::move(frame));
    } else {
      session_.Out(std::move(frame));
    }
  }

  LaneSession& session_;
  const uint32_t request_id_;
  const bool read_only_;
  const bool hold_;
  Message* const response_;
};

LaneSession::LaneSession(Engine& engine, const handlers::MethodTable& table,
                         handlers::Timers& timers,
                         handlers::RpcObserver* observer, Options options,
                         std::shared_ptr<Link> link)
    : engine_(engine),
      table_(table),
      timers_(timers),
      observer_(observer),
      options_(options),
      reader_(options.max_message_bytes, /*expect_preface=*/true),
      requests_(table.methods().size()),
      responses_(table.methods().size()),
      link_(std::move(link)) {}

LaneSession::~LaneSession() {
  for (auto& [id, watch] : watches_) watch.watch->Cancel();
}

std::shared_ptr<LaneSession::Link> LaneSession::CurrentLink() const {
  MutexLock lock(&mu_);
  return link_;
}

size_t LaneSession::parked_calls() const {
  MutexLock lock(&mu_);
  return parked_.size();
}

void LaneSession::Feed(absl::string_view bytes) {
  if (state_ == State::kClosed) return;
  reader_.Append(bytes);
  current_feed = this;
  feeding_ = true;
  Frame frame;
  std::optional<FrameError> error;
  while (state_ != State::kClosed && reader_.Next(&frame, &error)) {
    OnFrame(frame);
  }
  if (error && state_ != State::kClosed) Fail(error->request_id, error->status);
  feeding_ = false;
  current_feed = nullptr;
  const std::shared_ptr<Link> link = CurrentLink();
  if (link == nullptr) return;
  if (!batch_.empty()) {
    link->Write(std::move(batch_));
    batch_.clear();
  }
  if (state_ == State::kClosed) {
    // The connection ends (GOODBYE, a protocol error): what is held goes
    // now, after the log write it waits for, not at the pass's end.
    if (!held_.empty()) Release(WriteLog(engine_));
    link->Close();
    Closed();
  }
}

absl::Status LaneSession::WriteLog(Engine& engine) {
  // Hold is only used when the log answers inline.
  absl::Status durable = absl::InternalError("the log did not answer");
  engine.changes().AfterCommit(
      [&durable](absl::Status s) { durable = std::move(s); });
  return durable;
}

void LaneSession::Out(std::string frame) {
  if (!held_.empty()) {
    held_.push_back(HeldReply{0, false, false, std::move(frame)});
    return;
  }
  if (feeding_) {
    batch_.append(frame);
    return;
  }
  const std::shared_ptr<Link> link = CurrentLink();
  if (link != nullptr) link->Write(std::move(frame));
}

void LaneSession::Hold(uint32_t request_id, bool read_only, std::string frame) {
  const bool first = held_.empty();
  held_.push_back(HeldReply{request_id, true, read_only, std::move(frame)});
  if (!first) return;
  const std::shared_ptr<Link> link = CurrentLink();
  if (link == nullptr) {
    held_.clear();  // closed: the replies go nowhere
    return;
  }
  const bool start = pass_sessions.empty();
  pass_sessions.push_back(shared_from_this());
  if (start) link->Defer(&LaneSession::EndPass);
}

void LaneSession::EndPass() {
  std::vector<std::shared_ptr<LaneSession>> sessions;
  sessions.swap(pass_sessions);
  if (sessions.empty()) return;
  // One write of everything published so far covers every held reply.
  const absl::Status durable = WriteLog(sessions.front()->engine_);
  for (const std::shared_ptr<LaneSession>& session : sessions) {
    session->Release(durable);
  }
}

void LaneSession::Release(const absl::Status& durable) {
  std::vector<HeldReply> held;
  held.swap(held_);
  std::string out;
  for (HeldReply& reply : held) {
    // A call that only read is answered while changes cannot be logged
    // (ChangeStream::AfterCommit).
    if (!reply.held || reply.read_only || durable.ok()) {
      out.append(reply.frame);
    } else {
      out.append(ErrorFrame(reply.request_id, durable));
    }
  }
  if (out.empty()) return;
  if (feeding_) {
    batch_.append(out);
    return;
  }
  const std::shared_ptr<Link> link = CurrentLink();
  if (link != nullptr) link->Write(std::move(out));
}

void LaneSession::Deliver(uint32_t request_id, std::string frame) {
  std::shared_ptr<LaneCall> done;
  std::shared_ptr<Link> link;
  {
    MutexLock lock(&mu_);
    auto it = parked_.find(request_id);
    if (it != parked_.end()) {
      done = std::move(it->second);
      parked_.erase(it);
    }
    link = link_;
  }
  if (link == nullptr) return;
  if (current_feed == this) {
    // Finished while its REQUEST (or another frame) was being served.
    Out(std::move(frame));
    return;
  }
  link->Dispatch([link, frame = std::move(frame)]() mutable {
    link->Write(std::move(frame));
  });
}

void LaneSession::OnFrame(const Frame& frame) {
  const auto kind = static_cast<Kind>(frame.header.kind);
  if (state_ == State::kHello) {
    if (kind != Kind::kHello) {
      return Fail(
          0, Protocol(absl::StrFormat("the first frame must be HELLO, not %s",
                                      KindName(frame.header.kind))));
    }
    return OnHello(frame);
  }
  switch (kind) {
    case Kind::kRequest:
      return OnRequest(frame);
    case Kind::kCancel:
      return OnCancel(frame.header.request_id);
    case Kind::kPing: {
      if (absl::Status s = Admit(); !s.ok()) {
        return SendError(frame.header.request_id, s);
      }
      std::string pong;
      AppendFrame(&pong, Kind::kPong, frame.header.request_id, 0,
                  absl::string_view());
      return Out(std::move(pong));
    }
    case Kind::kRelease: {
      v1::Release release;
      if (!release.ParseFromArray(frame.body.data(),
                                  static_cast<int>(frame.body.size()))) {
        return Fail(0, Protocol("RELEASE body is not a statehub.v1.Release"));
      }
      engine_.registry().ReleaseHolds(
          session_, {release.names().begin(), release.names().end()});
      return;
    }
    case Kind::kGoodbye: {
      v1::Goodbye goodbye;
      if (!goodbye.ParseFromArray(frame.body.data(),
                                  static_cast<int>(frame.body.size()))) {
        return Fail(0, Protocol("GOODBYE body is not a statehub.v1.Goodbye"));
      }
      SPDLOG_DEBUG("session {} said goodbye on the lane",
                   SessionTable::FormatId(session_));
      engine_.sessions().End(session_, goodbye);
      pinned_ = false;
      state_ = State::kClosed;
      return;
    }
    case Kind::kHello:
      return Fail(0, Protocol("HELLO sent twice on one connection"));
    default:
      return Fail(0, Protocol(absl::StrFormat("a client may not send %s frames",
                                              KindName(frame.header.kind))));
  }
}

void LaneSession::OnHello(const Frame& frame) {
  v1::LaneHello hello;
  if (!hello.ParseFromArray(frame.body.data(),
                            static_cast<int>(frame.body.size()))) {
    return Fail(0, Protocol("HELLO body is not a statehub.v1.LaneHello"));
  }
  if (hello.protocol_version() != kProtocolVersion) {
    return Fail(0, absl::FailedPreconditionError(absl::StrFormat(
                       "lane protocol version %d is not supported: this "
                       "server speaks version %d",
                       hello.protocol_version(), kProtocolVersion)));
  }
  if (engine_.requires_token()) {
    if (absl::Status s = engine_.CheckToken(hello.token()); !s.ok()) {
      return Fail(0, s);
    }
  }
  const absl::Time now = absl::Now();
  bool resumed = false;
  if (!hello.join_session_id().empty()) {
    if (!hello.resume_session_id().empty()) {
      return Fail(0, Protocol("HELLO names both a session to resume and one "
                              "to join"));
    }
    absl::StatusOr<Caller> joined =
        engine_.ResolveCaller(hello.join_session_id(), now);
    if (!joined.ok()) return Fail(0, joined.status());
    session_ = joined->session;
    resumed = true;
  } else {
    absl::StatusOr<SessionTable::Opened> opened = engine_.sessions().Open(
        SessionTable::ParseId(hello.resume_session_id()), hello.label(), now);
    if (!opened.ok()) return Fail(0, opened.status());
    session_ = opened->id;
    resumed = opened->resumed;
    owner_ = true;
    if (options_.unix_socket) pinned_ = engine_.sessions().Pin(session_);
  }
  SPDLOG_DEBUG(
      "session {} {} on the lane ({})", SessionTable::FormatId(session_),
      owner_ ? (resumed ? "resumed" : "opened") : "joined", hello.label());
  v1::Welcome welcome;
  welcome.set_session_id(SessionTable::FormatId(session_));
  welcome.set_resumed(resumed);
  welcome.set_lease_ttl_ms(absl::ToInt64Milliseconds(engine_.sessions().ttl()));
  // A session can outlive this connection with a data dir (a restart), or
  // over TCP (a connection lost while the server runs): then a retry may
  // meet a call that ran, and numbered calls make it run once.
  welcome.set_number_calls(engine_.changes().durable() ||
                           !options_.unix_socket);
  std::string out;
  AppendFrame(&out, Kind::kWelcome, 0, 0, &welcome);
  Out(std::move(out));
  state_ = State::kReady;
}

absl::Status LaneSession::Admit() {
  const absl::Time now = absl::Now();
  if (engine_.sessions().Touch(session_, now)) return absl::OkStatus();
  absl::StatusOr<Caller> caller =
      engine_.ResolveCaller(SessionTable::FormatId(session_), now);
  if (!caller.ok()) return caller.status();
  return MakeError(absl::StatusCode::kFailedPrecondition,
                   ErrorKind::kSessionError,
                   "the connection's session has ended; reconnect");
}

void LaneSession::OnRequest(const Frame& frame) {
  const uint32_t id = frame.header.request_id;
  const Method* m = table_.ByLaneId(frame.header.method);
  if (m == nullptr && frame.header.method == handlers::WatchLaneId()) {
    absl::string_view body = frame.body;
    // A watch changes nothing, so a number has nothing to guard.
    if ((frame.header.flags & kNumbered) && body.size() >= kNumberSize) {
      body.remove_prefix(kNumberSize);
    }
    return OnWatch(id, body);
  }
  if (m == nullptr) {
    return SendError(id, absl::UnimplementedError(absl::StrFormat(
                             "lane method id %d is not an rpc of this server "
                             "(api/LANE.md lists them)",
                             frame.header.method)));
  }
  absl::string_view body = frame.body;
  uint64_t number = 0;
  uint64_t seen = 0;
  if (frame.header.flags & kNumbered) {
    if (body.size() < kNumberSize) {
      return SendError(id, Protocol(absl::StrFormat(
                               "a NUMBERED REQUEST of %d bytes: its body "
                               "starts with 16 bytes, the call's number and "
                               "the client's seen",
                               body.size())));
    }
    number = absl::little_endian::Load64(body.data());
    seen = absl::little_endian::Load64(body.data() + 8);
    body.remove_prefix(kNumberSize);
    if (number == 0) {
      return SendError(id, Protocol("a NUMBERED REQUEST numbered 0: numbers "
                                    "start at 1"));
    }
  }
  const absl::Status admitted = Admit();
  ChangeAuthor author(session_);
  // Under --fsync=always a reply waits for the log's sync thread
  // (Call::Finish), so the call must outlive this frame: it goes the
  // parked calls' way. Otherwise the reply is held until the log is
  // written at the end of the loop's pass (Hold).
  if (m->blocking || !engine_.changes().commits_inline()) {
    auto call = std::make_shared<LaneCall>(shared_from_this(), id, *m,
                                           Caller{session_});
    {
      MutexLock lock(&mu_);
      if (!parked_.emplace(id, call).second) {
        // Not the table's: finishing it must not touch the call in flight.
        SendError(id, Protocol(absl::StrFormat(
                          "request id %d is already in flight", id)));
        return;
      }
    }
    absl::Status s = admitted;
    if (s.ok()) s = Parse(*m, body, call->request());
    if (!s.ok()) return call->Finish(s);
    return handlers::Serve(engine_, *m, call.get(), number, seen,
                           *call->request(), call->response());
  }
  std::unique_ptr<Message>& request = requests_[m->index];
  std::unique_ptr<Message>& response = responses_[m->index];
  if (request == nullptr) {
    request.reset(m->request->New());
    response.reset(m->response->New());
  } else {
    request->Clear();
    response->Clear();
  }
  ImmediateCall call(*this, id, *m, response.get());
  absl::Status s = admitted;
  if (s.ok()) s = Parse(*m, body, request.get());
  if (!s.ok()) return call.Finish(s);
  handlers::Serve(engine_, *m, &call, number, seen, *request, response.get());
}

void LaneSession::OnWatch(uint32_t request_id, absl::string_view body) {
  if (absl::Status s = Admit(); !s.ok()) return SendError(request_id, s);
  if (request_id == 0) {
    // Its EVENT frames carry the id, and 0 is the server's own frames'.
    return SendError(0, Protocol("a Watches.Watch REQUEST needs a request "
                                 "id other than 0"));
  }
  bool in_flight = watches_.contains(request_id);
  if (!in_flight) {
    MutexLock lock(&mu_);
    in_flight = parked_.contains(request_id);
  }
  if (in_flight) {
    return SendError(request_id,
                     Protocol(absl::StrFormat(
                         "request id %d is already in flight", request_id)));
  }
  v1::WatchRequest request;
  if (!request.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return SendError(request_id,
                     Protocol("the body of a Watches.Watch REQUEST is not a "
                              "statehub.v1.WatchRequest"));
  }
  std::weak_ptr<LaneSession> self = weak_from_this();
  std::weak_ptr<Link> link = CurrentLink();
  absl::StatusOr<std::shared_ptr<Watch>> watch = engine_.watches().Start(
      handlers::WatchSpecOf(request), [self, link, request_id] {
        if (std::shared_ptr<Link> l = link.lock()) {
          l->Post([self, request_id] {
            if (std::shared_ptr<LaneSession> s = self.lock()) {
              s->FlushWatch(request_id);
            }
          });
        }
      });
  if (!watch.ok()) return SendError(request_id, watch.status());
  watches_[request_id].watch = *watch;
  v1::WatchResponse started;
  handlers::FillStarted(**watch, &started);
  std::string frame;
  AppendFrame(&frame, Kind::kEvent, request_id, 0, &started);
  Out(std::move(frame));
  FlushWatch(request_id);
}

void LaneSession::FlushWatch(uint32_t request_id) {
  auto it = watches_.find(request_id);
  if (it == watches_.end() || state_ == State::kClosed) return;
  const std::shared_ptr<Link> link = CurrentLink();
  if (link == nullptr) return;
  // A watcher that does not read is held here, not in the connection's
  // output: its backlog in the hub is bounded, and ends it when full.
  constexpr size_t kRoom = 4 << 20;
  for (int round = 0; round < 4; ++round) {
    if (link->pending_output() > kRoom) {
      it->second.blocked = true;
      return;
    }
    Watch::Batch batch = it->second.watch->Take(handlers::kWatchBatchChanges,
                                                handlers::kWatchBatchBytes);
    v1::WatchResponse response;
    if (handlers::FillBatch(batch, &response)) {
      std::string frame;
      AppendFrame(&frame, Kind::kEvent, request_id, 0, &response);
      Out(std::move(frame));
    }
    if (!batch.end.ok()) {
      it->second.watch->Cancel();
      watches_.erase(it);
      return SendError(request_id, batch.end);
    }
    if (!batch.more) return;
  }
  // More is pending: after the other connections' turn.
  std::weak_ptr<LaneSession> self = weak_from_this();
  link->Post([self, request_id] {
    if (std::shared_ptr<LaneSession> s = self.lock()) s->FlushWatch(request_id);
  });
}

void LaneSession::OutputDrained() {
  std::vector<uint32_t> blocked;
  for (auto& [id, watch] : watches_) {
    if (watch.blocked) {
      watch.blocked = false;
      blocked.push_back(id);
    }
  }
  for (uint32_t id : blocked) FlushWatch(id);
}

void LaneSession::OnCancel(uint32_t request_id) {
  if (auto it = watches_.find(request_id); it != watches_.end()) {
    it->second.watch->Cancel();
    watches_.erase(it);
    return SendError(request_id, absl::CancelledError("watch cancelled"));
  }
  std::shared_ptr<LaneCall> call;
  {
    MutexLock lock(&mu_);
    auto it = parked_.find(request_id);
    if (it == parked_.end()) return;  // answered already, or unknown
    call = it->second;
  }
  call->Cancel();
}

void LaneSession::SendError(uint32_t request_id, const absl::Status& status) {
  Out(ErrorFrame(request_id, status));
}

void LaneSession::Fail(uint32_t request_id, const absl::Status& status) {
  SPDLOG_DEBUG("lane connection of session {} failed: {}",
               SessionTable::FormatId(session_), status.ToString());
  SendError(request_id, status);
  state_ = State::kClosed;
}

void LaneSession::Closed() {
  std::vector<std::shared_ptr<LaneCall>> calls;
  {
    MutexLock lock(&mu_);
    if (link_ == nullptr) return;
    link_.reset();
    for (const auto& [id, call] : parked_) calls.push_back(call);
  }
  state_ = State::kClosed;
  held_.clear();
  for (auto& [id, watch] : watches_) watch.watch->Cancel();
  watches_.clear();
  // Withdrawn as if cancelled; their replies go nowhere. A call stays in
  // the table until it is finished (Deliver): one that another thread
  // claimed already (a grant, a timeout, its session's end) is finished
  // there, after this, and must still be alive then.
  for (const auto& call : calls) call->Cancel();
  if (session_ == 0) return;
  if (owner_ && options_.unix_socket) {
    // The process behind a Unix socket is gone (or said goodbye): nothing
    // can resume its session, so it ends now rather than at lease expiry.
    if (engine_.sessions().IsLive(session_, absl::Now())) {
      SPDLOG_INFO("session {} ended: its lane connection closed",
                  SessionTable::FormatId(session_));
      engine_.sessions().End(session_);
    }
  } else if (pinned_) {
    engine_.sessions().Unpin(session_, absl::Now());
  }
  pinned_ = false;
}

}  // namespace statehub::lane
