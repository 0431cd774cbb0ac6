#include "statehub/list.h"

#include <utility>

#include "core.h"
#include "statehub/v1/list.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::EncodeItems;
using client_internal::EncodeSlice;
using client_internal::SessionTag;
using client_internal::ToItems;
using internal::EncodeValue;

namespace {
using Lists = v1::Lists::Stub;
}  // namespace

absl::StatusOr<int64_t> List::Len() const {
  v1::ListLenRequest request;
  v1::ListLenResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Len, request, &response).status());
  return response.length();
}

absl::StatusOr<Value> List::Get(int64_t index) const {
  v1::ListGetRequest request;
  request.mutable_at()->set_index(index);
  v1::ListGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Lists::Get, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::StatusOr<Value::Items> List::GetSlice(const Slice& slice) const {
  v1::ListGetRequest request;
  EncodeSlice(slice, request.mutable_at()->mutable_slice());
  v1::ListGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Lists::Get, request, &response));
  return ToItems(state_.core->Decode(response.value(), tag), "a list slice");
}

absl::StatusOr<Value::Items> List::Snapshot() const {
  // An unset subscript is the full slice l[:].
  v1::ListGetRequest request;
  v1::ListGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Lists::Get, request, &response));
  return ToItems(state_.core->Decode(response.value(), tag), "a list slice");
}

absl::Status List::Set(int64_t index, const Value& value) {
  v1::ListSetRequest request;
  request.mutable_at()->set_index(index);
  EncodeValue(value, request.mutable_value());
  v1::ListSetResponse response;
  return CallOn(state_, &Lists::Set, request, &response).status();
}

absl::Status List::SetSlice(const Slice& slice, Value::Items items) {
  v1::ListSetRequest request;
  EncodeSlice(slice, request.mutable_at()->mutable_slice());
  EncodeItems(items,
              request.mutable_value()->mutable_list_value()->mutable_items());
  v1::ListSetResponse response;
  return CallOn(state_, &Lists::Set, request, &response).status();
}

absl::Status List::Delete(int64_t index) {
  v1::ListDeleteRequest request;
  request.mutable_at()->set_index(index);
  v1::ListDeleteResponse response;
  return CallOn(state_, &Lists::Delete, request, &response).status();
}

absl::Status List::DeleteSlice(const Slice& slice) {
  v1::ListDeleteRequest request;
  EncodeSlice(slice, request.mutable_at()->mutable_slice());
  v1::ListDeleteResponse response;
  return CallOn(state_, &Lists::Delete, request, &response).status();
}

absl::StatusOr<int64_t> List::Append(const Value& value) {
  v1::ListAppendRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ListAppendResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Append, request, &response).status());
  return response.length();
}

absl::StatusOr<int64_t> List::Extend(Value::Items items) {
  v1::ListExtendRequest request;
  EncodeItems(items, request.mutable_items());
  v1::ListExtendResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Extend, request, &response).status());
  return response.length();
}

absl::Status List::Insert(int64_t index, const Value& value) {
  v1::ListInsertRequest request;
  request.set_index(index);
  EncodeValue(value, request.mutable_value());
  v1::ListInsertResponse response;
  return CallOn(state_, &Lists::Insert, request, &response).status();
}

absl::StatusOr<Value> List::Pop(std::optional<int64_t> index) {
  v1::ListPopRequest request;
  if (index.has_value()) request.set_index(*index);
  v1::ListPopResponse response;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            CallOn(state_, &Lists::Pop, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::Status List::Remove(const Value& value) {
  v1::ListRemoveRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ListRemoveResponse response;
  return CallOn(state_, &Lists::Remove, request, &response).status();
}

absl::StatusOr<int64_t> List::Index(const Value& value,
                                    std::optional<int64_t> start,
                                    std::optional<int64_t> stop) const {
  v1::ListIndexRequest request;
  EncodeValue(value, request.mutable_value());
  if (start.has_value()) request.set_start(*start);
  if (stop.has_value()) request.set_stop(*stop);
  v1::ListIndexResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Index, request, &response).status());
  return response.index();
}

absl::StatusOr<int64_t> List::Count(const Value& value) const {
  v1::ListCountRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ListCountResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Count, request, &response).status());
  return response.count();
}

absl::StatusOr<bool> List::Contains(const Value& value) const {
  v1::ListContainsRequest request;
  EncodeValue(value, request.mutable_value());
  v1::ListContainsResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Contains, request, &response).status());
  return response.contains();
}

absl::Status List::Reverse() {
  v1::ListReverseRequest request;
  v1::ListReverseResponse response;
  return CallOn(state_, &Lists::Reverse, request, &response).status();
}

absl::Status List::Sort(bool reverse) {
  v1::ListSortRequest request;
  request.set_reverse(reverse);
  v1::ListSortResponse response;
  return CallOn(state_, &Lists::Sort, request, &response).status();
}

absl::Status List::Clear() {
  v1::ListClearRequest request;
  v1::ListClearResponse response;
  return CallOn(state_, &Lists::Clear, request, &response).status();
}

absl::StatusOr<int64_t> List::Repeat(int64_t times) {
  v1::ListRepeatRequest request;
  request.set_times(times);
  v1::ListRepeatResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Lists::Repeat, request, &response).status());
  return response.length();
}

absl::StatusOr<statehub::Watch> List::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
