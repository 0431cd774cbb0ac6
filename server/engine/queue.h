// File: server/engine/queue.h
//
// `QueueObject` is a shared FIFO queue (queue.Queue, which Manager serves for
// both its Queue and JoinableQueue, so both types support task_done and
// join here too).
//
//   - maxsize <= 0 means unbounded, as in Python; the number of stored items
//     is also bounded by --max_elements (LIMIT_EXCEEDED, not "full").
//   - Put stores an item now when the queue is not full, or parks the putter
//     as a Waiter (waiter.h) together with its item; Get takes the oldest
//     item now, or parks the getter. Without a waiter (block=False) a full
//     or empty queue is a result, not an error (queue.Full / queue.Empty).
//   - Parked callers are served in FIFO order and hand-offs are direct: an
//     item put while getters wait goes to the oldest getter (its
//     WaitResult.item); an item taken from a full queue lets the oldest
//     parked putter's item in and grants that putter.
//   - Every item put (stored or handed off) counts as an unfinished task;
//     TaskDone uncounts one, and Join parks until none is left.
//
// Durability (change.proto): an item stored at the back is a QueuePut, a
// get a QueueTaken, a rolled-back get a QueuePut at the front, and every
// change of the unfinished count a TasksChanged with the count after it —
// for plain queues too, since they count tasks as well. An item put while a
// getter is parked goes straight to that getter and never rests in the
// queue, so only its task is recorded (no QueuePut and QueueTaken pair):
// replay reaches the same items and count, and the log does not carry an
// item the queue never held. Parked getters, putters and joiners are not
// state: their clients park them again after a restart.
//
// Items may hold refs to other objects (dict.cc's rules): refs are counted
// while an item is stored or parked with its putter; an item returned to a
// caller first gets a hold for the caller's session (for a parked getter,
// its own session, taken under this queue's mutex at grant time), then the
// queue's count is released. So an anonymous dict put in a queue outlives
// its creator's session until someone gets it.
//
// Example:
//
//   auto jobs = *registry.Find<QueueObject>("jobs");
//   auto stored = jobs->Put(Caller{session}, Value("job-1"), waiter);
//   if (stored.ok()) DeliverCompletions(std::move(stored->completions));
//   auto got = jobs->Get(Caller{session}, nullptr);  // get_nowait()
//   if (got.ok() && got->got) Use(got->item);          // else queue.Empty
//
// Thread safety: all methods are thread-safe. Methods returning Completions
// must have them delivered (DeliverCompletions) after the call returns, with
// no mutex held.

#ifndef STATEHUB_SERVER_ENGINE_QUEUE_H_
#define STATEHUB_SERVER_ENGINE_QUEUE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/engine/object.h"
#include "server/engine/wait_queue.h"
#include "server/engine/waiter.h"

namespace statehub {

struct QueueState {
  // size is the number of stored items (qsize()).
  int64_t size = 0;
  // maxsize as given at creation; <= 0 means unbounded.
  int64_t maxsize = 0;
  // unfinished counts items put and not yet marked done (task_done).
  int64_t unfinished = 0;
  // getters, putters and joiners list parked calls in serving order.
  std::vector<HolderInfo> getters;
  std::vector<HolderInfo> putters;
  std::vector<HolderInfo> joiners;
};

class QueueObject final : public Object {
 public:
  static constexpr absl::string_view kTypeName = "queue or joinable_queue";
  static bool Accepts(ObjectType type) {
    return type == ObjectType::kQueue || type == ObjectType::kJoinableQueue;
  }

  // Make creates an empty queue of `type` (QUEUE or JOINABLE_QUEUE) holding
  // at most `maxsize` items (<= 0: unbounded). Never fails today; StatusOr
  // keeps the door open for checks on creation.
  static absl::StatusOr<std::shared_ptr<QueueObject>> Make(std::string name,
                                                           ObjectType type,
                                                           int64_t maxsize,
                                                           Registry* registry);

  int64_t maxsize() const { return maxsize_; }
  // Size is the number of stored items.
  int64_t Size() const override;

  struct Stored {
    // stored is true when the item went in (or straight to a getter); false
    // when the queue was full and the putter was parked or (no waiter)
    // turned away: queue.Full.
    bool stored = false;
    bool parked = false;
    std::vector<Completion> completions;
  };
  // Put stores `item` now if the queue is not full, or parks `waiter` (when
  // non-null) with the item until there is room. A parked putter is granted
  // (WaitResult.granted) once its item is in.
  // Errors: OBJECT_NOT_FOUND (refs to missing objects, or once deleted),
  // TYPE_ERROR (a ref of the wrong type), LIMIT_EXCEEDED (--max_elements),
  // SESSION_ERROR when parking for a session that has ended.
  absl::StatusOr<Stored> Put(const Caller& caller, Value item,
                             std::shared_ptr<Waiter> waiter);

  struct Got {
    // got is true when `item` was taken; false when the queue was empty and
    // the getter was parked or (no waiter) turned away: queue.Empty.
    bool got = false;
    bool parked = false;
    // item carries a hold for caller.session on its anonymous refs.
    Value item;
    std::vector<Completion> completions;
  };
  // Get takes the oldest item now, or parks `waiter` (when non-null) until
  // one is put; the getter is then granted with WaitResult.item.
  // Errors: OBJECT_NOT_FOUND once deleted, SESSION_ERROR when parking for a
  // session that has ended.
  absl::StatusOr<Got> Get(const Caller& caller, std::shared_ptr<Waiter> waiter);

  // Qsize, Empty and Full answer as queue.Queue does (full() is false for an
  // unbounded queue). Errors: OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<int64_t> Qsize() const;
  absl::StatusOr<bool> Empty() const;
  absl::StatusOr<bool> Full() const;

  // TaskDone marks one put item done; when none is left, grants every
  // joiner. Errors: VALUE_ERROR "task_done() called too many times",
  // OBJECT_NOT_FOUND once deleted.
  absl::StatusOr<std::vector<Completion>> TaskDone();

  struct Joined {
    // done is true when no task was unfinished: join() returns now.
    bool done = false;
    bool parked = false;
  };
  // Join answers at once when every put item is done, or parks `waiter`
  // (when non-null) until then. Errors: OBJECT_NOT_FOUND once deleted,
  // SESSION_ERROR when parking for a session that has ended.
  absl::StatusOr<Joined> Join(const Caller& caller,
                              std::shared_ptr<Waiter> waiter);

  // Withdraw removes a getter, putter or joiner that its caller claimed
  // (timeout, cancel). A putter's item is dropped and its refs released.
  void Withdraw(const Waiter* waiter) ABSL_LOCKS_EXCLUDED(mu_);

  // RollbackGet undoes a getter's grant whose call was cancelled as it was
  // granted: `item` (its WaitResult.item) goes back to the head of the
  // queue (or to the oldest parked getter), even past maxsize, since losing
  // it would be worse, and the hold given to `session` is released. If the
  // queue was deleted meanwhile, or a named object the item refers to was
  // deleted (its refs can no longer be counted), the item is dropped.
  std::vector<Completion> RollbackGet(SessionId session, Value item)
      ABSL_LOCKS_EXCLUDED(mu_);

  // State returns the counts and, if `include_waiters`, the parked calls.
  QueueState State(bool include_waiters = true) const;

  // OnSessionEnd ends the session's parked calls with SESSION_ERROR; items
  // of its parked putters are dropped (never stored) and their refs
  // released.
  std::vector<Completion> OnSessionEnd(SessionId session,
                                       SessionEnd how) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // Recovery (object.h). RestoreContents loads the created record's items,
  // front first. Apply takes QueuePut, QueueTaken and TasksChanged; a
  // QueueTaken on an empty queue or a negative count is DATA_LOSS. Dump
  // gives the created record with maxsize and the items, then a
  // TasksChanged when tasks are unfinished. No limit applies and no ref is
  // counted (Engine::FinishRecovery recounts them).
  absl::Status RestoreContents(const v1::ObjectCreated& created) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Apply(const v1::ChangeRecord& record) override
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // A parked putter and the item it waits to store (refs counted).
  struct PendingPut {
    std::shared_ptr<Waiter> waiter;
    Value item;
  };

  QueueObject(std::string name, ObjectType type, int64_t maxsize,
              Registry* registry);
  std::vector<Value> TakeContents() override;
  std::vector<Completion> TakeWaiters(const absl::Status& status) override;

  bool FullLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tracks `session` here so its end reaches this queue; true for no
  // session, false if it has ended.
  bool TrackLocked(SessionId session) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `item` (refs counted) to the oldest live parked getter, which gets
  // a hold on its refs; the queue's counts go to `dropped`. Getters whose
  // session has ended fail with SESSION_ERROR on the way. Returns false, with
  // `item` untouched, when no getter is left.
  bool HandOffLocked(Value& item, std::vector<Completion>* out,
                     std::vector<Value>* dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves parked putters' items in while there is room, granting them.
  void RefillLocked(std::vector<Completion>* out, std::vector<Value>* dropped)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t maxsize_;
  // Invariants: getters_ holds unclaimed waiters only while items_ is empty;
  // putters_ only while the queue is full; joiners_ only while unfinished_ >
  // 0.
  std::deque<Value> items_ ABSL_GUARDED_BY(mu_);
  int64_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<wait_queue_internal::Parked> getters_ ABSL_GUARDED_BY(mu_);
  std::deque<PendingPut> putters_ ABSL_GUARDED_BY(mu_);
  std::deque<wait_queue_internal::Parked> joiners_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_QUEUE_H_
