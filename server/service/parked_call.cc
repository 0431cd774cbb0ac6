#include "server/service/parked_call.h"

#include "absl/time/clock.h"
#include "server/service/call.h"

namespace statehub::service {

// The Waiter the engine holds. It outlives the reactor when the engine still
// holds it after the call finished, so it never touches the reactor after
// Finish.
class ParkedCall::CallWaiter final
    : public Waiter,
      public std::enable_shared_from_this<CallWaiter> {
 public:
  CallWaiter(ParkedCall* call, grpc::CallbackServerContext* ctx,
             SessionId session, uint64_t thread_id, std::string label,
             Fill fill, Hooks hooks)
      : Waiter(session, thread_id, std::move(label), absl::Now()),
        call_(call),
        ctx_(ctx),
        fill_(std::move(fill)),
        hooks_(std::move(hooks)) {}

  void Complete(WaitResult result) override {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      completed_ = true;
      cancelled = cancelled_;
      if (armed_) alarm_.Cancel();
      if (!cancelled) result_ = result;
    }
    if (cancelled && result.status.ok() && hooks_.rollback) {
      hooks_.rollback(result);
    }
    Finish(result);
  }

  // Finishes the call; reached exactly once per call.
  void Finish(const WaitResult& result) {
    std::function<void()> on_finish;
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
      on_finish = std::move(on_finish_);
    }
    if (on_finish) on_finish();
    grpc::Status status =
        result.status.ok() ? fill_(result) : ToGrpc(ctx_, result.status);
    call_->Finish(status);
  }

  // Runs `f` when the call finishes (now, if it has).
  void OnFinish(std::function<void()> f) {
    {
      absl::MutexLock lock(&mu_);
      if (!finished_) {
        on_finish_ = std::move(f);
        return;
      }
    }
    f();
  }

  void Arm(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (completed_ || cancelled_) return;
    armed_ = true;
    std::weak_ptr<CallWaiter> self = weak_from_this();
    alarm_.Set(absl::ToChronoTime(deadline), [self](bool fired) {
      if (!fired) return;  // cancelled alarm
      if (auto waiter = self.lock()) waiter->hooks_.on_timeout(waiter);
    });
  }

  void Cancel() {
    std::optional<WaitResult> granted;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (armed_) alarm_.Cancel();
      if (completed_) granted = result_;
    }
    if (TryClaim()) {
      hooks_.withdraw(this);
      WaitResult cancelled;
      cancelled.status = absl::CancelledError("the call was cancelled");
      Finish(cancelled);
      return;
    }
    // Claimed by someone else: a grant that already completed is rolled
    // back here; one still on its way is rolled back in Complete.
    if (granted && granted->status.ok() && hooks_.rollback) {
      hooks_.rollback(*granted);
    }
  }

 private:
  ParkedCall* const call_;
  grpc::CallbackServerContext* const ctx_;
  const Fill fill_;
  const Hooks hooks_;
  absl::Mutex mu_;
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_finish_ ABSL_GUARDED_BY(mu_);
  std::optional<WaitResult> result_ ABSL_GUARDED_BY(mu_);
  grpc::Alarm alarm_;
};

ParkedCall::ParkedCall(grpc::CallbackServerContext* ctx, SessionId session,
                       uint64_t thread_id, std::string label, Fill fill,
                       Hooks hooks)
    : waiter_(std::make_shared<CallWaiter>(this, ctx, session, thread_id,
                                           std::move(label), std::move(fill),
                                           std::move(hooks))) {}

void ParkedCall::FinishNow(const WaitResult& result) {
  // Never parked: nothing else can claim it.
  (void)waiter_->TryClaim();
  static_cast<CallWaiter*>(waiter_.get())->Finish(result);
}

void ParkedCall::Park(std::optional<absl::Time> deadline,
                      std::function<void()> on_finish) {
  auto* waiter = static_cast<CallWaiter*>(waiter_.get());
  if (on_finish) waiter->OnFinish(std::move(on_finish));
  if (deadline) waiter->Arm(*deadline);
}

void ParkedCall::OnCancel() {
  static_cast<CallWaiter*>(waiter_.get())->Cancel();
}

}  // namespace statehub::service
