// The wait-for graph as the lock objects drive it: cycles found as they
// close, once, kept while they last, and refused or failed under kFail.

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/condition.h"
#include "server/engine/engine.h"
#include "server/engine/lock.h"
#include "server/engine/test_waiter.h"
#include "server/engine/wait_for_graph.h"

namespace statehub {
namespace {

using ::testing::HasSubstr;

class DeadlockTest : public ::testing::Test {
 protected:
  DeadlockTest() : engine_(Limits{}, absl::Seconds(10)) {
    a_ = Caller{NewSession()};
    b_ = Caller{NewSession()};
    c_ = Caller{NewSession()};
    Policy(DeadlockPolicy::kReport);
  }

  void Policy(DeadlockPolicy policy) {
    graph().Configure(policy,
                      [this](const Deadlock& d) { reported_.push_back(d); });
  }

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }
  WaitForGraph& graph() { return engine_.registry().wait_for_graph(); }

  std::shared_ptr<LockObject> Open(const std::string& name,
                                   ObjectType type = ObjectType::kLock) {
    EXPECT_TRUE(engine_.registry().Open(name, type, {}, Caller{}).ok());
    return *engine_.registry().Find<LockObject>(name);
  }
  std::shared_ptr<ConditionObject> OpenCondition(const std::string& name,
                                                 const std::string& lock) {
    InitialContents init;
    init.condition_lock = lock;
    EXPECT_TRUE(engine_.registry()
                    .Open(name, ObjectType::kCondition, init, Caller{})
                    .ok());
    return *engine_.registry().Find<ConditionObject>(name);
  }

  void Hold(LockObject& lock, const Caller& who, uint64_t thread = 1) {
    auto got = lock.Acquire(who, thread, nullptr, "");
    ASSERT_TRUE(got.ok() && got->acquired) << lock.name();
  }
  // Parks an acquire of `lock`; fails the test if it did not park.
  std::shared_ptr<TestWaiter> Park(LockObject& lock, const Caller& who,
                                   uint64_t thread = 1) {
    auto waiter = TestWaiter::Make(who.session, thread);
    auto got = lock.Acquire(who, thread, waiter, "");
    EXPECT_TRUE(got.ok() && got->parked) << lock.name() << ": " << got.status();
    return waiter;
  }
  // Ends a parked acquire the way its timeout does.
  void TimeOut(LockObject& lock, const std::shared_ptr<TestWaiter>& waiter) {
    ASSERT_TRUE(waiter->TryClaim());
    lock.Withdraw(waiter.get(), /*timed_out=*/true);
  }

  // Crossed: a holds x and waits for y; b holds y and waits for x.
  struct Crossed {
    std::shared_ptr<LockObject> x, y;
    std::shared_ptr<TestWaiter> a_waits, b_waits;
  };
  Crossed Cross() {
    Crossed c{Open("x"), Open("y")};
    Hold(*c.x, a_);
    Hold(*c.y, b_);
    c.a_waits = Park(*c.y, a_);
    EXPECT_TRUE(graph().Cycles().empty()) << "a waits for b, b runs";
    c.b_waits = Park(*c.x, b_);
    EXPECT_EQ(graph().Cycles().size(), 1u);
    return c;
  }

  Engine engine_;
  Caller a_, b_, c_;
  std::vector<Deadlock> reported_;
};

TEST_F(DeadlockTest, TwoLocksInOppositeOrderAreFoundWhenTheCycleCloses) {
  auto [x, y, a_waits, b_waits] = Cross();

  ASSERT_EQ(reported_.size(), 1u);
  const Deadlock& d = reported_[0];
  EXPECT_EQ(d.id, 1u);
  EXPECT_EQ(d.victim, -1);
  ASSERT_EQ(d.edges.size(), 2u);
  EXPECT_EQ(d.edges[0].lock, "x");
  EXPECT_EQ(d.edges[0].waiter.session, b_.session);
  EXPECT_EQ(d.edges[0].holder.session, a_.session);
  EXPECT_EQ(d.edges[1].lock, "y");
  EXPECT_EQ(d.edges[1].waiter.session, a_.session);
  EXPECT_EQ(d.edges[1].holder.session, b_.session);
  EXPECT_THAT(DescribeDeadlock(d), HasSubstr("waits for lock \"x\""));
  EXPECT_THAT(DescribeDeadlock(d), HasSubstr("waits for lock \"y\""));
  EXPECT_EQ(graph().Cycles().size(), 1u);
  EXPECT_EQ(graph().Cycles(x.get()).size(), 1u);
  EXPECT_TRUE(graph().Cycles(Open("other").get()).empty());
  EXPECT_FALSE(a_waits->done());
  EXPECT_FALSE(b_waits->done()) << "report leaves the waiters parked";
}

TEST_F(DeadlockTest, ACycleDissolvesWhenOneWaitTimesOutAndIsCountedOnce) {
  auto [x, y, a_waits, b_waits] = Cross();

  TimeOut(*x, b_waits);
  EXPECT_TRUE(graph().Cycles().empty());
  EXPECT_EQ(graph().Found(), 1u);
  // b gives up y: a gets it; nothing new is found.
  DeliverCompletions(*y->Release(b_, 1));
  ASSERT_TRUE(a_waits->done());
  EXPECT_TRUE(a_waits->result().granted);
  EXPECT_EQ(graph().Found(), 1u);
}

TEST_F(DeadlockTest, ACycleDissolvesWhenAHoldersSessionEnds) {
  auto [x, y, a_waits, b_waits] = Cross();
  engine_.sessions().End(b_.session);
  EXPECT_TRUE(graph().Cycles().empty());
  ASSERT_TRUE(a_waits->done());
  EXPECT_TRUE(a_waits->result().owner_died);
}

TEST_F(DeadlockTest, ACycleDissolvesWhenAnotherCallerReleasesAPlainLock) {
  auto [x, y, a_waits, b_waits] = Cross();
  // threading.Lock lets anyone release it: c breaks the cycle.
  DeliverCompletions(*x->Release(c_, 9));
  EXPECT_TRUE(graph().Cycles().empty());
  ASSERT_TRUE(b_waits->done());
}

TEST_F(DeadlockTest, ThreeLocksThreeSessions) {
  auto l0 = Open("l0");
  auto l1 = Open("l1");
  auto l2 = Open("l2");
  Hold(*l0, a_);
  Hold(*l1, b_);
  Hold(*l2, c_);
  auto w0 = Park(*l1, a_);
  auto w1 = Park(*l2, b_);
  EXPECT_TRUE(reported_.empty());
  auto w2 = Park(*l0, c_);
  ASSERT_EQ(reported_.size(), 1u);
  ASSERT_EQ(reported_[0].edges.size(), 3u);
  EXPECT_EQ(reported_[0].edges[0].lock, "l0");
  EXPECT_EQ(reported_[0].edges[1].lock, "l1");
  EXPECT_EQ(reported_[0].edges[2].lock, "l2");
}

TEST_F(DeadlockTest, FailRefusesTheAcquireThatClosesTheCycle) {
  Policy(DeadlockPolicy::kFail);
  auto x = Open("x");
  auto y = Open("y", ObjectType::kRLock);
  Hold(*x, a_);
  Hold(*y, b_);
  auto a_waits = Park(*y, a_);
  auto b_waits = TestWaiter::Make(b_.session, 1);
  auto refused = x->Acquire(b_, 1, b_waits, "");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(GetErrorKind(refused.status()), ErrorKind::kDeadlock);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("lock \"x\": acquiring it would deadlock"));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("rlock \"y\""));
  EXPECT_EQ(GetErrorObject(refused.status()), "x");
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0].victim, 0);
  EXPECT_TRUE(x->State().waiters.empty()) << "the refused call never parks";
  EXPECT_TRUE(graph().Cycles().empty());
  // b backs off, as a DeadlockError handler would: a proceeds.
  DeliverCompletions(*y->Release(b_, 1));
  ASSERT_TRUE(a_waits->done());
  EXPECT_TRUE(a_waits->result().granted);
}

TEST_F(DeadlockTest, ReentryAndOtherThreadsOfASessionAreNotCycles) {
  auto r = Open("r", ObjectType::kRLock);
  auto l = Open("l");
  Hold(*r, a_, 1);
  Hold(*r, a_, 1);  // re-entry
  Hold(*l, a_, 1);
  auto other_thread = Park(*r, a_, 2);
  auto same_lock_other_thread = Park(*l, a_, 3);
  auto other_session = Park(*r, b_, 1);
  EXPECT_TRUE(reported_.empty());
  EXPECT_EQ(graph().Found(), 0u);
}

TEST_F(DeadlockTest, AThreadWaitingForAPlainLockItHoldsIsACycleOfOne) {
  auto l = Open("l");
  Hold(*l, a_, 7);
  auto waits = Park(*l, a_, 7);
  ASSERT_EQ(reported_.size(), 1u);
  ASSERT_EQ(reported_[0].edges.size(), 1u);
  EXPECT_EQ(reported_[0].edges[0].waiter.thread_id, 7u);
  EXPECT_EQ(reported_[0].edges[0].holder.thread_id, 7u);
}

TEST_F(DeadlockTest, ConditionWaitAndNotifyAreNotCycles) {
  auto l = Open("l");
  auto cond = OpenCondition("c", "l");
  Hold(*l, a_);
  auto waiter = TestWaiter::Make(a_.session, 1);
  DeliverCompletions(*cond->Wait(a_, 1, waiter));
  Hold(*l, b_);
  EXPECT_EQ(*cond->Notify(b_, 1, 1), 1);
  DeliverCompletions(*l->Release(b_, 1));
  ASSERT_TRUE(waiter->done());
  EXPECT_EQ(graph().Found(), 0u);
}

// a waits on a condition of y while holding x; b, holding y, parks on x.
// When a's wait times out it must reacquire y: that closes the cycle.
class ConditionReacquireTest : public DeadlockTest {
 protected:
  void SetUp() override {
    x_ = Open("x");
    y_ = Open("y");
    cond_ = OpenCondition("c", "y");
    Hold(*x_, a_);
    Hold(*y_, a_);
    a_waits_ = TestWaiter::Make(a_.session, 1);
    DeliverCompletions(*cond_->Wait(a_, 1, a_waits_));
    Hold(*y_, b_);
    b_waits_ = Park(*x_, b_);
    ASSERT_TRUE(reported_.empty()) << "a waits for a notify, not a lock";
  }

  std::shared_ptr<LockObject> x_, y_;
  std::shared_ptr<ConditionObject> cond_;
  std::shared_ptr<TestWaiter> a_waits_, b_waits_;
};

TEST_F(ConditionReacquireTest, IsACycleWhenItClosesOne) {
  DeliverCompletions(cond_->Timeout(a_waits_.get()));
  ASSERT_EQ(reported_.size(), 1u);
  ASSERT_EQ(reported_[0].edges.size(), 2u);
  EXPECT_EQ(reported_[0].edges[0].lock, "y");
  EXPECT_TRUE(reported_[0].edges[0].condition);
  EXPECT_FALSE(reported_[0].edges[1].condition);
  EXPECT_EQ(graph().Cycles().size(), 1u);
  EXPECT_FALSE(a_waits_->done());
  EXPECT_FALSE(b_waits_->done());
}

TEST_F(ConditionReacquireTest, FailFailsThePlainAcquireOfTheCycle) {
  Policy(DeadlockPolicy::kFail);
  DeliverCompletions(cond_->Timeout(a_waits_.get()));
  ASSERT_EQ(reported_.size(), 1u);
  EXPECT_EQ(reported_[0].victim, 1);
  ASSERT_TRUE(b_waits_->done());
  EXPECT_EQ(GetErrorKind(b_waits_->result().status), ErrorKind::kDeadlock);
  EXPECT_TRUE(graph().Cycles().empty());
  EXPECT_TRUE(x_->State().waiters.empty());
  // b backs off: a reacquires y.
  DeliverCompletions(*y_->Release(b_, 1));
  ASSERT_TRUE(a_waits_->done());
  EXPECT_TRUE(a_waits_->result().status.ok());
  // x's queue lost the failed entry: a release leaves it free.
  DeliverCompletions(*x_->Release(a_, 1));
  EXPECT_FALSE(x_->State().locked);
}

TEST_F(DeadlockTest, TenThousandWaitersOnOneLockAreNoCycle) {
  auto l = Open("l");
  Hold(*l, a_);
  std::vector<std::shared_ptr<TestWaiter>> waiters;
  for (int i = 0; i < 10'000; ++i) {
    waiters.push_back(Park(*l, (i % 2) ? b_ : c_, i));
  }
  EXPECT_EQ(graph().Found(), 0u);
  for (int i = 0; i < 10'000; ++i) {
    DeliverCompletions(*l->Release((i % 2) ? b_ : c_, 0));
  }
  EXPECT_EQ(graph().Found(), 0u);
}

}  // namespace
}  // namespace statehub
