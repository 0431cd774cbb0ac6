// File: server/handlers/dict_handlers.h
//
// The handlers of statehub.v1.Dicts: checks each request, calls DictObject,
// fills the reply. No state of its own.

#ifndef STATEHUB_SERVER_HANDLERS_DICT_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_DICT_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/dict.pb.h"

namespace statehub::handlers {

class DictHandlers final {
 public:
  explicit DictHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Get(const Caller& caller, const v1::DictGetRequest* req,
                   v1::DictGetResponse* resp);
  absl::Status Set(const Caller& caller, const v1::DictSetRequest* req,
                   v1::DictSetResponse* resp);
  absl::Status Delete(const Caller& caller, const v1::DictDeleteRequest* req,
                      v1::DictDeleteResponse* resp);
  absl::Status Contains(const Caller& caller,
                        const v1::DictContainsRequest* req,
                        v1::DictContainsResponse* resp);
  absl::Status Len(const Caller& caller, const v1::DictLenRequest* req,
                   v1::DictLenResponse* resp);
  absl::Status Items(const Caller& caller, const v1::DictItemsRequest* req,
                     v1::DictItemsResponse* resp);
  absl::Status Pop(const Caller& caller, const v1::DictPopRequest* req,
                   v1::DictPopResponse* resp);
  absl::Status PopItem(const Caller& caller, const v1::DictPopItemRequest* req,
                       v1::DictPopItemResponse* resp);
  absl::Status SetDefault(const Caller& caller,
                          const v1::DictSetDefaultRequest* req,
                          v1::DictSetDefaultResponse* resp);
  absl::Status Update(const Caller& caller, const v1::DictUpdateRequest* req,
                      v1::DictUpdateResponse* resp);
  absl::Status Clear(const Caller& caller, const v1::DictClearRequest* req,
                     v1::DictClearResponse* resp);
  absl::Status Increment(const Caller& caller,
                         const v1::DictIncrementRequest* req,
                         v1::DictIncrementResponse* resp);
  absl::Status CompareAndSet(const Caller& caller,
                             const v1::DictCompareAndSetRequest* req,
                             v1::DictCompareAndSetResponse* resp);
  absl::Status GetAndSet(const Caller& caller,
                         const v1::DictGetAndSetRequest* req,
                         v1::DictGetAndSetResponse* resp);
  absl::Status Expire(const Caller& caller, const v1::DictExpireRequest* req,
                      v1::DictExpireResponse* resp);
  absl::Status Ttl(const Caller& caller, const v1::DictTtlRequest* req,
                   v1::DictTtlResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_DICT_HANDLERS_H_
