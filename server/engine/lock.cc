#include "server/engine/lock.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"
#include "server/engine/registry.h"
#include "server/engine/wait_queue.h"

namespace statehub {
namespace {

absl::Status NeedsSession(const Object& object) {
  return object.Error(absl::StatusCode::kFailedPrecondition,
                      ErrorKind::kSessionError,
                      "needs a live session: locks belong to sessions");
}

}  // namespace

LockObject::LockObject(std::string name, ObjectType type, Registry* registry,
                       std::shared_ptr<AcquireObserver> observer)
    : Object(std::move(name), type, registry),
      observer_(std::move(observer)),
      graph_(registry != nullptr ? &registry->wait_for_graph() : nullptr) {}

std::shared_ptr<LockObject> LockObject::Make(std::string name, ObjectType type,
                                             Registry* registry) {
  std::shared_ptr<AcquireObserver> observer;
  if (registry != nullptr && registry->observers() != nullptr) {
    observer = registry->observers()->ForLock(name);
  }
  return std::shared_ptr<LockObject>(
      new LockObject(std::move(name), type, registry, std::move(observer)));
}

std::vector<Value> LockObject::TakeContents() { return {}; }

std::vector<Completion> LockObject::TakeWaiters(const absl::Status& status) {
  std::vector<Completion> out;
  UnwaitLocked([](const Pending&) { return true; });
  // Only acquire calls claimed here count as cancelled acquisitions; a
  // claimed entry's waiter was moved out into `out`.
  for (const Pending& p : wait_queue_internal::FailAll(queue_, status, &out)) {
    DequeuedLocked(p);
    if (observer_ && !p.condition && p.waiter == nullptr) {
      observer_->NotAcquired(false);
    }
  }
  for (auto& [id, waiting] : conditions_) {
    wait_queue_internal::FailAll(waiting, status, &out);
  }
  return out;
}

bool LockObject::TrackLocked(const Caller& caller) {
  return registry_->Track(caller.session, shared_from_this());
}

bool LockObject::OwnedBy(const Caller& caller, uint64_t thread_id) const {
  return holding_ && holding_->who.session == caller.session &&
         (!reentrant() || holding_->who.thread_id == thread_id);
}

v1::ChangeRecord LockObject::StateRecordLocked() const {
  v1::ChangeRecord record;
  v1::LockChanged* state = record.mutable_lock_changed();
  state->set_held(holding_.has_value());
  if (holding_) {
    state->set_holder_session(holding_->who.session);
    state->set_holder_thread(holding_->who.thread_id);
    state->set_holder_label(holding_->who.label);
    state->set_recursion(holding_->recursion);
    state->set_holder_left(holding_->left);
  }
  // The holder's token is always the last one given.
  state->set_fencing_token(last_token_);
  state->set_owner_died(owner_died_);
  return record;
}

void LockObject::RecordLocked() const {
  if (recording()) Emit(StateRecordLocked());
}

absl::Status LockObject::Apply(const v1::ChangeRecord& record) {
  if (!record.has_lock_changed()) return CannotApply(record);
  const v1::LockChanged& state = record.lock_changed();
  MutexLock lock(&mu_);
  if (state.held()) {
    if (state.holder_session() == 0 || state.recursion() < 1) {
      return CannotApply(record);
    }
    holding_ =
        Holding{HolderInfo{state.holder_session(), state.holder_thread(),
                           state.holder_label(), absl::Now()},
                state.recursion(), state.fencing_token(), state.holder_left()};
    // Tracked, so that the holder's session ending (its lease running out
    // after a restart) releases the lock with owner_died. A holder that
    // left it held has ended already.
    if (!holding_->left) {
      (void)registry_->Track(state.holder_session(), shared_from_this());
    }
  } else {
    holding_.reset();
  }
  last_token_ = std::max(last_token_, state.fencing_token());
  owner_died_ = state.owner_died();
  return absl::OkStatus();
}

uint64_t LockObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  uint64_t revision = 0;
  out->push_back(Created());
  MutexLock lock(&mu_);
  revision = RevisionLocked();
  if (holding_ || last_token_ > 0 || owner_died_) {
    v1::ChangeRecord& record = out->emplace_back(StateRecordLocked());
    record.set_object(name());
  }
  return revision;
}

uint64_t LockObject::TakeLocked(HolderInfo who, int64_t recursion) {
  holding_ = Holding{std::move(who), recursion, ++last_token_};
  return last_token_;
}

template <typename Pred>
void LockObject::UnwaitLocked(Pred pred) {
  if (graphed_ == 0) return;
  for (const Pending& p : queue_) {
    if (p.graphed && pred(p)) graph_->Unwait(p.waiter.get());
  }
}

void LockObject::DequeuedLocked(const Pending& entry) {
  if (!entry.graphed) return;
  --graphed_;
  // A waiter moved out (into a completion) had its wait dropped before.
  if (entry.waiter != nullptr) graph_->Unwait(entry.waiter.get());
}

absl::Status LockObject::EnqueueLocked(Pending entry,
                                       std::vector<Completion>* out) {
  if (graph_ != nullptr) {
    std::optional<HolderInfo> holder;
    if (holding_) holder = holding_->who;
    WaitForGraph::Outcome outcome =
        graph_->Wait(WaitForGraph::LockRef{this, &name(), reentrant()}, holder,
                     entry.waiter, entry.condition);
    if (outcome.refused) return WaitForGraph::DeadlockError(*outcome.cycle);
    if (outcome.failed) {
      const bool self = outcome.failed->waiter == entry.waiter;
      out->push_back(*std::move(outcome.failed));
      if (self) return absl::OkStatus();  // failed, not parked
    }
    entry.graphed = true;
    ++graphed_;
  }
  queue_.push_back(std::move(entry));
  return absl::OkStatus();
}

void LockObject::ReleaseLocked(std::vector<Completion>* out) {
  if (observer_ && holding_) {
    observer_->Released(absl::Now() - holding_->who.since);
  }
  holding_.reset();
  // Recorded last, once the lock is free or granted to the next waiter.
  absl::Cleanup record = [this]()
                             ABSL_NO_THREAD_SAFETY_ANALYSIS { RecordLocked(); };
  // The graph learns who holds the lock now, while calls wait for it.
  absl::Cleanup tell_graph = [this] {
    if (graphed_ == 0) return;
    std::optional<HolderInfo> holder;
    if (holding_) holder = holding_->who;
    graph_->SetHolder(this, holder);
  };
  while (!queue_.empty()) {
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    DequeuedLocked(next);
    // A waiter claimed by its timeout or cancellation is on its way out.
    if (!next.waiter->TryClaim()) continue;
    const absl::Time now = absl::Now();
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
    RecordLocked();
    return Acquired{true, false, holding_->token, false};
  }
  // FIFO: a newcomer may not overtake parked callers.
  if (!holding_ && queue_.empty()) {
    const uint64_t token = TakeLocked(
        HolderInfo{caller.session, thread_id, label, absl::Now()}, 1);
    const bool owner_died = std::exchange(owner_died_, false);
    RecordLocked();
    if (observer_) observer_->Acquired(absl::ZeroDuration(), false, owner_died);
    return Acquired{true, false, token, owner_died};
  }
  if (waiter == nullptr) {
    if (observer_) observer_->NotAcquired(true);
    return Acquired{};
  }
  // A plain acquire is refused rather than failed: nothing to deliver.
  std::vector<Completion> none;
  if (absl::Status s = EnqueueLocked(Pending{std::move(waiter)}, &none);
      !s.ok()) {
    if (observer_) observer_->NotAcquired(false);
    return s;
  }
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
    if (--holding_->recursion > 0) {
      RecordLocked();
      return out;
    }
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
  // Counted whether or not a release already dropped the claimed entry:
  // the call ends without the lock either way.
  if (observer_) observer_->NotAcquired(timed_out);
  RemoveLocked(waiter);
}

void LockObject::WithdrawConditionWaiter(const Waiter* waiter) {
  MutexLock lock(&mu_);
  RemoveLocked(waiter);
}

void LockObject::RemoveLocked(const Waiter* waiter) {
  if (std::optional<Pending> taken =
          wait_queue_internal::Take(queue_, waiter)) {
    DequeuedLocked(*taken);
    return;
  }
  for (auto& [id, waiting] : conditions_) {
    if (wait_queue_internal::Take(waiting, waiter)) return;
  }
}

std::vector<Completion> LockObject::Rollback(uint64_t fencing_token,
                                             bool one_level) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (!holding_ || holding_->token != fencing_token) return out;
  if (one_level && --holding_->recursion > 0) {
    RecordLocked();
    return out;
  }
  ReleaseLocked(&out);
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
  // Never refused: a condition waiter's wait is failed, if at all.
  (void)EnqueueLocked(std::move(timed_out), &out);
  if (!holding_) ReleaseLocked(&out);
  return out;
}

absl::StatusOr<LockObject::Notified> LockObject::ConditionNotify(
    uint64_t condition, const Caller& caller, uint64_t thread_id, int64_t n) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (caller.session == 0 || !OwnedBy(caller, thread_id)) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError, "cannot notify on un-acquired lock");
  }
  auto cq = conditions_.find(condition);
  Notified notified;
  while (cq != conditions_.end() && !cq->second.empty() &&
         (n < 0 || notified.woken < n)) {
    Pending woken = std::move(cq->second.front());
    cq->second.pop_front();
    if (woken.waiter->claimed()) continue;  // cancelled: not a wakeup
    woken.notified = true;
    (void)EnqueueLocked(std::move(woken), &notified.failed);
    ++notified.woken;
  }
  // The notifier holds the lock: the woken reacquire once it is released.
  return notified;
}

int64_t LockObject::ConditionWaiters(uint64_t condition) const {
  MutexLock lock(&mu_);
  auto cq = conditions_.find(condition);
  if (cq == conditions_.end()) return 0;
  return wait_queue_internal::Waiting(cq->second);
}

std::vector<Completion> LockObject::ConditionDrop(uint64_t condition,
                                                  const absl::Status& status) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  auto cq = conditions_.find(condition);
  if (cq == conditions_.end()) return out;
  wait_queue_internal::FailAll(cq->second, status, &out);
  conditions_.erase(cq);
  return out;
}

LockState LockObject::State() const {
  MutexLock lock(&mu_);
  LockState state;
  state.locked = holding_.has_value();
  if (holding_) {
    state.holder = holding_->who;
    state.holder_left = holding_->left;
    state.recursion = holding_->recursion;
  }
  state.fencing_token = last_token_;
  state.waiters = wait_queue_internal::Infos(queue_);
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

std::vector<Completion> LockObject::OnSessionEnd(SessionId session,
                                                 SessionEnd how) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  const absl::Status ended =
      Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
            "the waiting session ended");
  UnwaitLocked(
      [session](const Pending& p) { return p.waiter->session() == session; });
  for (const Pending& p :
       wait_queue_internal::FailSession(queue_, session, ended, &out)) {
    DequeuedLocked(p);
    if (observer_ && !p.condition) observer_->NotAcquired(false);
  }
  for (auto& [id, waiting] : conditions_) {
    wait_queue_internal::FailSession(waiting, session, ended, &out);
  }
  if (holding_ && holding_->who.session == session) {
    if (how == SessionEnd::kLeaveLocks && !reentrant()) {
      // As with Manager: held until someone releases it.
      holding_->left = true;
      RecordLocked();
    } else {
      owner_died_ = true;
      ReleaseLocked(&out);
    }
  }
  return out;
}

}  // namespace statehub
