// File: server/service/queue_service.h
//
// The statehub.v1.Queues service. Put, Get and Join may park (ParkedCall,
// blocking.h); everything else answers at once.

#ifndef STATEHUB_SERVER_SERVICE_QUEUE_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_QUEUE_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/queue.grpc.pb.h"

namespace statehub::service {

class QueueService final : public v1::Queues::CallbackService {
 public:
  explicit QueueService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const v1::QueuePutRequest* req,
                                v1::QueuePutResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::QueueGetRequest* req,
                                v1::QueueGetResponse* resp) override;
  grpc::ServerUnaryReactor* TaskDone(grpc::CallbackServerContext* ctx,
                                     const v1::QueueTaskDoneRequest* req,
                                     v1::QueueTaskDoneResponse* resp) override;
  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* ctx,
                                 const v1::QueueJoinRequest* req,
                                 v1::QueueJoinResponse* resp) override;
  grpc::ServerUnaryReactor* Size(grpc::CallbackServerContext* ctx,
                                 const v1::QueueSizeRequest* req,
                                 v1::QueueSizeResponse* resp) override;
  grpc::ServerUnaryReactor* State(grpc::CallbackServerContext* ctx,
                                  const v1::QueueStateRequest* req,
                                  v1::QueueStateResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_QUEUE_SERVICE_H_
