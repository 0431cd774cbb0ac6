// File: server/service/namespace_service.h
//
// The statehub.v1.Namespaces service: checks each request, calls
// NamespaceObject, fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_SERVICE_NAMESPACE_SERVICE_H_
#define STATEHUB_SERVER_SERVICE_NAMESPACE_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/namespace.grpc.pb.h"

namespace statehub::service {

class NamespaceService final : public v1::Namespaces::CallbackService {
 public:
  explicit NamespaceService(Engine& engine) : engine_(engine) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx,
                                const v1::NamespaceGetRequest* req,
                                v1::NamespaceGetResponse* resp) override;
  grpc::ServerUnaryReactor* Set(grpc::CallbackServerContext* ctx,
                                const v1::NamespaceSetRequest* req,
                                v1::NamespaceSetResponse* resp) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::NamespaceDeleteRequest* req,
                                   v1::NamespaceDeleteResponse* resp) override;
  grpc::ServerUnaryReactor* Items(grpc::CallbackServerContext* ctx,
                                  const v1::NamespaceItemsRequest* req,
                                  v1::NamespaceItemsResponse* resp) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_NAMESPACE_SERVICE_H_
