// Locks, reentrant locks and conditions through the C++ client's handles,
// across real processes (tests/e2e/e2e_client): mutual exclusion, robust
// ownership when a holder is killed, no lost wakeups, timeouts as results,
// and bad input that leaves nothing behind.
//
// No assertion depends on timing except bounds that cannot flake: a timed
// out call returns no earlier than its timeout, and "eventually" allows
// seconds of slack.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/sync_fixture.h"

namespace statehub {
namespace {

TEST_F(SyncE2eTest, EightProcessesOfLockedReadModifyWritesEndExact) {
  std::vector<ChildProcess> children;
  for (int i = 0; i < 8; ++i) {
    children.push_back(StartChild({"rmw", "counter/lock", "counter", "2000"}));
  }
  for (ChildProcess& child : children) {
    EXPECT_EQ(child.ReadLine(/*timeout_ms=*/100'000), "done");
  }
  auto counter = client_->OpenDict("counter");
  ASSERT_TRUE(counter.ok());
  EXPECT_EQ(*counter->Get("n"), Value(16'000));
}

TEST_F(ShortLeaseE2eTest, KilledHoldersLockGoesToAWaitingProcessWithOwnerDied) {
  auto lock = client_->OpenLock("robust");
  ASSERT_TRUE(lock.ok());
  ChildProcess holder = StartChild({"hold-lock", "robust"});
  std::optional<std::string> held_token = holder.ReadLine();
  ASSERT_TRUE(held_token.has_value());
  ChildProcess waiter = StartChild({"acquire", "robust"});
  ASSERT_TRUE(WaitUntil([&] { return lock->State()->waiters.size() == 1; }));
  holder.Kill();
  // The lease runs out after lease_ttl(); allow generous slack beyond it.
  std::optional<std::string> got = waiter.ReadLine(
      absl::ToInt64Milliseconds(lease_ttl() + absl::Seconds(5)));
  ASSERT_TRUE(got.has_value()) << "the waiter got the lock within the lease";
  std::vector<std::string> fields = absl::StrSplit(*got, ' ');
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_GT(std::stoull(fields[0]), std::stoull(*held_token));
  EXPECT_EQ(fields[1], "1") << "owner_died";
}

TEST_F(SyncE2eTest, ConditionPingPongOfAThousandRoundsLosesNoWakeup) {
  ChildProcess even = StartChild({"ping-pong", "0", "1000"});
  ChildProcess odd = StartChild({"ping-pong", "1", "1000"});
  EXPECT_EQ(even.ReadLine(/*timeout_ms=*/100'000), "done");
  EXPECT_EQ(odd.ReadLine(/*timeout_ms=*/100'000), "done");
  auto state = client_->OpenDict("pp");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(*state->Get("turn"), Value(2000));
}

TEST_F(SyncE2eTest, NotifyNWakesExactlyN) {
  auto lock = client_->OpenLock("cw/lock");
  ASSERT_TRUE(lock.ok());
  auto cond = client_->OpenCondition("cw/cond", *lock);
  ASSERT_TRUE(cond.ok());
  auto state = client_->OpenDict("cw");
  ASSERT_TRUE(state.ok());
  std::vector<ChildProcess> children;
  for (int i = 0; i < 5; ++i) children.push_back(StartChild({"cond-wait"}));
  // Each child counts itself under the lock and only lets go of it by
  // waiting: once the count is 5 under the lock, all 5 are parked.
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<Lock> hold(*lock);
    return *state->Get("parked", 0) == Value(5);
  }));
  {
    std::lock_guard<Lock> hold(*lock);
    EXPECT_EQ(*cond->Notify(2), 2);
  }
  {
    std::lock_guard<Lock> hold(*lock);
    EXPECT_EQ(*cond->NotifyAll(), 3) << "exactly 2 had been woken";
  }
  for (ChildProcess& child : children) EXPECT_EQ(child.ReadLine(), "woken");
}

TEST_F(SyncE2eTest, StdLockAdaptersAndFencingTokens) {
  auto a = client_->OpenLock("a");
  auto b = client_->OpenRLock("b");
  ASSERT_TRUE(a.ok() && b.ok());
  uint64_t first;
  {
    std::scoped_lock both(*a, *b);
    first = a->held().fencing_token;
    EXPECT_GT(first, 0u);
    EXPECT_FALSE(a->held().owner_died);
    std::unique_lock<RLock> again(*b);  // reentrant
    EXPECT_EQ(b->State()->recursion, 2);
    EXPECT_EQ(b->State()->holder.thread_id, CurrentThreadId());
  }
  EXPECT_FALSE(a->State()->locked);
  EXPECT_FALSE(b->State()->locked);
  ASSERT_TRUE(a->try_lock());
  EXPECT_GT(a->held().fencing_token, first);
  EXPECT_FALSE(a->try_lock()) << "a Lock is not reentrant";
  EXPECT_FALSE(a->try_lock_until(std::chrono::system_clock::now() -
                                 std::chrono::seconds(1)))
      << "a time already passed is one attempt";
  a->unlock();
  EXPECT_TRUE(a->try_lock_for(std::chrono::hours::max())) << "free at once";
  a->unlock();
  try {
    a->unlock();
    ADD_FAILURE() << "unlock of an unheld lock throws";
  } catch (const Error& e) {
    EXPECT_EQ(GetErrorKind(e.status()), ErrorKind::kRuntimeError);
  }
}

TEST_F(SyncE2eTest, ConditionOverAnAnonymousRLockKeepsTheRecursion) {
  auto cond = client_->OpenCondition("");
  ASSERT_TRUE(cond.ok()) << cond.status();
  RLock* rlock = cond->own_lock();
  ASSERT_NE(rlock, nullptr);
  std::unique_lock<RLock> outer(*rlock);
  std::unique_lock<RLock> inner(*rlock);
  EXPECT_EQ(cond->wait_for(inner, std::chrono::milliseconds(50)),
            std::cv_status::timeout);
  absl::StatusOr<LockState> state = rlock->State();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->locked) << "reacquired after the timeout";
  EXPECT_EQ(state->recursion, 2);
  EXPECT_EQ(state->holder.thread_id, CurrentThreadId());
  // A named condition that exists stays bound to its lock, which the
  // server reports: opening it without a lock finds that RLock.
  auto named = client_->OpenCondition("c", *rlock);
  ASSERT_TRUE(named.ok());
  absl::StatusOr<ObjectInfo> info = client_->Describe("c");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->condition_lock, rlock->name());
  auto reopened = client_->OpenCondition("c");
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  ASSERT_NE(reopened->own_lock(), nullptr);
  EXPECT_EQ(reopened->own_lock()->name(), rlock->name());
  // One bound to a plain Lock cannot be handed out as an owned RLock.
  auto plain = client_->OpenLock("c-plain");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(client_->OpenCondition("c2", *plain).ok());
  ExpectError(client_->OpenCondition("c2").status(),
              absl::StatusCode::kInvalidArgument, ErrorKind::kValueError);
}

TEST_F(SyncE2eTest, TimedOutLockAndConditionWaitsReturnFalseNotBeforeTimeout) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(300);
  auto lock = client_->OpenLock("t/lock");
  auto cond = client_->OpenCondition("t/cond", *lock);
  ASSERT_TRUE(lock.ok() && cond.ok());
  auto other = NewClient();
  auto others_lock = other->OpenLock("t/lock");
  ASSERT_TRUE(others_lock.ok());
  ASSERT_TRUE(lock->Acquire()->acquired);

  absl::Time start = absl::Now();
  absl::StatusOr<Acquisition> timed_out = others_lock->Acquire(kTimeout);
  ASSERT_TRUE(timed_out.ok()) << timed_out.status();
  EXPECT_FALSE(timed_out->acquired);
  EXPECT_GE(absl::Now() - start, kTimeout);
  EXPECT_LT(absl::Now() - start, kTimeout + absl::Seconds(10));

  start = absl::Now();
  EXPECT_FALSE(others_lock->try_lock_for(std::chrono::milliseconds(300)));
  EXPECT_GE(absl::Now() - start, kTimeout);

  {
    std::unique_lock<Lock> hold(*lock, std::adopt_lock);
    start = absl::Now();
    absl::StatusOr<bool> notified = cond->WaitFor(hold, kTimeout);
    ASSERT_TRUE(notified.ok()) << notified.status();
    EXPECT_FALSE(*notified);
    EXPECT_GE(absl::Now() - start, kTimeout);
    EXPECT_LT(absl::Now() - start, kTimeout + absl::Seconds(10));
  }

  // With a predicate the deadline holds across wakeups: another client
  // notifies again and again while the predicate stays false. A WaitFor
  // that restarted its timeout after each wakeup would not return until the
  // notifier gives up, kWakeTimeout + 10 s from now.
  constexpr absl::Duration kWakeTimeout = absl::Seconds(1);
  auto others_cond = other->OpenCondition("t/cond", *others_lock);
  ASSERT_TRUE(others_cond.ok()) << others_cond.status();
  ASSERT_TRUE(lock->Acquire()->acquired);
  std::atomic<bool> done = false;
  std::atomic<int64_t> woken = 0;
  const absl::Time give_up = absl::Now() + kWakeTimeout + absl::Seconds(10);
  std::thread notifier([&] {
    while (!done && absl::Now() < give_up) {
      absl::StatusOr<Acquisition> got = others_lock->Acquire();
      if (!got.ok() || !got->acquired) {
        ADD_FAILURE() << "notifier: " << got.status();
        return;
      }
      absl::StatusOr<int64_t> n = others_cond->Notify();
      EXPECT_TRUE(n.ok()) << n.status();
      woken += n.value_or(0);
      EXPECT_TRUE(others_lock->Release().ok());
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  {
    std::unique_lock<Lock> hold(*lock, std::adopt_lock);
    // The notifier parks on the lock; it gets it when the wait releases it,
    // so its first notify finds the wait parked.
    EXPECT_TRUE(WaitUntil([&] { return lock->State()->waiters.size() == 1; }));
    start = absl::Now();
    int calls = 0;
    absl::StatusOr<bool> satisfied = cond->WaitFor(hold, kWakeTimeout, [&] {
      ++calls;
      return false;
    });
    const absl::Duration took = absl::Now() - start;
    done = true;
    EXPECT_TRUE(satisfied.ok()) << satisfied.status();
    EXPECT_FALSE(satisfied.value_or(true));
    EXPECT_GE(took, kWakeTimeout);
    EXPECT_LT(took, kWakeTimeout + absl::Seconds(5));
    EXPECT_GE(calls, 2) << "the predicate was checked again after a wakeup";
  }
  notifier.join();
  EXPECT_GT(woken, 0) << "the notifier woke the wait";
  EXPECT_FALSE(lock->State()->locked);
  EXPECT_TRUE(lock->State()->waiters.empty());
}

TEST_F(SyncE2eTest, BlockingCallsOutliveTheCallTimeout) {
  ClientOptions options = testing::TestOptions();
  options.call_timeout = absl::Milliseconds(100);
  auto short_calls = Client::Connect(server_->unix_address(), options);
  ASSERT_TRUE(short_calls.ok());
  auto lock = client_->OpenLock("slow");
  auto waiting = (*short_calls)->OpenLock("slow");
  ASSERT_TRUE(lock.ok() && waiting.ok());
  ASSERT_TRUE(lock->Acquire()->acquired);
  absl::StatusOr<Acquisition> timed = waiting->Acquire(absl::Milliseconds(500));
  ASSERT_TRUE(timed.ok()) << "not cut at 100 ms: " << timed.status();
  EXPECT_FALSE(timed->acquired);
  std::thread release([&] {
    absl::SleepFor(absl::Milliseconds(300));
    EXPECT_TRUE(lock->Release().ok());
  });
  absl::StatusOr<Acquisition> untimed = waiting->Acquire();
  release.join();
  ASSERT_TRUE(untimed.ok()) << "no deadline when untimed: " << untimed.status();
  EXPECT_TRUE(untimed->acquired);
}

TEST_F(SyncE2eTest, BadLockInputIsRefusedAndLeavesNothingBehind) {
  auto lock = client_->OpenLock("bad/lock");
  auto rlock = client_->OpenRLock("bad/rlock");
  auto cond = client_->OpenCondition("bad/cond", *lock);
  ASSERT_TRUE(lock.ok() && rlock.ok() && cond.ok());

  // Release of a lock nobody holds.
  ExpectError(lock->Release(), absl::StatusCode::kFailedPrecondition,
              ErrorKind::kRuntimeError);
  // Release of an rlock by a thread that does not own it.
  ASSERT_TRUE(rlock->Acquire()->acquired);
  absl::Status by_other_thread;
  std::thread([&] { by_other_thread = rlock->Release(); }).join();
  ExpectError(by_other_thread, absl::StatusCode::kFailedPrecondition,
              ErrorKind::kRuntimeError);
  auto other = NewClient();
  auto others_rlock = other->OpenRLock("bad/rlock");
  ASSERT_TRUE(others_rlock.ok());
  ExpectError(others_rlock->Release(), absl::StatusCode::kFailedPrecondition,
              ErrorKind::kRuntimeError);
  EXPECT_EQ(rlock->State()->recursion, 1) << "still held once by its owner";
  ASSERT_TRUE(rlock->Release().ok());
  // Wait and notify without holding the condition's lock.
  std::unique_lock<Lock> not_held(*lock, std::defer_lock);
  ExpectError(cond->Wait(not_held), absl::StatusCode::kFailedPrecondition,
              ErrorKind::kRuntimeError);
  ExpectError(cond->Notify().status(), absl::StatusCode::kFailedPrecondition,
              ErrorKind::kRuntimeError);
  // Negative timeouts.
  ExpectError(lock->Acquire(absl::Seconds(-1)).status(),
              absl::StatusCode::kInvalidArgument, ErrorKind::kValueError);
  {
    std::unique_lock<Lock> hold(*lock);
    ExpectError(cond->WaitFor(hold, absl::Seconds(-1)).status(),
                absl::StatusCode::kInvalidArgument, ErrorKind::kValueError);
    EXPECT_TRUE(lock->State()->locked) << "a refused wait keeps the lock";
  }

  for (const BasicLock* l : {static_cast<const BasicLock*>(&*lock),
                             static_cast<const BasicLock*>(&*rlock)}) {
    absl::StatusOr<LockState> state = l->State();
    ASSERT_TRUE(state.ok());
    EXPECT_FALSE(state->locked) << l->name();
    EXPECT_TRUE(state->waiters.empty()) << l->name();
  }
  // Everything still works afterwards.
  std::unique_lock<Lock> hold(*lock);
  EXPECT_EQ(*cond->NotifyAll(), 0);
}

}  // namespace
}  // namespace statehub
