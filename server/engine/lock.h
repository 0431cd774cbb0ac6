// File: server/engine/lock.h
//
// `LockObject` is a shared lock (threading.Lock) or reentrant lock
// (threading.RLock), with robust ownership:
//
//   - Holdings belong to a session (an RLock to a session and a client
//     thread, counting recursion). When the holder's session ends, the lock
//     is released and the next acquirer is told owner_died; a Lock whose
//     holder said Goodbye with leave_locks stays held instead, as
//     multiprocessing.Manager leaves it (SessionEnd::kLeaveLocks).
//   - Every acquisition gets a fencing token that only grows per lock.
//   - Blocked acquirers park in FIFO order as Waiters (waiter.h); a grant
//     whose call was cancelled at the same moment is rolled back by token.
//
// While calls wait for it, it tells the registry's WaitForGraph who waits
// and who holds it, so that a cycle of waits is found as it forms; an
// uncontended lock never touches the graph.
//
// It also carries the wait queues of the conditions bound to it, because a
// condition wait releases and reacquires this lock atomically: a waiter
// parks in its condition's queue, moves to this lock's queue when notified
// (or when its timeout passes), and completes once it holds the lock again.
//
// Thread safety: all methods are thread-safe. Methods returning
// Completions must have them delivered (Deliver) after the call returns, with
// no mutex held.

#ifndef STATEHUB_SERVER_ENGINE_LOCK_H_
#define STATEHUB_SERVER_ENGINE_LOCK_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine/object.h"
#include "server/engine/observer.h"
#include "server/engine/wait_for_graph.h"
#include "server/engine/waiter.h"

namespace statehub {

struct LockState {
  bool locked = false;
  HolderInfo holder;
  // holder_left: the holder's session ended leaving the lock held.
  bool holder_left = false;
  int64_t recursion = 0;
  uint64_t fencing_token = 0;
  std::vector<HolderInfo> waiters;  // in the order they will be served
};

class LockObject final : public Object {
 public:
  static constexpr absl::string_view kTypeName = "lock or rlock";
  static bool Accepts(ObjectType type) {
    return type == ObjectType::kLock || type == ObjectType::kRLock;
  }

  static std::shared_ptr<LockObject> Make(std::string name, ObjectType type,
                                          Registry* registry);

  int64_t Size() const override { return 0; }
  bool reentrant() const { return type() == ObjectType::kRLock; }

  struct Acquired {
    // acquired is false when the caller was parked or (not blocking) turned
    // away; parked tells which.
    bool acquired = false;
    bool parked = false;
    uint64_t fencing_token = 0;
    bool owner_died = false;
  };
  // Acquire takes the lock now, or parks `waiter` (when non-null) in FIFO
  // order. A null waiter means "do not block". Errors: SESSION_ERROR without
  // a session; DEADLOCK when parking would close a cycle of waits and the
  // policy is --deadlock=fail.
  absl::StatusOr<Acquired> Acquire(const Caller& caller, uint64_t thread_id,
                                   std::shared_ptr<Waiter> waiter,
                                   const std::string& label);

  // Release releases one acquisition. Errors: RUNTIME_ERROR for an unheld
  // lock, or an RLock not owned by (caller.session, thread_id).
  absl::StatusOr<std::vector<Completion>> Release(const Caller& caller,
                                                  uint64_t thread_id);

  // Withdraw removes an acquire call that its caller claimed (`timed_out`:
  // by its timeout, else by cancellation) and reports it to the observer as
  // not acquired, even if a release already dropped the claimed entry.
  void Withdraw(const Waiter* waiter, bool timed_out);
  // WithdrawConditionWaiter removes a condition waiter its caller claimed
  // (cancelled), from the condition's queue or, once notified, the lock's.
  // It no longer holds the lock: nothing else changes.
  void WithdrawConditionWaiter(const Waiter* waiter);

  // Rollback undoes a grant whose call was cancelled as it was granted, if
  // `fencing_token` still holds the lock: one acquisition (`one_level`: an
  // RLock re-entry leaves the outer ones) or all of them (a condition
  // waiter's reacquire).
  std::vector<Completion> Rollback(uint64_t fencing_token, bool one_level);

  // Condition support (see condition.h). `condition` identifies the
  // condition's queue.
  // ConditionWait: the caller must hold the lock; releases it completely and
  // parks `waiter` until notified or timed out, then until it reacquires.
  // Errors: RUNTIME_ERROR "cannot wait on un-acquired lock".
  absl::StatusOr<std::vector<Completion>> ConditionWait(
      uint64_t condition, const Caller& caller, uint64_t thread_id,
      std::shared_ptr<Waiter> waiter);
  // ConditionTimeout moves a condition waiter whose timeout passed to the
  // lock's queue (it reacquires, then answers "not notified"). No-op if it
  // was notified already.
  std::vector<Completion> ConditionTimeout(uint64_t condition,
                                           const Waiter* waiter);
  // ConditionNotify moves up to `n` waiters (all for n < 0) to the lock's
  // queue. `failed` gets the calls a deadlock failed (--deadlock=fail).
  // Errors: RUNTIME_ERROR "cannot notify on un-acquired lock".
  struct Notified {
    int64_t woken = 0;
    std::vector<Completion> failed;
  };
  absl::StatusOr<Notified> ConditionNotify(uint64_t condition,
                                           const Caller& caller,
                                           uint64_t thread_id, int64_t n);
  int64_t ConditionWaiters(uint64_t condition) const;
  // ConditionDrop fails the waiters of a deleted condition that are still
  // waiting for a notify.
  std::vector<Completion> ConditionDrop(uint64_t condition,
                                        const absl::Status& status);

  LockState State() const;
  // Load is State's cheap part, for metrics scrapes: whether the lock is
  // held and how many acquire calls wait for it.
  struct Load {
    bool held = false;
    int64_t waiters = 0;
  };
  Load CurrentLoad() const;

  // OnSessionEnd fails the session's parked calls and releases the lock if
  // the session holds it (the next acquirer is told owner_died), except
  // that after SessionEnd::kLeaveLocks a Lock (not an RLock) stays held,
  // marked left, until someone releases it.
  std::vector<Completion> OnSessionEnd(SessionId session,
                                       SessionEnd how) override;
  absl::Status Apply(const v1::ChangeRecord& record) override;
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  // One parked call in the lock's queue or a condition's queue.
  struct Pending {
    std::shared_ptr<Waiter> waiter;
    // recursion to restore on grant (a condition waiter's RLock depth).
    int64_t recursion = 1;
    // condition is set for a condition waiter; notified once it was.
    bool condition = false;
    bool notified = false;
    // graphed: the wait-for graph knows of this wait.
    bool graphed = false;
  };
  struct Holding {
    HolderInfo who;
    int64_t recursion = 0;
    uint64_t token = 0;
    // left: the holder's session ended with SessionEnd::kLeaveLocks.
    bool left = false;
  };

  LockObject(std::string name, ObjectType type, Registry* registry,
             std::shared_ptr<AcquireObserver> observer);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;
  // Tracks the caller's session on this lock; false if it has ended.
  bool TrackLocked(const Caller& caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  bool OwnedBy(const Caller& caller, uint64_t thread_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives the lock to `who`, returning its token.
  uint64_t TakeLocked(HolderInfo who, int64_t recursion)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes `waiter`'s entry from whichever queue holds it.
  void RemoveLocked(const Waiter* waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // EnqueueLocked parks `entry` in the lock's queue, recording its wait in
  // the wait-for graph. Returns a DEADLOCK error, and parks nothing, when
  // the graph refuses the wait (--deadlock=fail); a wait of the cycle that
  // the graph failed instead goes to `out`.
  absl::Status EnqueueLocked(Pending entry, std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // DequeuedLocked: `entry` left the lock's queue.
  void DequeuedLocked(const Pending& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UnwaitLocked drops from the graph the waits of the entries `pred`
  // selects, before they leave the queue with their waiters moved out.
  template <typename Pred>
  void UnwaitLocked(Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // StateRecordLocked is the lock's state as a LockChanged record;
  // RecordLocked emits it (while recording) after every change.
  v1::ChangeRecord StateRecordLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the lock and grants it to the first live waiter.
  void ReleaseLocked(std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // observer_ records acquisitions and releases; null when metrics are off.
  const std::shared_ptr<AcquireObserver> observer_;
  // graph_ is the registry's wait-for graph; null without a registry.
  WaitForGraph* const graph_;
  // graphed_ counts the entries of queue_ the graph knows of: while there
  // are none, nothing here calls the graph.
  int64_t graphed_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<Holding> holding_ ABSL_GUARDED_BY(mu_);
  uint64_t last_token_ ABSL_GUARDED_BY(mu_) = 0;
  // owner_died_ is set when a holder's session ended holding the lock, and
  // reported to (then cleared by) the next acquirer.
  bool owner_died_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::deque<Pending>> conditions_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_LOCK_H_
