// File: server/service/sync_service.h
//
// The statehub.v1.Semaphores, statehub.v1.Events and statehub.v1.Barriers
// services. Acquire and Wait may park (ParkedCall, blocking.h); everything
// else answers at once.

#ifndef STATEHUB_SERVER_SERVICE_SYNC_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_SYNC_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/sync.grpc.pb.h"

namespace statehub::service {

class SemaphoreService final : public v1::Semaphores::CallbackService {
 public:
  explicit SemaphoreService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Acquire(
      grpc::CallbackServerContext* ctx, const v1::SemaphoreAcquireRequest* req,
      v1::SemaphoreAcquireResponse* resp) override;
  grpc::ServerUnaryReactor* Release(
      grpc::CallbackServerContext* ctx, const v1::SemaphoreReleaseRequest* req,
      v1::SemaphoreReleaseResponse* resp) override;
  grpc::ServerUnaryReactor* State(grpc::CallbackServerContext* ctx,
                                  const v1::SemaphoreStateRequest* req,
                                  v1::SemaphoreStateResponse* resp) override;

 private:
  Engine& engine_;
};

class EventService final : public v1::Events::CallbackService {
 public:
  explicit EventService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::EventSetRequest* req,
                                v1::EventSetResponse* resp) override;
  grpc::ServerUnaryReactor* Clear(grpc::CallbackServerContext* ctx,
                                  const v1::EventClearRequest* req,
                                  v1::EventClearResponse* resp) override;
  grpc::ServerUnaryReactor* IsSet(grpc::CallbackServerContext* ctx,
                                  const v1::EventIsSetRequest* req,
                                  v1::EventIsSetResponse* resp) override;
  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx,
                                 const v1::EventWaitRequest* req,
                                 v1::EventWaitResponse* resp) override;

 private:
  Engine& engine_;
};

class BarrierService final : public v1::Barriers::CallbackService {
 public:
  explicit BarrierService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Wait(grpc::CallbackServerContext* ctx,
                                 const v1::BarrierWaitRequest* req,
                                 v1::BarrierWaitResponse* resp) override;
  grpc::ServerUnaryReactor* Abort(grpc::CallbackServerContext* ctx,
                                  const v1::BarrierAbortRequest* req,
                                  v1::BarrierAbortResponse* resp) override;
  grpc::ServerUnaryReactor* Reset(grpc::CallbackServerContext* ctx,
                                  const v1::BarrierResetRequest* req,
                                  v1::BarrierResetResponse* resp) override;
  grpc::ServerUnaryReactor* State(grpc::CallbackServerContext* ctx,
                                  const v1::BarrierStateRequest* req,
                                  v1::BarrierStateResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_SYNC_SERVICE_H_
