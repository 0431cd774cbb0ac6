// File: server/engine/semaphore.h
//
// `SemaphoreObject` is a shared counting semaphore (threading.Semaphore) or
// bounded semaphore (threading.BoundedSemaphore).
//
//   - Acquire takes one unit now, or parks the caller as a Waiter (waiter.h)
//     in FIFO order: a newcomer never overtakes parked callers.
//   - Release(n) adds n units and grants parked callers in FIFO order. Any
//     caller may release, as in Python; a bounded semaphore refuses to go
//     past its initial value.
//
// Robust holdings, a deliberate difference from Python: Python's semaphores
// have no owners, so a unit acquired by a process that dies is lost for
// good. Here each unit acquired is counted against the acquiring session,
// and when a session ends, the units it still holds are released back (and
// parked callers granted), as DESIGN.md asks for everything a session held.
// A release is credited to the releaser's own count first; a release by a
// session holding fewer units than it releases is credited to other holders,
// oldest holding first (a unit handed to another process and released
// there). Units released beyond every holding are new units (an unbounded
// semaphore used as a signal). For a bounded semaphore this keeps
// value + held units == initial value, so a session's end can never push it
// past its bound. A semaphore used purely as a signal between processes
// (acquire in one, release in another) may see a unit come back when a
// consumer's session ends holding units no later release was credited with;
// an event or a queue fits that pattern better.
//
// Durability (change.proto): every change of the free units or the
// holdings (an acquire, a grant to a parked caller, a release with the
// grants it makes, a rollback, a session's end) is one SemaphoreChanged
// with the state after it, holdings oldest first. Parked acquirers are not
// state: their clients park them again after a restart.
//
// Example:
//
//   auto sem = *registry.Find<SemaphoreObject>("slots");
//   auto got = sem->Acquire(Caller{session}, waiter);  // parks if 0
//   ...
//   DeliverCompletions(*sem->Release(Caller{session}, 1));
//
// Thread safety: all methods are thread-safe. Methods returning Completions
// must have them delivered (DeliverCompletions) after the call returns, with
// no mutex held.

#ifndef STATEHUB_SERVER_ENGINE_SEMAPHORE_H_
#define STATEHUB_SERVER_ENGINE_SEMAPHORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/engine/object.h"
#include "server/engine/observer.h"
#include "server/engine/wait_queue.h"
#include "server/engine/waiter.h"

namespace statehub {

struct SemaphoreState {
  // value is the number of units free now.
  int64_t value = 0;
  // initial_value is the value given at creation (a bounded semaphore's
  // maximum).
  int64_t initial_value = 0;
  // holders lists the units each session holds, by session id.
  std::vector<std::pair<SessionId, int64_t>> holders;
  // waiters lists parked acquirers in the order they will be served.
  std::vector<HolderInfo> waiters;
};

class SemaphoreObject final : public Object {
 public:
  static constexpr absl::string_view kTypeName =
      "semaphore or bounded_semaphore";
  static bool Accepts(ObjectType type) {
    return type == ObjectType::kSemaphore ||
           type == ObjectType::kBoundedSemaphore;
  }

  // Make creates a semaphore of `type` (SEMAPHORE or BOUNDED_SEMAPHORE) with
  // `value` units. Errors: VALUE_ERROR "semaphore initial value must be >= 0".
  static absl::StatusOr<std::shared_ptr<SemaphoreObject>> Make(
      std::string name, ObjectType type, int64_t value, Registry* registry);

  int64_t Size() const override { return 0; }
  bool bounded() const { return type() == ObjectType::kBoundedSemaphore; }

  struct Acquired {
    // acquired is false when the caller was parked or (not blocking) turned
    // away; parked tells which.
    bool acquired = false;
    bool parked = false;
  };
  // Acquire takes one unit now if one is free and nobody is parked, or parks
  // `waiter` (when non-null) in FIFO order; a null waiter means "do not
  // block". A parked caller is granted (WaitResult.granted) with its unit
  // already counted against its session.
  // Errors: SESSION_ERROR without a live session (units belong to sessions),
  // OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<Acquired> Acquire(const Caller& caller,
                                   std::shared_ptr<Waiter> waiter);

  // Release adds `n` units and grants parked callers. Needs no session.
  // Errors: VALUE_ERROR "n must be one or more" for n < 1, VALUE_ERROR
  // "Semaphore released too many times" when a bounded semaphore would pass
  // its initial value (nothing changes), VALUE_ERROR when the value would
  // overflow int64, OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> Release(const Caller& caller,
                                                  int64_t n);

  // Withdraw removes a waiter that its caller claimed (`timed_out`: by its
  // timeout, else cancelled) and reports it to the observer as not
  // acquired, even if a grant pass already dropped the claimed entry.
  // Nothing else changes: a parked caller never held a unit.
  void Withdraw(const Waiter* waiter, bool timed_out);

  // Rollback undoes a grant whose call was cancelled as it was granted:
  // releases one unit held by `session`, if it still holds one (its session
  // may have ended and released it already).
  std::vector<Completion> Rollback(SessionId session);

  SemaphoreState State() const;
  // CurrentLoad is State's cheap part, for metrics scrapes.
  struct Load {
    int64_t value = 0;
    int64_t waiters = 0;
  };
  Load CurrentLoad() const;

  // OnSessionEnd ends the session's parked calls with SESSION_ERROR and
  // releases the units it held, granting parked callers; after
  // SessionEnd::kLeaveLocks the units stay taken (marked left), until
  // releases by other sessions credit them.
  std::vector<Completion> OnSessionEnd(SessionId session,
                                       SessionEnd how) override;

  // Recovery (object.h). Apply takes SemaphoreChanged: it sets the value
  // and the holdings (keeping their age order) and tracks each live holder
  // session, so that its end after recovery releases its units; a holder
  // that is not live is left to Engine::FinishRecovery (unless it left its
  // units taken: SemaphoreUnits.left). A negative value,
  // a holding of session 0, of no units or of one session twice, or a
  // bounded semaphore past its initial value is DATA_LOSS. Dump gives the
  // created record (semaphore_value: the initial value) and the state.
  absl::Status Apply(const v1::ChangeRecord& record) override
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // The units one session holds; `order` ranks holdings by age for
  // releases credited to other holders. `left`: the session ended with
  // SessionEnd::kLeaveLocks and left them taken.
  struct Holding {
    int64_t units = 0;
    uint64_t order = 0;
    bool left = false;
  };

  SemaphoreObject(std::string name, ObjectType type, int64_t value,
                  Registry* registry,
                  std::shared_ptr<AcquireObserver> observer);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;

  // Counts one unit against `session`.
  void AddUnitLocked(SessionId session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Credits `n` released units to holdings: `session`'s own first, then
  // other holders', oldest first.
  void CreditLocked(SessionId session, int64_t n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Grants free units to parked callers in FIFO order.
  void GrantLocked(std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state as a SemaphoreChanged, holdings oldest first; EmitStateLocked
  // publishes it.
  v1::SemaphoreChanged StateRecordLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitStateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t initial_value_;
  // observer_ records acquisitions; null when metrics are off.
  const std::shared_ptr<AcquireObserver> observer_;
  // Invariant: value_ > 0 only when no unclaimed waiter is parked.
  int64_t value_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SessionId, Holding> held_ ABSL_GUARDED_BY(mu_);
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<wait_queue_internal::Parked> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_SEMAPHORE_H_
