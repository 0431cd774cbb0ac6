// File: server/service/cell_service.h
//
// The statehub.v1.Values and statehub.v1.Arrays services: check each
// request, call ValueCell or ArrayObject, fill the reply.

#ifndef STATEHUB_SERVER_SERVICE_CELL_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_CELL_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/cell.grpc.pb.h"

namespace statehub::service {

class ValueService final : public v1::Values::CallbackService {
 public:
  explicit ValueService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::ValueGetRequest* req,
                                v1::ValueGetResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::ValueSetRequest* req,
                                v1::ValueSetResponse* resp) override;
  grpc::ServerUnaryReactor* Increment(
      grpc::CallbackServerContext* ctx, const v1::ValueIncrementRequest* req,
      v1::ValueIncrementResponse* resp) override;
  grpc::ServerUnaryReactor* CompareAndSet(
      grpc::CallbackServerContext* ctx,
      const v1::ValueCompareAndSetRequest* req,
      v1::ValueCompareAndSetResponse* resp) override;
  grpc::ServerUnaryReactor* GetAndSet(
      grpc::CallbackServerContext* ctx, const v1::ValueGetAndSetRequest* req,
      v1::ValueGetAndSetResponse* resp) override;

 private:
  Engine& engine_;
};

class ArrayService final : public v1::Arrays::CallbackService {
 public:
  explicit ArrayService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Len(grpc::CallbackServerContext* ctx,
                                const v1::ArrayLenRequest* req,
                                v1::ArrayLenResponse* resp) override;
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::ArrayGetRequest* req,
                                v1::ArrayGetResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::ArraySetRequest* req,
                                v1::ArraySetResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_CELL_SERVICE_H_
