#include "statehub/sync.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core.h"
#include "statehub/v1/sync.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::CallParked;
using client_internal::WaitersFromWire;

namespace {
using Barriers = v1::Barriers::Stub;
using Events = v1::Events::Stub;
using Semaphores = v1::Semaphores::Stub;
}  // namespace

absl::StatusOr<bool> Semaphore::Acquire(bool blocking,
                                        std::optional<absl::Duration> timeout) {
  v1::SemaphoreAcquireRequest request;
  request.set_blocking(blocking);
  v1::SemaphoreAcquireResponse response;
  // As for a lock: a unit granted just before the server went away is
  // counted against this session, one more than this handle counted.
  auto granted_before_break =
      [this](v1::SemaphoreAcquireResponse* r) -> absl::StatusOr<bool> {
    STATEHUB_ASSIGN_OR_RETURN(const SemaphoreState state, State());
    const std::string mine = state_.core->CurrentSession().id;
    int64_t units = 0;
    for (const SemaphoreState::Holding& h : state.holders) {
      if (h.session_id == mine) units += h.units;
    }
    if (units <= units_->load()) return false;
    r->set_acquired(true);
    return true;
  };
  STATEHUB_RETURN_IF_ERROR(CallParked(state_, &Semaphores::Acquire, request,
                                      &response, timeout, granted_before_break)
                               .status());
  if (response.acquired()) ++*units_;
  return response.acquired();
}

absl::Status Semaphore::Release(int64_t n) {
  v1::SemaphoreReleaseRequest request;
  request.set_n(n);
  v1::SemaphoreReleaseResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Semaphores::Release, request, &response).status());
  // Any caller may release: never below what this handle acquired.
  int64_t held = units_->load();
  while (!units_->compare_exchange_weak(held, std::max<int64_t>(held - n, 0))) {
  }
  return absl::OkStatus();
}

absl::StatusOr<SemaphoreState> Semaphore::State() const {
  v1::SemaphoreStateRequest request;
  v1::SemaphoreStateResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Semaphores::State, request, &response).status());
  SemaphoreState state;
  state.value = response.value();
  state.initial_value = response.initial_value();
  state.bounded = response.bounded();
  for (const v1::SemaphoreHolding& h : response.holders()) {
    state.holders.push_back({h.session_id(), h.units()});
  }
  state.waiters = WaitersFromWire(response.waiters(), absl::Now());
  return state;
}

absl::Status Event::Set() {
  v1::EventSetRequest request;
  v1::EventSetResponse response;
  return CallOn(state_, &Events::Set, request, &response).status();
}

absl::Status Event::Clear() {
  v1::EventClearRequest request;
  v1::EventClearResponse response;
  return CallOn(state_, &Events::Clear, request, &response).status();
}

absl::StatusOr<bool> Event::IsSet() const {
  v1::EventIsSetRequest request;
  v1::EventIsSetResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Events::IsSet, request, &response).status());
  return response.set();
}

absl::StatusOr<bool> Event::Wait(std::optional<absl::Duration> timeout) {
  v1::EventWaitRequest request;
  v1::EventWaitResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Events::Wait, request, &response, timeout).status());
  return response.set();
}

absl::StatusOr<int64_t> Barrier::Wait(std::optional<absl::Duration> timeout) {
  v1::BarrierWaitRequest request;
  v1::BarrierWaitResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Barriers::Wait, request, &response, timeout)
          .status());
  return response.index();
}

absl::Status Barrier::Abort() {
  v1::BarrierAbortRequest request;
  v1::BarrierAbortResponse response;
  return CallOn(state_, &Barriers::Abort, request, &response).status();
}

absl::Status Barrier::Reset() {
  v1::BarrierResetRequest request;
  v1::BarrierResetResponse response;
  return CallOn(state_, &Barriers::Reset, request, &response).status();
}

absl::StatusOr<BarrierState> Barrier::State() const {
  v1::BarrierStateRequest request;
  v1::BarrierStateResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Barriers::State, request, &response).status());
  BarrierState state;
  state.parties = response.parties();
  state.n_waiting = response.n_waiting();
  state.broken = response.broken();
  state.generation = response.generation();
  state.waiters = WaitersFromWire(response.waiters(), absl::Now());
  return state;
}

absl::StatusOr<statehub::Watch> Semaphore::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

absl::StatusOr<statehub::Watch> Event::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

absl::StatusOr<statehub::Watch> Barrier::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
