#include "server/handlers/lock_handlers.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "server/engine/condition.h"
#include "server/engine/lock.h"
#include "server/handlers/blocking.h"

namespace statehub::handlers {

void LockHandlers::Acquire(Call* call, const v1::LockAcquireRequest* req,
                           v1::LockAcquireResponse* resp) {
  absl::StatusOr<Target<LockObject>> target =
      Resolve<LockObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  absl::StatusOr<WaitSpec> spec = WaitSpecOf(
      *target->object, req->blocking(), req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());

  std::shared_ptr<LockObject> lock = target->object;
  ParkedCall::Hooks hooks = WithdrawHooks(lock);
  // One acquisition is undone: an RLock re-entry keeps the outer ones.
  hooks.rollback = [lock](const WaitResult& r) {
    if (r.granted) {
      DeliverCompletions(lock->Rollback(r.fencing_token, /*one_level=*/true));
    }
  };
  auto fill = [resp](const WaitResult& r) {
    resp->set_acquired(r.granted);
    resp->set_fencing_token(r.fencing_token);
    resp->set_owner_died(r.owner_died);
    return absl::OkStatus();
  };
  const Caller caller = target->caller;
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        const std::string label =
            waiter ? waiter->label()
                   : LabelOf(engine_, caller.session, req->label());
        STATEHUB_ASSIGN_OR_RETURN(
            LockObject::Acquired acquired,
            lock->Acquire(caller, req->thread_id(), std::move(waiter), label));
        Started started;
        started.parked = acquired.parked;
        started.now.granted = acquired.acquired;
        started.now.fencing_token = acquired.fencing_token;
        started.now.owner_died = acquired.owner_died;
        return started;
      });
}

absl::Status LockHandlers::Release(const Caller& caller,
                                   const v1::LockReleaseRequest* req,
                                   v1::LockReleaseResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto lock,
                            engine_.registry().Find<LockObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> granted,
                            lock->Release(caller, req->thread_id()));
  DeliverCompletions(std::move(granted));
  return absl::OkStatus();
}

absl::Status LockHandlers::State(const Caller&, const v1::LockStateRequest* req,
                                 v1::LockStateResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto lock,
                            engine_.registry().Find<LockObject>(req->name()));
  const LockState state = lock->State();
  const absl::Time now = absl::Now();
  resp->set_locked(state.locked);
  if (state.locked) {
    HolderToWire(state.holder, resp->mutable_holder());
    internal::DurationToWire(now - state.holder.since,
                             resp->mutable_held_for());
  }
  resp->set_holder_left(state.holder_left);
  resp->set_recursion(state.recursion);
  resp->set_fencing_token(state.fencing_token);
  WaitersToWire(state.waiters, now, resp->mutable_waiters());
  for (const Deadlock& d :
       engine_.registry().wait_for_graph().Cycles(lock.get())) {
    DeadlockToWire(d, now, resp->add_deadlocks());
  }
  return absl::OkStatus();
}

absl::Status LockHandlers::Deadlocks(const Caller&,
                                     const v1::LockDeadlocksRequest*,
                                     v1::LockDeadlocksResponse* resp) {
  const absl::Time now = absl::Now();
  for (const Deadlock& d : engine_.registry().wait_for_graph().Cycles()) {
    DeadlockToWire(d, now, resp->add_deadlocks());
  }
  return absl::OkStatus();
}

void ConditionHandlers::Wait(Call* call, const v1::ConditionWaitRequest* req,
                             v1::ConditionWaitResponse* resp) {
  absl::StatusOr<Target<ConditionObject>> target =
      Resolve<ConditionObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*target->object, true, req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());
  // Every wait parks, even with a zero timeout: it must release the lock
  // and reacquire it.
  spec->may_park = true;

  std::shared_ptr<ConditionObject> cond = target->object;
  ParkedCall::Hooks hooks;
  // A timed-out condition waiter still reacquires the lock before it
  // answers (as Python's wait does): the timeout only moves it on.
  hooks.on_timeout = [cond](const std::shared_ptr<Waiter>& waiter) {
    DeliverCompletions(cond->Timeout(waiter.get()));
  };
  hooks.withdraw = [cond](const Waiter* waiter) { cond->Withdraw(waiter); };
  // Notified or timed out, the waiter took the lock back at its full
  // recursion: all of it is released.
  hooks.rollback = [cond](const WaitResult& r) {
    DeliverCompletions(
        cond->lock()->Rollback(r.fencing_token, /*one_level=*/false));
  };
  auto fill = [resp](const WaitResult& r) {
    resp->set_notified(r.granted);
    resp->set_fencing_token(r.fencing_token);
    resp->set_owner_died(r.owner_died);
    return absl::OkStatus();
  };
  const Caller caller = target->caller;
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        Started started;
        started.parked = true;
        STATEHUB_ASSIGN_OR_RETURN(
            started.completions,
            cond->Wait(caller, req->thread_id(), std::move(waiter)));
        return started;
      });
}

absl::Status ConditionHandlers::Notify(const Caller& caller,
                                       const v1::ConditionNotifyRequest* req,
                                       v1::ConditionNotifyResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto cond, engine_.registry().Find<ConditionObject>(req->name()));
  const int64_t n = req->all() ? -1 : std::max<int64_t>(req->n(), 0);
  STATEHUB_ASSIGN_OR_RETURN(int64_t woken,
                            cond->Notify(caller, req->thread_id(), n));
  resp->set_woken(woken);
  return absl::OkStatus();
}

}  // namespace statehub::handlers
