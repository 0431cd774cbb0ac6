#include "statehub/lock.h"

#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "core.h"
#include "statehub/v1/sync.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::CallParked;
using client_internal::ThrowIfError;
using client_internal::ValueOrThrow;

namespace {
using Conditions = v1::Conditions::Stub;
using Locks = v1::Locks::Stub;

// NotifyWaiters is one Conditions.Notify on the condition `state` names:
// it wakes `n` waiters, or all of them, and returns how many it woke.
absl::StatusOr<int64_t> NotifyWaiters(const client_internal::HandleState& state,
                                      int64_t n, bool all) {
  v1::ConditionNotifyRequest request;
  request.set_n(n);
  request.set_all(all);
  request.set_thread_id(CurrentThreadId());
  v1::ConditionNotifyResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state, &Conditions::Notify, request, &response).status());
  return response.woken();
}

}  // namespace

uint64_t CurrentThreadId() {
  thread_local const uint64_t id =
      std::hash<std::thread::id>{}(std::this_thread::get_id());
  return id;
}

struct BasicLock::HeldRecord {
  absl::Mutex mu;
  Acquisition last ABSL_GUARDED_BY(mu);
};

BasicLock::BasicLock(client_internal::HandleState state)
    : state_(std::move(state)), held_(std::make_shared<HeldRecord>()) {}

absl::StatusOr<Acquisition> BasicLock::Acquire(
    std::optional<absl::Duration> timeout) {
  v1::LockAcquireRequest request;
  request.set_blocking(true);
  v1::LockAcquireResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Locks::Acquire, request, &response, timeout)
          .status());
  Acquisition acquisition{response.acquired(), response.fencing_token(),
                          response.owner_died()};
  if (acquisition.acquired) Record(acquisition);
  return acquisition;
}

absl::Status BasicLock::Release() {
  v1::LockReleaseRequest request;
  request.set_thread_id(CurrentThreadId());
  v1::LockReleaseResponse response;
  return CallOn(state_, &Locks::Release, request, &response).status();
}

absl::StatusOr<LockState> BasicLock::State() const {
  v1::LockStateRequest request;
  v1::LockStateResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Locks::State, request, &response).status());
  const absl::Time now = absl::Now();
  LockState state;
  state.locked = response.locked();
  state.holder = client_internal::HolderFromWire(response.holder());
  state.held_for = internal::DurationFromWire(response.held_for());
  state.recursion = response.recursion();
  state.fencing_token = response.fencing_token();
  state.waiters = client_internal::WaitersFromWire(response.waiters(), now);
  return state;
}

Acquisition BasicLock::held() const {
  if (held_ == nullptr) return Acquisition{};
  absl::MutexLock lock(&held_->mu);
  return held_->last;
}

void BasicLock::Record(const Acquisition& acquisition) {
  if (held_ == nullptr) return;
  absl::MutexLock lock(&held_->mu);
  // An RLock re-entry answers with the outer acquisition's token and must
  // not hide that the outer one found its previous owner dead.
  const bool reentry = held_->last.acquired &&
                       held_->last.fencing_token == acquisition.fencing_token;
  const bool owner_died =
      acquisition.owner_died || (reentry && held_->last.owner_died);
  held_->last = acquisition;
  held_->last.owner_died = owner_died;
}

void BasicLock::lock() { ValueOrThrow(Acquire()); }

void BasicLock::unlock() { ThrowIfError(Release()); }

bool BasicLock::try_lock() { return TryLockFor(absl::ZeroDuration()); }

bool BasicLock::TryLockFor(absl::Duration timeout) {
  return ValueOrThrow(Acquire(timeout)).acquired;
}

absl::StatusOr<bool> Condition::WaitOn(BasicLock* lock,
                                       std::optional<absl::Duration> timeout) {
  v1::ConditionWaitRequest request;
  v1::ConditionWaitResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(state_, &Conditions::Wait, request, &response, timeout)
          .status());
  // The server reacquired the lock for us, timed out or not.
  if (lock != nullptr) {
    lock->Record(
        Acquisition{true, response.fencing_token(), response.owner_died()});
  }
  return response.notified();
}

absl::StatusOr<int64_t> Condition::Notify(int64_t n) {
  return NotifyWaiters(state_, n, /*all=*/false);
}

absl::StatusOr<int64_t> Condition::NotifyAll() {
  return NotifyWaiters(state_, 0, /*all=*/true);
}

}  // namespace statehub
