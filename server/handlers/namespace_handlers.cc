#include "server/handlers/namespace_handlers.h"

#include "server/engine/namespace.h"
#include "server/handlers/call.h"

namespace statehub::handlers {

using internal::EncodeValue;

absl::Status NamespaceHandlers::Get(const Caller& caller,
                                    const v1::NamespaceGetRequest* req,
                                    v1::NamespaceGetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, ns->Get(caller, req->attribute()));
  EncodeValue(value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status NamespaceHandlers::Set(const Caller&,
                                    const v1::NamespaceSetRequest* req,
                                    v1::NamespaceSetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
  Decoder decode(engine_.limits(), ObjectType::kNamespace, req->name());
  STATEHUB_ASSIGN_OR_RETURN(Value value, decode(req->value()));
  return ns->Set(req->attribute(), std::move(value));
}

absl::Status NamespaceHandlers::Delete(const Caller&,
                                       const v1::NamespaceDeleteRequest* req,
                                       v1::NamespaceDeleteResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
  return ns->Delete(req->attribute());
}

absl::Status NamespaceHandlers::Items(const Caller& caller,
                                      const v1::NamespaceItemsRequest* req,
                                      v1::NamespaceItemsResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(
      auto ns, engine_.registry().Find<NamespaceObject>(req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value::Entries entries, ns->Items(caller));
  EncodeEntries(entries, resp->mutable_attributes()->mutable_entries());
  return absl::OkStatus();
}

}  // namespace statehub::handlers
