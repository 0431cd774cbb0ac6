#include "server/service/namespace_service.h"

#include "server/engine/namespace.h"
#include "server/service/call.h"

namespace statehub::service {

using internal::EncodeValue;

grpc::ServerUnaryReactor* NamespaceService::Get(
    grpc::CallbackServerContext* ctx, const v1::NamespaceGetRequest* req,
    v1::NamespaceGetResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(
        auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, ns->Get(caller, req->attribute()));
    EncodeValue(value, resp->mutable_value());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* NamespaceService::Set(
    grpc::CallbackServerContext* ctx, const v1::NamespaceSetRequest* req,
    v1::NamespaceSetResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(
        auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
    Decoder decode(engine_.limits(), ObjectType::kNamespace, req->name());
    STATEHUB_ASSIGN_OR_RETURN(Value value, decode(req->value()));
    return ns->Set(req->attribute(), std::move(value));
  });
}

grpc::ServerUnaryReactor* NamespaceService::Delete(
    grpc::CallbackServerContext* ctx, const v1::NamespaceDeleteRequest* req,
    v1::NamespaceDeleteResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(
        auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
    return ns->Delete(req->attribute());
  });
}

grpc::ServerUnaryReactor* NamespaceService::Items(
    grpc::CallbackServerContext* ctx, const v1::NamespaceItemsRequest* req,
    v1::NamespaceItemsResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(
        auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value::Entries entries, ns->Items(caller));
    EncodeEntries(entries, resp->mutable_attributes()->mutable_entries());
    return absl::OkStatus();
  });
}

}  // namespace statehub::service
