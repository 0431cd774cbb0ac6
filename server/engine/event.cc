#include "server/engine/event.h"

#include "server/engine/registry.h"

namespace statehub {

using wait_queue_internal::Parked;

namespace {

v1::ChangeRecord EventChangedRecord(bool set) {
  v1::ChangeRecord record;
  record.mutable_event_changed()->set_set(set);
  return record;
}

}  // namespace

EventObject::EventObject(std::string name, Registry* registry)
    : Object(std::move(name), kType, registry) {}

std::shared_ptr<EventObject> EventObject::Make(std::string name,
                                               Registry* registry) {
  return std::shared_ptr<EventObject>(
      new EventObject(std::move(name), registry));
}

std::vector<Value> EventObject::TakeContents() { return {}; }

std::vector<Completion> EventObject::TakeWaiters(const absl::Status& status) {
  std::vector<Completion> out;
  wait_queue_internal::FailAll(queue_, status, &out);
  return out;
}

absl::StatusOr<std::vector<Completion>> EventObject::Set() {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (!flag_ && recording()) Emit(EventChangedRecord(true));
  flag_ = true;
  for (Parked& p : queue_) {
    // A waiter claimed by its timeout or cancellation is on its way out.
    if (!p.waiter->TryClaim()) continue;
    WaitResult result;
    result.granted = true;
    out.push_back(Completion{std::move(p.waiter), std::move(result)});
  }
  queue_.clear();
  return out;
}

absl::Status EventObject::Clear() {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (flag_ && recording()) Emit(EventChangedRecord(false));
  flag_ = false;
  return absl::OkStatus();
}

absl::StatusOr<bool> EventObject::IsSet() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return flag_;
}

absl::StatusOr<EventObject::Waited> EventObject::Wait(
    const Caller& caller, std::shared_ptr<Waiter> waiter) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (flag_) return Waited{true, false};
  if (waiter == nullptr) return Waited{};
  // Tracked so that the session's end ends the wait; a call without a
  // session has nothing to end.
  if (caller.session != 0 &&
      !registry_->Track(caller.session, shared_from_this())) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kSessionError, "the waiting session ended");
  }
  queue_.push_back(Parked{std::move(waiter)});
  return Waited{false, true};
}

void EventObject::Withdraw(const Waiter* waiter) {
  MutexLock lock(&mu_);
  wait_queue_internal::Take(queue_, waiter);
}

EventState EventObject::State() const {
  MutexLock lock(&mu_);
  return EventState{flag_, wait_queue_internal::Infos(queue_)};
}

std::vector<Completion> EventObject::OnSessionEnd(SessionId session,
                                                  SessionEnd /*how*/) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  wait_queue_internal::FailSession(
      queue_, session,
      Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
            "the waiting session ended"),
      &out);
  return out;
}

absl::Status EventObject::Apply(const v1::ChangeRecord& record) {
  if (record.change_case() != v1::ChangeRecord::kEventChanged) {
    return CannotApply(record);
  }
  MutexLock lock(&mu_);
  flag_ = record.event_changed().set();
  return absl::OkStatus();
}

uint64_t EventObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  uint64_t revision = 0;
  out->push_back(Created());
  bool set = false;
  {
    MutexLock lock(&mu_);
    revision = RevisionLocked();
    set = flag_;
  }
  if (set) {
    v1::ChangeRecord state = EventChangedRecord(true);
    state.set_object(name());
    out->push_back(std::move(state));
  }
  return revision;
}

}  // namespace statehub
