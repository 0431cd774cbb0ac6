// The synchronization ops: locks, conditions, semaphores, events,
// barriers and queues. Their waits may park (Harness::Block).

#include "tests/fuzz/check.h"
#include "tests/fuzz/engine_harness.h"

namespace statehub::fuzz {
namespace {

template <typename Request>
void SetTimeout(Timeout t, Request* req) {
  switch (t) {
    case Timeout::kUnset:
      return;
    case Timeout::kZero:
      req->mutable_timeout()->set_seconds(0);
      return;
    case Timeout::kNegative:
      req->mutable_timeout()->set_seconds(-1);
      return;
    case Timeout::kLong:
      req->mutable_timeout()->set_seconds(3600);
      return;
  }
}

}  // namespace

void Harness::SyncOp(Op op, Input& in) {
  const Who who = From(in);
  const std::string name = Name(in);
  switch (op) {
    case kLockAcquire: {
      auto req = std::make_unique<v1::LockAcquireRequest>();
      req->set_name(name);
      req->set_blocking(in.Bit());
      SetTimeout(TimeoutOf(in), req.get());
      req->set_thread_id(in.Byte() % 3);
      req->set_label(in.Pick(kLabels));
      Block(locks_, &handlers::LockHandlers::Acquire, who, std::move(req),
            "lock acquire");
      break;
    }
    case kLockRelease: {
      v1::LockReleaseRequest req;
      req.set_name(name);
      req.set_thread_id(in.Byte() % 3);
      Call(locks_, &handlers::LockHandlers::Release, who, req, "lock release");
      break;
    }
    case kLockState: {
      v1::LockStateRequest req;
      req.set_name(name);
      Call(locks_, &handlers::LockHandlers::State, who, req, "lock state");
      break;
    }
    case kConditionWait: {
      auto req = std::make_unique<v1::ConditionWaitRequest>();
      req->set_name(name);
      SetTimeout(TimeoutOf(in), req.get());
      req->set_thread_id(in.Byte() % 3);
      Block(conditions_, &handlers::ConditionHandlers::Wait, who,
            std::move(req), "condition wait");
      break;
    }
    case kConditionNotify: {
      v1::ConditionNotifyRequest req;
      req.set_name(name);
      req.set_n(in.Int());
      req.set_all(in.Bit());
      req.set_thread_id(in.Byte() % 3);
      Call(conditions_, &handlers::ConditionHandlers::Notify, who, req,
           "condition notify");
      break;
    }
    case kSemaphoreAcquire: {
      auto req = std::make_unique<v1::SemaphoreAcquireRequest>();
      req->set_name(name);
      req->set_blocking(in.Bit());
      SetTimeout(TimeoutOf(in), req.get());
      req->set_thread_id(in.Byte() % 3);
      Block(semaphores_, &handlers::SemaphoreHandlers::Acquire, who,
            std::move(req), "semaphore acquire");
      break;
    }
    case kSemaphoreRelease: {
      v1::SemaphoreReleaseRequest req;
      req.set_name(name);
      req.set_n(in.Int());
      Call(semaphores_, &handlers::SemaphoreHandlers::Release, who, req,
           "semaphore release");
      break;
    }
    case kSemaphoreState: {
      v1::SemaphoreStateRequest req;
      req.set_name(name);
      Call(semaphores_, &handlers::SemaphoreHandlers::State, who, req,
           "semaphore state");
      break;
    }
    case kEventSet: {
      v1::EventSetRequest req;
      req.set_name(name);
      Call(events_, &handlers::EventHandlers::Set, who, req, "event set");
      break;
    }
    case kEventClear: {
      v1::EventClearRequest req;
      req.set_name(name);
      Call(events_, &handlers::EventHandlers::Clear, who, req, "event clear");
      break;
    }
    case kEventIsSet: {
      v1::EventIsSetRequest req;
      req.set_name(name);
      Call(events_, &handlers::EventHandlers::IsSet, who, req, "event is_set");
      break;
    }
    case kEventWait: {
      auto req = std::make_unique<v1::EventWaitRequest>();
      req->set_name(name);
      SetTimeout(TimeoutOf(in), req.get());
      req->set_thread_id(in.Byte() % 3);
      Block(events_, &handlers::EventHandlers::Wait, who, std::move(req),
            "event wait");
      break;
    }
    case kBarrierWait: {
      auto req = std::make_unique<v1::BarrierWaitRequest>();
      req->set_name(name);
      SetTimeout(TimeoutOf(in), req.get());
      req->set_thread_id(in.Byte() % 3);
      Block(barriers_, &handlers::BarrierHandlers::Wait, who, std::move(req),
            "barrier wait");
      break;
    }
    case kBarrierAbort: {
      v1::BarrierAbortRequest req;
      req.set_name(name);
      Call(barriers_, &handlers::BarrierHandlers::Abort, who, req,
           "barrier abort");
      break;
    }
    case kBarrierReset: {
      v1::BarrierResetRequest req;
      req.set_name(name);
      Call(barriers_, &handlers::BarrierHandlers::Reset, who, req,
           "barrier reset");
      break;
    }
    default: {
      v1::BarrierStateRequest req;
      req.set_name(name);
      Call(barriers_, &handlers::BarrierHandlers::State, who, req,
           "barrier state");
      break;
    }
  }
}

void Harness::QueueOp(Op op, Input& in) {
  const Who who = From(in);
  const std::string name = Name(in);
  using S = handlers::QueueHandlers;
  switch (op) {
    case kQueuePut: {
      auto req = std::make_unique<v1::QueuePutRequest>();
      req->set_name(name);
      BuildValue(in, req->mutable_item(), 0);
      req->set_block(in.Bit());
      SetTimeout(TimeoutOf(in), req.get());
      Block(queues_, &S::Put, who, std::move(req), "queue put");
      break;
    }
    case kQueueGet: {
      auto req = std::make_unique<v1::QueueGetRequest>();
      req->set_name(name);
      req->set_block(in.Bit());
      SetTimeout(TimeoutOf(in), req.get());
      Block(queues_, &S::Get, who, std::move(req), "queue get");
      break;
    }
    case kQueueTaskDone: {
      v1::QueueTaskDoneRequest req;
      req.set_name(name);
      Call(queues_, &S::TaskDone, who, req, "queue task_done");
      break;
    }
    case kQueueJoin: {
      auto req = std::make_unique<v1::QueueJoinRequest>();
      req->set_name(name);
      SetTimeout(TimeoutOf(in), req.get());
      Block(queues_, &S::Join, who, std::move(req), "queue join");
      break;
    }
    case kQueueSize: {
      v1::QueueSizeRequest req;
      req.set_name(name);
      Call(queues_, &S::Size, who, req, "queue size");
      break;
    }
    default: {
      v1::QueueStateRequest req;
      req.set_name(name);
      Call(queues_, &S::State, who, req, "queue state");
      break;
    }
  }
}

}  // namespace statehub::fuzz
