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
  wait_queue_internal::FailAll(queue_, status, &out);
  return out;
}

absl::Status BarrierObject::BrokenError() const {
  return Error(absl::StatusCode::kAborted, ErrorKind::kBrokenBarrier,
               "barrier is broken");
}

void BarrierObject::BreakLocked(std::vector<Completion>* out) {
  broken_ = true;
  wait_queue_internal::FailAll(queue_, BrokenError(), out);
}

absl::StatusOr<BarrierObject::Waited> BarrierObject::Wait(
    const Caller& caller, std::shared_ptr<Waiter> waiter) {
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

  // The last party: claim every parked caller, then grant all or break.
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
  for (size_t i = 0; i < claimed.size(); ++i) {
    WaitResult result;
    result.granted = true;
    result.index = static_cast<int64_t>(i);
    waited.completions.push_back({std::move(claimed[i]), std::move(result)});
  }
  ++generation_;
  waited.passed = true;
  waited.index = index;
  return waited;
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
  BreakLocked(&out);
  broken_ = false;
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
  state.waiters = wait_queue_internal::Infos(queue_);
  return state;
}

std::vector<Completion> BarrierObject::OnSessionEnd(SessionId session) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  std::vector<Parked> ended = wait_queue_internal::FailSession(
      queue_, session,
      Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
            "the waiting session ended"),
      &out);
  // A party that will never arrive breaks the barrier, as a timeout does.
  if (!ended.empty()) BreakLocked(&out);
  return out;
}

}  // namespace statehub
