// File: server/engine/test_observer.h
//
// `CountingObservers` is an Observers for engine unit tests: every lock and
// semaphore reports into one set of counters, which tests read to check
// what the engine reported (what the metrics would show).
//
// Example:
//
//   CountingObservers counts;
//   engine.registry().set_observers(&counts);  // before opening objects
//   ...
//   EXPECT_EQ(counts.timed_out(), 1);
//
// Thread safety: thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_TEST_OBSERVER_H_
#define STATEHUB_SERVER_ENGINE_TEST_OBSERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "server/engine/observer.h"

namespace statehub {

class CountingObservers final : public Observers {
 public:
  std::shared_ptr<AcquireObserver> ForLock(const std::string&) override {
    return counter_;
  }
  std::shared_ptr<AcquireObserver> ForSemaphore(const std::string&) override {
    return counter_;
  }
  void Parked(ObjectType, int) override {}

  int acquired() const { return counter_->acquired; }
  int owner_died() const { return counter_->owner_died; }
  int contended() const { return counter_->contended; }
  int timed_out() const { return counter_->timed_out; }
  int cancelled() const { return counter_->cancelled; }
  int released() const { return counter_->released; }

 private:
  struct Counter final : AcquireObserver {
    void Acquired(absl::Duration, bool was_contended, bool died) override {
      ++(died ? owner_died : acquired);
      if (was_contended) ++contended;
    }
    void NotAcquired(bool was_timed_out) override {
      ++(was_timed_out ? timed_out : cancelled);
    }
    void Released(absl::Duration) override { ++released; }

    std::atomic<int> acquired{0}, owner_died{0}, contended{0}, timed_out{0},
        cancelled{0}, released{0};
  };
  const std::shared_ptr<Counter> counter_ = std::make_shared<Counter>();
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_TEST_OBSERVER_H_
