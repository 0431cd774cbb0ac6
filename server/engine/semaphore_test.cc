#include "server/engine/semaphore.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/test_observer.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class SemaphoreTest : public ::testing::Test {
 protected:
  SemaphoreTest() : engine_(Limits{}, absl::Seconds(10)) {
    engine_.registry().set_observers(&counts_);
  }

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }
  void EndSession(SessionId session) { engine_.sessions().End(session); }

  std::shared_ptr<SemaphoreObject> Open(const std::string& name, int64_t value,
                                        bool bounded = false) {
    InitialContents init;
    init.semaphore_value = value;
    auto opened = engine_.registry().Open(
        name, bounded ? ObjectType::kBoundedSemaphore : ObjectType::kSemaphore,
        init, Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *engine_.registry().Find<SemaphoreObject>(name);
  }

  // Acquires one unit now; fails the test if it would block.
  void AcquireNow(SemaphoreObject& sem, SessionId session) {
    auto acquired = sem.Acquire(Caller{session}, nullptr);
    ASSERT_TRUE(acquired.ok()) << acquired.status();
    ASSERT_TRUE(acquired->acquired);
  }

  // Parks a waiter of `session`; fails the test if it does not park.
  std::shared_ptr<TestWaiter> Park(SemaphoreObject& sem, SessionId session) {
    auto w = TestWaiter::Make(session);
    auto acquired = sem.Acquire(Caller{session}, w);
    EXPECT_TRUE(acquired.ok()) << acquired.status();
    EXPECT_TRUE(acquired.ok() && acquired->parked);
    return w;
  }

  void Release(SemaphoreObject& sem, SessionId session, int64_t n = 1) {
    auto released = sem.Release(Caller{session}, n);
    ASSERT_TRUE(released.ok()) << released.status();
    DeliverCompletions(*std::move(released));
  }

  CountingObservers counts_;  // outlives engine_
  Engine engine_;
};

TEST_F(SemaphoreTest, NegativeInitialValueIsAValueError) {
  InitialContents init;
  init.semaphore_value = -1;
  auto opened =
      engine_.registry().Open("s", ObjectType::kSemaphore, init, Caller{});
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(GetErrorKind(opened.status()), ErrorKind::kValueError);
  // Python: ValueError("semaphore initial value must be >= 0").
  EXPECT_EQ(opened.status().message(),
            "semaphore \"s\": semaphore initial value must be >= 0");
  EXPECT_FALSE(engine_.registry().Describe("s").ok());
}

TEST_F(SemaphoreTest, DefaultInitialValueIsOne) {
  ASSERT_TRUE(
      engine_.registry().Open("s", ObjectType::kSemaphore, {}, Caller{}).ok());
  auto sem = *engine_.registry().Find<SemaphoreObject>("s");
  EXPECT_EQ(sem->State().value, 1);
}

TEST_F(SemaphoreTest, FindAcceptsBothSemaphoreTypes) {
  Open("plain", 1);
  Open("bounded", 1, /*bounded=*/true);
  EXPECT_TRUE(engine_.registry().Find<SemaphoreObject>("plain").ok());
  EXPECT_TRUE(engine_.registry().Find<SemaphoreObject>("bounded").ok());
  ASSERT_TRUE(
      engine_.registry().Open("d", ObjectType::kDict, {}, Caller{}).ok());
  auto wrong = engine_.registry().Find<SemaphoreObject>("d");
  EXPECT_EQ(GetErrorKind(wrong.status()), ErrorKind::kTypeError);
}

TEST_F(SemaphoreTest, AcquireNeedsASession) {
  auto sem = Open("s", 1);
  auto acquired = sem->Acquire(Caller{}, nullptr);
  EXPECT_EQ(GetErrorKind(acquired.status()), ErrorKind::kSessionError);
  EXPECT_EQ(sem->State().value, 1);
}

TEST_F(SemaphoreTest, TakesUnitsThenParksInFifoOrder) {
  auto sem = Open("s", 2);
  const SessionId a = NewSession();
  const SessionId b = NewSession();
  AcquireNow(*sem, a);
  AcquireNow(*sem, a);
  auto first = Park(*sem, b);
  auto second = Park(*sem, b);
  // Not blocking and no unit: turned away, not parked.
  auto nowait = sem->Acquire(Caller{b}, nullptr);
  ASSERT_TRUE(nowait.ok());
  EXPECT_FALSE(nowait->acquired);
  EXPECT_FALSE(nowait->parked);
  EXPECT_EQ(sem->State().waiters.size(), 2u);

  Release(*sem, a);
  ASSERT_TRUE(first->done());
  EXPECT_TRUE(first->result().status.ok());
  EXPECT_TRUE(first->result().granted);
  EXPECT_FALSE(second->done());

  Release(*sem, a);
  EXPECT_TRUE(second->done());
  SemaphoreState state = sem->State();
  EXPECT_EQ(state.value, 0);
  EXPECT_THAT(state.holders, ElementsAre(Pair(b, 2)));
  EXPECT_TRUE(state.waiters.empty());
}

TEST_F(SemaphoreTest, ReleaseOfManyGrantsThatManyInOrder) {
  // threading.Semaphore.release(n) wakes n waiters.
  auto sem = Open("s", 0);
  const SessionId s = NewSession();
  auto w1 = Park(*sem, s);
  auto w2 = Park(*sem, s);
  auto w3 = Park(*sem, s);
  Release(*sem, 0, 2);
  EXPECT_TRUE(w1->done());
  EXPECT_TRUE(w2->done());
  EXPECT_FALSE(w3->done());
  // A newcomer does not overtake w3.
  EXPECT_FALSE(sem->Acquire(Caller{s}, nullptr)->acquired);
  Release(*sem, 0, 3);
  EXPECT_TRUE(w3->done());
  EXPECT_EQ(sem->State().value, 2);
}

TEST_F(SemaphoreTest, ReleaseNeedsOneOrMore) {
  auto sem = Open("s", 1);
  for (int64_t n : {0, -1}) {
    auto released = sem->Release(Caller{}, n);
    EXPECT_EQ(GetErrorKind(released.status()), ErrorKind::kValueError);
    EXPECT_EQ(released.status().message(),
              "semaphore \"s\": n must be one or more");
  }
  EXPECT_EQ(sem->State().value, 1);
}

TEST_F(SemaphoreTest, BoundedSemaphoreRefusesReleasePastItsInitialValue) {
  auto sem = Open("b", 2, /*bounded=*/true);
  const SessionId s = NewSession();
  auto released = sem->Release(Caller{s}, 1);
  EXPECT_EQ(GetErrorKind(released.status()), ErrorKind::kValueError);
  // Python: ValueError("Semaphore released too many times").
  EXPECT_EQ(released.status().message(),
            "bounded_semaphore \"b\": Semaphore released too many times");
  AcquireNow(*sem, s);
  // release(2) with one unit out would pass the bound: nothing changes.
  EXPECT_FALSE(sem->Release(Caller{s}, 2).ok());
  EXPECT_EQ(sem->State().value, 1);
  EXPECT_THAT(sem->State().holders, ElementsAre(Pair(s, 1)));
  Release(*sem, s, 1);
  EXPECT_EQ(sem->State().value, 2);
}

TEST_F(SemaphoreTest, UnboundedSemaphoreGrowsPastItsInitialValue) {
  auto sem = Open("s", 1);
  Release(*sem, 0, 5);
  EXPECT_EQ(sem->State().value, 6);
  EXPECT_EQ(sem->State().initial_value, 1);
}

TEST_F(SemaphoreTest, TimedOutWaiterIsWithdrawnAndNeverGranted) {
  auto sem = Open("s", 0);
  const SessionId s = NewSession();
  auto late = Park(*sem, s);
  auto next = Park(*sem, s);
  // The service's timeout: claim, then withdraw; it answers False itself.
  ASSERT_TRUE(late->TryClaim());
  sem->Withdraw(late.get(), /*timed_out=*/true);
  Release(*sem, 0);
  EXPECT_FALSE(late->done());
  EXPECT_TRUE(next->done());
  EXPECT_EQ(sem->State().value, 0);
  EXPECT_EQ(counts_.timed_out(), 1);
  EXPECT_EQ(counts_.acquired(), 1);  // next
}

TEST_F(SemaphoreTest, ClaimedWaiterStillQueuedIsSkippedByRelease) {
  auto sem = Open("s", 0);
  const SessionId s = NewSession();
  auto cancelled = Park(*sem, s);
  auto next = Park(*sem, s);
  ASSERT_TRUE(cancelled->TryClaim());  // withdraw not yet run
  Release(*sem, 0);
  EXPECT_FALSE(cancelled->done());
  EXPECT_TRUE(next->done());
  // Finds nothing left to remove, but the call still ended unserved.
  sem->Withdraw(cancelled.get(), /*timed_out=*/false);
  EXPECT_EQ(sem->State().value, 0);
  EXPECT_EQ(counts_.cancelled(), 1);
}

TEST_F(SemaphoreTest, EndedSessionReleasesItsUnitsToTheNextWaiter) {
  auto sem = Open("s", 2);
  const SessionId dying = NewSession();
  const SessionId other = NewSession();
  AcquireNow(*sem, dying);
  AcquireNow(*sem, dying);
  auto w = Park(*sem, other);
  EndSession(dying);  // Python would lose both units; statehub returns them.
  ASSERT_TRUE(w->done());
  EXPECT_TRUE(w->result().granted);
  SemaphoreState state = sem->State();
  EXPECT_EQ(state.value, 1);
  EXPECT_THAT(state.holders, ElementsAre(Pair(other, 1)));
}

TEST_F(SemaphoreTest, UnitsLeftByAGoodbyeStayTakenUntilReleased) {
  auto sem = Open("b", 2, /*bounded=*/true);
  const SessionId leaving = NewSession();
  const SessionId other = NewSession();
  AcquireNow(*sem, leaving);
  AcquireNow(*sem, leaving);
  engine_.sessions().End(leaving, SessionEnd::kLeaveLocks);
  EXPECT_EQ(sem->State().value, 0);
  EXPECT_THAT(sem->State().holders, ElementsAre(Pair(leaving, 2)));
  // Another process gives them back (Manager's semantics), within the bound.
  Release(*sem, other);
  Release(*sem, other);
  EXPECT_EQ(sem->State().value, 2);
  EXPECT_THAT(sem->State().holders, ElementsAre());
  auto third = sem->Release(Caller{other}, 1);
  EXPECT_EQ(GetErrorKind(third.status()), ErrorKind::kValueError);
}

TEST_F(SemaphoreTest, EndedSessionsParkedCallsEndWithSessionError) {
  auto sem = Open("s", 0);
  const SessionId dying = NewSession();
  const SessionId other = NewSession();
  auto mine = Park(*sem, dying);
  auto theirs = Park(*sem, other);
  EndSession(dying);
  ASSERT_TRUE(mine->done());
  EXPECT_EQ(GetErrorKind(mine->result().status), ErrorKind::kSessionError);
  EXPECT_FALSE(theirs->done());
  Release(*sem, other);
  EXPECT_TRUE(theirs->done());
  // An ended session can take nothing new.
  auto again = sem->Acquire(Caller{dying}, nullptr);
  EXPECT_EQ(GetErrorKind(again.status()), ErrorKind::kSessionError);
}

TEST_F(SemaphoreTest, ReleaseByANonHolderIsCreditedToTheOldestHolder) {
  // A unit acquired in one process and released in another (as Python
  // allows): the bound still holds when the acquirer's session ends.
  auto sem = Open("b", 2, /*bounded=*/true);
  const SessionId first = NewSession();
  const SessionId second = NewSession();
  const SessionId helper = NewSession();
  AcquireNow(*sem, first);
  AcquireNow(*sem, second);
  Release(*sem, helper);
  EXPECT_THAT(sem->State().holders, ElementsAre(Pair(second, 1)));
  EndSession(first);  // holds nothing any more
  EXPECT_EQ(sem->State().value, 1);
  EndSession(second);
  EXPECT_EQ(sem->State().value, 2);
}

TEST_F(SemaphoreTest, ReleaseIsCreditedToTheReleasersOwnUnitsFirst) {
  auto sem = Open("s", 3);
  const SessionId first = NewSession();
  const SessionId second = NewSession();
  AcquireNow(*sem, first);
  AcquireNow(*sem, second);
  AcquireNow(*sem, second);
  Release(*sem, second);
  EXPECT_THAT(sem->State().holders,
              UnorderedElementsAre(Pair(first, 1), Pair(second, 1)));
}

TEST_F(SemaphoreTest, RollbackReturnsTheUnitOfACancelledGrant) {
  auto sem = Open("s", 0);
  const SessionId s = NewSession();
  auto w = Park(*sem, s);
  auto next = Park(*sem, s);
  Release(*sem, 0);
  ASSERT_TRUE(w->done());
  // The client vanished as it was granted: the service rolls the unit back.
  DeliverCompletions(sem->Rollback(s));
  EXPECT_TRUE(next->done());
  EXPECT_THAT(sem->State().holders, ElementsAre(Pair(s, 1)));
  // Nothing to roll back for a session that holds nothing.
  EXPECT_TRUE(sem->Rollback(NewSession()).empty());
  EXPECT_EQ(sem->State().value, 0);
}

TEST_F(SemaphoreTest, DeleteFailsParkedCallsWithObjectNotFound) {
  auto sem = Open("s", 0);
  const SessionId s = NewSession();
  auto w = Park(*sem, s);
  ASSERT_TRUE(engine_.registry().Delete("s").ok());
  ASSERT_TRUE(w->done());
  EXPECT_EQ(GetErrorKind(w->result().status), ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(sem->Release(Caller{s}, 1).status()),
            ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(sem->Acquire(Caller{s}, nullptr).status()),
            ErrorKind::kObjectNotFound);
}

TEST_F(SemaphoreTest, ConcurrentAcquirersNeverExceedTheValue) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 200;
  constexpr int64_t kUnits = 3;
  auto sem = Open("s", kUnits);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    const SessionId session = NewSession();
    threads.emplace_back([&, session] {
      for (int i = 0; i < kRounds; ++i) {
        auto w = TestWaiter::Make(session);
        auto acquired = sem->Acquire(Caller{session}, w);
        if (!acquired.ok() ||
            (acquired->parked && (!w->Await() || !w->result().granted))) {
          ++failures;
          return;
        }
        const int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
        auto released = sem->Release(Caller{session}, 1);
        if (!released.ok()) ++failures;
        DeliverCompletions(*std::move(released));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(most.load(), kUnits);
  SemaphoreState state = sem->State();
  EXPECT_EQ(state.value, kUnits);
  EXPECT_TRUE(state.holders.empty());
  EXPECT_TRUE(state.waiters.empty());
}

}  // namespace
}  // namespace statehub
