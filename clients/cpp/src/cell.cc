#include "statehub/cell.h"

#include <utility>

#include "core.h"
#include "near_cache.h"
#include "statehub/v1/cell.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::Dropping;
using client_internal::EncodeItems;
using client_internal::EncodeSlice;
using client_internal::NearCache;
using client_internal::SessionTag;
using client_internal::ToItems;
using internal::EncodeValue;

namespace {
using Arrays = v1::Arrays::Stub;
using Values = v1::Values::Stub;
}  // namespace

absl::StatusOr<ValueCell> ValueCell::Cached(CacheOptions options) const {
  ValueCell cached(state_);
  STATEHUB_RETURN_IF_ERROR(
      cached.cache_.Start(state_, client_internal::kCachedValueCell, options));
  return cached;
}

absl::StatusOr<Value> ValueCell::Get() const {
  // The cache keeps the one value under the key null.
  return NearCache::Read(
      cache_.get(), Value(),
      [&](std::optional<double>*) -> absl::StatusOr<Value> {
        v1::ValueGetRequest request;
        v1::ValueGetResponse response;
        STATEHUB_ASSIGN_OR_RETURN(
            const SessionTag tag,
            CallOn(state_, &Values::Get, request, &response));
        return state_.core->Decode(response.value(), tag);
      });
}

absl::Status ValueCell::Set(const Value& value) {
  const Dropping dropping(cache_.get(), nullptr);
  v1::ValueSetRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ValueSetResponse response;
  return CallOn(state_, &Values::Set, request, &response).status();
}

absl::StatusOr<Value> ValueCell::Increment(const Value& delta) {
  const Dropping dropping(cache_.get(), nullptr);
  v1::ValueIncrementRequest request;
  EncodeValue(delta, request.mutable_delta());
  v1::ValueIncrementResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Values::Increment, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::StatusOr<bool> ValueCell::CompareAndSet(const Value& expected,
                                              const Value& desired,
                                              Value* current) {
  const Dropping dropping(cache_.get(), nullptr);
  v1::ValueCompareAndSetRequest request;
  EncodeValue(expected, request.mutable_expected());
  EncodeValue(desired, request.mutable_desired());
  v1::ValueCompareAndSetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Values::CompareAndSet, request, &response));
  // Decoded even when unwanted, so that a hold in it is released.
  STATEHUB_ASSIGN_OR_RETURN(Value now,
                            state_.core->Decode(response.current(), tag));
  if (current != nullptr) *current = std::move(now);
  return response.swapped();
}

absl::StatusOr<Value> ValueCell::GetAndSet(const Value& value) {
  const Dropping dropping(cache_.get(), nullptr);
  v1::ValueGetAndSetRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ValueGetAndSetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Values::GetAndSet, request, &response));
  return state_.core->Decode(response.previous(), tag);
}

absl::StatusOr<int64_t> Array::Len() const {
  v1::ArrayLenRequest request;
  v1::ArrayLenResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Arrays::Len, request, &response).status());
  return response.length();
}

absl::StatusOr<Value> Array::Get(int64_t index) const {
  v1::ArrayGetRequest request;
  request.mutable_at()->set_index(index);
  v1::ArrayGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Arrays::Get, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::StatusOr<Value::Items> Array::GetSlice(const Slice& slice) const {
  v1::ArrayGetRequest request;
  EncodeSlice(slice, request.mutable_at()->mutable_slice());
  v1::ArrayGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Arrays::Get, request, &response));
  return ToItems(state_.core->Decode(response.value(), tag), "an array slice");
}

absl::Status Array::Set(int64_t index, const Value& value) {
  v1::ArraySetRequest request;
  request.mutable_at()->set_index(index);
  EncodeValue(value, request.mutable_value());
  v1::ArraySetResponse response;
  return CallOn(state_, &Arrays::Set, request, &response).status();
}

absl::Status Array::SetSlice(const Slice& slice, Value::Items items) {
  v1::ArraySetRequest request;
  EncodeSlice(slice, request.mutable_at()->mutable_slice());
  EncodeItems(items,
              request.mutable_value()->mutable_list_value()->mutable_items());
  v1::ArraySetResponse response;
  return CallOn(state_, &Arrays::Set, request, &response).status();
}

absl::StatusOr<statehub::Watch> ValueCell::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

absl::StatusOr<statehub::Watch> Array::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
