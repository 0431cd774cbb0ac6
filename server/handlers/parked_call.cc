#include "server/handlers/parked_call.h"

#include <utility>

#include "absl/time/clock.h"

namespace statehub::handlers {

std::shared_ptr<ParkedCall> ParkedCall::Create(Call* call, uint64_t thread_id,
                                               std::string label, Fill fill,
                                               Hooks hooks) {
  auto parked = std::make_shared<ParkedCall>(call, thread_id, std::move(label),
                                             std::move(fill), std::move(hooks));
  // The transport cancels only after the handler returned; by then the
  // engine may hold the waiter, or the call may be finished. The canceller
  // keeps the waiter alive as long as the call lives: gRPC may cancel a
  // call after its grant finished it, and that grant must be rolled back.
  // (No cycle: the waiter's pointer to the call is cleared at Finish.)
  call->SetCanceller([parked] { parked->Cancel(); });
  return parked;
}

ParkedCall::ParkedCall(Call* call, uint64_t thread_id, std::string label,
                       Fill fill, Hooks hooks)
    : Waiter(call->caller().session, thread_id, std::move(label), absl::Now()),
      call_(call),
      rollback_on_cancel_(call->transport() == Transport::kGrpc),
      fill_(std::move(fill)),
      hooks_(std::move(hooks)) {}

void ParkedCall::Complete(WaitResult result) {
  bool cancelled;
  {
    MutexLock lock(&mu_);
    completed_ = true;
    cancelled = cancelled_;
    if (timer_) timer_->Cancel();
    if (!cancelled) result_ = result;
  }
  if (cancelled && rollback_on_cancel_ && result.status.ok() &&
      hooks_.rollback) {
    hooks_.rollback(result);
  }
  Finish(result);
}

void ParkedCall::Finish(const WaitResult& result) {
  std::function<void()> on_finish;
  Call* call;
  std::unique_ptr<Timer> timer;
  {
    MutexLock lock(&mu_);
    finished_ = true;
    on_finish = std::move(on_finish_);
    call = std::exchange(call_, nullptr);
    timer = std::move(timer_);
  }
  if (timer) timer->Cancel();
  if (on_finish) on_finish();
  if (call == nullptr) return;
  if (!result.status.ok()) {
    call->Finish(result.status);
    return;
  }
  call->Finish(fill_(result));
}

void ParkedCall::FinishNow(const WaitResult& result) {
  // Never parked: nothing else can claim it.
  (void)TryClaim();
  {
    // Kept for Cancel: over gRPC an immediate grant whose reply never
    // reached the client is rolled back like a parked one.
    MutexLock lock(&mu_);
    completed_ = true;
    result_ = result;
  }
  Finish(result);
}

void ParkedCall::Park(std::optional<absl::Time> deadline,
                      std::function<void()> on_finish) {
  if (on_finish) {
    bool finished;
    {
      MutexLock lock(&mu_);
      finished = finished_;
      if (!finished) on_finish_ = std::move(on_finish);
    }
    if (finished) on_finish();
  }
  if (deadline) Arm(*deadline);
}

void ParkedCall::Arm(absl::Time deadline) {
  MutexLock lock(&mu_);
  if (completed_ || cancelled_ || finished_ || call_ == nullptr) return;
  timer_ = call_->timers().At(
      deadline, [weak = std::weak_ptr<ParkedCall>(shared_from_this())] {
        if (auto self = weak.lock()) self->hooks_.on_timeout(self);
      });
}

void ParkedCall::Cancel() {
  std::optional<WaitResult> granted;
  {
    MutexLock lock(&mu_);
    if (finished_ && !rollback_on_cancel_) return;
    cancelled_ = true;
    if (timer_) timer_->Cancel();
    if (completed_) granted = result_;
  }
  if (TryClaim()) {
    hooks_.withdraw(this);
    WaitResult cancelled;
    cancelled.status = absl::CancelledError("the call was cancelled");
    Finish(cancelled);
    return;
  }
  // Claimed by someone else. Over gRPC a grant that already completed is
  // rolled back here; one still on its way is rolled back in Complete.
  if (rollback_on_cancel_ && granted && granted->status.ok() &&
      hooks_.rollback) {
    hooks_.rollback(*granted);
  }
}

}  // namespace statehub::handlers
