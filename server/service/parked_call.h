// File: server/service/parked_call.h
//
// `ParkedCall` is the reactor of every blocking unary call (acquire, wait,
// get, ...). It finishes at once when the engine answers at once; otherwise
// it parks: the call holds no thread, only a Waiter in the object's queue
// and, for a finite timeout, a grpc::Alarm.
//
// Exactly one of these finishes a parked call, decided by Waiter::TryClaim:
//   - the engine's grant (Waiter::Complete, run with no object mutex held);
//   - the timeout (the handler's on_timeout hook);
//   - the cancellation (OnCancel: client gone or deadline exceeded), which
//     withdraws the waiter from its queue;
//   - the session's end (the engine completes it with SESSION_ERROR).
// A grant that raced with a cancellation reaches a client that is gone: it is
// rolled back with the handler's rollback hook (by fencing token).

#ifndef STATEHUB_SERVER_SERVICE_PARKED_CALL_H_
#define STATEHUB_SERVER_SERVICE_PARKED_CALL_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/waiter.h"

namespace statehub::service {

class ParkedCall final : public grpc::ServerUnaryReactor {
 public:
  // fill writes the reply for a result and returns the call's status.
  using Fill = std::function<grpc::Status(const WaitResult&)>;
  struct Hooks {
    // on_timeout runs when the timeout passes; it decides the outcome (most
    // claim the waiter, withdraw it and complete it "not granted"; a
    // condition wait instead moves it to its lock's queue).
    std::function<void(const std::shared_ptr<Waiter>&)> on_timeout;
    // withdraw removes a claimed waiter from the object's queues.
    std::function<void(const Waiter*)> withdraw;
    // rollback undoes a grant the client never saw; may be empty.
    std::function<void(const WaitResult&)> rollback;
  };

  // Creates the reactor for `ctx`. The caller must then either FinishNow or
  // Park it, exactly once.
  ParkedCall(grpc::CallbackServerContext* ctx, SessionId session,
             uint64_t thread_id, std::string label, Fill fill, Hooks hooks);

  // waiter is what the handler hands to the engine to park.
  const std::shared_ptr<Waiter>& waiter() const { return waiter_; }

  // FinishNow answers without parking (the engine answered at once, or
  // failed). The waiter must not have been parked.
  void FinishNow(const WaitResult& result);

  // Park arms the timeout (nullopt: wait forever) and, if given, runs
  // `on_finish` when the call finishes (at once if it has). The engine has
  // parked the waiter already; it may even have completed it.
  void Park(std::optional<absl::Time> deadline,
            std::function<void()> on_finish = nullptr);

  void OnCancel() override;
  void OnDone() override { delete this; }

 private:
  class CallWaiter;

  std::shared_ptr<Waiter> waiter_;
};

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_PARKED_CALL_H_
