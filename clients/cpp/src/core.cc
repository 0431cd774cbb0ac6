#include "core.h"

#include <errno.h>  // program_invocation_short_name (glibc)
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "statehub/status.h"

namespace statehub::client_internal {

Core::Core(std::shared_ptr<grpc::Channel> channel, std::string address,
           ClientOptions options)
    : channel_(std::move(channel)),
      address_(std::move(address)),
      options_(std::move(options)),
      stubs_(v1::Objects::NewStub(channel_), v1::Dicts::NewStub(channel_),
             v1::Lists::NewStub(channel_), v1::Namespaces::NewStub(channel_),
             v1::Values::NewStub(channel_), v1::Arrays::NewStub(channel_),
             v1::Locks::NewStub(channel_), v1::Conditions::NewStub(channel_),
             v1::Semaphores::NewStub(channel_), v1::Events::NewStub(channel_),
             v1::Barriers::NewStub(channel_), v1::Queues::NewStub(channel_)),
      watches_(v1::Watches::NewStub(channel_)),
      session_(options_.open_session
                   ? std::make_unique<Session>(channel_, options_.label,
                                               options_.token)
                   : nullptr) {}

Core::Core(std::unique_ptr<LaneTransport> lane, ClientOptions options)
    : address_(lane->target()),
      options_(std::move(options)),
      lane_(std::move(lane)) {}

Core::~Core() = default;

absl::Status Core::StartSession() {
  // The lane's session opened with its connection.
  if (session_ == nullptr) return absl::OkStatus();
  return session_->Start(options_.connect_timeout);
}

SessionTag Core::CurrentSession() const {
  if (lane_ != nullptr) return lane_->Current();
  return session_ == nullptr ? SessionTag{} : session_->Current();
}

absl::Duration Core::lease_ttl() const {
  if (lane_ != nullptr) return lane_->lease_ttl();
  return session_ == nullptr ? absl::ZeroDuration() : session_->lease_ttl();
}

void Core::CloseSession() {
  if (lane_ != nullptr) lane_->Close();
  if (session_ != nullptr) session_->Close();
}

bool Core::number_calls() const {
  if (lane_ != nullptr) return lane_->number_calls();
  return session_ != nullptr && session_->number_calls();
}

absl::Time Core::Deadline(absl::Duration wait) const {
  // A negative timeout is the server's to refuse: it must get the call.
  // Infinite plus anything stays infinite: no deadline.
  const absl::Duration budget =
      std::max(wait, absl::ZeroDuration()) + options_.call_timeout;
  return budget == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                            : absl::Now() + budget;
}

void Core::Prepare(grpc::ClientContext* ctx, absl::Time deadline,
                   const SessionTag& tag, const CallNumber& number) const {
  if (deadline != absl::InfiniteFuture()) {
    ctx->set_deadline(absl::ToChronoTime(deadline));
  }
  if (!tag.id.empty()) ctx->AddMetadata(internal::kSessionKey, tag.id);
  if (number.number != 0) {
    ctx->AddMetadata(internal::kCallKey,
                     absl::StrCat(number.number, " ", number.seen));
  }
  if (!options_.token.empty()) {
    ctx->AddMetadata(internal::kAuthorizationKey, "Bearer " + options_.token);
  }
}

bool Core::Broke(const grpc::Status& status, const grpc::ClientContext& ctx) {
  // The server's own UNAVAILABLE carries a statehub error detail.
  return status.error_code() == grpc::StatusCode::UNAVAILABLE &&
         ctx.GetServerTrailingMetadata().find(internal::kErrorDetailKey) ==
             ctx.GetServerTrailingMetadata().end();
}

absl::Time Core::ReconnectLimit(absl::Time deadline) const {
  const absl::Time now = absl::Now();
  // Without a session nothing tells when the server was last seen: each
  // call waits its own kReconnectWait.
  if (session_ == nullptr) return std::min(deadline, now + kReconnectWait);
  const absl::Time welcomed = session_->welcomed_at();
  absl::MutexLock lock(&lost_mu_);
  // A stream welcomed since the server was first found gone means that it
  // came back in between: this is a new absence.
  if (lost_since_ == absl::InfiniteFuture() || welcomed > lost_since_) {
    lost_since_ = now;
  }
  return std::min(deadline, lost_since_ + kReconnectWait);
}

std::optional<SessionTag> Core::AwaitSession(const SessionTag& tag,
                                             absl::Time limit) const {
  if (session_ == nullptr) {
    if (!AwaitChannel(limit)) return std::nullopt;
    return SessionTag{};
  }
  // The session thread notices that the server went away, opens a new
  // stream once it is back and resumes the session (or gets a new one).
  absl::StatusOr<SessionTag> back = session_->AwaitStream(tag.stream, limit);
  if (!back.ok()) return std::nullopt;
  absl::MutexLock lock(&lost_mu_);
  lost_since_ = absl::InfiniteFuture();
  return *std::move(back);
}

bool Core::AwaitChannel(absl::Time limit) const {
  if (!channel_->WaitForConnected(absl::ToChronoTime(limit))) return false;
  absl::MutexLock lock(&lost_mu_);
  lost_since_ = absl::InfiniteFuture();
  return true;
}

absl::Status Core::Failed(const grpc::Status& status,
                          const grpc::ClientContext& ctx,
                          const SessionTag& tag) const {
  absl::string_view detail;
  const auto& trailers = ctx.GetServerTrailingMetadata();
  if (auto it = trailers.find(internal::kErrorDetailKey);
      it != trailers.end()) {
    detail = absl::string_view(it->second.data(), it->second.size());
  }
  absl::Status result = internal::FromGrpcStatus(status, detail);
  // gRPC itself refuses a message over the server's --max_message_bytes,
  // before statehub sees it, so no error detail names the limit: name it.
  if (detail.empty() &&
      status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      absl::StrContains(absl::AsciiStrToLower(status.error_message()),
                        "message larger than max")) {
    return MakeError(
        absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
        absl::StrCat("the message exceeds the server's --max_message_bytes (",
                     status.error_message(), ")"),
        {}, "max_message_bytes");
  }
  // The server no longer knows our session (it restarted, or the lease ran
  // out): have the session thread find out and replace it now rather than at
  // its next keepalive.
  if (!tag.id.empty() && GetErrorKind(result) == ErrorKind::kSessionError) {
    session_->Kick(tag.generation);
  }
  return result;
}

absl::StatusOr<std::unique_ptr<WatchStream>> Core::OpenWatch(
    const v1::WatchRequest& request, bool resuming, absl::Time deadline) const {
  if (lane_ != nullptr) {
    return StartLaneWatch(*lane_, request, resuming, deadline);
  }
  if (resuming && !channel_->WaitForConnected(absl::ToChronoTime(deadline))) {
    return absl::UnavailableError(absl::StrCat("statehub: cannot reach ",
                                               address_, " to resume a watch"));
  }
  auto ctx = std::make_unique<grpc::ClientContext>();
  // A watch's stream lasts: no deadline.
  Prepare(ctx.get(), absl::InfiniteFuture(), SessionTag{}, CallNumber{});
  return StartGrpcWatch(*watches_, std::move(ctx), request, address_);
}

absl::StatusOr<Value> Core::Decode(const v1::Value& wire,
                                   const SessionTag& tag) const {
  absl::StatusOr<Value> value = internal::DecodeValue(wire, kMaxDecodeDepth);
  if (value.ok() && !tag.id.empty()) {
    AttachHolds(*value,
                [&](const std::string& name) { return MakeHold(name, tag); });
  }
  return value;
}

absl::StatusOr<Value::Items> Core::DecodeItems(
    const google::protobuf::RepeatedPtrField<v1::Value>& wire,
    const SessionTag& tag) const {
  Value::Items items;
  items.reserve(wire.size());
  for (const v1::Value& item : wire) {
    STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(item, tag));
    items.push_back(std::move(value));
  }
  return items;
}

absl::StatusOr<Value::Entries> Core::DecodeEntries(
    const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire,
    const SessionTag& tag) const {
  Value::Entries entries;
  entries.reserve(wire.size());
  for (const v1::MapEntry& entry : wire) {
    STATEHUB_ASSIGN_OR_RETURN(Value key, Decode(entry.key(), tag));
    STATEHUB_ASSIGN_OR_RETURN(Value value, Decode(entry.value(), tag));
    entries.emplace_back(std::move(key), std::move(value));
  }
  return entries;
}

std::shared_ptr<const void> Core::MakeHold(std::string name,
                                           const SessionTag& tag) const {
  if (tag.id.empty()) return nullptr;
  return MakeHoldToken(weak_from_this(), std::move(name), tag.generation);
}

void Core::ReleaseHold(uint64_t generation, std::string name) const {
  if (lane_ != nullptr) {
    lane_->Release(generation, std::move(name));
  } else if (session_ != nullptr) {
    session_->Release(generation, std::move(name));
  }
}

std::string DefaultLabel() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", getpid(), ":", program_invocation_short_name);
}

absl::Status MovedFromError() {
  return MakeError(absl::StatusCode::kFailedPrecondition,
                   ErrorKind::kRuntimeError,
                   "statehub handle used after it was moved from");
}

Holder HolderFromWire(const v1::Holder& wire) {
  return Holder{wire.session_id(), wire.thread_id(), wire.label()};
}

std::vector<Waiter> WaitersFromWire(
    const google::protobuf::RepeatedPtrField<v1::Waiter>& wire,
    absl::Time now) {
  std::vector<Waiter> waiters;
  waiters.reserve(wire.size());
  for (const v1::Waiter& w : wire) {
    const absl::Duration waiting_for =
        internal::DurationFromWire(w.waiting_for());
    waiters.push_back(
        Waiter{HolderFromWire(w.holder()), waiting_for, now - waiting_for});
  }
  return waiters;
}

void EncodeItems(const Value::Items& items,
                 google::protobuf::RepeatedPtrField<v1::Value>* wire) {
  wire->Reserve(wire->size() + static_cast<int>(items.size()));
  for (const Value& item : items) internal::EncodeValue(item, wire->Add());
}

absl::StatusOr<Value::Items> ToItems(absl::StatusOr<Value> value,
                                     absl::string_view what) {
  if (!value.ok()) return value.status();
  if (!value->is_sequence()) {
    return absl::InternalError(
        absl::StrFormat("the server answered %s with a %s, not a list", what,
                        value->TypeName()));
  }
  return std::move(value->MutableItems());
}

void EncodeSlice(const Slice& slice, v1::Slice* wire) {
  if (slice.start.has_value()) wire->set_start(*slice.start);
  if (slice.stop.has_value()) wire->set_stop(*slice.stop);
  if (slice.step.has_value()) wire->set_step(*slice.step);
}

}  // namespace statehub::client_internal
