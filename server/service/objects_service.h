// File: server/service/objects_service.h
//
// The statehub.v1.Objects service: open, delete, list and describe
// objects through the registry.

#ifndef STATEHUB_SERVER_SERVICE_OBJECTS_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_OBJECTS_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/objects.grpc.pb.h"

namespace statehub::service {

class ObjectsService final : public v1::Objects::CallbackService {
 public:
  explicit ObjectsService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Open(grpc::CallbackServerContext* ctx,
                                 const v1::OpenRequest* req,
                                 v1::OpenResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DeleteRequest* req,
                                   v1::DeleteResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx,
                                 const v1::ListObjectsRequest* req,
                                 v1::ListObjectsResponse* resp) override;
  grpc::ServerUnaryReactor* Describe(grpc::CallbackServerContext* ctx,
                                     const v1::DescribeRequest* req,
                                     v1::DescribeResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_OBJECTS_SERVICE_H_
