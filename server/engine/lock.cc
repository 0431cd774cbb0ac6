#include "server/engine/lock.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

absl::Status NeedsSession(const Object& object) {
  return object.Error(absl::StatusCode::kFailedPrecondition,
                      ErrorKind::kSessionError,
                      "needs a live session: locks belong to sessions");
}

}  // namespace

LockObject::LockObject(std::string name, ObjectType type, Registry* registry,
                       std::shared_ptr<LockObserver> observer)
    : Object(std::move(name), type, registry), observer_(std::move(observer)) {}

std::shared_ptr<LockObject> LockObject::Make(std::string name, ObjectType type,
                                             Registry* registry) {
  std::shared_ptr<LockObserver> observer;
  if (registry != nullptr && registry->observers() != nullptr) {
    observer = registry->observers()->ForLock(name);
  }
  return std::shared_ptr<LockObject>(
      new LockObject(std::move(name), type, registry, std::move(observer)));
}

std::vector<Value> LockObject::TakeContents() { return {}; }

std::vector<Completion> LockObject::TakeWaiters(const absl::Status& status) {
  std::vector<Completion> out;
  WaitResult failed;
  failed.status = status;
  auto fail_all = [&](std::deque<Pending>& q) {
    for (Pending& p : q) {
      if (!p.waiter->TryClaim()) continue;
      if (observer_ && !p.condition) observer_->NotAcquired(false);
      out.push_back({std::move(p.waiter), failed});
    }
    q.clear();
  };
  fail_all(queue_);
  for (auto& [id, waiting] : conditions_) fail_all(waiting);
  return out;
}

bool LockObject::TrackLocked(const Caller& caller) {
  return registry_->Track(caller.session, shared_from_this());
}

bool LockObject::OwnedBy(const Caller& caller, uint64_t thread_id) const {
  return holding_ && holding_->who.session == caller.session &&
         (!reentrant() || holding_->who.thread_id == thread_id);
}

uint64_t LockObject::TakeLocked(HolderInfo who, int64_t recursion) {
  holding_ = Holding{std::move(who), recursion, ++last_token_};
  return last_token_;
}

void LockObject::ReleaseLocked(std::vector<Completion>* out) {
  const absl::Time now = absl::Now();
  if (observer_ && holding_) observer_->Released(now - holding_->who.since);
  holding_.reset();
  while (!queue_.empty()) {
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    // A waiter claimed by its timeout or cancellation is on its way out.
    if (!next.waiter->TryClaim()) continue;
    WaitResult result;
    result.granted = !next.condition || next.notified;
    result.fencing_token =
        TakeLocked(HolderInfo{next.waiter->session(), next.waiter->thread_id(),
                              next.waiter->label(), now},
                   next.recursion);
    result.owner_died = std::exchange(owner_died_, false);
    // A condition waiter reacquiring is not an acquire call.
    if (observer_ && !next.condition) {
      observer_->Acquired(now - next.waiter->since(), true, result.owner_died);
    }
    out->push_back(Completion{std::move(next.waiter), std::move(result)});
    return;
  }
}

absl::StatusOr<LockObject::Acquired> LockObject::Acquire(
    const Caller& caller, uint64_t thread_id, std::shared_ptr<Waiter> waiter,
    const std::string& label) {
  if (caller.session == 0) return NeedsSession(*this);
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (!TrackLocked(caller)) return NeedsSession(*this);
  if (reentrant() && OwnedBy(caller, thread_id)) {
    ++holding_->recursion;
    return Acquired{true, false, holding_->token, false};
  }
  // FIFO: a newcomer may not overtake parked callers.
  if (!holding_ && queue_.empty()) {
    const uint64_t token = TakeLocked(
        HolderInfo{caller.session, thread_id, label, absl::Now()}, 1);
    const bool owner_died = std::exchange(owner_died_, false);
    if (observer_) observer_->Acquired(absl::ZeroDuration(), false, owner_died);
    return Acquired{true, false, token, owner_died};
  }
  if (waiter == nullptr) {
    if (observer_) observer_->NotAcquired(true);
    return Acquired{};
  }
  queue_.push_back(Pending{std::move(waiter)});
  return Acquired{false, true, 0, false};
}

absl::StatusOr<std::vector<Completion>> LockObject::Release(
    const Caller& caller, uint64_t thread_id) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (reentrant()) {
    if (!OwnedBy(caller, thread_id)) {
      return Error(absl::StatusCode::kFailedPrecondition,
                   ErrorKind::kRuntimeError, "cannot release un-acquired lock");
    }
    if (--holding_->recursion > 0) return out;
  } else if (!holding_) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError, "release unlocked lock");
  }
  // threading.Lock may be released by anyone, as Python allows.
  ReleaseLocked(&out);
  return out;
}

void LockObject::Withdraw(const Waiter* waiter, bool timed_out) {
  MutexLock lock(&mu_);
  auto matches = [waiter](const Pending& p) {
    return p.waiter.get() == waiter;
  };
  auto it = std::find_if(queue_.begin(), queue_.end(), matches);
  if (it != queue_.end()) {
    if (observer_ && !it->condition) observer_->NotAcquired(timed_out);
    queue_.erase(it);
    return;
  }
  for (auto& [id, waiting] : conditions_) {
    auto c = std::find_if(waiting.begin(), waiting.end(), matches);
    if (c != waiting.end()) {
      waiting.erase(c);
      return;
    }
  }
}

std::vector<Completion> LockObject::Rollback(uint64_t fencing_token) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (holding_ && holding_->token == fencing_token) ReleaseLocked(&out);
  return out;
}

absl::StatusOr<std::vector<Completion>> LockObject::ConditionWait(
    uint64_t condition, const Caller& caller, uint64_t thread_id,
    std::shared_ptr<Waiter> waiter) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (caller.session == 0 || !OwnedBy(caller, thread_id)) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError, "cannot wait on un-acquired lock");
  }
  if (!TrackLocked(caller)) return NeedsSession(*this);
  const int64_t recursion = holding_->recursion;
  conditions_[condition].push_back(
      Pending{std::move(waiter), recursion, /*condition=*/true, false});
  // Parked before the release, so no notify can fall in between.
  ReleaseLocked(&out);
  return out;
}

std::vector<Completion> LockObject::ConditionTimeout(uint64_t condition,
                                                     const Waiter* waiter) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  auto cq = conditions_.find(condition);
  if (cq == conditions_.end()) return out;
  auto it = std::find_if(
      cq->second.begin(), cq->second.end(),
      [waiter](const Pending& p) { return p.waiter.get() == waiter; });
  if (it == cq->second.end()) return out;  // notified already
  Pending timed_out = std::move(*it);
  cq->second.erase(it);
  timed_out.notified = false;
  queue_.push_back(std::move(timed_out));
  if (!holding_) ReleaseLocked(&out);
  return out;
}

absl::StatusOr<int64_t> LockObject::ConditionNotify(uint64_t condition,
                                                    const Caller& caller,
                                                    uint64_t thread_id,
                                                    int64_t n) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (caller.session == 0 || !OwnedBy(caller, thread_id)) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError, "cannot notify on un-acquired lock");
  }
  auto cq = conditions_.find(condition);
  int64_t moved = 0;
  while (cq != conditions_.end() && !cq->second.empty() &&
         (n < 0 || moved < n)) {
    Pending woken = std::move(cq->second.front());
    cq->second.pop_front();
    if (woken.waiter->claimed()) continue;  // cancelled: not a wakeup
    woken.notified = true;
    queue_.push_back(std::move(woken));
    ++moved;
  }
  // The notifier holds the lock: the woken reacquire once it is released.
  return moved;
}

int64_t LockObject::ConditionWaiters(uint64_t condition) const {
  MutexLock lock(&mu_);
  auto cq = conditions_.find(condition);
  if (cq == conditions_.end()) return 0;
  return std::count_if(cq->second.begin(), cq->second.end(),
                       [](const Pending& p) { return !p.waiter->claimed(); });
}

std::vector<Completion> LockObject::ConditionDrop(uint64_t condition,
                                                  const absl::Status& status) {
  std::vector<Completion> out;
  WaitResult failed;
  failed.status = status;
  MutexLock lock(&mu_);
  auto cq = conditions_.find(condition);
  if (cq == conditions_.end()) return out;
  for (Pending& p : cq->second) {
    if (p.waiter->TryClaim()) out.push_back({std::move(p.waiter), failed});
  }
  conditions_.erase(cq);
  return out;
}

LockState LockObject::State() const {
  MutexLock lock(&mu_);
  LockState state;
  state.locked = holding_.has_value();
  if (holding_) {
    state.holder = holding_->who;
    state.recursion = holding_->recursion;
  }
  state.fencing_token = last_token_;
  for (const Pending& p : queue_) {
    if (p.waiter->claimed()) continue;
    state.waiters.push_back(HolderInfo{p.waiter->session(),
                                       p.waiter->thread_id(), p.waiter->label(),
                                       p.waiter->since()});
  }
  return state;
}

LockObject::Load LockObject::CurrentLoad() const {
  MutexLock lock(&mu_);
  Load load;
  load.held = holding_.has_value();
  load.waiters = std::count_if(
      queue_.begin(), queue_.end(),
      [](const Pending& p) { return !p.condition && !p.waiter->claimed(); });
  return load;
}

std::vector<Completion> LockObject::OnSessionEnd(SessionId session) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  WaitResult ended;
  ended.status = Error(absl::StatusCode::kFailedPrecondition,
                       ErrorKind::kSessionError, "the waiting session ended");
  auto drop_session = [&](std::deque<Pending>& q) {
    for (auto it = q.begin(); it != q.end();) {
      if (it->waiter->session() == session && it->waiter->TryClaim()) {
        if (observer_ && !it->condition) observer_->NotAcquired(false);
        out.push_back(Completion{std::move(it->waiter), ended});
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  };
  drop_session(queue_);
  for (auto& [id, waiting] : conditions_) drop_session(waiting);
  if (holding_ && holding_->who.session == session) {
    owner_died_ = true;
    ReleaseLocked(&out);
  }
  return out;
}

}  // namespace statehub
