#include "statehub/queue.h"

#include <utility>

#include "core.h"
#include "statehub/v1/queue.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::CallParked;
using client_internal::SessionTag;
using client_internal::WaitersFromWire;

namespace {
using Queues = v1::Queues::Stub;
}  // namespace

absl::StatusOr<bool> Queue::Put(const Value& item, bool block,
                                std::optional<absl::Duration> timeout) {
  v1::QueuePutRequest request;
  internal::EncodeValue(item, request.mutable_item());
  request.set_block(block);
  v1::QueuePutResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Queues::Put, request, &response, timeout).status());
  return response.stored();
}

absl::StatusOr<std::optional<Value>> Queue::Get(
    bool block, std::optional<absl::Duration> timeout) {
  v1::QueueGetRequest request;
  request.set_block(block);
  v1::QueueGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallParked(state_, &Queues::Get, request, &response, timeout));
  if (!response.got()) return std::optional<Value>();
  STATEHUB_ASSIGN_OR_RETURN(Value item,
                            state_.core->Decode(response.item(), tag));
  return std::optional<Value>(std::move(item));
}

absl::Status Queue::TaskDone() {
  v1::QueueTaskDoneRequest request;
  v1::QueueTaskDoneResponse response;
  return CallOn(state_, &Queues::TaskDone, request, &response).status();
}

absl::StatusOr<bool> Queue::Join(std::optional<absl::Duration> timeout) {
  v1::QueueJoinRequest request;
  v1::QueueJoinResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Queues::Join, request, &response, timeout).status());
  return response.done();
}

absl::StatusOr<QueueSize> Queue::Size() const {
  v1::QueueSizeRequest request;
  v1::QueueSizeResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Queues::Size, request, &response).status());
  return QueueSize{response.size(), response.maxsize(), response.unfinished()};
}

absl::StatusOr<int64_t> Queue::Qsize() const {
  STATEHUB_ASSIGN_OR_RETURN(const QueueSize size, Size());
  return size.size;
}

absl::StatusOr<bool> Queue::Empty() const {
  STATEHUB_ASSIGN_OR_RETURN(const QueueSize size, Size());
  return size.size == 0;
}

absl::StatusOr<bool> Queue::Full() const {
  STATEHUB_ASSIGN_OR_RETURN(const QueueSize size, Size());
  // As queue.Queue.full(): 0 < maxsize <= qsize.
  return size.maxsize > 0 && size.size >= size.maxsize;
}

absl::StatusOr<QueueState> Queue::State() const {
  v1::QueueStateRequest request;
  v1::QueueStateResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Queues::State, request, &response).status());
  const absl::Time now = absl::Now();
  QueueState state;
  state.size = response.size();
  state.maxsize = response.maxsize();
  state.unfinished = response.unfinished();
  state.getters = WaitersFromWire(response.getters(), now);
  state.putters = WaitersFromWire(response.putters(), now);
  state.joiners = WaitersFromWire(response.joiners(), now);
  return state;
}

absl::StatusOr<statehub::Watch> Queue::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
