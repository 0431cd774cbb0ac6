// File: server/engine/event.h
//
// `EventObject` is a shared event (threading.Event): a flag that callers
// wait on.
//
//   - Wait answers at once when the flag is set; otherwise it parks the
//     caller as a Waiter (waiter.h) until Set. A timeout is the caller's
//     business: it claims the waiter, calls Withdraw and answers false, as
//     Python's wait(timeout) returns False.
//   - Set sets the flag and grants every parked waiter (granted = true, as
//     Python's wait returns True to a thread woken by set() even if the flag
//     was cleared again before it ran). Clear clears it.
//
// Waiting needs no ownership, but a session's parked waits end with
// SESSION_ERROR when the session ends. Calls without a session may wait too;
// nothing ends them but Set, their timeout or cancellation.
//
// Durability (change.proto): a change of the flag is an EventChanged; a set
// or clear that leaves the flag as it was records nothing. Parked waiters
// are not state: their clients park them again after a restart.
//
// Example:
//
//   auto ready = *registry.Find<EventObject>("ready");
//   auto waited = ready->Wait(Caller{session}, waiter);  // parks if clear
//   DeliverCompletions(*ready->Set());                    // wakes everyone
//
// Thread safety: all methods are thread-safe. Methods returning Completions
// must have them delivered (DeliverCompletions) after the call returns, with
// no mutex held.

#ifndef STATEHUB_SERVER_ENGINE_EVENT_H_
#define STATEHUB_SERVER_ENGINE_EVENT_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/wait_queue.h"
#include "server/engine/waiter.h"

namespace statehub {

struct EventState {
  bool set = false;
  // waiters lists parked waiters in the order they arrived.
  std::vector<HolderInfo> waiters;
};

class EventObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kEvent;

  // Make creates an event whose flag is clear.
  static std::shared_ptr<EventObject> Make(std::string name,
                                           Registry* registry);

  int64_t Size() const override { return 0; }

  // Set sets the flag and grants every parked waiter.
  // Errors: OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> Set();
  // Clear clears the flag. Errors: OBJECT_NOT_FOUND once deleted.
  absl::Status Clear();
  // IsSet reports the flag. Errors: OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<bool> IsSet() const;

  struct Waited {
    // set is true when the flag was set: the caller is answered True now.
    bool set = false;
    // parked is true when `waiter` was parked (it completes on Set).
    bool parked = false;
  };
  // Wait answers at once if the flag is set, or parks `waiter` (when
  // non-null); a null waiter means "do not block" (wait(timeout=0): False).
  // Errors: SESSION_ERROR when the caller's session has ended,
  // OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<Waited> Wait(const Caller& caller,
                              std::shared_ptr<Waiter> waiter);

  // Withdraw removes a waiter that its caller claimed (timeout, cancel).
  void Withdraw(const Waiter* waiter);

  EventState State() const;

  // OnSessionEnd ends the session's parked waits with SESSION_ERROR.
  std::vector<Completion> OnSessionEnd(SessionId session,
                                       SessionEnd how) override;

  // Recovery (object.h). Apply takes EventChanged and sets the flag. Dump
  // gives the created record, then an EventChanged if the flag is set.
  absl::Status Apply(const v1::ChangeRecord& record) override
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  EventObject(std::string name, Registry* registry);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;

  bool flag_ ABSL_GUARDED_BY(mu_) = false;
  // Invariant: empty of unclaimed waiters while flag_ is set.
  std::deque<wait_queue_internal::Parked> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_EVENT_H_
