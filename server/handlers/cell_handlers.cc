#include "server/handlers/cell_handlers.h"

#include "server/engine/array.h"
#include "server/engine/value_cell.h"
#include "server/handlers/call.h"

namespace statehub::handlers {
namespace {

using internal::EncodeValue;

template <typename T>
struct Target {
  std::shared_ptr<T> object;
  Decoder decode;
};

template <typename T>
absl::StatusOr<Target<T>> Open(Engine& engine, const std::string& name) {
  STATEHUB_ASSIGN_OR_RETURN(std::shared_ptr<T> object,
                            engine.registry().Find<T>(name));
  return Target<T>{std::move(object), Decoder(engine.limits(), T::kType, name)};
}

}  // namespace

absl::Status ValueHandlers::Get(const Caller& caller,
                                const v1::ValueGetRequest* req,
                                v1::ValueGetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ValueCell>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.object->Get(caller));
  EncodeValue(value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status ValueHandlers::Set(const Caller&, const v1::ValueSetRequest* req,
                                v1::ValueSetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ValueCell>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  return t.object->Set(std::move(value));
}

absl::Status ValueHandlers::Increment(const Caller&,
                                      const v1::ValueIncrementRequest* req,
                                      v1::ValueIncrementResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ValueCell>(engine_, req->name()));
  Value delta = 1;
  if (req->has_delta()) {
    STATEHUB_ASSIGN_OR_RETURN(delta, t.decode(req->delta()));
  }
  STATEHUB_ASSIGN_OR_RETURN(Value sum, t.object->Increment(delta));
  EncodeValue(sum, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status ValueHandlers::CompareAndSet(
    const Caller& caller, const v1::ValueCompareAndSetRequest* req,
    v1::ValueCompareAndSetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ValueCell>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value expected, t.decode(req->expected()));
  STATEHUB_ASSIGN_OR_RETURN(Value desired, t.decode(req->desired()));
  STATEHUB_ASSIGN_OR_RETURN(
      ValueCell::Swap swap,
      t.object->CompareAndSet(caller, expected, std::move(desired)));
  resp->set_swapped(swap.swapped);
  EncodeValue(swap.current, resp->mutable_current());
  return absl::OkStatus();
}

absl::Status ValueHandlers::GetAndSet(const Caller& caller,
                                      const v1::ValueGetAndSetRequest* req,
                                      v1::ValueGetAndSetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ValueCell>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  STATEHUB_ASSIGN_OR_RETURN(Value previous,
                            t.object->GetAndSet(caller, std::move(value)));
  EncodeValue(previous, resp->mutable_previous());
  return absl::OkStatus();
}

absl::Status ArrayHandlers::Len(const Caller&, const v1::ArrayLenRequest* req,
                                v1::ArrayLenResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ArrayObject>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.object->Len());
  resp->set_length(length);
  return absl::OkStatus();
}

absl::Status ArrayHandlers::Get(const Caller&, const v1::ArrayGetRequest* req,
                                v1::ArrayGetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ArrayObject>(engine_, req->name()));
  absl::StatusOr<Value> value =
      req->at().has_index() ? t.object->Get(req->at().index())
                            : t.object->GetSlice(SliceOf(req->at().slice()));
  if (!value.ok()) return value.status();
  EncodeValue(*value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status ArrayHandlers::Set(const Caller&, const v1::ArraySetRequest* req,
                                v1::ArraySetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(auto t, Open<ArrayObject>(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  if (req->at().has_index()) return t.object->Set(req->at().index(), value);
  if (!value.is_sequence()) {
    return t.object->Error(absl::StatusCode::kInvalidArgument,
                           ErrorKind::kTypeError,
                           "can only assign a list or tuple to a slice");
  }
  return t.object->SetSlice(SliceOf(req->at().slice()), value.AsItems());
}

}  // namespace statehub::handlers
