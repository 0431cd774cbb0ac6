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

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/engine/waiter.h"

namespace statehub {

class TestWaiter final : public Waiter {
 public:
  static std::shared_ptr<TestWaiter> Make(SessionId session,
                                          uint64_t thread_id = 0) {
    return std::make_shared<TestWaiter>(session, thread_id);
  }
  TestWaiter(SessionId session, uint64_t thread_id)
      : Waiter(session, thread_id, "test", absl::Now()) {}

  void Complete(WaitResult result) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      result_ = std::move(result);
    }
    completed_.notify_all();
  }

  // done is true once Complete ran.
  bool done() const {
    std::lock_guard<std::mutex> lock(mu_);
    return result_.has_value();
  }
  // result is the recorded result. REQUIRES: done().
  WaitResult result() const {
    std::lock_guard<std::mutex> lock(mu_);
    return *result_;
  }
  // Await blocks until Complete ran or `timeout` passed; returns done().
  bool Await(absl::Duration timeout = absl::Seconds(30)) const {
    std::unique_lock<std::mutex> lock(mu_);
    return completed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                               [this] { return result_.has_value(); });
  }

 private:
  // std primitives rather than statehub::Mutex, so that ThreadSanitizer sees
  // them in every build (see mutex.h).
  mutable std::mutex mu_;
  mutable std::condition_variable completed_;
  std::optional<WaitResult> result_;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_TEST_WAITER_H_
