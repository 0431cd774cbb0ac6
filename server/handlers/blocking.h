// File: server/handlers/blocking.h
//
// What every blocking handler (acquire, wait, get, put, join) shares around
// ParkedCall: reading the request's blocking flag and timeout, finding the
// object, creating the call, running the engine operation with the call's
// waiter, and finishing or parking it; plus the wire forms of holders and
// waiters for the State rpcs.
//
// A handler reads like this:
//
//   auto target = Resolve<SemaphoreObject>(engine_, call, req->name());
//   if (!target.ok()) return Fail(call, target.status());
//   auto spec = WaitSpecOf(*target->object, req->blocking(),
//                          req->has_timeout(), req->timeout());
//   if (!spec.ok()) return Fail(call, spec.status());
//   ParkedCall::Hooks hooks = ...;
//   return RunBlocking(call, engine_, target->object->type(),
//                      target->caller, req->thread_id(), req->label(),
//                      *spec, fill, std::move(hooks),
//                      [&](std::shared_ptr<Waiter> waiter) { ... });

#ifndef STATEHUB_SERVER_HANDLERS_BLOCKING_H_
#define STATEHUB_SERVER_HANDLERS_BLOCKING_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "server/engine/engine.h"
#include "server/engine/lock.h"
#include "server/engine/waiter.h"
#include "server/handlers/call.h"
#include "server/handlers/parked_call.h"
#include "statehub/v1/sync.pb.h"

namespace statehub::handlers {

// WaitSpec is how long a blocking request may wait.
struct WaitSpec {
  // timeout: nullopt waits until served.
  std::optional<absl::Duration> timeout;
  // may_park is false when the call must answer at once (blocking = false,
  // or a zero timeout).
  bool may_park = true;

  std::optional<absl::Time> Deadline() const {
    if (!timeout) return std::nullopt;
    return absl::Now() + *timeout;
  }
};

// WaitSpecOf reads a request's blocking flag and timeout (unset: wait until
// served). Errors, naming `object`: VALUE_ERROR for a negative timeout, or
// for a timeout with blocking = false (as Python).
absl::StatusOr<WaitSpec> WaitSpecOf(const Object& object, bool blocking,
                                    bool has_timeout,
                                    const google::protobuf::Duration& timeout);

// Target is a blocking call's caller and object.
template <typename T>
struct Target {
  Caller caller;
  std::shared_ptr<T> object;
};

// Resolve finds the caller's session and the object `name` of type T for a
// blocking call. Errors: SESSION_ERROR without a session (a parked call
// ends with its session, so it needs one), and Find's.
template <typename T>
absl::StatusOr<Target<T>> Resolve(Engine& engine, const Call* call,
                                  const std::string& name) {
  const Caller caller = call->caller();
  STATEHUB_ASSIGN_OR_RETURN(std::shared_ptr<T> object,
                            engine.registry().Find<T>(name));
  if (caller.session == 0) {
    return object->Error(absl::StatusCode::kFailedPrecondition,
                         ErrorKind::kSessionError,
                         "blocking calls need a session (statehub-session "
                         "metadata): their waits end with it");
  }
  return Target<T>{caller, std::move(object)};
}

// Fail finishes a call that failed before it could park.
inline void Fail(Call* call, const absl::Status& status) {
  call->Finish(status);
}

// NotGrantedOnTimeout is the timeout hook of most blocking calls: claim the
// waiter, withdraw it and answer "not granted" (acquired = false, queue
// empty or full, ...).
std::function<void(const std::shared_ptr<Waiter>&)> NotGrantedOnTimeout(
    std::function<void(const Waiter*)> withdraw);

// WithdrawHooks are the hooks of a call that leaves `object`'s queue when
// it times out (answering "not granted") or is cancelled. Objects whose
// Withdraw takes the reason (locks, semaphores: their metrics tell timeouts
// from cancellations) are told which.
template <typename T>
ParkedCall::Hooks WithdrawHooks(std::shared_ptr<T> object) {
  ParkedCall::Hooks hooks;
  if constexpr (requires(T & t, const Waiter* w) { t.Withdraw(w, true); }) {
    hooks.withdraw = [object](const Waiter* w) { object->Withdraw(w, false); };
    hooks.on_timeout = NotGrantedOnTimeout(
        [object](const Waiter* w) { object->Withdraw(w, true); });
  } else {
    hooks.withdraw = [object](const Waiter* w) { object->Withdraw(w); };
    hooks.on_timeout = NotGrantedOnTimeout(hooks.withdraw);
  }
  return hooks;
}

// Started is what the engine did with a blocking call.
struct Started {
  // parked: the call's waiter is parked (it may be completed already).
  bool parked = false;
  // now is the answer when not parked.
  WaitResult now;
  // completions are other parked calls the operation completed.
  std::vector<Completion> completions;
};

// LabelOf is the label of a caller for introspection: the request's, else
// its session's.
inline std::string LabelOf(Engine& engine, SessionId session,
                           const std::string& requested) {
  return requested.empty() ? engine.sessions().Label(session) : requested;
}

// RunBlocking creates the call's ParkedCall (on an object of `type`), runs
// `start(waiter)` (the waiter is null when the call must not park), delivers
// the completions it returned, and finishes the call now or parks it until
// spec's deadline. `label` is the request's label; empty uses the session's.
template <typename Start>
void RunBlocking(Call* rpc, Engine& engine, ObjectType type,
                 const Caller& caller, uint64_t thread_id,
                 const std::string& label, const WaitSpec& spec,
                 ParkedCall::Fill fill, ParkedCall::Hooks hooks,
                 Start&& start) {
  // Counted against --max_waiters_per_session from here until it finishes.
  if (absl::Status s = engine.sessions().BeginWaiter(caller.session); !s.ok()) {
    return Fail(rpc, s);
  }
  std::shared_ptr<ParkedCall> call =
      ParkedCall::Create(rpc, thread_id, LabelOf(engine, caller.session, label),
                         std::move(fill), std::move(hooks));
  auto end_waiter = [&engine, session = caller.session] {
    engine.sessions().EndWaiter(session);
  };
  absl::StatusOr<Started> started =
      start(spec.may_park ? std::shared_ptr<Waiter>(call)
                          : std::shared_ptr<Waiter>());
  if (!started.ok()) {
    WaitResult failed;
    failed.status = started.status();
    end_waiter();
    call->FinishNow(failed);
    return;
  }
  DeliverCompletions(std::move(started->completions));
  if (started->parked) {
    std::function<void()> on_finish = end_waiter;
    if (Observers* observers = engine.registry().observers()) {
      observers->Parked(type, +1);
      on_finish = [observers, type, end_waiter] {
        observers->Parked(type, -1);
        end_waiter();
      };
    }
    call->Park(spec.Deadline(), std::move(on_finish));
  } else {
    end_waiter();
    call->FinishNow(started->now);
  }
}

// Wire forms for the State rpcs (durations: internal::DurationToWire).
void HolderToWire(const HolderInfo& who, v1::Holder* wire);
void WaitersToWire(const std::vector<HolderInfo>& waiters, absl::Time now,
                   google::protobuf::RepeatedPtrField<v1::Waiter>* wire);
void DeadlockToWire(const Deadlock& deadlock, absl::Time now,
                    v1::Deadlock* wire);

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_BLOCKING_H_
