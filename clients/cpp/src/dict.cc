#include "statehub/dict.h"

#include <utility>

#include "core.h"
#include "near_cache.h"
#include "statehub/internal/cache_testing.h"
#include "statehub/v1/dict.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::Dropping;
using client_internal::NearCache;
using client_internal::SessionTag;
using internal::EncodeValue;

namespace {

using Dicts = v1::Dicts::Stub;

// Page calls fn(key, value) for the dict's entries, `limit` per call (0: all
// in one call), passing size_version so that a dict resized between pages
// fails with RUNTIME_ERROR. Values are null when `keys_only`.
template <typename Fn>
absl::Status Page(const client_internal::HandleState& h, bool keys_only,
                  int64_t limit, Fn&& fn) {
  v1::DictItemsRequest request;
  request.set_keys_only(keys_only);
  request.set_limit(limit > 0 ? limit : 0);
  while (true) {
    v1::DictItemsResponse response;
    STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                              CallOn(h, &Dicts::Items, request, &response));
    STATEHUB_ASSIGN_OR_RETURN(Value::Entries entries,
                              h.core->DecodeEntries(response.entries(), tag));
    for (auto& [key, value] : entries) {
      if (!fn(std::move(key), std::move(value))) return absl::OkStatus();
    }
    if (response.next_cursor() == 0) return absl::OkStatus();
    request.set_cursor(response.next_cursor());
    request.set_size_version(response.size_version());
  }
}

}  // namespace

Dict::Dict(client_internal::HandleState state) : state_(std::move(state)) {}

absl::StatusOr<Dict> Dict::Cached(CacheOptions options) const {
  Dict cached(state_);
  STATEHUB_RETURN_IF_ERROR(
      cached.cache_.Start(state_, client_internal::kCachedDict, options));
  return cached;
}

absl::StatusOr<Value> Dict::Fetch(const Value& key,
                                  std::optional<double>* ttl) const {
  v1::DictGetRequest request;
  EncodeValue(key, request.mutable_key());
  v1::DictGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Dicts::Get, request, &response));
  if (response.has_ttl_seconds()) *ttl = response.ttl_seconds();
  return state_.core->Decode(response.value(), tag);
}

absl::StatusOr<Value> Dict::Get(const Value& key) const {
  return NearCache::Read(cache_.get(), key, [&](std::optional<double>* ttl) {
    return Fetch(key, ttl);
  });
}

// The default is applied here rather than sent: the server's reply then only
// ever holds stored values, whose anonymous refs carry holds, never an echo
// of the caller's default, which would leave open whether the echo holds.
absl::StatusOr<Value> Dict::Get(const Value& key,
                                const Value& default_value) const {
  absl::StatusOr<Value> value = Get(key);
  if (GetErrorKind(value.status()) == ErrorKind::kKeyError) {
    return default_value;
  }
  return value;
}

absl::Status Dict::Set(const Value& key, const Value& value) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictSetRequest request;
  EncodeValue(key, request.mutable_key());
  EncodeValue(value, request.mutable_value());
  v1::DictSetResponse response;
  return CallOn(state_, &Dicts::Set, request, &response).status();
}

absl::Status Dict::Set(const Value& key, const Value& value,
                       absl::Duration ttl) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictSetRequest request;
  EncodeValue(key, request.mutable_key());
  EncodeValue(value, request.mutable_value());
  // An infinite ttl goes as inf, for the server to refuse.
  request.set_ttl_seconds(absl::ToDoubleSeconds(ttl));
  v1::DictSetResponse response;
  return CallOn(state_, &Dicts::Set, request, &response).status();
}

absl::StatusOr<bool> Dict::Expire(const Value& key, absl::Duration ttl) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictExpireRequest request;
  EncodeValue(key, request.mutable_key());
  request.set_seconds(absl::ToDoubleSeconds(ttl));
  v1::DictExpireResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Dicts::Expire, request, &response).status());
  return response.existed();
}

absl::StatusOr<std::optional<absl::Duration>> Dict::Ttl(
    const Value& key) const {
  v1::DictTtlRequest request;
  EncodeValue(key, request.mutable_key());
  v1::DictTtlResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Dicts::Ttl, request, &response).status());
  if (!response.has_seconds()) return std::optional<absl::Duration>();
  return std::optional<absl::Duration>(absl::Seconds(response.seconds()));
}

absl::Status Dict::Delete(const Value& key) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictDeleteRequest request;
  EncodeValue(key, request.mutable_key());
  v1::DictDeleteResponse response;
  return CallOn(state_, &Dicts::Delete, request, &response).status();
}

absl::StatusOr<bool> Dict::Contains(const Value& key) const {
  if (cache_.get() != nullptr) {
    // A Get, so that a miss fills the entry Get and Contains share.
    absl::StatusOr<Value> value = Get(key);
    if (value.ok()) return true;
    if (GetErrorKind(value.status()) == ErrorKind::kKeyError) return false;
    return value.status();
  }
  v1::DictContainsRequest request;
  EncodeValue(key, request.mutable_key());
  v1::DictContainsResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Dicts::Contains, request, &response).status());
  return response.contains();
}

absl::StatusOr<int64_t> Dict::Len() const {
  v1::DictLenRequest request;
  v1::DictLenResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Dicts::Len, request, &response).status());
  return response.length();
}

absl::StatusOr<Value::Entries> Dict::Items() const {
  Value::Entries entries;
  STATEHUB_RETURN_IF_ERROR(Page(
      state_, /*keys_only=*/false, /*limit=*/0, [&](Value key, Value value) {
        entries.emplace_back(std::move(key), std::move(value));
        return true;
      }));
  return entries;
}

absl::StatusOr<Value::Items> Dict::Keys() const {
  Value::Items keys;
  STATEHUB_RETURN_IF_ERROR(
      Page(state_, /*keys_only=*/true, /*limit=*/0, [&](Value key, Value) {
        keys.push_back(std::move(key));
        return true;
      }));
  return keys;
}

absl::StatusOr<Value::Items> Dict::Values() const {
  Value::Items values;
  STATEHUB_RETURN_IF_ERROR(
      Page(state_, /*keys_only=*/false, /*limit=*/0, [&](Value, Value value) {
        values.push_back(std::move(value));
        return true;
      }));
  return values;
}

absl::Status Dict::ForEach(
    const std::function<bool(const Value& key, const Value& value)>& fn,
    int64_t page_size) const {
  return Page(state_, /*keys_only=*/false, page_size,
              [&](Value key, Value value) { return fn(key, value); });
}

absl::StatusOr<Value> Dict::Pop(const Value& key) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictPopRequest request;
  EncodeValue(key, request.mutable_key());
  v1::DictPopResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Dicts::Pop, request, &response));
  return state_.core->Decode(response.value(), tag);
}

// As in Get, the default is applied here rather than sent.
absl::StatusOr<Value> Dict::Pop(const Value& key, const Value& default_value) {
  absl::StatusOr<Value> value = Pop(key);
  if (GetErrorKind(value.status()) == ErrorKind::kKeyError) {
    return default_value;
  }
  return value;
}

absl::StatusOr<std::pair<Value, Value>> Dict::PopItem() {
  const Dropping dropping(cache_.get(), nullptr);
  v1::DictPopItemRequest request;
  v1::DictPopItemResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Dicts::PopItem, request, &response));
  STATEHUB_ASSIGN_OR_RETURN(Value key,
                            state_.core->Decode(response.key(), tag));
  STATEHUB_ASSIGN_OR_RETURN(Value value,
                            state_.core->Decode(response.value(), tag));
  return std::make_pair(std::move(key), std::move(value));
}

absl::StatusOr<Value> Dict::SetDefault(const Value& key,
                                       const Value& default_value) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictSetDefaultRequest request;
  EncodeValue(key, request.mutable_key());
  EncodeValue(default_value, request.mutable_default_());
  v1::DictSetDefaultResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Dicts::SetDefault, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::Status Dict::Update(const Value::Entries& entries) {
  const Dropping dropping(cache_.get(), nullptr);
  v1::DictUpdateRequest request;
  request.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (const auto& [key, value] : entries) {
    v1::MapEntry* entry = request.add_entries();
    EncodeValue(key, entry->mutable_key());
    EncodeValue(value, entry->mutable_value());
  }
  v1::DictUpdateResponse response;
  return CallOn(state_, &Dicts::Update, request, &response).status();
}

absl::Status Dict::Clear() {
  const Dropping dropping(cache_.get(), nullptr);
  v1::DictClearRequest request;
  v1::DictClearResponse response;
  return CallOn(state_, &Dicts::Clear, request, &response).status();
}

absl::StatusOr<Value> Dict::Increment(const Value& key, const Value& delta) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictIncrementRequest request;
  EncodeValue(key, request.mutable_key());
  EncodeValue(delta, request.mutable_delta());
  v1::DictIncrementResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Dicts::Increment, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::StatusOr<bool> Dict::CompareAndSet(const Value& key,
                                         const std::optional<Value>& expected,
                                         const Value& desired, Value* current) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictCompareAndSetRequest request;
  EncodeValue(key, request.mutable_key());
  if (expected.has_value()) EncodeValue(*expected, request.mutable_expected());
  EncodeValue(desired, request.mutable_desired());
  v1::DictCompareAndSetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Dicts::CompareAndSet, request, &response));
  // Decoded even when the caller does not want it: a ref in it carries a
  // hold the server granted, which must be released.
  STATEHUB_ASSIGN_OR_RETURN(Value now,
                            state_.core->Decode(response.current(), tag));
  if (current != nullptr) *current = std::move(now);
  return response.swapped();
}

absl::StatusOr<std::optional<Value>> Dict::GetAndSet(const Value& key,
                                                     const Value& value) {
  const Dropping dropping(cache_.get(), &key);
  v1::DictGetAndSetRequest request;
  EncodeValue(key, request.mutable_key());
  EncodeValue(value, request.mutable_value());
  v1::DictGetAndSetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Dicts::GetAndSet, request, &response));
  if (!response.has_previous()) return std::optional<Value>();
  STATEHUB_ASSIGN_OR_RETURN(Value previous,
                            state_.core->Decode(response.previous(), tag));
  return std::optional<Value>(std::move(previous));
}

absl::StatusOr<statehub::Watch> Dict::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

namespace client_internal {

void CacheTesting::SetReplyHook(Dict& dict,
                                std::function<void(const Value&)> hook) {
  dict.cache_.get()->SetReplyHook(std::move(hook));
}

}  // namespace client_internal
}  // namespace statehub
