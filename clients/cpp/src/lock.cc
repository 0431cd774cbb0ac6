#include "statehub/lock.h"

#include <functional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
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
  // levels counts, per thread, the acquisitions it holds through this
  // handle: what tells an acquire that the server granted just before it
  // went away (its reply lost) from a hold the thread had already.
  absl::flat_hash_map<uint64_t, int64_t> levels ABSL_GUARDED_BY(mu);
};

BasicLock::BasicLock(client_internal::HandleState state)
    : state_(std::move(state)), held_(std::make_shared<HeldRecord>()) {}

absl::StatusOr<Acquisition> BasicLock::Acquire(
    std::optional<absl::Duration> timeout) {
  v1::LockAcquireRequest request;
  request.set_blocking(true);
  v1::LockAcquireResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallParked(
          state_, &Locks::Acquire, request, &response, timeout,
          [this](v1::LockAcquireResponse* r) { return GrantedBeforeBreak(r); })
          .status());
  Acquisition acquisition{response.acquired(), response.fencing_token(),
                          response.owner_died()};
  if (acquisition.acquired) Record(acquisition, /*new_level=*/true);
  return acquisition;
}

absl::StatusOr<bool> BasicLock::GrantedBeforeBreak(
    v1::LockAcquireResponse* response) const {
  // The server may have granted the acquire just before it went away (the
  // grant is in its log, the reply was lost): then this thread holds the
  // lock now, one level more than it counted.
  STATEHUB_ASSIGN_OR_RETURN(const LockState state, State());
  if (!state.locked ||
      state.holder.session_id != state_.core->CurrentSession().id ||
      state.holder.thread_id != CurrentThreadId()) {
    return false;
  }
  int64_t counted = 0;
  if (held_ != nullptr) {
    absl::MutexLock lock(&held_->mu);
    if (auto it = held_->levels.find(CurrentThreadId());
        it != held_->levels.end()) {
      counted = it->second;
    }
  }
  const bool granted = state_.type == ObjectType::kRLock
                           ? state.recursion > counted
                           : counted == 0;
  if (!granted) return false;
  response->set_acquired(true);
  response->set_fencing_token(state.fencing_token);
  return true;
}

absl::Status BasicLock::Release() {
  v1::LockReleaseRequest request;
  request.set_thread_id(CurrentThreadId());
  v1::LockReleaseResponse response;
  STATEHUB_RETURN_IF_ERROR(
      CallOn(state_, &Locks::Release, request, &response).status());
  if (held_ != nullptr) {
    absl::MutexLock lock(&held_->mu);
    if (state_.type != ObjectType::kRLock) {
      // Any thread may release a Lock: whoever held it holds it no more.
      held_->levels.clear();
    } else if (auto it = held_->levels.find(CurrentThreadId());
               it != held_->levels.end() && --it->second <= 0) {
      held_->levels.erase(it);
    }
  }
  return absl::OkStatus();
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

void BasicLock::Record(const Acquisition& acquisition, bool new_level) {
  if (held_ == nullptr) return;
  absl::MutexLock lock(&held_->mu);
  if (new_level) ++held_->levels[CurrentThreadId()];
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
  STATEHUB_RETURN_IF_ERROR(CallParked(state_, &Conditions::Wait, request,
                                      &response, timeout,
                                      [lock](v1::ConditionWaitResponse* r) {
                                        return ReacquireAfterBreak(lock, r);
                                      })
                               .status());
  // The server reacquired the lock for us, timed out or not: the levels
  // the thread held before the wait, not a new one.
  if (lock != nullptr) {
    lock->Record(
        Acquisition{true, response.fencing_token(), response.owner_died()},
        /*new_level=*/false);
  }
  return response.notified();
}

absl::StatusOr<bool> Condition::ReacquireAfterBreak(
    BasicLock* lock, v1::ConditionWaitResponse* response) {
  // The wait was cut by the server going away, with the lock released on
  // the server: it cannot simply be made again (the caller must hold the
  // lock), so it ends as a spurious wakeup would, holding the lock again.
  // Callers that loop on their predicate are unaffected. One level, even
  // for an RLock held several levels deep: enough for a lock_guard around
  // the wait. (Python's Condition.wait does the same.)
  response->set_notified(true);
  if (lock == nullptr) return true;
  STATEHUB_ASSIGN_OR_RETURN(const LockState state, lock->State());
  if (state.locked &&
      state.holder.session_id == lock->state_.core->CurrentSession().id &&
      state.holder.thread_id == CurrentThreadId()) {
    response->set_fencing_token(state.fencing_token);
    return true;
  }
  v1::LockAcquireRequest request;
  request.set_blocking(true);
  v1::LockAcquireResponse acquired;
  STATEHUB_RETURN_IF_ERROR(CallParked(lock->state_, &Locks::Acquire, request,
                                      &acquired, std::nullopt)
                               .status());
  response->set_fencing_token(acquired.fencing_token());
  response->set_owner_died(acquired.owner_died());
  return true;
}

absl::StatusOr<int64_t> Condition::Notify(int64_t n) {
  return NotifyWaiters(state_, n, /*all=*/false);
}

absl::StatusOr<int64_t> Condition::NotifyAll() {
  return NotifyWaiters(state_, 0, /*all=*/true);
}

absl::StatusOr<statehub::Watch> BasicLock::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
