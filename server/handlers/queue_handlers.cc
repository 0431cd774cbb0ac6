#include "server/handlers/queue_handlers.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/engine/queue.h"
#include "server/handlers/blocking.h"

namespace statehub::handlers {

using internal::EncodeValue;

void QueueHandlers::Put(Call* call, const v1::QueuePutRequest* req,
                        v1::QueuePutResponse* resp) {
  absl::StatusOr<Target<QueueObject>> target =
      Resolve<QueueObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  std::shared_ptr<QueueObject> queue = target->object;
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*queue, req->block(), req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());
  absl::StatusOr<Value> item =
      Decoder(engine_.limits(), queue->type(), queue->name())(req->item());
  if (!item.ok()) return Fail(call, item.status());

  const Caller caller = target->caller;
  // A putter leaving early takes its item with it. A put granted as its
  // call was cancelled stays put, as it would in Python had the caller
  // gone right after put() returned.
  ParkedCall::Hooks hooks = WithdrawHooks(queue);
  auto fill = [resp](const WaitResult& r) {
    resp->set_stored(r.granted);
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(
            QueueObject::Stored stored,
            queue->Put(caller, *std::move(item), std::move(waiter)));
        Started started;
        started.parked = stored.parked;
        started.now.granted = stored.stored;
        started.completions = std::move(stored.completions);
        return started;
      });
}

void QueueHandlers::Get(Call* call, const v1::QueueGetRequest* req,
                        v1::QueueGetResponse* resp) {
  absl::StatusOr<Target<QueueObject>> target =
      Resolve<QueueObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  std::shared_ptr<QueueObject> queue = target->object;
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*queue, req->block(), req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());

  const Caller caller = target->caller;
  ParkedCall::Hooks hooks = WithdrawHooks(queue);
  // An item handed to a getter whose call was cancelled goes back to the
  // head of the queue rather than being lost.
  hooks.rollback = [queue, session = caller.session](const WaitResult& got) {
    if (got.granted) DeliverCompletions(queue->RollbackGet(session, got.item));
  };
  auto fill = [resp](const WaitResult& r) {
    resp->set_got(r.granted);
    if (r.granted) EncodeValue(r.item, resp->mutable_item());
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(QueueObject::Got got,
                                  queue->Get(caller, std::move(waiter)));
        Started started;
        started.parked = got.parked;
        started.now.granted = got.got;
        started.now.item = std::move(got.item);
        started.completions = std::move(got.completions);
        return started;
      });
}

absl::Status QueueHandlers::TaskDone(const Caller&,
                                     const v1::QueueTaskDoneRequest* req,
                                     v1::QueueTaskDoneResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto queue,
                            engine_.registry().Find<QueueObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(std::vector<Completion> joined, queue->TaskDone());
  DeliverCompletions(std::move(joined));
  return absl::OkStatus();
}

void QueueHandlers::Join(Call* call, const v1::QueueJoinRequest* req,
                         v1::QueueJoinResponse* resp) {
  absl::StatusOr<Target<QueueObject>> target =
      Resolve<QueueObject>(engine_, call, req->name());
  if (!target.ok()) return Fail(call, target.status());
  std::shared_ptr<QueueObject> queue = target->object;
  absl::StatusOr<WaitSpec> spec =
      WaitSpecOf(*queue, true, req->has_timeout(), req->timeout());
  if (!spec.ok()) return Fail(call, spec.status());

  const Caller caller = target->caller;
  ParkedCall::Hooks hooks = WithdrawHooks(queue);
  auto fill = [resp](const WaitResult& r) {
    resp->set_done(r.granted);
    return absl::OkStatus();
  };
  return RunBlocking(
      call, engine_, target->object->type(), caller, req->thread_id(),
      req->label(), *spec, std::move(fill), std::move(hooks),
      [&](std::shared_ptr<Waiter> waiter) -> absl::StatusOr<Started> {
        STATEHUB_ASSIGN_OR_RETURN(QueueObject::Joined joined,
                                  queue->Join(caller, std::move(waiter)));
        Started started;
        started.parked = joined.parked;
        started.now.granted = joined.done;
        return started;
      });
}

absl::Status QueueHandlers::Size(const Caller&, const v1::QueueSizeRequest* req,
                                 v1::QueueSizeResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto queue,
                            engine_.registry().Find<QueueObject>(req->name()));
  const QueueState state = queue->State(/*include_waiters=*/false);
  resp->set_size(state.size);
  resp->set_maxsize(state.maxsize);
  resp->set_unfinished(state.unfinished);
  return absl::OkStatus();
}

absl::Status QueueHandlers::State(const Caller&,
                                  const v1::QueueStateRequest* req,
                                  v1::QueueStateResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto queue,
                            engine_.registry().Find<QueueObject>(req->name()));
  const QueueState state = queue->State();
  const absl::Time now = absl::Now();
  resp->set_size(state.size);
  resp->set_maxsize(state.maxsize);
  resp->set_unfinished(state.unfinished);
  WaitersToWire(state.getters, now, resp->mutable_getters());
  WaitersToWire(state.putters, now, resp->mutable_putters());
  WaitersToWire(state.joiners, now, resp->mutable_joiners());
  return absl::OkStatus();
}

}  // namespace statehub::handlers
