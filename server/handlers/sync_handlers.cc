#include "server/handlers/sync_handlers.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/engine/barrier.h"
#include "server/engine/event.h"
#include "server/engine/semaphore.h"
#include "server/handlers/blocking.h"

namespace statehub::handlers {

void SemaphoreHandlers::Acquire(Call* call,
                                const v1::SemaphoreAcquireRequest* req,
                                v1::SemaphoreAcquireResponse* resp) {
  absl::StatusOr<Target<SemaphoreObject>> target =
      Resolve<SemaphoreObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  absl::StatusOr<WaitSpec> spec = WaitSpecOf(
      *target->object, req->blocking(), req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());

  std::shared_ptr<SemaphoreObject> sem = target->object;
  const Caller caller = target->caller;
  ParkedCall::Hooks hooks = WithdrawHooks(sem);
  hooks.rollback = [sem, session = caller.session](const WaitResult& r) {
    if (r.granted) DeliverCompletions(sem->Rollback(session));
  };
  auto fill = [resp](const WaitResult& r) {
    resp->set_acquired(r.granted);
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(SemaphoreObject::Acquired acquired,
                                  sem->Acquire(caller, std::move(waiter)));
        Started started;
        started.parked = acquired.parked;
        started.now.granted = acquired.acquired;
        return started;
      });
}

absl::Status SemaphoreHandlers::Release(const Caller& caller,
                                        const v1::SemaphoreReleaseRequest* req,
                                        v1::SemaphoreReleaseResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto sem, engine_.registry().Find<SemaphoreObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> granted,
                            sem->Release(caller, req->n()));
  DeliverCompletions(std::move(granted));
  return absl::OkStatus();
}

absl::Status SemaphoreHandlers::State(const Caller&,
                                      const v1::SemaphoreStateRequest* req,
                                      v1::SemaphoreStateResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto sem, engine_.registry().Find<SemaphoreObject>(req->name()));
  const SemaphoreState state = sem->State();
  resp->set_value(state.value);
  resp->set_initial_value(state.initial_value);
  resp->set_bounded(sem->bounded());
  for (const auto& [session, units] : state.holders) {
    v1::SemaphoreHolding* holding = resp->add_holders();
    holding->set_session_id(SessionTable::FormatId(session));
    holding->set_units(units);
  }
  WaitersToWire(state.waiters, absl::Now(), resp->mutable_waiters());
  return absl::OkStatus();
}

absl::Status EventHandlers::Set(const Caller&, const v1::EventSetRequest* req,
                                v1::EventSetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto event,
                            engine_.registry().Find<EventObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> woken, event->Set());
  DeliverCompletions(std::move(woken));
  return absl::OkStatus();
}

absl::Status EventHandlers::Clear(const Caller&,
                                  const v1::EventClearRequest* req,
                                  v1::EventClearResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto event,
                            engine_.registry().Find<EventObject>(req->name()));
  return event->Clear();
}

absl::Status EventHandlers::IsSet(const Caller&,
                                  const v1::EventIsSetRequest* req,
                                  v1::EventIsSetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto event,
                            engine_.registry().Find<EventObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(bool set, event->IsSet());
  resp->set_set(set);
  return absl::OkStatus();
}

void EventHandlers::Wait(Call* call, const v1::EventWaitRequest* req,
                         v1::EventWaitResponse* resp) {
  absl::StatusOr<Target<EventObject>> target =
      Resolve<EventObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*target->object, true, req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());

  std::shared_ptr<EventObject> event = target->object;
  const Caller caller = target->caller;
  ParkedCall::Hooks hooks = WithdrawHooks(event);
  auto fill = [resp](const WaitResult& r) {
    resp->set_set(r.granted);
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(EventObject::Waited waited,
                                  event->Wait(caller, std::move(waiter)));
        Started started;
        started.parked = waited.parked;
        started.now.granted = waited.set;
        return started;
      });
}

void BarrierHandlers::Wait(Call* call, const v1::BarrierWaitRequest* req,
                           v1::BarrierWaitResponse* resp) {
  absl::StatusOr<Target<BarrierObject>> target =
      Resolve<BarrierObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*target->object, true, req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());
  // Every arrival parks unless it is the last: a zero timeout is a timeout
  // like any other and breaks the barrier when it passes.
  spec->may_park = true;

  std::shared_ptr<BarrierObject> barrier = target->object;
  const Caller caller = target->caller;
  ParkedCall::Hooks hooks;
  // A waiter leaving early (timeout, cancellation) breaks the barrier, as a
  // timeout does in Python; the leaver itself answers BROKEN_BARRIER.
  hooks.withdraw = [barrier](const Waiter* waiter) {
    DeliverCompletions(barrier->TimeoutBreak(waiter));
  };
  hooks.on_timeout = [barrier](const std::shared_ptr<Waiter>& waiter) {
    if (!waiter->TryClaim()) return;
    DeliverCompletions(barrier->TimeoutBreak(waiter.get()));
    WaitResult broken;
    broken.status = barrier->BrokenError();
    waiter->Complete(std::move(broken));
  };
  // A runner whose call was cancelled never learned it should run the
  // action: the barrier breaks rather than hold the others for good.
  hooks.rollback = [barrier, caller](const WaitResult& r) {
    if (!r.run_action) return;
    absl::StatusOr<std::vector<Completion>> broken =
        barrier->ActionDone(caller, /*failed=*/true);
    if (broken.ok()) DeliverCompletions(*std::move(broken));
  };
  auto fill = [resp](const WaitResult& r) {
    resp->set_index(r.index);
    resp->set_run_action(r.run_action);
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(
            BarrierObject::Waited waited,
            barrier->Wait(caller, std::move(waiter), req->run_action()));
        Started started;
        started.parked = waited.parked;
        started.now.granted = waited.passed;
        started.now.index = waited.index;
        started.now.run_action = waited.run_action;
        started.completions = std::move(waited.completions);
        return started;
      });
}

absl::Status BarrierHandlers::Abort(const Caller&,
                                    const v1::BarrierAbortRequest* req,
                                    v1::BarrierAbortResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto barrier, engine_.registry().Find<BarrierObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> broken, barrier->Abort());
  DeliverCompletions(std::move(broken));
  return absl::OkStatus();
}

absl::Status BarrierHandlers::Reset(const Caller&,
                                    const v1::BarrierResetRequest* req,
                                    v1::BarrierResetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto barrier, engine_.registry().Find<BarrierObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> broken, barrier->Reset());
  DeliverCompletions(std::move(broken));
  return absl::OkStatus();
}

absl::Status BarrierHandlers::State(const Caller&,
                                    const v1::BarrierStateRequest* req,
                                    v1::BarrierStateResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto barrier, engine_.registry().Find<BarrierObject>(req->name()));
  const BarrierState state = barrier->State();
  resp->set_parties(state.parties);
  resp->set_n_waiting(state.n_waiting);
  resp->set_broken(state.broken);
  resp->set_generation(state.generation);
  resp->set_action_running(state.action_running);
  WaitersToWire(state.waiters, absl::Now(), resp->mutable_waiters());
  return absl::OkStatus();
}

absl::Status BarrierHandlers::ActionDone(
    const Caller& caller, const v1::BarrierActionDoneRequest* req,
    v1::BarrierActionDoneResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto barrier, engine_.registry().Find<BarrierObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> done,
                            barrier->ActionDone(caller, req->failed()));
  DeliverCompletions(std::move(done));
  return absl::OkStatus();
}

}  // namespace statehub::handlers
