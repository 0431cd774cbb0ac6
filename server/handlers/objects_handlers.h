// File: server/handlers/objects_handlers.h
//
// The handlers of statehub.v1.Objects: open, delete, list and describe
// objects through the registry.

#ifndef STATEHUB_SERVER_HANDLERS_OBJECTS_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_OBJECTS_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/objects.pb.h"

namespace statehub::handlers {

class ObjectsHandlers final {
 public:
  explicit ObjectsHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Open(const Caller& caller, const v1::OpenRequest* req,
                    v1::OpenResponse* resp);
  absl::Status Delete(const Caller& caller, const v1::DeleteRequest* req,
                      v1::DeleteResponse* resp);
  absl::Status List(const Caller& caller, const v1::ListObjectsRequest* req,
                    v1::ListObjectsResponse* resp);
  absl::Status Describe(const Caller& caller, const v1::DescribeRequest* req,
                        v1::DescribeResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_OBJECTS_HANDLERS_H_
