#include "server/engine/condition.h"

namespace statehub {
namespace {

// Condition ids name queues inside locks; unique for the server's life.
std::atomic<uint64_t> next_condition_id{1};

}  // namespace

ConditionObject::ConditionObject(std::string name,
                                 std::shared_ptr<LockObject> lock,
                                 Value lock_ref, Registry* registry)
    : Object(std::move(name), kType, registry),
      lock_(std::move(lock)),
      id_(next_condition_id++),
      lock_ref_(std::move(lock_ref)) {}

std::shared_ptr<ConditionObject> ConditionObject::Make(
    std::string name, std::shared_ptr<LockObject> lock, Value lock_ref,
    Registry* registry) {
  return std::shared_ptr<ConditionObject>(new ConditionObject(
      std::move(name), std::move(lock), std::move(lock_ref), registry));
}

std::vector<Value> ConditionObject::TakeContents() {
  std::vector<Value> out;
  out.push_back(std::move(lock_ref_));
  return out;
}

std::vector<Completion> ConditionObject::TakeWaiters(
    const absl::Status& status) {
  // Lock order: a condition's mutex before its lock's (nothing takes them
  // the other way round).
  return lock_->ConditionDrop(id_, status);
}

absl::StatusOr<std::vector<Completion>> ConditionObject::Wait(
    const Caller& caller, uint64_t thread_id, std::shared_ptr<Waiter> waiter) {
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
  }
  absl::StatusOr<std::vector<Completion>> out =
      lock_->ConditionWait(id_, caller, thread_id, std::move(waiter));
  if (!out.ok()) {
    return Error(out.status().code(), GetErrorKind(out.status()),
                 out.status().message());
  }
  return out;
}

std::vector<Completion> ConditionObject::Timeout(const Waiter* waiter) {
  return lock_->ConditionTimeout(id_, waiter);
}

absl::StatusOr<int64_t> ConditionObject::Notify(const Caller& caller,
                                                uint64_t thread_id, int64_t n) {
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
  }
  absl::StatusOr<LockObject::Notified> notified =
      lock_->ConditionNotify(id_, caller, thread_id, n);
  if (!notified.ok()) {
    return Error(notified.status().code(), GetErrorKind(notified.status()),
                 notified.status().message());
  }
  DeliverCompletions(std::move(notified->failed));
  return notified->woken;
}

uint64_t ConditionObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  // A condition's only state is its lock: its waiters are parked calls,
  // which are never recorded (change.proto).
  v1::ChangeRecord record = Created();
  record.mutable_created()->set_condition_lock(lock_->name());
  out->push_back(std::move(record));
  return revision();
}

}  // namespace statehub
