#include "server/engine/lock.h"

#include <memory>
#include <optional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/condition.h"
#include "server/engine/engine.h"
#include "server/engine/test_observer.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

class LockTest : public ::testing::Test {
 protected:
  LockTest() : engine_(Limits{}, absl::Seconds(10)) {
    engine_.registry().set_observers(&counts_);
    a_ = Caller{NewSession()};
    b_ = Caller{NewSession()};
    c_ = Caller{NewSession()};
  }

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }

  std::shared_ptr<LockObject> Open(const std::string& name, ObjectType type) {
    EXPECT_TRUE(engine_.registry().Open(name, type, {}, Caller{}).ok());
    return *engine_.registry().Find<LockObject>(name);
  }

  CountingObservers counts_;  // outlives engine_
  Engine engine_;
  Caller a_, b_, c_;
};

TEST_F(LockTest, SecondAcquirerParksAndGetsTheLockOnRelease) {
  auto lock = Open("l", ObjectType::kLock);
  auto first = lock->Acquire(a_, 1, nullptr, "a");
  ASSERT_TRUE(first.ok() && first->acquired);
  EXPECT_EQ(first->fencing_token, 1u);

  auto waiter = TestWaiter::Make(b_.session, 1);
  auto second = lock->Acquire(b_, 1, waiter, "b");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->parked);

  auto released = lock->Release(a_, 1);
  ASSERT_TRUE(released.ok());
  DeliverCompletions(*std::move(released));
  ASSERT_TRUE(waiter->done());
  EXPECT_TRUE(waiter->result().granted);
  EXPECT_EQ(waiter->result().fencing_token, 2u);
  EXPECT_EQ(lock->State().holder.session, b_.session);
}

TEST_F(LockTest, WaitersAreServedInFifoOrder) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  std::vector<std::shared_ptr<TestWaiter>> waiters;
  for (int i = 0; i < 5; ++i) {
    waiters.push_back(TestWaiter::Make(b_.session, i));
    ASSERT_TRUE(lock->Acquire(b_, i, waiters.back(), "b")->parked);
  }
  // Non-blocking acquire does not overtake parked waiters.
  EXPECT_FALSE(lock->Acquire(c_, 1, nullptr, "c")->acquired);
  uint64_t last_token = 1;
  for (int i = 0; i < 5; ++i) {
    DeliverCompletions(*lock->Release(Caller{lock->State().holder.session},
                                      lock->State().holder.thread_id));
    ASSERT_TRUE(waiters[i]->done()) << i;
    EXPECT_GT(waiters[i]->result().fencing_token, last_token);
    last_token = waiters[i]->result().fencing_token;
    for (int j = i + 1; j < 5; ++j) EXPECT_FALSE(waiters[j]->done()) << j;
  }
}

TEST_F(LockTest, HolderSessionEndingFreesTheLockWithOwnerDied) {
  auto lock = Open("l", ObjectType::kLock);
  auto held = lock->Acquire(a_, 1, nullptr, "a");
  auto waiter = TestWaiter::Make(b_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, waiter, "b")->parked);

  engine_.sessions().End(a_.session);
  ASSERT_TRUE(waiter->done());
  EXPECT_TRUE(waiter->result().granted);
  EXPECT_TRUE(waiter->result().owner_died);
  EXPECT_GT(waiter->result().fencing_token, held->fencing_token);

  // owner_died is told once.
  DeliverCompletions(*lock->Release(b_, 1));
  EXPECT_FALSE(lock->Acquire(c_, 1, nullptr, "c")->owner_died);
}

TEST_F(LockTest, OwnerDiedIsReportedToTheNextAcquirerWhenNobodyWaited) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  engine_.sessions().End(a_.session);
  EXPECT_FALSE(lock->State().locked);
  auto next = lock->Acquire(b_, 1, nullptr, "b");
  EXPECT_TRUE(next->acquired);
  EXPECT_TRUE(next->owner_died);
}

TEST_F(LockTest, ALockLeftByAGoodbyeStaysHeldUntilAnotherSessionReleasesIt) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto waiter = TestWaiter::Make(b_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, waiter, "b")->parked);

  engine_.sessions().End(a_.session, SessionEnd::kLeaveLocks);
  EXPECT_FALSE(waiter->done());
  EXPECT_TRUE(lock->State().locked);
  EXPECT_TRUE(lock->State().holder_left);
  EXPECT_EQ(lock->State().holder.session, a_.session);

  // As with Manager, anyone may release it; nobody died holding it.
  DeliverCompletions(*lock->Release(c_, 7));
  ASSERT_TRUE(waiter->done());
  EXPECT_TRUE(waiter->result().granted);
  EXPECT_FALSE(waiter->result().owner_died);
}

TEST_F(LockTest, AnRLockIsReleasedEvenByAGoodbyeThatLeavesLocks) {
  auto rlock = Open("r", ObjectType::kRLock);
  ASSERT_TRUE(rlock->Acquire(a_, 1, nullptr, "a")->acquired);
  engine_.sessions().End(a_.session, SessionEnd::kLeaveLocks);
  EXPECT_FALSE(rlock->State().locked);
  EXPECT_TRUE(rlock->Acquire(b_, 1, nullptr, "b")->owner_died);
}

TEST_F(LockTest, EndedSessionsParkedCallsEndWithSessionError) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto waiter = TestWaiter::Make(b_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, waiter, "b")->parked);
  engine_.sessions().End(b_.session);
  ASSERT_TRUE(waiter->done());
  EXPECT_EQ(GetErrorKind(waiter->result().status), ErrorKind::kSessionError);
  EXPECT_TRUE(lock->State().waiters.empty());
}

TEST_F(LockTest, EndedSessionCannotAcquire) {
  auto lock = Open("l", ObjectType::kLock);
  const Caller gone{NewSession()};
  engine_.sessions().End(gone.session);
  auto acquired = lock->Acquire(gone, 1, nullptr, "gone");
  EXPECT_EQ(GetErrorKind(acquired.status()), ErrorKind::kSessionError);
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, ReleasingAnUnheldLockIsARuntimeError) {
  auto lock = Open("l", ObjectType::kLock);
  auto released = lock->Release(a_, 1);
  EXPECT_EQ(GetErrorKind(released.status()), ErrorKind::kRuntimeError);
  EXPECT_EQ(released.status().message(), "lock \"l\": release unlocked lock");
}

TEST_F(LockTest, AnySessionMayReleaseALockAsThreadingAllows) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  EXPECT_TRUE(lock->Release(b_, 7).ok());
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, RLockCountsRecursionPerThread) {
  auto lock = Open("r", ObjectType::kRLock);
  auto first = lock->Acquire(a_, 1, nullptr, "a");
  auto again = lock->Acquire(a_, 1, nullptr, "a");
  EXPECT_TRUE(again->acquired);
  EXPECT_EQ(again->fencing_token, first->fencing_token);
  EXPECT_EQ(lock->State().recursion, 2);
  // Another thread of the same session does not own it.
  EXPECT_FALSE(lock->Acquire(a_, 2, nullptr, "a2")->acquired);
  EXPECT_EQ(GetErrorKind(lock->Release(a_, 2).status()),
            ErrorKind::kRuntimeError);
  EXPECT_EQ(GetErrorKind(lock->Release(b_, 1).status()),
            ErrorKind::kRuntimeError);
  ASSERT_TRUE(lock->Release(a_, 1).ok());
  EXPECT_TRUE(lock->State().locked);
  ASSERT_TRUE(lock->Release(a_, 1).ok());
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, WithdrawnWaiterIsSkipped) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto timed_out = TestWaiter::Make(b_.session, 1);
  auto next = TestWaiter::Make(c_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, timed_out, "b")->parked);
  ASSERT_TRUE(lock->Acquire(c_, 1, next, "c")->parked);
  ASSERT_TRUE(timed_out->TryClaim());  // what the timeout does
  lock->Withdraw(timed_out.get(), /*timed_out=*/true);
  DeliverCompletions(*lock->Release(a_, 1));
  EXPECT_FALSE(timed_out->done());
  ASSERT_TRUE(next->done());
  EXPECT_EQ(lock->State().holder.session, c_.session);
  EXPECT_EQ(counts_.timed_out(), 1);
  EXPECT_EQ(counts_.acquired(), 2);   // a at once, c after waiting
  EXPECT_EQ(counts_.contended(), 1);  // c
  EXPECT_EQ(counts_.released(), 1);
}

TEST_F(LockTest, TimeoutThatLosesTheRaceToAReleaseStillCounts) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto late = TestWaiter::Make(b_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, late, "b")->parked);
  ASSERT_TRUE(late->TryClaim());              // the timeout claims it first...
  DeliverCompletions(*lock->Release(a_, 1));  // ...the release drops it...
  lock->Withdraw(late.get(), /*timed_out=*/true);  // ...then it withdraws
  EXPECT_FALSE(late->done());
  EXPECT_FALSE(lock->State().locked);
  EXPECT_EQ(counts_.timed_out(), 1);
  EXPECT_EQ(counts_.cancelled(), 0);
}

TEST_F(LockTest, RollbackReleasesOnlyTheMatchingGrant) {
  auto lock = Open("l", ObjectType::kLock);
  auto held = lock->Acquire(a_, 1, nullptr, "a");
  DeliverCompletions(lock->Rollback(held->fencing_token + 1, true));
  EXPECT_TRUE(lock->State().locked);
  DeliverCompletions(lock->Rollback(held->fencing_token, true));
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, RollbackOfAReentryUndoesOneLevel) {
  auto lock = Open("r", ObjectType::kRLock);
  auto outer = lock->Acquire(a_, 1, nullptr, "a");
  auto inner = lock->Acquire(a_, 1, nullptr, "a");
  ASSERT_TRUE(inner->acquired);
  ASSERT_EQ(lock->State().recursion, 2);
  DeliverCompletions(lock->Rollback(inner->fencing_token, true));
  EXPECT_TRUE(lock->State().locked);
  EXPECT_EQ(lock->State().recursion, 1);
  DeliverCompletions(lock->Rollback(outer->fencing_token, true));
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, RollbackOfAWholeReacquireReleasesEveryLevel) {
  auto lock = Open("r", ObjectType::kRLock);
  auto held = lock->Acquire(a_, 1, nullptr, "a");
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  DeliverCompletions(lock->Rollback(held->fencing_token, false));
  EXPECT_FALSE(lock->State().locked);
}

TEST_F(LockTest, DeletingALockFailsItsWaiters) {
  auto lock = Open("l", ObjectType::kLock);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto waiter = TestWaiter::Make(b_.session, 1);
  ASSERT_TRUE(lock->Acquire(b_, 1, waiter, "b")->parked);
  ASSERT_TRUE(engine_.registry().Delete("l").ok());
  ASSERT_TRUE(waiter->done());
  EXPECT_EQ(GetErrorKind(waiter->result().status), ErrorKind::kObjectNotFound);
}

class ConditionTest : public LockTest {
 protected:
  std::shared_ptr<ConditionObject> OpenCondition(const std::string& name,
                                                 const std::string& lock) {
    InitialContents init;
    init.condition_lock = lock;
    auto opened =
        engine_.registry().Open(name, ObjectType::kCondition, init, Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *engine_.registry().Find<ConditionObject>(name);
  }
};

TEST_F(ConditionTest, WaitReleasesTheLockAndNotifyWakesAfterRelease) {
  auto lock = Open("l", ObjectType::kRLock);
  auto cond = OpenCondition("c", "l");
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);  // depth 2
  auto waiter = TestWaiter::Make(a_.session, 1);
  DeliverCompletions(*cond->Wait(a_, 1, waiter));
  EXPECT_FALSE(lock->State().locked) << "wait releases every level";

  ASSERT_TRUE(lock->Acquire(b_, 1, nullptr, "b")->acquired);
  EXPECT_EQ(*cond->Notify(b_, 1, 1), 1);
  EXPECT_FALSE(waiter->done()) << "the notifier holds the lock";
  DeliverCompletions(*lock->Release(b_, 1));
  ASSERT_TRUE(waiter->done());
  EXPECT_TRUE(waiter->result().granted);
  EXPECT_EQ(lock->State().holder.session, a_.session);
  EXPECT_EQ(lock->State().recursion, 2) << "recursion restored";
}

TEST_F(ConditionTest, NotifyNWakesExactlyN) {
  auto lock = Open("l", ObjectType::kLock);
  auto cond = OpenCondition("c", "l");
  std::vector<std::shared_ptr<TestWaiter>> waiters;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(lock->Acquire(a_, i, nullptr, "a")->acquired);
    waiters.push_back(TestWaiter::Make(a_.session, i));
    DeliverCompletions(*cond->Wait(a_, i, waiters.back()));
  }
  EXPECT_EQ(cond->Waiting(), 5);
  ASSERT_TRUE(lock->Acquire(b_, 1, nullptr, "b")->acquired);
  EXPECT_EQ(*cond->Notify(b_, 1, 2), 2);
  EXPECT_EQ(cond->Waiting(), 3);
  DeliverCompletions(*lock->Release(b_, 1));
  // The two woken reacquire in turn.
  ASSERT_TRUE(waiters[0]->done());
  EXPECT_FALSE(waiters[1]->done());
  DeliverCompletions(*lock->Release(a_, 0));
  ASSERT_TRUE(waiters[1]->done());
  DeliverCompletions(*lock->Release(a_, 1));
  for (int i = 2; i < 5; ++i) EXPECT_FALSE(waiters[i]->done()) << i;
}

TEST_F(ConditionTest, TimedOutWaiterReacquiresAndReportsNotNotified) {
  auto lock = Open("l", ObjectType::kLock);
  auto cond = OpenCondition("c", "l");
  ASSERT_TRUE(lock->Acquire(a_, 1, nullptr, "a")->acquired);
  auto waiter = TestWaiter::Make(a_.session, 1);
  DeliverCompletions(*cond->Wait(a_, 1, waiter));
  ASSERT_TRUE(lock->Acquire(b_, 1, nullptr, "b")->acquired);
  DeliverCompletions(cond->Timeout(waiter.get()));
  EXPECT_FALSE(waiter->done()) << "waits for the lock";
  DeliverCompletions(*lock->Release(b_, 1));
  ASSERT_TRUE(waiter->done());
  EXPECT_FALSE(waiter->result().granted);
  EXPECT_EQ(lock->State().holder.session, a_.session);
}

TEST_F(ConditionTest, WaitOrNotifyWithoutTheLockIsARuntimeError) {
  auto lock = Open("l", ObjectType::kLock);
  auto cond = OpenCondition("c", "l");
  auto waiter = TestWaiter::Make(a_.session, 1);
  auto waited = cond->Wait(a_, 1, waiter);
  EXPECT_EQ(GetErrorKind(waited.status()), ErrorKind::kRuntimeError);
  EXPECT_THAT(std::string(waited.status().message()),
              ::testing::HasSubstr("cannot wait on un-acquired lock"));
  EXPECT_EQ(GetErrorKind(cond->Notify(a_, 1, 1).status()),
            ErrorKind::kRuntimeError);
}

TEST_F(ConditionTest, AnonymousLockLivesAsLongAsItsCondition) {
  const SessionId owner = NewSession();
  auto lock =
      engine_.registry().Open("", ObjectType::kRLock, {}, Caller{owner});
  ASSERT_TRUE(lock.ok());
  const std::string lock_name = lock->object->name();
  auto cond = OpenCondition("c", lock_name);
  engine_.sessions().End(owner);
  EXPECT_TRUE(engine_.registry().Describe(lock_name).ok());
  ASSERT_TRUE(engine_.registry().Delete("c").ok());
  EXPECT_FALSE(engine_.registry().Describe(lock_name).ok());
}

}  // namespace
}  // namespace statehub
