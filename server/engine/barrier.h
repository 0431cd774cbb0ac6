// File: server/engine/barrier.h
//
// `BarrierObject` is a shared barrier (threading.Barrier) for a fixed number
// of parties.
//
//   - Wait parks each arrival as a Waiter (waiter.h) until `parties` callers
//     have arrived; the last arrival passes at once and grants the others.
//     Each gets its arrival index, as Python's wait() returns it: the first
//     arrival 0, the last parties - 1 (checked against CPython 3.11). The
//     barrier then starts its next generation; there is no "draining" phase
//     as in Python because every grant happens in one step.
//   - Abort breaks the barrier: parked and later callers fail with
//     BROKEN_BARRIER (ABORTED) until Reset. Reset fails the parked callers
//     with BROKEN_BARRIER and makes the barrier usable again.
//   - A waiter that times out or is cancelled breaks the barrier, as a
//     timeout does in Python: its caller claims it and calls TimeoutBreak,
//     which fails the other waiters; the caller answers its own call with
//     BrokenError(), as Python raises BrokenBarrierError to the thread whose
//     timeout broke it. A zero timeout is a timeout like any other.
//   - A session that ends with a parked waiter breaks the barrier too: that
//     waiter ends with SESSION_ERROR, the others with BROKEN_BARRIER.
//   - The action: Python's `action` callable belongs to a client, and
//     threading.Barrier runs it in the last thread to arrive before it
//     releases any. A last arrival that asks for it (Wait's `run_action`)
//     passes at once told to run it, while the parties that arrived with it
//     stay held (claimed, out of the queue: their timeouts no longer fire)
//     until its ActionDone grants them, or breaks the barrier if the action
//     failed. Abort, Reset, deletion or the end of the runner's session
//     fail them as a break does. Arrivals meanwhile start the next
//     generation.
//
// The default `timeout` belongs to the client.
//
// Durability (change.proto): a pass (a new generation), a break and the
// reset of a broken barrier are each a BarrierChanged with the generation
// and the broken flag after it. Parked parties are not state: after a
// restart their clients park them again, in the generation recorded last.
// A running action is not state either: its pass is recorded only at
// ActionDone. So a restart during an action undoes the pass, much as a
// crash of the runner would, except that the barrier is not broken: it
// comes back in the generation before the pass with nobody parked, the
// runner's ActionDone fails with RUNTIME_ERROR (no action runs), and the
// held parties' clients park them again, to wait for a full set of
// arrivals or for a timeout to break the barrier. Breaking it on recovery,
// as the end of the runner's session does, would need the running action
// in the record, which BarrierChanged does not carry.
//
// Example:
//
//   auto start = *registry.Find<BarrierObject>("start");
//   auto waited = start->Wait(Caller{session}, waiter);
//   if (waited.ok()) DeliverCompletions(std::move(waited->completions));
//   // waited->passed: the caller was last, index waited->index;
//   // waited->parked: `waiter` completes with WaitResult.index.
//
// Thread safety: all methods are thread-safe. Methods returning Completions
// must have them delivered (DeliverCompletions) after the call returns, with
// no mutex held.

#ifndef STATEHUB_SERVER_ENGINE_BARRIER_H_
#define STATEHUB_SERVER_ENGINE_BARRIER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/wait_queue.h"
#include "server/engine/waiter.h"

namespace statehub {

struct BarrierState {
  int64_t parties = 0;
  // n_waiting counts the callers parked in the current generation.
  int64_t n_waiting = 0;
  bool broken = false;
  // generation counts how many times the barrier has passed.
  uint64_t generation = 0;
  // waiters lists parked callers in arrival order (those held for a
  // running action first).
  std::vector<HolderInfo> waiters;
  // action_running: a party runs the action; n_waiting and waiters include
  // the parties it holds.
  bool action_running = false;
};

class BarrierObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kBarrier;

  // Make creates a barrier for `parties` callers.
  // Errors: VALUE_ERROR "parties must be > 0" (Python 3.13's message).
  static absl::StatusOr<std::shared_ptr<BarrierObject>> Make(
      std::string name, int64_t parties, Registry* registry);

  int64_t Size() const override { return 0; }
  int64_t parties() const { return parties_; }

  struct Waited {
    // passed is true when the caller was the last party: it passes now with
    // `index` (parties - 1) and the others are granted by `completions`.
    bool passed = false;
    // run_action is true when the caller passed last and must run the
    // action (it asked to): the others pass at its ActionDone.
    bool run_action = false;
    // parked is true when `waiter` was parked: it completes with its index
    // (WaitResult.index) or an error. It may already be completed by
    // `completions` (see Wait).
    bool parked = false;
    int64_t index = -1;
    std::vector<Completion> completions;
  };
  // Wait enters the barrier. REQUIRES: waiter != nullptr (every barrier
  // wait may block; a zero timeout is handled like any timeout).
  // If the last party arrives while a parked waiter is being withdrawn (its
  // timeout or cancellation claimed it first), the barrier breaks instead of
  // passing, as the timeout came first: `waiter` is reported parked and is
  // completed with BROKEN_BARRIER among `completions`.
  // `run_action`: the caller has an action to run if it arrives last.
  // Errors: BROKEN_BARRIER when the barrier is broken, SESSION_ERROR when
  // the caller's session has ended (or, with run_action, it has none),
  // OBJECT_NOT_FOUND once deleted, VALUE_ERROR for a null waiter.
  absl::StatusOr<Waited> Wait(const Caller& caller,
                              std::shared_ptr<Waiter> waiter,
                              bool run_action = false);

  // ActionDone ends the running action: the held parties pass with their
  // indices and the generation advances, or (`failed`) the barrier breaks.
  // Errors: RUNTIME_ERROR when no action of the caller's session runs,
  // OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> ActionDone(const Caller& caller,
                                                     bool failed);

  // Abort breaks the barrier; parked callers fail with BROKEN_BARRIER.
  // Errors: OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> Abort();
  // Reset fails parked callers with BROKEN_BARRIER and leaves the barrier
  // empty and not broken. Errors: OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> Reset();

  // TimeoutBreak is the barrier's Withdraw, for a waiter its caller claimed
  // on timeout or cancellation: removes it and breaks the barrier, failing
  // the other waiters with BROKEN_BARRIER. No-op if the waiter is no longer
  // parked (a reset, abort or break already ended its generation). Either
  // way the caller answers with BrokenError().
  std::vector<Completion> TimeoutBreak(const Waiter* waiter);

  // BrokenError is the BROKEN_BARRIER status a broken wait answers with.
  absl::Status BrokenError() const;

  BarrierState State() const;

  // OnSessionEnd ends the session's parked waits with SESSION_ERROR and, if
  // it had any, breaks the barrier for the others.
  std::vector<Completion> OnSessionEnd(SessionId session,
                                       SessionEnd how) override;

  // Recovery (object.h). Apply takes BarrierChanged and sets the generation
  // and the broken flag; a generation going back is DATA_LOSS. Dump gives
  // the created record (parties), then a BarrierChanged if the barrier has
  // passed or is broken.
  absl::Status Apply(const v1::ChangeRecord& record) override
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  BarrierObject(std::string name, int64_t parties, Registry* registry);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;

  // Fails every parked caller, and those held for a running action, with
  // BROKEN_BARRIER and marks it broken (recorded if it was not).
  void BreakLocked(std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // BreakLocked's failing part, which Reset shares.
  void FailPartiesLocked(std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state as a BarrierChanged record.
  v1::ChangeRecord StateRecordLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a running action's hold: its parties complete with `status`.
  void FailActionLocked(const absl::Status& status,
                        std::vector<Completion>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The action being run and the parties it holds, by arrival index.
  struct Action {
    SessionId runner = 0;
    std::vector<std::shared_ptr<Waiter>> held;
  };

  const int64_t parties_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Arrivals of the current generation; an entry's position is its index.
  std::deque<wait_queue_internal::Parked> queue_ ABSL_GUARDED_BY(mu_);
  std::optional<Action> action_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_BARRIER_H_
