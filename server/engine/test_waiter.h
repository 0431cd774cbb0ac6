// File: server/engine/test_waiter.h
//
// `TestWaiter` is a Waiter for engine unit tests: it records the WaitResult
// it is completed with, and lets a test thread block until then, the way a
// client blocks on a parked gRPC call.
//
// Example:
//
//   auto w = TestWaiter::Make(session);
//   auto got = queue->Get(Caller{session}, w);      // parks
//   DeliverCompletions(queue->Put(...)->completions);
//   EXPECT_EQ(w->result().item, Value(1));
//
// Thread safety: thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_TEST_WAITER_H_
#define STATEHUB_SERVER_ENGINE_TEST_WAITER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/engine/mutex.h"
#include "server/engine/waiter.h"

namespace statehub {

class TestWaiter final : public Waiter {
 public:
  static std::shared_ptr<TestWaiter> Make(SessionId session,
                                          std::string label = "test") {
    return std::make_shared<TestWaiter>(session, std::move(label));
  }
  TestWaiter(SessionId session, std::string label)
      : Waiter(session, /*thread_id=*/0, std::move(label), absl::Now()) {}

  void Complete(WaitResult result) override {
    MutexLock lock(&mu_);
    ++completions_;
    result_ = std::move(result);
  }

  // done is true once Complete ran.
  bool done() const {
    MutexLock lock(&mu_);
    return result_.has_value();
  }
  // completions counts Complete calls (exactly one is allowed).
  int completions() const {
    MutexLock lock(&mu_);
    return completions_;
  }
  // result is the recorded result. REQUIRES: done().
  WaitResult result() const {
    MutexLock lock(&mu_);
    return *result_;
  }
  // Await blocks until Complete ran or `timeout` passed; returns done().
  bool Await(absl::Duration timeout = absl::Seconds(30)) const {
    MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](const std::optional<WaitResult>* r) { return r->has_value(); },
            &result_),
        timeout);
    return result_.has_value();
  }

 private:
  mutable Mutex mu_;
  std::optional<WaitResult> result_ ABSL_GUARDED_BY(mu_);
  int completions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_TEST_WAITER_H_
