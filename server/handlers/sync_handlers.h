// File: server/handlers/sync_handlers.h
//
// The statehub.v1.Semaphores, statehub.v1.Events and statehub.v1.Barriers
// services. Acquire and Wait may park (ParkedCall, blocking.h); everything
// else answers at once.

#ifndef STATEHUB_SERVER_HANDLERS_SYNC_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_SYNC_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/sync.pb.h"

namespace statehub::handlers {

class SemaphoreHandlers final {
 public:
  explicit SemaphoreHandlers(Engine& engine) : engine_(engine) {}

  void Acquire(Call* call, const v1::SemaphoreAcquireRequest* req,
               v1::SemaphoreAcquireResponse* resp);
  absl::Status Release(const Caller& caller,
                       const v1::SemaphoreReleaseRequest* req,
                       v1::SemaphoreReleaseResponse* resp);
  absl::Status State(const Caller& caller, const v1::SemaphoreStateRequest* req,
                     v1::SemaphoreStateResponse* resp);

 private:
  Engine& engine_;
};

class EventHandlers final {
 public:
  explicit EventHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Set(const Caller& caller, const v1::EventSetRequest* req,
                   v1::EventSetResponse* resp);
  absl::Status Clear(const Caller& caller, const v1::EventClearRequest* req,
                     v1::EventClearResponse* resp);
  absl::Status IsSet(const Caller& caller, const v1::EventIsSetRequest* req,
                     v1::EventIsSetResponse* resp);
  void Wait(Call* call, const v1::EventWaitRequest* req,
            v1::EventWaitResponse* resp);

 private:
  Engine& engine_;
};

class BarrierHandlers final {
 public:
  explicit BarrierHandlers(Engine& engine) : engine_(engine) {}

  void Wait(Call* call, const v1::BarrierWaitRequest* req,
            v1::BarrierWaitResponse* resp);
  absl::Status Abort(const Caller& caller, const v1::BarrierAbortRequest* req,
                     v1::BarrierAbortResponse* resp);
  absl::Status Reset(const Caller& caller, const v1::BarrierResetRequest* req,
                     v1::BarrierResetResponse* resp);
  absl::Status State(const Caller& caller, const v1::BarrierStateRequest* req,
                     v1::BarrierStateResponse* resp);
  absl::Status ActionDone(const Caller& caller,
                          const v1::BarrierActionDoneRequest* req,
                          v1::BarrierActionDoneResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_SYNC_HANDLERS_H_
