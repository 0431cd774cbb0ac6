// File: server/handlers/queue_handlers.h
//
// The statehub.v1.Queues service. Put, Get and Join may park (ParkedCall,
// blocking.h); everything else answers at once.

#ifndef STATEHUB_SERVER_HANDLERS_QUEUE_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_QUEUE_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/queue.pb.h"

namespace statehub::handlers {

class QueueHandlers final {
 public:
  explicit QueueHandlers(Engine& engine) : engine_(engine) {}

  void Put(Call* call, const v1::QueuePutRequest* req,
           v1::QueuePutResponse* resp);
  void Get(Call* call, const v1::QueueGetRequest* req,
           v1::QueueGetResponse* resp);
  absl::Status TaskDone(const Caller& caller,
                        const v1::QueueTaskDoneRequest* req,
                        v1::QueueTaskDoneResponse* resp);
  void Join(Call* call, const v1::QueueJoinRequest* req,
            v1::QueueJoinResponse* resp);
  absl::Status Size(const Caller& caller, const v1::QueueSizeRequest* req,
                    v1::QueueSizeResponse* resp);
  absl::Status State(const Caller& caller, const v1::QueueStateRequest* req,
                     v1::QueueStateResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_QUEUE_HANDLERS_H_
