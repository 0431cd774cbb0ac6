#include "server/engine/barrier.h"

#include <utility>

#include "server/engine/registry.h"

namespace statehub {

using wait_queue_internal::Parked;

BarrierObject::BarrierObject(std::string name, int64_t parties,
                             Registry* registry)
    : Object(std::move(name), kType, registry), parties_(parties) {}

absl::StatusOr<std::shared_ptr<BarrierObject>> BarrierObject::Make(
    std::string name, int64_t parties, Registry* registry) {
  std::shared_ptr<BarrierObject> barrier(
      new BarrierObject(std::move(name), parties, registry));
  if (parties < 1) {
    return barrier->Error(absl::StatusCode::kInvalidArgument,
                          ErrorKind::kValueError, "parties must be > 0");
  }
  return barrier;
}

std::vector<Value> BarrierObject::TakeContents() { return {}; }

std::vector<Completion> BarrierObject::TakeWaiters(const absl::Status& status) {
  std::vector<Completion> out;
  FailActionLocked(status, &out);
  wait_queue_internal::FailAll(queue_, status, &out);
  return out;
}

absl::Status BarrierObject::BrokenError() const {
  return Error(absl::StatusCode::kAborted, ErrorKind::kBrokenBarrier,
               "barrier is broken");
}

v1::ChangeRecord BarrierObject::StateRecordLocked() const {
  v1::ChangeRecord record;
  v1::BarrierChanged* changed = record.mutable_barrier_changed();
  changed->set_generation(generation_);
  changed->set_broken(broken_);
  return record;
}

void BarrierObject::BreakLocked(std::vector<Completion>* out) {
  const bool was_broken = broken_;
  broken_ = true;
  if (!was_broken && recording()) Emit(StateRecordLocked());
  FailPartiesLocked(out);
}

void BarrierObject::FailPartiesLocked(std::vector<Completion>* out) {
  FailActionLocked(BrokenError(), out);
  wait_queue_internal::FailAll(queue_, BrokenError(), out);
}

void BarrierObject::FailActionLocked(const absl::Status& status,
                                     std::vector<Completion>* out) {
  if (!action_) return;
  // Claimed when the action began: nothing else can complete them.
  for (std::shared_ptr<Waiter>& w : action_->held) {
    WaitResult failed;
    failed.status = status;
    out->push_back(Completion{std::move(w), std::move(failed)});
  }
  action_.reset();
}

absl::StatusOr<BarrierObject::Waited> BarrierObject::Wait(
    const Caller& caller, std::shared_ptr<Waiter> waiter, bool run_action) {
  if (waiter == nullptr) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 "a barrier wait needs a waiter");
  }
  Waited waited;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (broken_) return BrokenError();
  // Entries claimed by a timeout still count until TimeoutBreak removes
  // them, so indices stay unique.
  const int64_t index = static_cast<int64_t>(queue_.size());
  if (index + 1 < parties_) {
    // Tracked so that the session's end breaks the barrier; a call without
    // a session has nothing to end.
    if (caller.session != 0 &&
        !registry_->Track(caller.session, shared_from_this())) {
      return Error(absl::StatusCode::kFailedPrecondition,
                   ErrorKind::kSessionError, "the waiting session ended");
    }
    queue_.push_back(Parked{std::move(waiter)});
    waited.parked = true;
    waited.index = index;
    return waited;
  }

  // The last party. One that will run the action must have a session, whose
  // end then breaks the barrier rather than leave the others held.
  if (run_action && (caller.session == 0 ||
                     !registry_->Track(caller.session, shared_from_this()))) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kSessionError,
                 "running the barrier's action needs a live session");
  }
  // Claim every parked caller, then grant all (or hold them for the
  // action) or break.
  std::vector<std::shared_ptr<Waiter>> claimed;
  claimed.reserve(queue_.size());
  bool withdrawing = false;
  for (Parked& p : queue_) {
    if (p.waiter->TryClaim()) {
      claimed.push_back(std::move(p.waiter));
    } else {
      claimed.push_back(nullptr);
      withdrawing = true;
    }
  }
  queue_.clear();
  if (withdrawing) {
    // A timeout or cancellation claimed a waiter before this arrival: in
    // Python that timeout would have broken the barrier already. Its
    // TimeoutBreak will find nothing left to do.
    broken_ = true;
    if (recording()) Emit(StateRecordLocked());
    WaitResult failed;
    failed.status = BrokenError();
    for (std::shared_ptr<Waiter>& w : claimed) {
      if (w != nullptr) waited.completions.push_back({std::move(w), failed});
    }
    if (waiter->TryClaim()) {
      waited.completions.push_back({std::move(waiter), failed});
    }
    waited.parked = true;
    return waited;
  }
  waited.passed = true;
  waited.index = index;
  if (run_action) {
    // Nothing is recorded until ActionDone: the generation has not passed
    // yet (barrier.h, Durability).
    action_ = Action{caller.session, std::move(claimed)};
    waited.run_action = true;
    return waited;
  }
  for (size_t i = 0; i < claimed.size(); ++i) {
    WaitResult result;
    result.granted = true;
    result.index = static_cast<int64_t>(i);
    waited.completions.push_back({std::move(claimed[i]), std::move(result)});
  }
  ++generation_;
  if (recording()) Emit(StateRecordLocked());
  return waited;
}

absl::StatusOr<std::vector<Completion>> BarrierObject::ActionDone(
    const Caller& caller, bool failed) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (!action_ || action_->runner != caller.session || caller.session == 0) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError,
                 "no action of this session is running on the barrier");
  }
  if (failed) {
    BreakLocked(&out);
    return out;
  }
  std::vector<std::shared_ptr<Waiter>> held = std::move(action_->held);
  action_.reset();
  for (size_t i = 0; i < held.size(); ++i) {
    WaitResult result;
    result.granted = true;
    result.index = static_cast<int64_t>(i);
    out.push_back(Completion{std::move(held[i]), std::move(result)});
  }
  ++generation_;
  if (recording()) Emit(StateRecordLocked());
  return out;
}

absl::StatusOr<std::vector<Completion>> BarrierObject::Abort() {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  BreakLocked(&out);
  return out;
}

absl::StatusOr<std::vector<Completion>> BarrierObject::Reset() {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  // Recorded only if it was broken: failing parked callers changes no
  // state.
  FailPartiesLocked(&out);
  if (broken_) {
    broken_ = false;
    if (recording()) Emit(StateRecordLocked());
  }
  return out;
}

std::vector<Completion> BarrierObject::TimeoutBreak(const Waiter* waiter) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (!wait_queue_internal::Take(queue_, waiter)) return out;
  BreakLocked(&out);
  return out;
}

BarrierState BarrierObject::State() const {
  MutexLock lock(&mu_);
  BarrierState state;
  state.parties = parties_;
  state.n_waiting = wait_queue_internal::Waiting(queue_);
  state.broken = broken_;
  state.generation = generation_;
  if (action_) {
    state.action_running = true;
    state.n_waiting += static_cast<int64_t>(action_->held.size());
    for (const std::shared_ptr<Waiter>& w : action_->held) {
      state.waiters.push_back(InfoOf(*w));
    }
  }
  for (HolderInfo& info : wait_queue_internal::Infos(queue_)) {
    state.waiters.push_back(std::move(info));
  }
  return state;
}

std::vector<Completion> BarrierObject::OnSessionEnd(SessionId session,
                                                    SessionEnd /*how*/) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  std::vector<Parked> ended = wait_queue_internal::FailSession(
      queue_, session,
      Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
            "the waiting session ended"),
      &out);
  // A party that will never arrive breaks the barrier, as a timeout does;
  // so does a runner that will never report on its action.
  if (!ended.empty() || (action_ && action_->runner == session)) {
    BreakLocked(&out);
  }
  return out;
}

absl::Status BarrierObject::Apply(const v1::ChangeRecord& record) {
  if (record.change_case() != v1::ChangeRecord::kBarrierChanged) {
    return CannotApply(record);
  }
  MutexLock lock(&mu_);
  // Generations only grow, also across a reset.
  if (record.barrier_changed().generation() < generation_) {
    return CannotApply(record);
  }
  generation_ = record.barrier_changed().generation();
  broken_ = record.barrier_changed().broken();
  return absl::OkStatus();
}

uint64_t BarrierObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  uint64_t revision = 0;
  v1::ChangeRecord created = Created();
  created.mutable_created()->set_parties(parties_);
  out->push_back(std::move(created));
  v1::ChangeRecord state;
  {
    MutexLock lock(&mu_);
    revision = RevisionLocked();
    if (generation_ == 0 && !broken_) return revision;
    state = StateRecordLocked();
  }
  state.set_object(name());
  out->push_back(std::move(state));
  return revision;
}

}  // namespace statehub
