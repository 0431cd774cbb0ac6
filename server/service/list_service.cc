#include "server/service/list_service.h"

#include "server/engine/list.h"
#include "server/service/call.h"

namespace statehub::service {
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

grpc::ServerUnaryReactor* ListService::Len(grpc::CallbackServerContext* ctx,
                                           const v1::ListLenRequest* req,
                                           v1::ListLenResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Len());
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Get(grpc::CallbackServerContext* ctx,
                                           const v1::ListGetRequest* req,
                                           v1::ListGetResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    absl::StatusOr<Value> value =
        req->at().has_index()
            ? t.list->Get(caller, req->at().index())
            : t.list->GetSlice(caller, SliceOf(req->at().slice()));
    if (!value.ok()) return value.status();
    EncodeValue(*value, resp->mutable_value());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Set(grpc::CallbackServerContext* ctx,
                                           const v1::ListSetRequest* req,
                                           v1::ListSetResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    if (req->at().has_index()) {
      return t.list->Set(req->at().index(), std::move(value));
    }
    STATEHUB_ASSIGN_OR_RETURN(Value::Items items,
                              SequenceOf(*t.list, std::move(value)));
    return t.list->SetSlice(SliceOf(req->at().slice()), std::move(items));
  });
}

grpc::ServerUnaryReactor* ListService::Delete(grpc::CallbackServerContext* ctx,
                                              const v1::ListDeleteRequest* req,
                                              v1::ListDeleteResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    return req->at().has_index()
               ? t.list->Delete(req->at().index())
               : t.list->DeleteSlice(SliceOf(req->at().slice()));
  });
}

grpc::ServerUnaryReactor* ListService::Append(grpc::CallbackServerContext* ctx,
                                              const v1::ListAppendRequest* req,
                                              v1::ListAppendResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Append(std::move(value)));
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Extend(grpc::CallbackServerContext* ctx,
                                              const v1::ListExtendRequest* req,
                                              v1::ListExtendResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value::Items items, t.decode.Items(req->items()));
    STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Extend(std::move(items)));
    resp->set_length(length);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Insert(grpc::CallbackServerContext* ctx,
                                              const v1::ListInsertRequest* req,
                                              v1::ListInsertResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    return t.list->Insert(req->index(), std::move(value));
  });
}

grpc::ServerUnaryReactor* ListService::Pop(grpc::CallbackServerContext* ctx,
                                           const v1::ListPopRequest* req,
                                           v1::ListPopResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller& caller) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    std::optional<int64_t> index;
    if (req->has_index()) index = req->index();
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.list->Pop(caller, index));
    EncodeValue(value, resp->mutable_value());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Remove(grpc::CallbackServerContext* ctx,
                                              const v1::ListRemoveRequest* req,
                                              v1::ListRemoveResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    return t.list->Remove(value);
  });
}

grpc::ServerUnaryReactor* ListService::Index(grpc::CallbackServerContext* ctx,
                                             const v1::ListIndexRequest* req,
                                             v1::ListIndexResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    std::optional<int64_t> start, stop;
    if (req->has_start()) start = req->start();
    if (req->has_stop()) stop = req->stop();
    STATEHUB_ASSIGN_OR_RETURN(int64_t index, t.list->Index(value, start, stop));
    resp->set_index(index);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Count(grpc::CallbackServerContext* ctx,
                                             const v1::ListCountRequest* req,
                                             v1::ListCountResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    STATEHUB_ASSIGN_OR_RETURN(int64_t count, t.list->Count(value));
    resp->set_count(count);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Contains(
    grpc::CallbackServerContext* ctx, const v1::ListContainsRequest* req,
    v1::ListContainsResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
    STATEHUB_ASSIGN_OR_RETURN(bool contains, t.list->Contains(value));
    resp->set_contains(contains);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ListService::Reverse(
    grpc::CallbackServerContext* ctx, const v1::ListReverseRequest* req,
    v1::ListReverseResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    return t.list->Reverse();
  });
}

grpc::ServerUnaryReactor* ListService::Sort(grpc::CallbackServerContext* ctx,
                                            const v1::ListSortRequest* req,
                                            v1::ListSortResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    return t.list->Sort(req->reverse());
  });
}

grpc::ServerUnaryReactor* ListService::Clear(grpc::CallbackServerContext* ctx,
                                             const v1::ListClearRequest* req,
                                             v1::ListClearResponse*) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    return t.list->Clear();
  });
}

grpc::ServerUnaryReactor* ListService::Repeat(grpc::CallbackServerContext* ctx,
                                              const v1::ListRepeatRequest* req,
                                              v1::ListRepeatResponse* resp) {
  return Serve(engine_, ctx, [&](const Caller&) -> absl::Status {
    STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
    STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.list->Repeat(req->times()));
    resp->set_length(length);
    return absl::OkStatus();
  });
}

}  // namespace statehub::service
