#include "server/handlers/dict_handlers.h"

#include <algorithm>

#include "absl/time/time.h"
#include "server/engine/dict.h"
#include "server/handlers/call.h"

namespace statehub::handlers {
namespace {

using internal::EncodeValue;

// Looks up the dict a request names and a decoder for its values.
struct Target {
  std::shared_ptr<DictObject> dict;
  Decoder decode;
};

absl::StatusOr<Target> Open(Engine& engine, const std::string& name) {
  STATEHUB_ASSIGN_OR_RETURN(std::shared_ptr<DictObject> dict,
                            engine.registry().Find<DictObject>(name));
  return Target{std::move(dict),
                Decoder(engine.limits(), ObjectType::kDict, name)};
}

}  // namespace

absl::Status DictHandlers::Get(const Caller& caller,
                               const v1::DictGetRequest* req,
                               v1::DictGetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(
      std::optional<Value> fallback,
      t.decode.Optional(req->has_default_(), req->default_()));
  STATEHUB_ASSIGN_OR_RETURN(
      DictObject::Found found,
      t.dict->Get(caller, key, fallback ? &*fallback : nullptr));
  EncodeValue(found.value, resp->mutable_value());
  resp->set_found(found.found);
  if (found.deadline != 0) {
    const absl::Duration left =
        absl::FromUnixMicros(found.deadline) - absl::Now();
    resp->set_ttl_seconds(
        absl::ToDoubleSeconds(std::max(left, absl::ZeroDuration())));
  }
  return absl::OkStatus();
}

absl::Status DictHandlers::Set(const Caller&, const v1::DictSetRequest* req,
                               v1::DictSetResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  std::optional<double> ttl;
  if (req->has_ttl_seconds()) ttl = req->ttl_seconds();
  return t.dict->Set(key, std::move(value), ttl);
}

absl::Status DictHandlers::Delete(const Caller&,
                                  const v1::DictDeleteRequest* req,
                                  v1::DictDeleteResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  return t.dict->Delete(key);
}

absl::Status DictHandlers::Contains(const Caller&,
                                    const v1::DictContainsRequest* req,
                                    v1::DictContainsResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(bool contains, t.dict->Contains(key));
  resp->set_contains(contains);
  return absl::OkStatus();
}

absl::Status DictHandlers::Len(const Caller&, const v1::DictLenRequest* req,
                               v1::DictLenResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(int64_t length, t.dict->Len());
  resp->set_length(length);
  return absl::OkStatus();
}

absl::Status DictHandlers::Items(const Caller& caller,
                                 const v1::DictItemsRequest* req,
                                 v1::DictItemsResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(
      DictObject::ItemsPage page,
      t.dict->Items(caller, req->cursor(), req->limit(), req->size_version(),
                    req->keys_only()));
  if (req->columns() &&
      EncodeColumns(page.entries, req->keys_only(), resp->mutable_columns())) {
    // Laid out in columns.
  } else if (req->keys_only()) {
    resp->clear_columns();
    resp->mutable_entries()->Reserve(static_cast<int>(page.entries.size()));
    for (const auto& [key, value] : page.entries) {
      EncodeValue(key, resp->add_entries()->mutable_key());
    }
  } else {
    resp->clear_columns();
    EncodeEntries(page.entries, resp->mutable_entries());
  }
  resp->set_next_cursor(page.next_cursor);
  resp->set_size_version(page.size_version);
  return absl::OkStatus();
}

absl::Status DictHandlers::Pop(const Caller& caller,
                               const v1::DictPopRequest* req,
                               v1::DictPopResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(
      std::optional<Value> fallback,
      t.decode.Optional(req->has_default_(), req->default_()));
  STATEHUB_ASSIGN_OR_RETURN(
      DictObject::Found found,
      t.dict->Pop(caller, key, fallback ? &*fallback : nullptr));
  EncodeValue(found.value, resp->mutable_value());
  resp->set_found(found.found);
  return absl::OkStatus();
}

absl::Status DictHandlers::PopItem(const Caller& caller,
                                   const v1::DictPopItemRequest* req,
                                   v1::DictPopItemResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(auto entry, t.dict->PopItem(caller));
  EncodeValue(entry.first, resp->mutable_key());
  EncodeValue(entry.second, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status DictHandlers::SetDefault(const Caller& caller,
                                      const v1::DictSetDefaultRequest* req,
                                      v1::DictSetDefaultResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(Value fallback, t.decode(req->default_()));
  STATEHUB_ASSIGN_OR_RETURN(
      Value value, t.dict->SetDefault(caller, key, std::move(fallback)));
  EncodeValue(value, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status DictHandlers::Update(const Caller&,
                                  const v1::DictUpdateRequest* req,
                                  v1::DictUpdateResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value::Entries entries,
                            t.decode.Entries(req->entries()));
  if (req->has_columns()) {
    STATEHUB_RETURN_IF_ERROR(t.decode.Columns(req->columns(), &entries));
  }
  return t.dict->Update(std::move(entries));
}

absl::Status DictHandlers::Clear(const Caller&, const v1::DictClearRequest* req,
                                 v1::DictClearResponse*) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  return t.dict->Clear();
}

absl::Status DictHandlers::Increment(const Caller&,
                                     const v1::DictIncrementRequest* req,
                                     v1::DictIncrementResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  Value delta = 1;
  if (req->has_delta()) {
    STATEHUB_ASSIGN_OR_RETURN(delta, t.decode(req->delta()));
  }
  STATEHUB_ASSIGN_OR_RETURN(Value sum, t.dict->Increment(key, delta));
  EncodeValue(sum, resp->mutable_value());
  return absl::OkStatus();
}

absl::Status DictHandlers::CompareAndSet(
    const Caller& caller, const v1::DictCompareAndSetRequest* req,
    v1::DictCompareAndSetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(
      std::optional<Value> expected,
      t.decode.Optional(req->has_expected(), req->expected()));
  STATEHUB_ASSIGN_OR_RETURN(Value desired, t.decode(req->desired()));
  STATEHUB_ASSIGN_OR_RETURN(
      DictObject::Swap swap,
      t.dict->CompareAndSet(caller, key, expected ? &*expected : nullptr,
                            std::move(desired)));
  resp->set_swapped(swap.swapped);
  if (swap.current) EncodeValue(*swap.current, resp->mutable_current());
  return absl::OkStatus();
}

absl::Status DictHandlers::GetAndSet(const Caller& caller,
                                     const v1::DictGetAndSetRequest* req,
                                     v1::DictGetAndSetResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(Value value, t.decode(req->value()));
  STATEHUB_ASSIGN_OR_RETURN(std::optional<Value> previous,
                            t.dict->GetAndSet(caller, key, std::move(value)));
  if (previous) EncodeValue(*previous, resp->mutable_previous());
  return absl::OkStatus();
}

absl::Status DictHandlers::Expire(const Caller&,
                                  const v1::DictExpireRequest* req,
                                  v1::DictExpireResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(bool existed, t.dict->Expire(key, req->seconds()));
  resp->set_existed(existed);
  return absl::OkStatus();
}

absl::Status DictHandlers::Ttl(const Caller&, const v1::DictTtlRequest* req,
                               v1::DictTtlResponse* resp) {
  STATEHUB_ASSIGN_OR_RETURN(Target t, Open(engine_, req->name()));
  STATEHUB_ASSIGN_OR_RETURN(Value key, t.decode(req->key()));
  STATEHUB_ASSIGN_OR_RETURN(std::optional<absl::Duration> left,
                            t.dict->Ttl(key));
  if (left) resp->set_seconds(absl::ToDoubleSeconds(*left));
  return absl::OkStatus();
}

}  // namespace statehub::handlers
