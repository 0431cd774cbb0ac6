// File: server/service/lock_service.h
//
// The statehub.v1.Locks and statehub.v1.Conditions services. Acquire and
// Wait may park (ParkedCall); everything else answers at once.

#ifndef STATEHUB_SERVER_SERVICE_LOCK_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_LOCK_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/sync.grpc.pb.h"

namespace statehub::service {

class LockService final : public v1::Locks::CallbackService {
 public:
  explicit LockService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Acquire(grpc::CallbackServerContext* ctx,
                                    const v1::LockAcquireRequest* req,
                                    v1::LockAcquireResponse* resp) override;
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* ctx,
                                    const v1::LockReleaseRequest* req,
                                    v1::LockReleaseResponse* resp) override;
  grpc::ServerUnaryReactor* State(grpc::CallbackServerContext* ctx,
                                  const v1::LockStateRequest* req,
                                  v1::LockStateResponse* resp) override;

 private:
  Engine& engine_;
};

class ConditionService final : public v1::Conditions::CallbackService {
 public:
  explicit ConditionService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx,
                                 const v1::ConditionWaitRequest* req,
                                 v1::ConditionWaitResponse* resp) override;
  grpc::ServerUnaryReactor* Notify(grpc::CallbackServerContext* ctx,
                                   const v1::ConditionNotifyRequest* req,
                                   v1::ConditionNotifyResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_LOCK_SERVICE_H_
