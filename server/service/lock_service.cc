#include "server/service/lock_service.h"

#include <optional>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/engine/condition.h"
#include "server/engine/lock.h"
#include "server/service/call.h"
#include "server/service/parked_call.h"

namespace statehub::service {
namespace {

// The wait a request asks for: nullopt blocks forever. Errors: VALUE_ERROR
// for a negative timeout.
absl::StatusOr<std::optional<absl::Duration>> TimeoutOf(
    bool has_timeout, const google::protobuf::Duration& wire,
    const std::string& label) {
  if (!has_timeout) return std::optional<absl::Duration>();
  const absl::Duration d =
      absl::Seconds(wire.seconds()) + absl::Nanoseconds(wire.nanos());
  if (d < absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrFormat("%s: timeout must be a non-negative "
                                     "number",
                                     label));
  }
  return std::optional<absl::Duration>(d);
}

// Finishes a call that failed before it could park.
grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* ctx,
                               const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpc(ctx, status));
  return reactor;
}

void ToWire(const HolderInfo& who, absl::Time now, v1::Holder* wire) {
  wire->set_session_id(SessionTable::FormatId(who.session));
  wire->set_thread_id(who.thread_id);
  wire->set_label(who.label);
  (void)now;
}

void DurationToWire(absl::Duration d, google::protobuf::Duration* wire) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  wire->set_seconds(nanos / 1'000'000'000);
  wire->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

}  // namespace

grpc::ServerUnaryReactor* LockService::Acquire(
    grpc::CallbackServerContext* ctx, const v1::LockAcquireRequest* req,
    v1::LockAcquireResponse* resp) {
  absl::StatusOr<Caller> caller =
      engine_.ResolveCaller(SessionIdOf(ctx), absl::Now());
  if (!caller.ok()) return Fail(ctx, caller.status());
  absl::StatusOr<std::shared_ptr<LockObject>> lock =
      engine_.registry().Find<LockObject>(req->name());
  if (!lock.ok()) return Fail(ctx, lock.status());
  absl::StatusOr<std::optional<absl::Duration>> timeout =
      TimeoutOf(req->has_timeout(), req->timeout(), (*lock)->Label());
  if (!timeout.ok()) return Fail(ctx, timeout.status());
  if (!req->blocking() && timeout->has_value()) {
    return Fail(
        ctx, (*lock)->Error(absl::StatusCode::kInvalidArgument,
                            ErrorKind::kValueError,
                            "can't specify a timeout for a non-blocking call"));
  }
  const bool may_park = req->blocking() && !(timeout->has_value() &&
                                             **timeout == absl::ZeroDuration());

  std::shared_ptr<LockObject> target = *lock;
  ParkedCall::Hooks hooks;
  hooks.on_timeout = [target](const std::shared_ptr<Waiter>& waiter) {
    if (!waiter->TryClaim()) return;  // granted or cancelled first
    target->Withdraw(waiter.get());
    waiter->Complete(WaitResult{});  // not acquired
  };
  hooks.withdraw = [target](const Waiter* waiter) { target->Withdraw(waiter); };
  hooks.rollback = [target](const WaitResult& granted) {
    DeliverCompletions(target->Rollback(granted.fencing_token));
  };
  auto* call = new ParkedCall(
      ctx, caller->session, req->thread_id(),
      req->label().empty() ? engine_.sessions().Label(caller->session)
                           : req->label(),
      [resp](const WaitResult& r) {
        resp->set_acquired(r.granted);
        resp->set_fencing_token(r.fencing_token);
        resp->set_owner_died(r.owner_died);
        return grpc::Status::OK;
      },
      std::move(hooks));
  absl::StatusOr<LockObject::Acquired> acquired = target->Acquire(
      *caller, req->thread_id(), may_park ? call->waiter() : nullptr,
      call->waiter()->label());
  WaitResult now;
  if (!acquired.ok()) {
    now.status = acquired.status();
  } else if (acquired->parked) {
    call->Park(timeout->has_value()
                   ? std::optional<absl::Time>(absl::Now() + **timeout)
                   : std::nullopt);
    return call;
  } else {
    now.granted = acquired->acquired;
    now.fencing_token = acquired->fencing_token;
    now.owner_died = acquired->owner_died;
  }
  call->FinishNow(now);
  return call;
}

grpc::ServerUnaryReactor* LockService::Release(
    grpc::CallbackServerContext* ctx, const v1::LockReleaseRequest* req,
    v1::LockReleaseResponse*) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(auto lock,
                              engine_.registry().Find<LockObject>(req->name()));
    STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> granted,
                              lock->Release(caller, req->thread_id()));
    DeliverCompletions(std::move(granted));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* LockService::State(grpc::CallbackServerContext* ctx,
                                             const v1::LockStateRequest* req,
                                             v1::LockStateResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(auto lock,
                              engine_.registry().Find<LockObject>(req->name()));
    const LockState state = lock->State();
    const absl::Time now = absl::Now();
    resp->set_locked(state.locked);
    if (state.locked) {
      ToWire(state.holder, now, resp->mutable_holder());
      DurationToWire(now - state.holder.since, resp->mutable_held_for());
    }
    resp->set_recursion(state.recursion);
    resp->set_fencing_token(state.fencing_token);
    for (const HolderInfo& waiter : state.waiters) {
      v1::Waiter* w = resp->add_waiters();
      ToWire(waiter, now, w->mutable_holder());
      DurationToWire(now - waiter.since, w->mutable_waiting_for());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ConditionService::Wait(
    grpc::CallbackServerContext* ctx, const v1::ConditionWaitRequest* req,
    v1::ConditionWaitResponse* resp) {
  absl::StatusOr<Caller> caller =
      engine_.ResolveCaller(SessionIdOf(ctx), absl::Now());
  if (!caller.ok()) return Fail(ctx, caller.status());
  absl::StatusOr<std::shared_ptr<ConditionObject>> cond =
      engine_.registry().Find<ConditionObject>(req->name());
  if (!cond.ok()) return Fail(ctx, cond.status());
  absl::StatusOr<std::optional<absl::Duration>> timeout =
      TimeoutOf(req->has_timeout(), req->timeout(), (*cond)->Label());
  if (!timeout.ok()) return Fail(ctx, timeout.status());

  std::shared_ptr<ConditionObject> target = *cond;
  ParkedCall::Hooks hooks;
  // A timed-out condition waiter still reacquires the lock before it
  // answers (as Python's wait does): the timeout only moves it on.
  hooks.on_timeout = [target](const std::shared_ptr<Waiter>& waiter) {
    DeliverCompletions(target->Timeout(waiter.get()));
  };
  hooks.withdraw = [target](const Waiter* waiter) { target->Withdraw(waiter); };
  hooks.rollback = [target](const WaitResult& granted) {
    DeliverCompletions(target->lock()->Rollback(granted.fencing_token));
  };
  auto* call = new ParkedCall(
      ctx, caller->session, req->thread_id(),
      req->label().empty() ? engine_.sessions().Label(caller->session)
                           : req->label(),
      [resp](const WaitResult& r) {
        resp->set_notified(r.granted);
        resp->set_fencing_token(r.fencing_token);
        resp->set_owner_died(r.owner_died);
        return grpc::Status::OK;
      },
      std::move(hooks));
  absl::StatusOr<std::vector<Completion>> released =
      target->Wait(*caller, req->thread_id(), call->waiter());
  if (!released.ok()) {
    WaitResult failed;
    failed.status = released.status();
    call->FinishNow(failed);
    return call;
  }
  DeliverCompletions(*std::move(released));
  call->Park(timeout->has_value()
                 ? std::optional<absl::Time>(absl::Now() + **timeout)
                 : std::nullopt);
  return call;
}

grpc::ServerUnaryReactor* ConditionService::Notify(
    grpc::CallbackServerContext* ctx, const v1::ConditionNotifyRequest* req,
    v1::ConditionNotifyResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(
        auto cond, engine_.registry().Find<ConditionObject>(req->name()));
    const int64_t n = req->all() ? -1 : std::max<int64_t>(req->n(), 0);
    STATEHUB_ASSIGN_OR_RETURN(int64_t woken,
                              cond->Notify(caller, req->thread_id(), n));
    resp->set_woken(woken);
    return absl::OkStatus();
  });
}

}  // namespace statehub::service
