#include "server/engine/barrier.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

class BarrierTest : public ::testing::Test {
 protected:
  BarrierTest() : engine_(Limits{}, absl::Seconds(10)) {}

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }

  std::shared_ptr<BarrierObject> Open(const std::string& name,
                                      int64_t parties) {
    InitialContents init;
    init.parties = parties;
    auto opened =
        engine_.registry().Open(name, ObjectType::kBarrier, init, Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *engine_.registry().Find<BarrierObject>(name);
  }

  std::shared_ptr<TestWaiter> Park(BarrierObject& barrier, SessionId session) {
    auto w = TestWaiter::Make(session);
    auto waited = barrier.Wait(Caller{session}, w);
    EXPECT_TRUE(waited.ok()) << waited.status();
    EXPECT_TRUE(waited.ok() && waited->parked);
    return w;
  }

  // The last arrival: passes at once; returns its index.
  int64_t Pass(BarrierObject& barrier, SessionId session) {
    auto waited = barrier.Wait(Caller{session}, TestWaiter::Make(session));
    EXPECT_TRUE(waited.ok()) << waited.status();
    if (!waited.ok()) return -1;
    EXPECT_TRUE(waited->passed);
    DeliverCompletions(std::move(waited->completions));
    return waited->index;
  }

  // The last arrival, asking to run the action: true if it was told to.
  bool RunsAction(BarrierObject& barrier, SessionId session) {
    auto waited = barrier.Wait(Caller{session}, TestWaiter::Make(session),
                               /*run_action=*/true);
    EXPECT_TRUE(waited.ok()) << waited.status();
    return waited.ok() && waited->passed && waited->run_action;
  }

  // Delivers what an Abort, Reset or ActionDone returned.
  static void Deliver(absl::StatusOr<std::vector<Completion>> completions) {
    ASSERT_TRUE(completions.ok()) << completions.status();
    DeliverCompletions(*std::move(completions));
  }

  static bool IsBroken(const TestWaiter& w) {
    return w.done() &&
           GetErrorKind(w.result().status) == ErrorKind::kBrokenBarrier &&
           w.result().status.code() == absl::StatusCode::kAborted;
  }

  Engine engine_;
};

TEST_F(BarrierTest, PartiesMustBePositive) {
  for (int64_t parties : {0, -2}) {
    InitialContents init;
    init.parties = parties;
    auto opened =
        engine_.registry().Open("b", ObjectType::kBarrier, init, Caller{});
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(GetErrorKind(opened.status()), ErrorKind::kValueError);
    // Python 3.13: ValueError("parties must be > 0").
    EXPECT_EQ(opened.status().message(), "barrier \"b\": parties must be > 0");
  }
}

TEST_F(BarrierTest, ArrivalIndicesCountUpAndTheLastPassesEveryone) {
  // CPython: index = number already waiting, so the first arrival gets 0
  // and the last parties - 1 (checked with python3.11).
  auto barrier = Open("b", 3);
  const SessionId s = NewSession();
  auto first = Park(*barrier, s);
  auto second = Park(*barrier, s);
  EXPECT_EQ(barrier->State().n_waiting, 2);
  EXPECT_EQ(Pass(*barrier, s), 2);
  ASSERT_TRUE(first->done());
  ASSERT_TRUE(second->done());
  EXPECT_TRUE(first->result().granted);
  EXPECT_EQ(first->result().index, 0);
  EXPECT_EQ(second->result().index, 1);
  BarrierState state = barrier->State();
  EXPECT_EQ(state.n_waiting, 0);
  EXPECT_EQ(state.generation, 1u);
  EXPECT_FALSE(state.broken);
}

TEST_F(BarrierTest, NextGenerationStartsAfresh) {
  auto barrier = Open("b", 2);
  const SessionId s = NewSession();
  for (int generation = 0; generation < 3; ++generation) {
    auto w = Park(*barrier, s);
    EXPECT_EQ(Pass(*barrier, s), 1);
    ASSERT_TRUE(w->done());
    EXPECT_EQ(w->result().index, 0);
  }
  EXPECT_EQ(barrier->State().generation, 3u);
}

TEST_F(BarrierTest, OnePartyPassesAtOnce) {
  auto barrier = Open("b", 1);
  EXPECT_EQ(Pass(*barrier, NewSession()), 0);
}

TEST_F(BarrierTest, AbortBreaksWaitersAndLaterWaitsUntilReset) {
  auto barrier = Open("b", 3);
  const SessionId s = NewSession();
  auto w = Park(*barrier, s);
  auto aborted = barrier->Abort();
  ASSERT_TRUE(aborted.ok());
  DeliverCompletions(*std::move(aborted));
  EXPECT_TRUE(IsBroken(*w));
  EXPECT_EQ(w->result().status.message(), "barrier \"b\": barrier is broken");
  EXPECT_TRUE(barrier->State().broken);

  auto later = barrier->Wait(Caller{s}, TestWaiter::Make(s));
  EXPECT_EQ(GetErrorKind(later.status()), ErrorKind::kBrokenBarrier);

  auto reset = barrier->Reset();
  ASSERT_TRUE(reset.ok());
  EXPECT_TRUE(reset->empty());
  EXPECT_FALSE(barrier->State().broken);
  Park(*barrier, s);
  Park(*barrier, s);
  EXPECT_EQ(Pass(*barrier, s), 2);
}

TEST_F(BarrierTest, ResetFailsWaitersAndLeavesTheBarrierUsable) {
  // Python: threads waiting at reset() get BrokenBarrierError; the barrier
  // is then as new.
  auto barrier = Open("b", 2);
  const SessionId s = NewSession();
  auto w = Park(*barrier, s);
  auto reset = barrier->Reset();
  ASSERT_TRUE(reset.ok());
  DeliverCompletions(*std::move(reset));
  EXPECT_TRUE(IsBroken(*w));
  EXPECT_FALSE(barrier->State().broken);
  auto next = Park(*barrier, s);
  EXPECT_EQ(Pass(*barrier, s), 1);
  EXPECT_EQ(next->result().index, 0);
}

TEST_F(BarrierTest, TimeoutBreaksTheBarrierForEveryone) {
  // Python: a wait that times out breaks the barrier; it and the others get
  // BrokenBarrierError.
  auto barrier = Open("b", 3);
  const SessionId s = NewSession();
  auto late = Park(*barrier, s);
  auto other = Park(*barrier, s);
  ASSERT_TRUE(late->TryClaim());
  DeliverCompletions(barrier->TimeoutBreak(late.get()));
  EXPECT_FALSE(late->done());  // its caller answers with BrokenError()
  EXPECT_EQ(GetErrorKind(barrier->BrokenError()), ErrorKind::kBrokenBarrier);
  EXPECT_TRUE(IsBroken(*other));
  BarrierState state = barrier->State();
  EXPECT_TRUE(state.broken);
  EXPECT_EQ(state.n_waiting, 0);
}

TEST_F(BarrierTest, LastArrivalRacingATimeoutBreaksInsteadOfPassing) {
  auto barrier = Open("b", 3);
  const SessionId s = NewSession();
  auto late = Park(*barrier, s);
  auto other = Park(*barrier, s);
  ASSERT_TRUE(late->TryClaim());  // timed out; TimeoutBreak not yet run
  auto last = TestWaiter::Make(s);
  auto waited = barrier->Wait(Caller{s}, last);
  ASSERT_TRUE(waited.ok());
  EXPECT_FALSE(waited->passed);
  EXPECT_TRUE(waited->parked);
  DeliverCompletions(std::move(waited->completions));
  EXPECT_TRUE(IsBroken(*other));
  EXPECT_TRUE(IsBroken(*last));
  EXPECT_TRUE(barrier->TimeoutBreak(late.get()).empty());
  EXPECT_TRUE(barrier->State().broken);
}

TEST_F(BarrierTest, TimeoutAfterResetLeavesTheBarrierUsable) {
  auto barrier = Open("b", 2);
  const SessionId s = NewSession();
  auto late = Park(*barrier, s);
  ASSERT_TRUE(late->TryClaim());
  auto reset = barrier->Reset();  // drops the claimed waiter
  ASSERT_TRUE(reset.ok());
  EXPECT_TRUE(reset->empty());
  EXPECT_TRUE(barrier->TimeoutBreak(late.get()).empty());
  EXPECT_FALSE(barrier->State().broken);
}

TEST_F(BarrierTest, EndedSessionWithAParkedWaiterBreaksTheBarrier) {
  auto barrier = Open("b", 3);
  const SessionId dying = NewSession();
  const SessionId other = NewSession();
  auto mine = Park(*barrier, dying);
  auto theirs = Park(*barrier, other);
  engine_.sessions().End(dying);
  ASSERT_TRUE(mine->done());
  EXPECT_EQ(GetErrorKind(mine->result().status), ErrorKind::kSessionError);
  EXPECT_TRUE(IsBroken(*theirs));
  EXPECT_TRUE(barrier->State().broken);
}

TEST_F(BarrierTest, EndedSessionWithoutParkedWaitersChangesNothing) {
  auto barrier = Open("b", 2);
  const SessionId passer = NewSession();
  const SessionId other = NewSession();
  // The passer parks once, so the barrier tracks its session...
  auto first = Park(*barrier, passer);
  EXPECT_EQ(Pass(*barrier, other), 1);
  ASSERT_TRUE(first->done());
  // ...but has nothing parked in the next generation when its session ends.
  auto w = Park(*barrier, other);
  engine_.sessions().End(passer);
  EXPECT_FALSE(barrier->State().broken);
  EXPECT_FALSE(w->done());
}

TEST_F(BarrierTest, DeleteFailsParkedWaitsWithObjectNotFound) {
  auto barrier = Open("b", 2);
  auto w = Park(*barrier, NewSession());
  ASSERT_TRUE(engine_.registry().Delete("b").ok());
  ASSERT_TRUE(w->done());
  EXPECT_EQ(GetErrorKind(w->result().status), ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(barrier->Abort().status()),
            ErrorKind::kObjectNotFound);
}

TEST_F(BarrierTest, ConcurrentGenerationsHandOutEveryIndexOnce) {
  constexpr int kParties = 4;
  constexpr int kRounds = 100;
  auto barrier = Open("b", kParties);
  std::vector<std::atomic<int>> counts(kParties);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kParties; ++t) {
    const SessionId session = NewSession();
    threads.emplace_back([&, session] {
      for (int i = 0; i < kRounds; ++i) {
        auto w = TestWaiter::Make(session);
        auto waited = barrier->Wait(Caller{session}, w);
        if (!waited.ok()) {
          ++failures;
          return;
        }
        DeliverCompletions(std::move(waited->completions));
        int64_t index = waited->index;
        if (waited->parked) {
          if (!w->Await() || !w->result().status.ok()) {
            ++failures;
            return;
          }
          index = w->result().index;
        }
        if (index < 0 || index >= kParties) {
          ++failures;
          return;
        }
        ++counts[index];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int i = 0; i < kParties; ++i) EXPECT_EQ(counts[i].load(), kRounds);
  EXPECT_EQ(barrier->State().generation, static_cast<uint64_t>(kRounds));
}

// The last arrival that asked to run the action passes at once; the others
// are held until it reports, as threading.Barrier runs its action before it
// releases any party.
TEST_F(BarrierTest, PartiesPassOnlyWhenTheActionIsDone) {
  auto barrier = Open("b", 3);
  const SessionId s = NewSession();
  auto first = Park(*barrier, s);
  auto second = Park(*barrier, s);
  auto waited = barrier->Wait(Caller{s}, TestWaiter::Make(s), true);
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_TRUE(waited->passed);
  EXPECT_TRUE(waited->run_action);
  EXPECT_EQ(waited->index, 2);
  EXPECT_TRUE(waited->completions.empty());
  EXPECT_FALSE(first->done());
  EXPECT_TRUE(barrier->State().action_running);
  EXPECT_EQ(barrier->State().n_waiting, 2);
  EXPECT_EQ(barrier->State().generation, 0u);

  // Only the runner's session reports.
  const SessionId other = NewSession();
  auto wrong = barrier->ActionDone(Caller{other}, false);
  EXPECT_EQ(GetErrorKind(wrong.status()), ErrorKind::kRuntimeError);

  Deliver(barrier->ActionDone(Caller{s}, false));
  ASSERT_TRUE(first->done() && second->done());
  EXPECT_EQ(first->result().index, 0);
  EXPECT_EQ(second->result().index, 1);
  EXPECT_FALSE(barrier->State().action_running);
  EXPECT_EQ(barrier->State().generation, 1u);
  EXPECT_FALSE(barrier->ActionDone(Caller{s}, false).ok()) << "reported once";
}

TEST_F(BarrierTest, AFailedActionBreaksTheBarrierForEveryParty) {
  auto barrier = Open("b", 2);
  const SessionId s = NewSession();
  auto first = Park(*barrier, s);
  ASSERT_TRUE(RunsAction(*barrier, s));
  // An arrival of the next generation meanwhile breaks with the rest.
  auto next = Park(*barrier, s);
  Deliver(barrier->ActionDone(Caller{s}, true));
  EXPECT_TRUE(IsBroken(*first));
  EXPECT_TRUE(IsBroken(*next));
  EXPECT_TRUE(barrier->State().broken);
}

TEST_F(BarrierTest, ARunnerWhoseSessionEndsBreaksTheBarrier) {
  auto barrier = Open("b", 2);
  const SessionId runner = NewSession();
  const SessionId other = NewSession();
  auto held = Park(*barrier, other);
  ASSERT_TRUE(RunsAction(*barrier, runner));
  engine_.sessions().End(runner);
  EXPECT_TRUE(IsBroken(*held));
  EXPECT_TRUE(barrier->State().broken);
}

TEST_F(BarrierTest, ResetDuringTheActionFailsTheHeldParties) {
  auto barrier = Open("b", 2);
  const SessionId s = NewSession();
  auto held = Park(*barrier, s);
  ASSERT_TRUE(RunsAction(*barrier, s));
  Deliver(barrier->Reset());
  EXPECT_TRUE(IsBroken(*held));
  EXPECT_FALSE(barrier->State().broken);
  EXPECT_FALSE(barrier->State().action_running);
  EXPECT_FALSE(barrier->ActionDone(Caller{s}, false).ok());
}

}  // namespace
}  // namespace statehub
