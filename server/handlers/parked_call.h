// File: server/handlers/parked_call.h
//
// `ParkedCall` is the Waiter of every blocking call (acquire, wait, get,
// ...), whichever transport brought it. It finishes the call at once when
// the engine answers at once; otherwise the call parks: it holds no thread,
// only this Waiter in the object's queue and, for a finite timeout, a Timer.
//
// Exactly one of these finishes a parked call, decided by Waiter::TryClaim:
//   - the engine's grant (Waiter::Complete, run with no object mutex held);
//   - the timeout (the handler's on_timeout hook);
//   - the cancellation (the client cancelled or went away), which withdraws
//     the waiter from its queue;
//   - the session's end (the engine completes it with SESSION_ERROR).
// A grant that raced with a cancellation may reach nobody, whether it came
// at once (FinishNow) or after parking. Over gRPC the client of a cancelled
// call is gone, so such a grant is rolled back with the handler's rollback
// hook, once; on the lane the client reads the reply of a call it
// cancelled and releases what it got (api/LANE.md, "Cancel"), so the grant
// stands.

#ifndef STATEHUB_SERVER_HANDLERS_PARKED_CALL_H_
#define STATEHUB_SERVER_HANDLERS_PARKED_CALL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/engine/mutex.h"
#include "server/engine/waiter.h"
#include "server/handlers/call.h"

namespace statehub::handlers {

class ParkedCall final : public Waiter,
                         public std::enable_shared_from_this<ParkedCall> {
 public:
  // fill writes the reply for a result; an error status fails the call.
  using Fill = std::function<absl::Status(const WaitResult&)>;
  struct Hooks {
    // on_timeout runs when the timeout passes; it decides the outcome (most
    // claim the waiter, withdraw it and complete it "not granted"; a
    // condition wait instead moves it to its lock's queue).
    std::function<void(const std::shared_ptr<Waiter>&)> on_timeout;
    // withdraw removes a claimed waiter from the object's queues.
    std::function<void(const Waiter*)> withdraw;
    // rollback undoes an outcome the client never saw; may be empty. It is
    // given every OK result, granted or not (a condition waiter holds its
    // lock again either way), and undoes only what the result took.
    std::function<void(const WaitResult&)> rollback;
  };

  // Creates the waiter of `call` and registers it as the call's canceller.
  // The caller must then either FinishNow or Park it, exactly once.
  static std::shared_ptr<ParkedCall> Create(Call* call, uint64_t thread_id,
                                            std::string label, Fill fill,
                                            Hooks hooks);

  // FinishNow answers without parking (the engine answered at once, or
  // failed). The waiter must not have been parked.
  void FinishNow(const WaitResult& result);

  // Park arms the timeout (nullopt: wait forever) and, if given, runs
  // `on_finish` when the call finishes (at once if it has). The engine has
  // parked the waiter already; it may even have completed it.
  void Park(std::optional<absl::Time> deadline,
            std::function<void()> on_finish = nullptr);

  void Complete(WaitResult result) override;

  // Cancel withdraws the call if it is still parked and finishes it with
  // CANCELLED. Over gRPC it also rolls back a grant that won the race.
  void Cancel();

  // Use Create.
  ParkedCall(Call* call, uint64_t thread_id, std::string label, Fill fill,
             Hooks hooks);

 private:
  // Finishes the call; reached exactly once per call.
  void Finish(const WaitResult& result);
  void Arm(absl::Time deadline);

  Call* call_ ABSL_GUARDED_BY(mu_);
  const bool rollback_on_cancel_;
  const Fill fill_;
  const Hooks hooks_;
  Mutex mu_;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_finish_ ABSL_GUARDED_BY(mu_);
  std::optional<WaitResult> result_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Timer> timer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_PARKED_CALL_H_
