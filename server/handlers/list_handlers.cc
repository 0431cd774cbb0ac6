#include "server/handlers/list_handlers.h"

#include "server/engine/list.h"
#include "server/handlers/call.h"

namespace statehub::handlers {
namespace {

using internal::EncodeValue;

struct Target {
  std::shared_ptr<ListObject> list;
  Decoder decode;
};

absl::StatusOr<Target> Open(Engine& engine, const std::string& name) {
  STATEHUB_ASSIGN_OR_RETURN(std::shared_ptr<ListObject> list,
                            engine.registry().Find<ListObject>(name));
  return Target{std::move(list),
                Decoder(engine.limits(), ObjectType::kList, name)};
}

// The items a slice assignment stores: a list or tuple value.
absl::StatusOr<Value::Items> SequenceOf(const ListObject& list, Value value) {
  if (!value.is_sequence()) {
    return list.Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                      "can only assign a list or tuple to a slice");
  }
  return std::move(value.MutableItems());
}

}  // namespace

absl::Status ListHandlers::Len(const Caller&, const v1::ListLenRequest* req,
                               v1::ListLenResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Len());
  resp->set_length(length);
  return absl::OkStatus();
}

absl::Status ListHandlers::Get(const Caller& caller,
                               const v1::ListGetRequest* req,
                               v1::ListGetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  absl::StatusOr<Value> value =
      req->at().has_index()
          ? t.list->Get(caller, req->at().index())
          : t.list->GetSlice(caller, SliceOf(req->at().slice()));
  if (!value.ok()) return value.status();
  if (req->columns() && !req->at().has_index() &&
      EncodeColumns(value->AsItems(), resp->mutable_columns())) {
    return absl::OkStatus();
  }
  resp->clear_columns();  // mutable_columns() above marked it present
  EncodeValue(*value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status ListHandlers::Set(const Caller&, const v1::ListSetRequest* req,
                               v1::ListSetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  if (req->at().has_index()) {
    return t.list->Set(req->at().index(), std::move(value));
  }
  STATEHUB_ASSIGN_OR_RETURN(Value::Items items,
                            SequenceOf(*t.list, std::move(value)));
  return t.list->SetSlice(SliceOf(req->at().slice()), std::move(items));
}

absl::Status ListHandlers::Delete(const Caller&,
                                  const v1::ListDeleteRequest* req,
                                  v1::ListDeleteResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  return req->at().has_index()
             ? t.list->Delete(req->at().index())
             : t.list->DeleteSlice(SliceOf(req->at().slice()));
}

absl::Status ListHandlers::Append(const Caller&,
                                  const v1::ListAppendRequest* req,
                                  v1::ListAppendResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Append(std::move(value)));
  resp->set_length(length);
  return absl::OkStatus();
}

absl::Status ListHandlers::Extend(const Caller&,
                                  const v1::ListExtendRequest* req,
                                  v1::ListExtendResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value::Items items, t.decode.Items(req->items()));
  if (req->has_columns()) {
    STATEHUB_RETURN_IF_ERROR(t.decode.Columns(req->columns(), &items));
  }
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Extend(std::move(items)));
  resp->set_length(length);
  return absl::OkStatus();
}

absl::Status ListHandlers::Insert(const Caller&,
                                  const v1::ListInsertRequest* req,
                                  v1::ListInsertResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  return t.list->Insert(req->index(), std::move(value));
}

absl::Status ListHandlers::Pop(const Caller& caller,
                               const v1::ListPopRequest* req,
                               v1::ListPopResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  std::optional<int64_t> index;
  if (req->has_index()) index = req->index();
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.list->Pop(caller, index));
  EncodeValue(value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status ListHandlers::Remove(const Caller&,
                                  const v1::ListRemoveRequest* req,
                                  v1::ListRemoveResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  return t.list->Remove(value);
}

absl::Status ListHandlers::Index(const Caller&, const v1::ListIndexRequest* req,
                                 v1::ListIndexResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  std::optional<int64_t> start, stop;
  if (req->has_start()) start = req->start();
  if (req->has_stop()) stop = req->stop();
  STATEHUB_ASSIGN_OR_RETURN(int64_t index, t.list->Index(value, start, stop));
  resp->set_index(index);
  return absl::OkStatus();
}

absl::Status ListHandlers::Count(const Caller&, const v1::ListCountRequest* req,
                                 v1::ListCountResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t count, t.list->Count(value));
  resp->set_count(count);
  return absl::OkStatus();
}

absl::Status ListHandlers::Contains(const Caller&,
                                    const v1::ListContainsRequest* req,
                                    v1::ListContainsResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  STATEHUB_ASSIGN_OR_RETURN(bool contains, t.list->Contains(value));
  resp->set_contains(contains);
  return absl::OkStatus();
}

absl::Status ListHandlers::Reverse(const Caller&,
                                   const v1::ListReverseRequest* req,
                                   v1::ListReverseResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  return t.list->Reverse();
}

absl::Status ListHandlers::Sort(const Caller&, const v1::ListSortRequest* req,
                                v1::ListSortResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  return t.list->Sort(req->reverse());
}

absl::Status ListHandlers::Clear(const Caller&, const v1::ListClearRequest* req,
                                 v1::ListClearResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  return t.list->Clear();
}

absl::Status ListHandlers::Repeat(const Caller&,
                                  const v1::ListRepeatRequest* req,
                                  v1::ListRepeatResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Repeat(req->times()));
  resp->set_length(length);
  return absl::OkStatus();
}

}  // namespace statehub::handlers
