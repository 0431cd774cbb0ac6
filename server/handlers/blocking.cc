#include "server/handlers/blocking.h"

#include "absl/strings/str_format.h"
#include "server/engine/sessions.h"

namespace statehub::handlers {

absl::StatusOr<WaitSpec> WaitSpecOf(const Object& object, bool blocking,
                                    bool has_timeout,
                                    const google::protobuf::Duration& timeout) {
  WaitSpec spec;
  if (has_timeout) {
    const absl::Duration d = internal::DurationFromWire(timeout);
    if (d < absl::ZeroDuration()) {
      return object.Error(absl::StatusCode::kInvalidArgument,
                          ErrorKind::kValueError,
                          "timeout must be a non-negative number");
    }
    if (!blocking) {
      return object.Error(absl::StatusCode::kInvalidArgument,
                          ErrorKind::kValueError,
                          "can't specify a timeout for a non-blocking call");
    }
    spec.timeout = d;
  }
  spec.may_park =
      blocking && !(spec.timeout && *spec.timeout == absl::ZeroDuration());
  return spec;
}

std::function<void(const std::shared_ptr<Waiter>&)> NotGrantedOnTimeout(
    std::function<void(const Waiter*)> withdraw) {
  return
      [withdraw = std::move(withdraw)](const std::shared_ptr<Waiter>& waiter) {
        if (!waiter->TryClaim()) return;  // granted or cancelled first
        withdraw(waiter.get());
        waiter->Complete(WaitResult{});
      };
}

void HolderToWire(const HolderInfo& who, v1::Holder* wire) {
  wire->set_session_id(SessionTable::FormatId(who.session));
  wire->set_thread_id(who.thread_id);
  wire->set_label(who.label);
}

void WaitersToWire(const std::vector<HolderInfo>& waiters, absl::Time now,
                   google::protobuf::RepeatedPtrField<v1::Waiter>* wire) {
  for (const HolderInfo& waiter : waiters) {
    v1::Waiter* w = wire->Add();
    HolderToWire(waiter, w->mutable_holder());
    internal::DurationToWire(now - waiter.since, w->mutable_waiting_for());
  }
}

void DeadlockToWire(const Deadlock& deadlock, absl::Time now,
                    v1::Deadlock* wire) {
  wire->set_id(deadlock.id);
  internal::DurationToWire(now - deadlock.found, wire->mutable_age());
  for (const DeadlockEdge& e : deadlock.edges) {
    v1::DeadlockEdge* edge = wire->add_edges();
    edge->set_lock(e.lock);
    edge->set_reentrant(e.reentrant);
    edge->set_condition(e.condition);
    HolderToWire(e.waiter, edge->mutable_waiter());
    HolderToWire(e.holder, edge->mutable_holder());
  }
}

}  // namespace statehub::handlers
