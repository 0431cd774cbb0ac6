// File: server/handlers/list_handlers.h
//
// The handlers of statehub.v1.Lists: checks each request, calls ListObject,
// fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_HANDLERS_LIST_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_LIST_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/list.pb.h"

namespace statehub::handlers {

class ListHandlers final {
 public:
  explicit ListHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Len(const Caller& caller, const v1::ListLenRequest* req,
                   v1::ListLenResponse* resp);
  absl::Status Get(const Caller& caller, const v1::ListGetRequest* req,
                   v1::ListGetResponse* resp);
  absl::Status Set(const Caller& caller, const v1::ListSetRequest* req,
                   v1::ListSetResponse* resp);
  absl::Status Delete(const Caller& caller, const v1::ListDeleteRequest* req,
                      v1::ListDeleteResponse* resp);
  absl::Status Append(const Caller& caller, const v1::ListAppendRequest* req,
                      v1::ListAppendResponse* resp);
  absl::Status Extend(const Caller& caller, const v1::ListExtendRequest* req,
                      v1::ListExtendResponse* resp);
  absl::Status Insert(const Caller& caller, const v1::ListInsertRequest* req,
                      v1::ListInsertResponse* resp);
  absl::Status Pop(const Caller& caller, const v1::ListPopRequest* req,
                   v1::ListPopResponse* resp);
  absl::Status Remove(const Caller& caller, const v1::ListRemoveRequest* req,
                      v1::ListRemoveResponse* resp);
  absl::Status Index(const Caller& caller, const v1::ListIndexRequest* req,
                     v1::ListIndexResponse* resp);
  absl::Status Count(const Caller& caller, const v1::ListCountRequest* req,
                     v1::ListCountResponse* resp);
  absl::Status Contains(const Caller& caller,
                        const v1::ListContainsRequest* req,
                        v1::ListContainsResponse* resp);
  absl::Status Reverse(const Caller& caller, const v1::ListReverseRequest* req,
                       v1::ListReverseResponse* resp);
  absl::Status Sort(const Caller& caller, const v1::ListSortRequest* req,
                    v1::ListSortResponse* resp);
  absl::Status Clear(const Caller& caller, const v1::ListClearRequest* req,
                     v1::ListClearResponse* resp);
  absl::Status Repeat(const Caller& caller, const v1::ListRepeatRequest* req,
                      v1::ListRepeatResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_LIST_HANDLERS_H_
