// File: server/handlers/lock_handlers.h
//
// The statehub.v1.Locks and statehub.v1.Conditions services. Acquire and
// Wait may park (ParkedCall); everything else answers at once.

#ifndef STATEHUB_SERVER_HANDLERS_LOCK_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_LOCK_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/sync.pb.h"

namespace statehub::handlers {

class LockHandlers final {
 public:
  explicit LockHandlers(Engine& engine) : engine_(engine) {}

  void Acquire(Call* call, const v1::LockAcquireRequest* req,
               v1::LockAcquireResponse* resp);
  absl::Status Release(const Caller& caller, const v1::LockReleaseRequest* req,
                       v1::LockReleaseResponse* resp);
  absl::Status State(const Caller& caller, const v1::LockStateRequest* req,
                     v1::LockStateResponse* resp);
  absl::Status Deadlocks(const Caller& caller,
                         const v1::LockDeadlocksRequest* req,
                         v1::LockDeadlocksResponse* resp);

 private:
  Engine& engine_;
};

class ConditionHandlers final {
 public:
  explicit ConditionHandlers(Engine& engine) : engine_(engine) {}

  void Wait(Call* call, const v1::ConditionWaitRequest* req,
            v1::ConditionWaitResponse* resp);
  absl::Status Notify(const Caller& caller,
                      const v1::ConditionNotifyRequest* req,
                      v1::ConditionNotifyResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_LOCK_HANDLERS_H_
