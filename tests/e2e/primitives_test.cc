// Queues, barriers, events and semaphores through the C++ client's handles,
// across real processes (tests/e2e/e2e_client): producers and consumers on
// a bounded queue, refs carried by queued items, a barrier that one process
// aborts, timeouts as results, and bad input that leaves nothing behind.

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/sync_fixture.h"
#include "tests/testing/scrape.h"

namespace statehub {
namespace {

using PrimitivesE2eTest = SyncE2eTest;

// ParkedCalls returns the server's statehub_parked_calls{type=`type`}
// gauge, or -1 if it cannot be read.
double ParkedCalls(const testing::ServerProcess& server,
                   absl::string_view type) {
  return testing::MetricValue(
             testing::HttpGet(server.metrics_url()),
             absl::StrCat(R"(statehub_parked_calls{type=")", type, R"("})"))
      .value_or(-1);
}

TEST_F(PrimitivesE2eTest, ProducersAndConsumersShareABoundedQueue) {
  auto jobs = client_->OpenJoinableQueue("jobs", 10);
  ASSERT_TRUE(jobs.ok());
  std::vector<ChildProcess> producers, consumers;
  for (int i = 0; i < 2; ++i) {
    consumers.push_back(StartChild({"consume", "jobs", "totals"}));
  }
  for (int i = 0; i < 2; ++i) {
    producers.push_back(
        StartChild({"produce", "jobs", std::to_string(i * 500), "500"}));
  }
  for (ChildProcess& p : producers) {
    EXPECT_EQ(p.ReadLine(/*timeout_ms=*/60'000), "done");
  }
  // Every item is put: join returns once each has been marked done, and
  // consumers count an item before marking it.
  absl::StatusOr<bool> joined = jobs->Join();
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_TRUE(*joined);
  auto totals = client_->OpenDict("totals");
  ASSERT_TRUE(totals.ok());
  EXPECT_EQ(*totals->Get("count"), Value(1000));
  EXPECT_EQ(*totals->Get("sum"), Value(999 * 1000 / 2));
  absl::StatusOr<QueueState> state = jobs->State();
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->size, 0);
  EXPECT_EQ(state->maxsize, 10);
  EXPECT_EQ(state->unfinished, 0);
  // A consumer marks its last item done before it asks for the next one,
  // so both park again soon after join returns, not necessarily before.
  WaitUntil([&] {
    state = jobs->State();
    return !state.ok() || state->getters.size() >= 2;
  });
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->getters.size(), 2u) << "both consumers wait for more";
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(*jobs->Put(Value()));
  for (ChildProcess& c : consumers) EXPECT_EQ(c.ReadLine(), "done");
  EXPECT_TRUE(*jobs->Join(absl::Seconds(10)));
}

TEST_F(PrimitivesE2eTest, AQueuedRefKeepsAnAnonymousObjectAliveForItsTaker) {
  std::string name;
  {
    auto putter = NewClient();
    auto queue = putter->OpenQueue("refs");
    auto dict = putter->OpenDict("");
    ASSERT_TRUE(queue.ok() && dict.ok());
    ASSERT_TRUE(dict->Set("x", 1).ok());
    name = dict->name();
    ASSERT_TRUE(*queue->Put(dict->ref()));
  }  // the putter's session ends: only the queued ref holds the dict
  auto queue = client_->OpenQueue("refs");
  ASSERT_TRUE(queue.ok());
  absl::StatusOr<std::optional<Value>> item = queue->Get();
  ASSERT_TRUE(item.ok() && item->has_value()) << item.status();
  absl::StatusOr<Dict> dict = client_->DictFromRef(**item);
  ASSERT_TRUE(dict.ok()) << dict.status();
  EXPECT_EQ(dict->name(), name);
  EXPECT_EQ(*dict->Get("x"), Value(1));
  absl::StatusOr<ObjectInfo> info = client_->Describe(name);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->holders, 1) << "the taker's session holds it now";
  EXPECT_EQ(info->referrers, 0) << "the queue no longer refers to it";
}

TEST_F(PrimitivesE2eTest, BarrierOfFiveProcessesPassesTogether) {
  std::vector<ChildProcess> parties;
  for (int i = 0; i < 5; ++i) {
    parties.push_back(StartChild({"barrier-wait", "b", "5"}));
  }
  std::vector<std::string> indices;
  for (ChildProcess& p : parties) indices.push_back(p.ReadLine().value_or(""));
  std::sort(indices.begin(), indices.end());
  EXPECT_EQ(indices, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
}

TEST_F(PrimitivesE2eTest, BarrierAbortedByOneProcessBreaksItForTheOthers) {
  auto barrier = client_->OpenBarrier("b", 5);
  ASSERT_TRUE(barrier.ok());
  std::vector<ChildProcess> parties;
  for (int i = 0; i < 4; ++i) {
    parties.push_back(StartChild({"barrier-wait", "b", "5"}));
  }
  ASSERT_TRUE(WaitUntil([&] { return barrier->State()->n_waiting == 4; }));
  ChildProcess aborter = StartChild({"barrier-abort", "b", "5"});
  EXPECT_EQ(aborter.ReadLine(), "aborted");
  for (ChildProcess& p : parties) EXPECT_EQ(p.ReadLine(), "broken");
  absl::StatusOr<BarrierState> state = barrier->State();
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->broken);
  EXPECT_EQ(state->n_waiting, 0);
  ExpectError(barrier->Wait().status(), absl::StatusCode::kAborted,
              ErrorKind::kBrokenBarrier);
  ASSERT_TRUE(barrier->Reset().ok());
  EXPECT_FALSE(barrier->State()->broken);
}

TEST_F(PrimitivesE2eTest, EventSetWakesAWaiterInAnotherThread) {
  auto event = client_->OpenEvent("go");
  ASSERT_TRUE(event.ok());
  EXPECT_FALSE(*event->IsSet());
  auto other = NewClient();
  auto same = other->OpenEvent("go");
  ASSERT_TRUE(same.ok());
  absl::StatusOr<bool> woken;
  std::thread waiter([&] { woken = event->Wait(); });
  // Set only once the server holds the wait parked: the wake-up is what is
  // tested, not a flag found already set. (No ASSERT while the waiter runs.)
  EXPECT_TRUE(WaitUntil([&] { return ParkedCalls(*server_, "event") == 1; }))
      << "the wait parked";
  EXPECT_TRUE(same->Set().ok());
  waiter.join();
  ASSERT_TRUE(woken.ok()) << woken.status();
  EXPECT_TRUE(*woken);
  ASSERT_TRUE(event->Clear().ok());
  EXPECT_FALSE(*event->IsSet());
}

TEST_F(PrimitivesE2eTest, TimedOutWaitsReturnFalseNotBeforeTheTimeout) {
  constexpr absl::Duration kTimeout = absl::Milliseconds(300);
  auto event = client_->OpenEvent("e");
  auto queue = client_->OpenQueue("q", 1);
  auto sem = client_->OpenSemaphore("s", 0);
  ASSERT_TRUE(event.ok() && queue.ok() && sem.ok());
  auto expect_timeout = [&](const char* what, auto call) {
    const absl::Time start = absl::Now();
    auto result = call();
    const absl::Duration took = absl::Now() - start;
    ASSERT_TRUE(result.ok()) << what << ": " << result.status();
    EXPECT_FALSE(*result) << what;
    EXPECT_GE(took, kTimeout) << what;
    EXPECT_LT(took, kTimeout + absl::Seconds(10)) << what;
  };
  expect_timeout("event wait", [&] { return event->Wait(kTimeout); });
  expect_timeout("queue get",
                 [&] { return queue->Get(/*block=*/true, kTimeout); });
  ASSERT_TRUE(*queue->Put(1));
  EXPECT_TRUE(*queue->Full());
  expect_timeout("queue put",
                 [&] { return queue->Put(2, /*block=*/true, kTimeout); });
  expect_timeout("queue join", [&] { return queue->Join(kTimeout); });
  expect_timeout("semaphore acquire",
                 [&] { return sem->Acquire(/*blocking=*/true, kTimeout); });
  EXPECT_TRUE(queue->State()->getters.empty());
  EXPECT_TRUE(queue->State()->putters.empty());
  EXPECT_TRUE(queue->State()->joiners.empty());
  EXPECT_TRUE(sem->State()->waiters.empty());
}

TEST_F(PrimitivesE2eTest, BadInputIsRefusedAndLeavesNothingBehind) {
  auto bounded = client_->OpenBoundedSemaphore("bs", 2);
  auto event = client_->OpenEvent("e");
  auto queue = client_->OpenQueue("q");
  auto barrier = client_->OpenBarrier("b", 2);
  ASSERT_TRUE(bounded.ok() && event.ok() && queue.ok() && barrier.ok());
  const auto kInvalid = absl::StatusCode::kInvalidArgument;

  // A bounded semaphore released past its bound; n < 1.
  ExpectError(bounded->Release(), kInvalid, ErrorKind::kValueError);
  ASSERT_TRUE(*bounded->Acquire());
  ExpectError(bounded->Release(2), kInvalid, ErrorKind::kValueError);
  ExpectError(bounded->Release(0), kInvalid, ErrorKind::kValueError);
  EXPECT_EQ(bounded->State()->value, 1) << "a refused release changes nothing";
  ASSERT_TRUE(bounded->Release().ok());

  // Negative timeouts, and a timeout on a call that must not block.
  const absl::Duration kNegative = absl::Milliseconds(-1);
  ExpectError(bounded->Acquire(true, kNegative).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(bounded->Acquire(false, absl::Seconds(1)).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(event->Wait(kNegative).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(queue->Get(true, kNegative).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(queue->Put(1, true, kNegative).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(queue->Join(kNegative).status(), kInvalid,
              ErrorKind::kValueError);
  ExpectError(barrier->Wait(kNegative).status(), kInvalid,
              ErrorKind::kValueError);

  // task_done past the items put.
  ExpectError(queue->TaskDone(), kInvalid, ErrorKind::kValueError);

  // Barriers need at least one party; none is created otherwise.
  for (int64_t parties : {0, -1}) {
    ExpectError(client_->OpenBarrier("b0", parties).status(), kInvalid,
                ErrorKind::kValueError);
  }
  ExpectError(client_->Describe("b0").status(), absl::StatusCode::kNotFound,
              ErrorKind::kObjectNotFound);

  absl::StatusOr<SemaphoreState> sem_state = bounded->State();
  ASSERT_TRUE(sem_state.ok());
  EXPECT_EQ(sem_state->value, 2);
  EXPECT_TRUE(sem_state->waiters.empty());
  EXPECT_TRUE(sem_state->holders.empty());
  absl::StatusOr<QueueState> queue_state = queue->State();
  ASSERT_TRUE(queue_state.ok());
  EXPECT_EQ(queue_state->size, 0);
  EXPECT_EQ(queue_state->unfinished, 0);
  EXPECT_TRUE(queue_state->getters.empty() && queue_state->putters.empty() &&
              queue_state->joiners.empty());
  absl::StatusOr<BarrierState> barrier_state = barrier->State();
  ASSERT_TRUE(barrier_state.ok());
  EXPECT_FALSE(barrier_state->broken) << "a refused wait does not break it";
  EXPECT_EQ(barrier_state->n_waiting, 0);
}

}  // namespace
}  // namespace statehub
