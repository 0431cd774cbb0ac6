// File: server/engine/waiter.h
//
// `Waiter` is one parked blocking call (acquire, wait, get, ...). It sits in
// an object's FIFO queue, costing memory and no thread, until exactly one of
// four things claims it:
//
//   - the object grants it (lock freed, item put, event set, ...),
//   - its timeout passes,
//   - its call is cancelled (client gone, deadline exceeded),
//   - its session ends.
//
// Whoever wins TryClaim owns the completion: it updates the object (under
// the object's mutex) and later calls Complete with no mutex held. Everyone
// else backs off. server/handlers/parked_call.h subclasses Waiter to finish
// the call, over either transport, in Complete.
//
// Thread safety: TryClaim is thread-safe; Complete is called once.

#ifndef STATEHUB_SERVER_ENGINE_WAITER_H_
#define STATEHUB_SERVER_ENGINE_WAITER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/engine/caller.h"
#include "statehub/value.h"

namespace statehub {

// WaitResult is what a parked call gets back.
struct WaitResult {
  // status is OK for every expected outcome (granted or timed out);
  // SESSION_ERROR when the session ended, OBJECT_NOT_FOUND when the object
  // was deleted, CANCELLED when the call was cancelled.
  absl::Status status;
  // granted is false when the wait timed out.
  bool granted = false;
  // Lock grants: the fencing token and whether the previous owner died.
  uint64_t fencing_token = 0;
  bool owner_died = false;
  // Queue gets: the item handed to the getter. Its refs already carry a hold
  // for the getter's session, taken when it was granted.
  Value item;
  // Barrier waits: the caller's arrival index, 0 .. parties - 1 (-1 when
  // not a barrier grant), and whether it must run the action.
  int64_t index = -1;
  bool run_action = false;
};

class Waiter {
 public:
  enum class State { kWaiting, kClaimed };

  Waiter(SessionId session, uint64_t thread_id, std::string label,
         absl::Time since)
      : session_(session),
        thread_id_(thread_id),
        label_(std::move(label)),
        since_(since) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;
  virtual ~Waiter() = default;

  SessionId session() const { return session_; }
  uint64_t thread_id() const { return thread_id_; }
  const std::string& label() const { return label_; }
  absl::Time since() const { return since_; }

  // TryClaim returns true for exactly one caller over the waiter's life.
  bool TryClaim() {
    State expected = State::kWaiting;
    return state_.compare_exchange_strong(expected, State::kClaimed,
                                          std::memory_order_acq_rel);
  }
  bool claimed() const {
    return state_.load(std::memory_order_acquire) == State::kClaimed;
  }

  // Complete delivers the result; called once by the claimer, with no
  // object mutex held.
  virtual void Complete(WaitResult result) = 0;

 private:
  const SessionId session_;
  const uint64_t thread_id_;
  const std::string label_;
  const absl::Time since_;
  std::atomic<State> state_{State::kWaiting};
};

// Who holds or waits, for introspection.
struct HolderInfo {
  SessionId session = 0;
  uint64_t thread_id = 0;
  std::string label;
  absl::Time since;
};

// InfoOf describes a parked call's caller, waiting since it arrived.
inline HolderInfo InfoOf(const Waiter& w) {
  return HolderInfo{w.session(), w.thread_id(), w.label(), w.since()};
}

// A completion to run after the object's mutex is dropped.
struct Completion {
  std::shared_ptr<Waiter> waiter;
  WaitResult result;
};

// DeliverCompletions completes parked calls. Call it with no mutex held.
inline void DeliverCompletions(std::vector<Completion> completions) {
  for (Completion& c : completions) c.waiter->Complete(std::move(c.result));
}

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_WAITER_H_
