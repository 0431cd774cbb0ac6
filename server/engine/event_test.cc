#include "server/engine/event.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

class EventTest : public ::testing::Test {
 protected:
  EventTest() : engine_(Limits{}, absl::Seconds(10)) {
    EXPECT_TRUE(
        engine_.registry().Open("e", ObjectType::kEvent, {}, Caller{}).ok());
    event_ = *engine_.registry().Find<EventObject>("e");
  }

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }

  std::shared_ptr<TestWaiter> Park(SessionId session) {
    auto w = TestWaiter::Make(session);
    auto waited = event_->Wait(Caller{session}, w);
    EXPECT_TRUE(waited.ok()) << waited.status();
    EXPECT_TRUE(waited.ok() && waited->parked);
    return w;
  }

  void Set() {
    auto set = event_->Set();
    ASSERT_TRUE(set.ok()) << set.status();
    DeliverCompletions(*std::move(set));
  }

  Engine engine_;
  std::shared_ptr<EventObject> event_;
};

TEST_F(EventTest, StartsClearAndWaitWithoutBlockingAnswersFalse) {
  EXPECT_FALSE(*event_->IsSet());
  // Python: Event().wait(0) is False.
  auto waited = event_->Wait(Caller{}, nullptr);
  ASSERT_TRUE(waited.ok());
  EXPECT_FALSE(waited->set);
  EXPECT_FALSE(waited->parked);
}

TEST_F(EventTest, WaitAnswersAtOnceWhenSet) {
  Set();
  EXPECT_TRUE(*event_->IsSet());
  auto w = TestWaiter::Make(NewSession());
  auto waited = event_->Wait(Caller{w->session()}, w);
  ASSERT_TRUE(waited.ok());
  EXPECT_TRUE(waited->set);
  EXPECT_FALSE(waited->parked);
  EXPECT_FALSE(w->done());
}

TEST_F(EventTest, SetGrantsEveryParkedWaiterAndClearRearms) {
  const SessionId s = NewSession();
  auto a = Park(s);
  auto b = Park(s);
  auto sessionless = Park(0);  // waiting needs no session
  EXPECT_EQ(event_->State().waiters.size(), 3u);
  Set();
  for (const auto& w : {a, b, sessionless}) {
    ASSERT_TRUE(w->done());
    EXPECT_TRUE(w->result().status.ok());
    EXPECT_TRUE(w->result().granted);
  }
  ASSERT_TRUE(event_->Clear().ok());
  EXPECT_FALSE(*event_->IsSet());
  auto c = Park(s);
  EXPECT_FALSE(c->done());
  Set();
  EXPECT_TRUE(c->done());
}

TEST_F(EventTest, WokenWaiterIsGrantedEvenIfClearedAgainAtOnce) {
  // Python: a thread woken by set() returns True from wait() even if the
  // flag was cleared before it ran.
  auto w = Park(NewSession());
  Set();
  ASSERT_TRUE(event_->Clear().ok());
  ASSERT_TRUE(w->done());
  EXPECT_TRUE(w->result().granted);
}

TEST_F(EventTest, TimedOutWaiterIsWithdrawn) {
  const SessionId s = NewSession();
  auto late = Park(s);
  auto claimed_only = Park(s);
  ASSERT_TRUE(late->TryClaim());
  event_->Withdraw(late.get());
  ASSERT_TRUE(claimed_only->TryClaim());  // its withdraw is still on its way
  EXPECT_TRUE(event_->State().waiters.empty());
  Set();
  EXPECT_FALSE(late->done());
  EXPECT_FALSE(claimed_only->done());
  event_->Withdraw(claimed_only.get());
}

TEST_F(EventTest, EndedSessionsWaitsEndWithSessionError) {
  const SessionId dying = NewSession();
  const SessionId other = NewSession();
  auto mine = Park(dying);
  auto theirs = Park(other);
  engine_.sessions().End(dying);
  ASSERT_TRUE(mine->done());
  EXPECT_EQ(GetErrorKind(mine->result().status), ErrorKind::kSessionError);
  EXPECT_FALSE(theirs->done());
  // The ended session cannot park again.
  auto again = event_->Wait(Caller{dying}, TestWaiter::Make(dying));
  EXPECT_EQ(GetErrorKind(again.status()), ErrorKind::kSessionError);
  Set();
  EXPECT_TRUE(theirs->result().granted);
}

TEST_F(EventTest, DeleteFailsParkedWaitsWithObjectNotFound) {
  auto w = Park(NewSession());
  ASSERT_TRUE(engine_.registry().Delete("e").ok());
  ASSERT_TRUE(w->done());
  EXPECT_EQ(GetErrorKind(w->result().status), ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(event_->Set().status()), ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(event_->IsSet().status()), ErrorKind::kObjectNotFound);
}

TEST_F(EventTest, ConcurrentWaitersAllWakeOnSet) {
  constexpr int kThreads = 16;
  std::vector<std::shared_ptr<TestWaiter>> waiters(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> answered_now{0};
  for (int t = 0; t < kThreads; ++t) {
    waiters[t] = TestWaiter::Make(0);
    threads.emplace_back([&, t] {
      auto waited = event_->Wait(Caller{}, waiters[t]);
      if (waited.ok() && waited->set) ++answered_now;
    });
  }
  Set();
  for (std::thread& t : threads) t.join();
  int woken = 0;
  for (const auto& w : waiters) {
    if (w->done()) {
      EXPECT_TRUE(w->result().granted);
      ++woken;
    }
  }
  // Each waiter either saw the flag set or was parked and woken.
  EXPECT_EQ(woken + answered_now.load(), kThreads);
}

}  // namespace
}  // namespace statehub
