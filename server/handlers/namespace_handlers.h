// File: server/handlers/namespace_handlers.h
//
// The handlers of statehub.v1.Namespaces: checks each request, calls
// NamespaceObject, fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_HANDLERS_NAMESPACE_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_NAMESPACE_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/namespace.pb.h"

namespace statehub::handlers {

class NamespaceHandlers final {
 public:
  explicit NamespaceHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Get(const Caller& caller, const v1::NamespaceGetRequest* req,
                   v1::NamespaceGetResponse* resp);
  absl::Status Set(const Caller& caller, const v1::NamespaceSetRequest* req,
                   v1::NamespaceSetResponse* resp);
  absl::Status Delete(const Caller& caller,
                      const v1::NamespaceDeleteRequest* req,
                      v1::NamespaceDeleteResponse* resp);
  absl::Status Items(const Caller& caller, const v1::NamespaceItemsRequest* req,
                     v1::NamespaceItemsResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_NAMESPACE_HANDLERS_H_
