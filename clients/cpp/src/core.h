// The client core shared by a Client and every handle it made: the
// transport (the lane, or a gRPC channel with one stub per service), the
// options and the session. All calls go through Core::Call, the one place
// that sets deadlines, names the session and turns a failure into a
// statehub error, on either transport.

#ifndef STATEHUB_CLIENTS_CPP_SRC_CORE_H_
#define STATEHUB_CLIENTS_CPP_SRC_CORE_H_

#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "grpcpp/grpcpp.h"
#include "holds.h"
#include "lane_transport.h"
#include "reconnect.h"
#include "session.h"
#include "statehub/client.h"
#include "statehub/internal/handle.h"
#include "statehub/internal/wire.h"
#include "statehub/lock.h"
#include "statehub/v1/cell.grpc.pb.h"
#include "statehub/v1/dict.grpc.pb.h"
#include "statehub/v1/list.grpc.pb.h"
#include "statehub/v1/namespace.grpc.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/queue.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "statehub/v1/watch.grpc.pb.h"
#include "statehub/value.h"
#include "watch_stream.h"

// Internal shorthands for the Status plumbing of the handle methods.
#define STATEHUB_CONCAT_INNER_(a, b) a##b
#define STATEHUB_CONCAT_(a, b) STATEHUB_CONCAT_INNER_(a, b)
#define STATEHUB_RETURN_IF_ERROR(expr)                  \
  do {                                                  \
    if (absl::Status status_ = (expr); !status_.ok()) { \
      return status_;                                   \
    }                                                   \
  } while (0)
#define STATEHUB_ASSIGN_OR_RETURN(lhs, expr)                                  \
  STATEHUB_ASSIGN_OR_RETURN_IMPL_(STATEHUB_CONCAT_(statusor_, __LINE__), lhs, \
                                  expr)
#define STATEHUB_ASSIGN_OR_RETURN_IMPL_(var, lhs, expr) \
  auto var = (expr);                                    \
  if (!var.ok()) return var.status();                   \
  lhs = *std::move(var)

namespace statehub::client_internal {

// Values from the server nest at most this deep; far above anything the
// server's own limit lets through, it only bounds the recursion.
inline constexpr int kMaxDecodeDepth = 1000;

// RpcName is the rpc a request message is for: its name without "Request"
// ("DictGetRequest" -> "DictGet").
inline absl::string_view RpcName(absl::string_view request_message) {
  absl::ConsumeSuffix(&request_message, "Request");
  return request_message;
}

class Core : public HoldKeeper, public std::enable_shared_from_this<Core> {
 public:
  // A core on gRPC: `channel` is connected to `address`.
  Core(std::shared_ptr<grpc::Channel> channel, std::string address,
       ClientOptions options);
  // A core on the lane: `lane` is connected (its session open if
  // options.open_session).
  Core(std::unique_ptr<LaneTransport> lane, ClientOptions options);
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core() override;

  const ClientOptions& options() const { return options_; }

  // StartSession opens the session (see Session::Start).
  absl::Status StartSession();
  // CurrentSession returns the session to name in calls; empty without one.
  SessionTag CurrentSession() const;
  absl::Duration lease_ttl() const;
  // CloseSession ends the session; idempotent.
  void CloseSession();

  // Call makes one call of `method`: on the lane, a REQUEST of the rpc's
  // lane method id on a pooled connection of the session; on gRPC, a unary
  // call on this core's stub for its service with a fresh context (call
  // deadline, session metadata). `wait` is how long the call may park on
  // the server: zero for
  // an ordinary call, absl::InfiniteDuration() for an untimed blocking call,
  // else its timeout. The deadline is max(wait, 0) + call_timeout, so a
  // parked call is never cut short by call_timeout (which stays the margin
  // for the reply itself) and an untimed one has none. Returns the session
  // the call ran under (holds in the reply belong to it), or the failure as
  // a statehub error (kind and object from the `statehub-error-bin`
  // trailer, or from the lane's ERROR frame: the same either way).
  //
  // A call that changes state is numbered where the server advises it, and
  // a call whose connection broke (the server went away) is sent again or
  // fails as reconnect.h says. `remake` is non-null for a call that parks
  // (CallParked): if it is to be made again once the session is back, Call
  // sets *remake and returns the break's error.
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<SessionTag> Call(
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request, Response* response,
      absl::Duration wait = absl::ZeroDuration(), bool* remake = nullptr) const;

  // OpenWatch starts the watch `request` on its own stream: on the lane a
  // connection that joins the session, on gRPC a server stream (which
  // names no session: a watch needs none, and so survives the session's
  // loss). `resuming` (a watch whose stream broke) first waits, until
  // `deadline`, for the server to be back. Errors: as the transport's
  // connect; the server's refusal of the watch comes from the stream's
  // first Next.
  absl::StatusOr<std::unique_ptr<WatchStream>> OpenWatch(
      const v1::WatchRequest& request, bool resuming,
      absl::Time deadline) const;

  // address is the server's address, for messages.
  const std::string& address() const { return address_; }

  // Decode converts a value from a reply made under `tag`, giving each ref
  // to an anonymous object the hold the server granted for it.
  absl::StatusOr<Value> Decode(const v1::Value& wire,
                               const SessionTag& tag) const;
  absl::StatusOr<Value::Items> DecodeItems(
      const google::protobuf::RepeatedPtrField<v1::Value>& wire,
      const SessionTag& tag) const;
  absl::StatusOr<Value::Entries> DecodeEntries(
      const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire,
      const SessionTag& tag) const;

  // MakeHold returns the token of one hold on anonymous object `name`,
  // granted under `tag`; destroying its last copy queues a Release. Returns
  // null without a session (the server granted no hold).
  std::shared_ptr<const void> MakeHold(std::string name,
                                       const SessionTag& tag) const;

 private:
  template <typename Stub>
  Stub* StubFor() const {
    return std::get<std::unique_ptr<Stub>>(stubs_).get();
  }
  // CallGrpc is Call on gRPC.
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<SessionTag> CallGrpc(
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request, Response* response, absl::Duration wait,
      const CallPlan& plan, bool* remake) const;
  // number_calls is the server's advice to number calls that change state.
  bool number_calls() const;
  // ReleaseHold drops one hold (called by hold tokens as they die).
  void ReleaseHold(uint64_t generation, std::string name) const override;
  // Deadline is a call's deadline for `wait` (see Call).
  absl::Time Deadline(absl::Duration wait) const;
  // Prepare fills a context for one call in session `tag` (numbered if
  // number.number is not 0).
  void Prepare(grpc::ClientContext* ctx, absl::Time deadline,
               const SessionTag& tag, const CallNumber& number) const;
  // Broke is whether a call failed because the server could not be reached
  // or the connection broke: UNAVAILABLE from gRPC itself, not the server.
  static bool Broke(const grpc::Status& status, const grpc::ClientContext& ctx);
  // ReconnectLimit is how long a call that found the server gone waits for
  // it: kReconnectWait after the server was first found gone (so that calls
  // to a server that stays away soon fail at once), and never past the
  // call's `deadline`.
  absl::Time ReconnectLimit(absl::Time deadline) const;
  // AwaitSession waits until the session stream is back after a call made
  // under `tag` broke (or, without a session, the channel is connected)
  // and returns the session to make the call again in; false at `limit`.
  std::optional<SessionTag> AwaitSession(const SessionTag& tag,
                                         absl::Time limit) const;
  // AwaitChannel waits until the channel is connected; false at `limit`.
  bool AwaitChannel(absl::Time limit) const;
  // Failed converts a failed call's status; a SESSION_ERROR for the current
  // session kicks the session thread.
  absl::Status Failed(const grpc::Status& status,
                      const grpc::ClientContext& ctx,
                      const SessionTag& tag) const;

  // channel_ and stubs_ are null on the lane.
  const std::shared_ptr<grpc::Channel> channel_;
  // address_ is the server's address, for messages.
  const std::string address_;
  const ClientOptions options_;
  // numbers_ numbers the calls that change state, on either transport.
  mutable CallNumbers numbers_;
  // lost_since_ is when a gRPC call first found the server gone,
  // InfiniteFuture while it is not.
  mutable absl::Mutex lost_mu_;
  mutable absl::Time lost_since_ ABSL_GUARDED_BY(lost_mu_) =
      absl::InfiniteFuture();
  std::tuple<
      std::unique_ptr<v1::Objects::Stub>, std::unique_ptr<v1::Dicts::Stub>,
      std::unique_ptr<v1::Lists::Stub>, std::unique_ptr<v1::Namespaces::Stub>,
      std::unique_ptr<v1::Values::Stub>, std::unique_ptr<v1::Arrays::Stub>,
      std::unique_ptr<v1::Locks::Stub>, std::unique_ptr<v1::Conditions::Stub>,
      std::unique_ptr<v1::Semaphores::Stub>, std::unique_ptr<v1::Events::Stub>,
      std::unique_ptr<v1::Barriers::Stub>, std::unique_ptr<v1::Queues::Stub>>
      stubs_;
  // watches_ is Watches' stub (a streaming rpc: not one of stubs_).
  std::unique_ptr<v1::Watches::Stub> watches_;
  // session_ is the gRPC session; null on the lane and when the client was
  // connected without a session.
  const std::unique_ptr<Session> session_;
  // lane_ is null on gRPC.
  const std::unique_ptr<LaneTransport> lane_;
};

template <typename Stub, typename Request, typename Response>
absl::StatusOr<SessionTag> Core::Call(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request, Response* response, absl::Duration wait,
    bool* remake) const {
  const absl::Time start =
      options_.observer ? absl::Now() : absl::InfinitePast();
  // Looked up once per request type, so a call costs no lookup at all.
  static const Rpc& rpc = RpcOf(Request::descriptor());
  const bool parked = remake != nullptr;
  bool unused = false;
  if (remake == nullptr) remake = &unused;
  CallPlan plan;
  plan.rpc = &rpc;
  if constexpr (requires { absl::string_view(request.name()); }) {
    plan.object = request.name();
  }
  plan.numbering_advised = number_calls();
  const bool numbered = plan.numbering_advised && Numbered(rpc, parked);
  if (numbered) plan.number = numbers_.Take();
  plan.after_break = AfterBreakOf(rpc, parked, numbered);
  absl::StatusOr<SessionTag> result;
  if (lane_ != nullptr) {
    if (rpc.lane_method == 0) {
      result = absl::InternalError(
          absl::StrCat("statehub: ", Request::descriptor()->full_name(),
                       " has no (statehub.v1.lane_method)"));
    } else {
      result = lane_->Call(plan, request, response, wait, remake);
    }
  } else {
    result = CallGrpc(method, request, response, wait, plan, remake);
  }
  if (numbered) numbers_.Done(plan.number.number);
  if (options_.observer) {
    const absl::string_view rpc_name = RpcName(Request::descriptor()->name());
    const absl::Duration latency = absl::Now() - start;
    options_.observer->CallDone(rpc_name, latency, result.status().code());
    if constexpr (requires { response->acquired(); }) {
      if (result.ok()) {
        options_.observer->AcquireDone(rpc_name, latency, response->acquired());
      }
    }
  }
  return result;
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<SessionTag> Core::CallGrpc(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    const Request& request, Response* response, absl::Duration wait,
    const CallPlan& plan, bool* remake) const {
  const absl::Time deadline = Deadline(wait);
  const SessionTag tag = CurrentSession();
  absl::Status failure;
  {
    grpc::ClientContext ctx;
    Prepare(&ctx, deadline, tag, plan.number);
    const grpc::Status status =
        (StubFor<Stub>()->*method)(&ctx, request, response);
    if (status.ok()) return tag;
    failure = Failed(status, ctx, tag);
    if (!Broke(status, ctx)) return failure;
  }
  // gRPC cannot tell a call that never went out from one whose connection
  // broke after it did: every UNAVAILABLE is taken for the latter.
  SessionTag sent_in = tag;
  for (int attempt = 2;; ++attempt) {
    const absl::Time limit = ReconnectLimit(deadline);
    switch (plan.after_break) {
      case AfterBreak::kFail:
        return BrokenCallError(address_, plan, failure);
      case AfterBreak::kRepark:
        if (!AwaitSession(sent_in, limit).has_value()) {
          return NotBackError(address_, plan, failure);
        }
        *remake = true;
        return failure;
      case AfterBreak::kRepeat: {
        // Made again in the session the server came back with.
        std::optional<SessionTag> back = AwaitSession(sent_in, limit);
        if (!back.has_value()) return NotBackError(address_, plan, failure);
        sent_in = *std::move(back);
        break;
      }
      case AfterBreak::kResend:
        // Sent again unchanged, in the session it was numbered in, as soon
        // as the server is back: the server answers a number once per
        // session.
        if (!AwaitChannel(limit)) return NotBackError(address_, plan, failure);
        break;
    }
    grpc::ClientContext ctx;
    Prepare(&ctx, deadline, sent_in, plan.number);
    const grpc::Status status =
        (StubFor<Stub>()->*method)(&ctx, request, response);
    if (status.ok()) return sent_in;
    absl::Status error = Failed(status, ctx, sent_in);
    if (Broke(status, ctx) && attempt < kMaxAttempts) {
      failure = std::move(error);
      continue;
    }
    if (plan.after_break == AfterBreak::kResend &&
        GetErrorKind(error) == ErrorKind::kSessionError) {
      return SessionEndedError(address_, plan, failure);
    }
    return error;
  }
}

// DefaultLabel is the label of a client whose options give none:
// "<hostname>:<pid>:<program>".
std::string DefaultLabel();

// MovedFromError is what a moved-from handle returns from every call.
absl::Status MovedFromError();

// CallOn makes one call on the object of handle `h`: it names the object in
// `request` and calls through the handle's core (`wait` and `remake` as for
// Core::Call).
template <typename Stub, typename Request, typename Response>
absl::StatusOr<SessionTag> CallOn(
    const HandleState& h,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    Request& request, Response* response,
    absl::Duration wait = absl::ZeroDuration(), bool* remake = nullptr) {
  if (h.core == nullptr) return MovedFromError();
  request.set_name(h.name);
  return h.core->Call(method, request, response, wait, remake);
}

// NeverServed is CallParked's default `served_before_break`.
struct NeverServed {
  template <typename Response>
  absl::StatusOr<bool> operator()(Response*) const {
    return false;
  }
};

// CallParked is CallOn for a call that may park on the server (acquire,
// wait, get, put, join): it also sends the caller's thread id and
// `timeout`. nullopt and absl::InfiniteDuration() leave the request's
// timeout unset (wait until served) and the call without a deadline; a
// negative timeout is sent as is, for the server to refuse with VALUE_ERROR.
//
// A call cut by the server going away is made again once the session is
// back (Core::Call's `remake`), with what is left of `timeout`. Before
// that, `served_before_break(response)` may say that the server had served
// it already (an acquire granted just before the server died, its reply
// lost): it then fills *response and returns true, and the call returns
// that instead of being made again.
template <typename Stub, typename Request, typename Response,
          typename ServedBefore = NeverServed>
absl::StatusOr<SessionTag> CallParked(
    const HandleState& h,
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                 Response*),
    Request& request, Response* response, std::optional<absl::Duration> timeout,
    ServedBefore served_before_break = {}) {
  request.set_thread_id(CurrentThreadId());
  const absl::Duration wait = timeout.value_or(absl::InfiniteDuration());
  const absl::Time start = absl::Now();
  absl::Duration left = wait;
  while (true) {
    if (left != absl::InfiniteDuration()) {
      internal::DurationToWire(left, request.mutable_timeout());
    }
    bool remake = false;
    absl::StatusOr<SessionTag> result =
        CallOn(h, method, request, response, left, &remake);
    if (!remake) return result;
    absl::StatusOr<bool> served = served_before_break(response);
    if (!served.ok()) return served.status();
    if (*served) return h.core->CurrentSession();
    // A negative timeout was refused, never parked: `left` is not.
    if (wait != absl::InfiniteDuration()) {
      left = std::max(wait - (absl::Now() - start), absl::ZeroDuration());
    }
  }
}

// WaitersFromWire converts the parked calls of a State reply received at
// `now`.
std::vector<Waiter> WaitersFromWire(
    const google::protobuf::RepeatedPtrField<v1::Waiter>& wire, absl::Time now);

// HolderFromWire converts a wire holder.
Holder HolderFromWire(const v1::Holder& wire);

// EncodeItems appends `items` to a repeated wire field.
void EncodeItems(const Value::Items& items,
                 google::protobuf::RepeatedPtrField<v1::Value>* wire);

// ToItems unwraps a list or tuple value from a reply that must hold one.
absl::StatusOr<Value::Items> ToItems(absl::StatusOr<Value> value,
                                     absl::string_view what);

// EncodeSlice fills a wire slice; an unset field is None.
void EncodeSlice(const Slice& slice, v1::Slice* wire);

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_CORE_H_
