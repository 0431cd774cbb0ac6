// File: server/service/list_service.h
//
// The statehub.v1.Lists service: checks each request, calls ListObject,
// fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_SERVICE_LIST_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_LIST_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/list.grpc.pb.h"

namespace statehub::service {

class ListService final : public v1::Lists::CallbackService {
 public:
  explicit ListService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Len(grpc::CallbackServerContext* ctx,
                                const v1::ListLenRequest* req,
                                v1::ListLenResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::ListGetRequest* req,
                                v1::ListGetResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::ListSetRequest* req,
                                v1::ListSetResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::ListDeleteRequest* req,
                                   v1::ListDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* ctx,
                                   const v1::ListAppendRequest* req,
                                   v1::ListAppendResponse* resp) override;
  grpc::ServerUnaryReactor* Extend(grpc::CallbackServerContext* ctx,
                                   const v1::ListExtendRequest* req,
                                   v1::ListExtendResponse* resp) override;
  grpc::ServerUnaryReactor* Insert(grpc::CallbackServerContext* ctx,
                                   const v1::ListInsertRequest* req,
                                   v1::ListInsertResponse* resp) override;
  grpc::ServerUnaryReactor* Pop(grpc::CallbackServerContext* ctx,
                                const v1::ListPopRequest* req,
                                v1::ListPopResponse* resp) override;
  grpc::ServerUnaryReactor* Remove(grpc::CallbackServerContext* ctx,
                                   const v1::ListRemoveRequest* req,
                                   v1::ListRemoveResponse* resp) override;
  grpc::ServerUnaryReactor* Index(grpc::CallbackServerContext* ctx,
                                  const v1::ListIndexRequest* req,
                                  v1::ListIndexResponse* resp) override;
  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* ctx,
                                  const v1::ListCountRequest* req,
                                  v1::ListCountResponse* resp) override;
  grpc::ServerUnaryReactor* Contains(grpc::CallbackServerContext* ctx,
                                     const v1::ListContainsRequest* req,
                                     v1::ListContainsResponse* resp) override;
  grpc::ServerUnaryReactor* Reverse(grpc::CallbackServerContext* ctx,
                                    const v1::ListReverseRequest* req,
                                    v1::ListReverseResponse* resp) override;
  grpc::ServerUnaryReactor* Sort(grpc::CallbackServerContext* ctx,
                                 const v1::ListSortRequest* req,
                                 v1::ListSortResponse* resp) override;
  grpc::ServerUnaryReactor* Clear(grpc::CallbackServerContext* ctx,
                                  const v1::ListClearRequest* req,
                                  v1::ListClearResponse* resp) override;
  grpc::ServerUnaryReactor* Repeat(grpc::CallbackServerContext* ctx,
                                   const v1::ListRepeatRequest* req,
                                   v1::ListRepeatResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_LIST_SERVICE_H_
