// File: server/engine/condition.h
//
// `ConditionObject` is threading.Condition bound to a LockObject. Its state
// lives in the lock (under the lock's mutex), because a wait must release
// and reacquire that lock atomically with parking; this object only names
// its queue there and keeps the lock alive: it stores a ref to the lock, so
// an anonymous lock lives as long as any condition bound to it.
//
// Thread safety: all methods are thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_CONDITION_H_
#define STATEHUB_SERVER_ENGINE_CONDITION_H_

#include <atomic>
#include <memory>

#include "absl/status/statusor.h"
#include "server/engine/lock.h"
#include "server/engine/object.h"

namespace statehub {

class ConditionObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kCondition;

  // Binds a new condition to `lock`; `lock_ref` is the ref the registry
  // counted for it.
  static std::shared_ptr<ConditionObject> Make(std::string name,
                                               std::shared_ptr<LockObject> lock,
                                               Value lock_ref,
                                               Registry* registry);

  int64_t Size() const override { return 0; }
  std::string BoundLock() const override { return lock_->name(); }
  const std::shared_ptr<LockObject>& lock() const { return lock_; }

  // Wait releases the lock (the caller must hold it) and parks `waiter`
  // until notified or timed out; the waiter completes once it holds the
  // lock again (granted = notified). Errors: RUNTIME_ERROR, OBJECT_NOT_FOUND.
  absl::StatusOr<std::vector<Completion>> Wait(const Caller& caller,
                                               uint64_t thread_id,
                                               std::shared_ptr<Waiter> waiter);
  // Timeout moves a waiter whose timeout passed on to reacquiring the lock.
  std::vector<Completion> Timeout(const Waiter* waiter);
  // Withdraw removes a waiter its caller claimed (cancelled).
  void Withdraw(const Waiter* waiter) {
    lock_->WithdrawConditionWaiter(waiter);
  }
  // Notify wakes up to n waiters (all if n < 0). Errors: RUNTIME_ERROR.
  absl::StatusOr<int64_t> Notify(const Caller& caller, uint64_t thread_id,
                                 int64_t n);
  // Waiting counts the waiters not yet notified.
  int64_t Waiting() const { return lock_->ConditionWaiters(id_); }

  // Dump appends the condition's created record, which names its lock. A
  // condition takes no other record: Apply keeps Object's (DATA_LOSS).
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  ConditionObject(std::string name, std::shared_ptr<LockObject> lock,
                  Value lock_ref, Registry* registry);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;

  const std::shared_ptr<LockObject> lock_;
  const uint64_t id_;
  Value lock_ref_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_CONDITION_H_
