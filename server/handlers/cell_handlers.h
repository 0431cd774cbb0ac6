// File: server/handlers/cell_handlers.h
//
// The handlers of statehub.v1.Values and statehub.v1.Arrays: check each
// request, call ValueCell or ArrayObject, fill the reply.

#ifndef STATEHUB_SERVER_HANDLERS_CELL_HANDLERS_H_
#define STATEHUB_SERVER_HANDLERS_CELL_HANDLERS_H_

#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "statehub/v1/cell.pb.h"

namespace statehub::handlers {

class ValueHandlers final {
 public:
  explicit ValueHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Get(const Caller& caller, const v1::ValueGetRequest* req,
                   v1::ValueGetResponse* resp);
  absl::Status Set(const Caller& caller, const v1::ValueSetRequest* req,
                   v1::ValueSetResponse* resp);
  absl::Status Increment(const Caller& caller,
                         const v1::ValueIncrementRequest* req,
                         v1::ValueIncrementResponse* resp);
  absl::Status CompareAndSet(const Caller& caller,
                             const v1::ValueCompareAndSetRequest* req,
                             v1::ValueCompareAndSetResponse* resp);
  absl::Status GetAndSet(const Caller& caller,
                         const v1::ValueGetAndSetRequest* req,
                         v1::ValueGetAndSetResponse* resp);

 private:
  Engine& engine_;
};

class ArrayHandlers final {
 public:
  explicit ArrayHandlers(Engine& engine) : engine_(engine) {}

  absl::Status Len(const Caller& caller, const v1::ArrayLenRequest* req,
                   v1::ArrayLenResponse* resp);
  absl::Status Get(const Caller& caller, const v1::ArrayGetRequest* req,
                   v1::ArrayGetResponse* resp);
  absl::Status Set(const Caller& caller, const v1::ArraySetRequest* req,
                   v1::ArraySetResponse* resp);

 private:
  Engine& engine_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_CELL_HANDLERS_H_
