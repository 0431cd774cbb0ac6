// File: server/service/dict_service.h
//
// The statehub.v1.Dicts service: checks each request, calls DictObject,
// fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_SERVICE_DICT_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_DICT_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/dict.grpc.pb.h"

namespace statehub::service {

class DictService final : public v1::Dicts::CallbackService {
 public:
  explicit DictService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::DictGetRequest* req,
                                v1::DictGetResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::DictSetRequest* req,
                                v1::DictSetResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DictDeleteRequest* req,
                                   v1::DictDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Contains(grpc::CallbackServerContext* ctx,
                                     const v1::DictContainsRequest* req,
                                     v1::DictContainsResponse* resp) override;
  grpc::ServerUnaryReactor* Len(grpc::CallbackServerContext* ctx,
                                const v1::DictLenRequest* req,
                                v1::DictLenResponse* resp) override;
  grpc::ServerUnaryReactor* Items(grpc::CallbackServerContext* ctx,
                                  const v1::DictItemsRequest* req,
                                  v1::DictItemsResponse* resp) override;
  grpc::ServerUnaryReactor* Pop(grpc::CallbackServerContext* ctx,
                                const v1::DictPopRequest* req,
                                v1::DictPopResponse* resp) override;
  grpc::ServerUnaryReactor* PopItem(grpc::CallbackServerContext* ctx,
                                    const v1::DictPopItemRequest* req,
                                    v1::DictPopItemResponse* resp) override;
  grpc::ServerUnaryReactor* SetDefault(
      grpc::CallbackServerContext* ctx, const v1::DictSetDefaultRequest* req,
      v1::DictSetDefaultResponse* resp) override;
  grpc::ServerUnaryReactor* Update(grpc::CallbackServerContext* ctx,
                                   const v1::DictUpdateRequest* req,
                                   v1::DictUpdateResponse* resp) override;
  grpc::ServerUnaryReactor* Clear(grpc::CallbackServerContext* ctx,
                                  const v1::DictClearRequest* req,
                                  v1::DictClearResponse* resp) override;
  grpc::ServerUnaryReactor* Increment(grpc::CallbackServerContext* ctx,
                                      const v1::DictIncrementRequest* req,
                                      v1::DictIncrementResponse* resp) override;
  grpc::ServerUnaryReactor* CompareAndSet(
      grpc::CallbackServerContext* ctx, const v1::DictCompareAndSetRequest* req,
      v1::DictCompareAndSetResponse* resp) override;
  grpc::ServerUnaryReactor* GetAndSet(grpc::CallbackServerContext* ctx,
                                      const v1::DictGetAndSetRequest* req,
                                      v1::DictGetAndSetResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_DICT_SERVICE_H_
