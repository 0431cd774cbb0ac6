#include "server/engine/queue.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/engine/dict.h"
#include "server/engine/engine.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : engine_(Limits{}, absl::Seconds(10)) {}

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }
  Registry& registry() { return engine_.registry(); }
  bool Exists(const std::string& name) {
    return registry().Describe(name).ok();
  }

  std::shared_ptr<QueueObject> Open(const std::string& name, int64_t maxsize,
                                    bool joinable = false) {
    InitialContents init;
    init.maxsize = maxsize;
    auto opened = registry().Open(
        name, joinable ? ObjectType::kJoinableQueue : ObjectType::kQueue, init,
        Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *registry().Find<QueueObject>(name);
  }

  // put_nowait: fails the test unless stored.
  void PutNow(QueueObject& q, Value item, SessionId session = 0) {
    auto stored = q.Put(Caller{session}, std::move(item), nullptr);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_TRUE(stored->stored);
    DeliverCompletions(std::move(stored->completions));
  }
  // get_nowait: the item, or nullopt for queue.Empty.
  std::optional<Value> GetNow(QueueObject& q, SessionId session = 0) {
    auto got = q.Get(Caller{session}, nullptr);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || !got->got) return std::nullopt;
    DeliverCompletions(std::move(got->completions));
    return got->item;
  }
  std::shared_ptr<TestWaiter> ParkGetter(QueueObject& q, SessionId session) {
    auto w = TestWaiter::Make(session);
    auto got = q.Get(Caller{session}, w);
    EXPECT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(got.ok() && got->parked);
    return w;
  }
  std::shared_ptr<TestWaiter> ParkPutter(QueueObject& q, SessionId session,
                                         Value item) {
    auto w = TestWaiter::Make(session);
    auto stored = q.Put(Caller{session}, std::move(item), w);
    EXPECT_TRUE(stored.ok()) << stored.status();
    EXPECT_TRUE(stored.ok() && stored->parked);
    return w;
  }
  std::string NewAnonymousDict(SessionId session) {
    auto opened = registry().Open("", ObjectType::kDict, {}, Caller{session});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened->object->name();
  }

  Engine engine_;
};

TEST_F(QueueTest, ItemsComeOutInFifoOrder) {
  auto q = Open("q", 0);
  for (int i = 1; i <= 3; ++i) PutNow(*q, i);
  EXPECT_EQ(*q->Qsize(), 3);
  EXPECT_EQ(q->Size(), 3);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(GetNow(*q), Value(i));
  // Python: get_nowait() on an empty queue raises queue.Empty (a result
  // here, not an error).
  EXPECT_EQ(GetNow(*q), std::nullopt);
  EXPECT_TRUE(*q->Empty());
}

TEST_F(QueueTest, FullQueueTurnsAwayANonBlockingPut) {
  auto q = Open("q", 2);
  PutNow(*q, "a");
  PutNow(*q, "b");
  EXPECT_TRUE(*q->Full());
  auto stored = q->Put(Caller{}, "c", nullptr);
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->stored);  // queue.Full
  EXPECT_FALSE(stored->parked);
  EXPECT_EQ(*q->Qsize(), 2);
}

TEST_F(QueueTest, MaxsizeZeroOrNegativeIsUnbounded) {
  // Python: Queue(0) and Queue(-3) are never full.
  for (int64_t maxsize : {0, -3}) {
    auto q = Open(absl::StrCat("q", -maxsize), maxsize);
    for (int i = 0; i < 100; ++i) PutNow(*q, i);
    EXPECT_FALSE(*q->Full());
    EXPECT_EQ(q->maxsize(), maxsize);
  }
}

TEST_F(QueueTest, StoredItemsAreBoundedByMaxElements) {
  Limits limits;
  limits.max_elements = 2;
  Engine small(limits, absl::Seconds(10));
  ASSERT_TRUE(
      small.registry().Open("q", ObjectType::kQueue, {}, Caller{}).ok());
  auto q = *small.registry().Find<QueueObject>("q");
  ASSERT_TRUE(q->Put(Caller{}, 1, nullptr).ok());
  ASSERT_TRUE(q->Put(Caller{}, 2, nullptr).ok());
  auto third = q->Put(Caller{}, 3, nullptr);
  EXPECT_EQ(GetErrorKind(third.status()), ErrorKind::kLimitExceeded);
  EXPECT_EQ(GetErrorLimit(third.status()), "max_elements");
  EXPECT_EQ(*q->Qsize(), 2);
}

TEST_F(QueueTest, PutHandsTheItemToTheOldestParkedGetter) {
  auto q = Open("q", 0);
  const SessionId s = NewSession();
  auto first = ParkGetter(*q, s);
  auto second = ParkGetter(*q, s);
  EXPECT_EQ(q->State().getters.size(), 2u);
  PutNow(*q, "x");
  ASSERT_TRUE(first->done());
  EXPECT_TRUE(first->result().granted);
  EXPECT_EQ(first->result().item, Value("x"));
  EXPECT_FALSE(second->done());
  PutNow(*q, "y");
  EXPECT_EQ(second->result().item, Value("y"));
  EXPECT_EQ(*q->Qsize(), 0);  // handed off, never stored
}

TEST_F(QueueTest, GetFromAFullQueueLetsTheOldestParkedPutterIn) {
  auto q = Open("q", 1);
  const SessionId s = NewSession();
  PutNow(*q, "a");
  auto b = ParkPutter(*q, s, "b");
  auto c = ParkPutter(*q, s, "c");
  EXPECT_EQ(q->State().putters.size(), 2u);
  EXPECT_EQ(GetNow(*q), Value("a"));
  ASSERT_TRUE(b->done());
  EXPECT_TRUE(b->result().granted);
  EXPECT_FALSE(c->done());
  EXPECT_EQ(*q->Qsize(), 1);
  EXPECT_EQ(GetNow(*q), Value("b"));
  EXPECT_TRUE(c->done());
  EXPECT_EQ(GetNow(*q), Value("c"));
  EXPECT_EQ(GetNow(*q), std::nullopt);
}

TEST_F(QueueTest, TimedOutGetterIsWithdrawnAndTheItemStored) {
  auto q = Open("q", 0);
  const SessionId s = NewSession();
  auto late = ParkGetter(*q, s);
  ASSERT_TRUE(late->TryClaim());
  q->Withdraw(late.get());
  PutNow(*q, 1);
  EXPECT_FALSE(late->done());
  EXPECT_EQ(*q->Qsize(), 1);
}

TEST_F(QueueTest, ClaimedGetterStillQueuedIsSkipped) {
  auto q = Open("q", 0);
  const SessionId s = NewSession();
  auto cancelled = ParkGetter(*q, s);
  auto next = ParkGetter(*q, s);
  ASSERT_TRUE(cancelled->TryClaim());
  PutNow(*q, 1);
  EXPECT_FALSE(cancelled->done());
  EXPECT_EQ(next->result().item, Value(1));
  q->Withdraw(cancelled.get());
}

TEST_F(QueueTest, GetterWhoseSessionEndedDoesNotTakeTheItem) {
  auto q = Open("q", 0);
  const SessionId s = NewSession();
  // A getter of a session already gone from the registry, whose
  // OnSessionEnd has not reached this queue yet.
  auto gone = TestWaiter::Make(/*session=*/12345);
  ASSERT_TRUE(q->Get(Caller{}, gone)->parked);
  auto live = ParkGetter(*q, s);
  PutNow(*q, "x");
  ASSERT_TRUE(gone->done());
  EXPECT_EQ(GetErrorKind(gone->result().status), ErrorKind::kSessionError);
  EXPECT_EQ(live->result().item, Value("x"));
}

TEST_F(QueueTest, TimedOutPutterIsWithdrawnWithItsItem) {
  auto q = Open("q", 1);
  const SessionId s = NewSession();
  PutNow(*q, "a");
  auto late = ParkPutter(*q, s, "late");
  auto next = ParkPutter(*q, s, "next");
  ASSERT_TRUE(late->TryClaim());
  q->Withdraw(late.get());
  EXPECT_EQ(GetNow(*q), Value("a"));
  EXPECT_FALSE(late->done());
  EXPECT_TRUE(next->done());
  EXPECT_EQ(GetNow(*q), Value("next"));
}

TEST_F(QueueTest, TaskDoneAndJoin) {
  auto q = Open("q", 0, /*joinable=*/true);
  const SessionId s = NewSession();
  // join() with nothing put returns at once.
  EXPECT_TRUE(q->Join(Caller{s}, nullptr)->done);
  PutNow(*q, 1);
  PutNow(*q, 2);
  auto joiner = TestWaiter::Make(s);
  auto joined = q->Join(Caller{s}, joiner);
  ASSERT_TRUE(joined.ok());
  EXPECT_TRUE(joined->parked);
  EXPECT_EQ(q->State().unfinished, 2);
  DeliverCompletions(*q->TaskDone());
  EXPECT_FALSE(joiner->done());
  DeliverCompletions(*q->TaskDone());
  ASSERT_TRUE(joiner->done());
  EXPECT_TRUE(joiner->result().granted);
  auto extra = q->TaskDone();
  EXPECT_EQ(GetErrorKind(extra.status()), ErrorKind::kValueError);
  // Python: ValueError("task_done() called too many times").
  EXPECT_EQ(extra.status().message(),
            "joinable_queue \"q\": task_done() called too many times");
}

TEST_F(QueueTest, HandedOffAndParkedPutsCountAsUnfinishedTasks) {
  auto q = Open("q", 1, /*joinable=*/true);
  const SessionId s = NewSession();
  auto getter = ParkGetter(*q, s);
  PutNow(*q, "handed");  // straight to the getter
  PutNow(*q, "stored");
  auto putter = ParkPutter(*q, s, "parked");
  EXPECT_EQ(q->State().unfinished, 2);  // the parked put is not in yet
  EXPECT_EQ(GetNow(*q), Value("stored"));
  EXPECT_TRUE(putter->done());
  EXPECT_EQ(q->State().unfinished, 3);
}

TEST_F(QueueTest, PlainQueueSupportsJoinAsManagerDoes) {
  // Manager serves both Queue and JoinableQueue with queue.Queue.
  auto q = Open("q", 0);
  PutNow(*q, 1);
  EXPECT_FALSE(q->Join(Caller{}, nullptr)->done);
  ASSERT_TRUE(q->TaskDone().ok());
  EXPECT_TRUE(q->Join(Caller{}, nullptr)->done);
}

TEST_F(QueueTest, EndedSessionsParkedCallsEndAndItsPutsAreDropped) {
  auto full = Open("full", 1, /*joinable=*/true);
  auto empty = Open("empty", 0);
  const SessionId dying = NewSession();
  const SessionId other = NewSession();
  PutNow(*full, "kept");
  auto putter = ParkPutter(*full, dying, "never");
  auto joiner = TestWaiter::Make(dying);
  ASSERT_TRUE(full->Join(Caller{dying}, joiner)->parked);
  auto getter = ParkGetter(*empty, dying);
  auto other_getter = ParkGetter(*empty, other);
  engine_.sessions().End(dying);
  for (const auto& w : {putter, joiner, getter}) {
    ASSERT_TRUE(w->done());
    EXPECT_EQ(GetErrorKind(w->result().status), ErrorKind::kSessionError);
  }
  EXPECT_FALSE(other_getter->done());
  EXPECT_EQ(GetNow(*full), Value("kept"));
  EXPECT_EQ(GetNow(*full), std::nullopt);
  PutNow(*empty, "x");
  EXPECT_EQ(other_getter->result().item, Value("x"));
}

TEST_F(QueueTest, DeleteFailsParkedCallsAndReleasesQueuedRefs) {
  auto q = Open("q", 1, /*joinable=*/true);
  const SessionId s = NewSession();
  const std::string stored = NewAnonymousDict(s);
  const std::string parked = NewAnonymousDict(s);
  PutNow(*q, Ref{stored, ObjectType::kDict});
  auto putter = ParkPutter(*q, s, Ref{parked, ObjectType::kDict});
  auto joiner = TestWaiter::Make(s);
  ASSERT_TRUE(q->Join(Caller{s}, joiner)->parked);
  auto other = Open("other", 0);
  auto getter = ParkGetter(*other, s);

  // The creator lets go; only the queue keeps them now.
  ASSERT_TRUE(registry().Describe(stored).ok());
  registry().ReleaseHolds(s, {stored, parked});
  EXPECT_TRUE(Exists(stored));
  EXPECT_TRUE(Exists(parked));

  ASSERT_TRUE(registry().Delete("q").ok());
  ASSERT_TRUE(registry().Delete("other").ok());
  for (const auto& w : {putter, joiner, getter}) {
    ASSERT_TRUE(w->done());
    EXPECT_EQ(GetErrorKind(w->result().status), ErrorKind::kObjectNotFound);
  }
  EXPECT_FALSE(Exists(stored));
  EXPECT_FALSE(Exists(parked));
  EXPECT_EQ(GetErrorKind(q->Get(Caller{}, nullptr).status()),
            ErrorKind::kObjectNotFound);
}

TEST_F(QueueTest, QueuedAnonymousDictOutlivesItsCreatorUntilGot) {
  auto q = Open("q", 0);
  const SessionId creator = NewSession();
  const SessionId reader = NewSession();
  const std::string inner = NewAnonymousDict(creator);
  PutNow(*q, Value::List({Ref{inner, ObjectType::kDict}, 7}), creator);
  engine_.sessions().End(creator);
  ASSERT_TRUE(Exists(inner)) << "the queued item keeps it alive";
  EXPECT_EQ(registry().Describe(inner)->referrers, 1);

  auto item = GetNow(*q, reader);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->AsItems()[0].AsRef().name, inner);
  ASSERT_TRUE(Exists(inner)) << "the reader's hold keeps it alive";
  EXPECT_EQ(registry().Describe(inner)->referrers, 0);
  EXPECT_EQ(registry().Describe(inner)->holders, 1);

  registry().ReleaseHolds(reader, {inner});
  EXPECT_FALSE(Exists(inner));
}

TEST_F(QueueTest, ParkedGettersHoldIsTakenForItsOwnSession) {
  auto q = Open("q", 0);
  const SessionId creator = NewSession();
  const SessionId reader = NewSession();
  auto getter = ParkGetter(*q, reader);
  const std::string inner = NewAnonymousDict(creator);
  PutNow(*q, Ref{inner, ObjectType::kDict}, creator);
  engine_.sessions().End(creator);
  ASSERT_TRUE(getter->done());
  EXPECT_EQ(getter->result().item.AsRef().name, inner);
  ASSERT_TRUE(Exists(inner)) << "held for the getter's session";
  EXPECT_EQ(registry().Describe(inner)->holders, 1);
  engine_.sessions().End(reader);
  EXPECT_FALSE(Exists(inner));
}

TEST_F(QueueTest, WithdrawnPuttersItemReleasesItsRefs) {
  auto q = Open("q", 1);
  const SessionId s = NewSession();
  PutNow(*q, 0);
  const std::string inner = NewAnonymousDict(s);
  auto putter = ParkPutter(*q, s, Ref{inner, ObjectType::kDict});
  registry().ReleaseHolds(s, {inner});
  ASSERT_TRUE(Exists(inner)) << "counted while its putter waits";
  ASSERT_TRUE(putter->TryClaim());
  q->Withdraw(putter.get());
  EXPECT_FALSE(Exists(inner));
}

TEST_F(QueueTest, PutOfARefToAMissingObjectFails) {
  auto q = Open("q", 0);
  auto stored = q->Put(Caller{}, Ref{"nope", ObjectType::kDict}, nullptr);
  EXPECT_EQ(GetErrorKind(stored.status()), ErrorKind::kObjectNotFound);
  EXPECT_EQ(*q->Qsize(), 0);
  EXPECT_EQ(q->State().unfinished, 0);
}

TEST_F(QueueTest, RollbackGetPutsTheItemBackAtTheHead) {
  auto q = Open("q", 0);
  const SessionId creator = NewSession();
  const SessionId reader = NewSession();
  auto getter = ParkGetter(*q, reader);
  const std::string inner = NewAnonymousDict(creator);
  PutNow(*q, Ref{inner, ObjectType::kDict}, creator);
  PutNow(*q, "second");
  engine_.sessions().End(creator);
  ASSERT_TRUE(getter->done());
  // The getter's call was cancelled as it was granted.
  DeliverCompletions(q->RollbackGet(reader, getter->result().item));
  EXPECT_EQ(registry().Describe(inner)->holders, 0);
  EXPECT_EQ(registry().Describe(inner)->referrers, 1);
  auto again = GetNow(*q);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->AsRef().name, inner);
  EXPECT_EQ(GetNow(*q), Value("second"));
}

TEST_F(QueueTest, RollbackGetHandsTheItemToAParkedGetter) {
  auto q = Open("q", 0);
  const SessionId s = NewSession();
  auto first = ParkGetter(*q, s);
  PutNow(*q, 1);
  auto second = ParkGetter(*q, s);
  DeliverCompletions(q->RollbackGet(s, first->result().item));
  ASSERT_TRUE(second->done());
  EXPECT_EQ(second->result().item, Value(1));
}

TEST_F(QueueTest, ConcurrentProducersAndConsumersMoveEveryItemOnce) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr int kItems = 1000;  // per producer and per consumer
  auto q = Open("q", 8, /*joinable=*/true);
  std::atomic<int> failures{0};
  std::atomic<int64_t> sum{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    const SessionId session = NewSession();
    threads.emplace_back([&, p, session] {
      for (int i = 0; i < kItems; ++i) {
        auto w = TestWaiter::Make(session);
        auto stored = q->Put(Caller{session}, Value::Tuple({p, int64_t{i}}), w);
        if (!stored.ok()) {
          ++failures;
          return;
        }
        DeliverCompletions(std::move(stored->completions));
        if (stored->parked && (!w->Await() || !w->result().granted)) {
          ++failures;
          return;
        }
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    const SessionId session = NewSession();
    threads.emplace_back([&, session] {
      std::vector<int64_t> last(kProducers, -1);
      for (int i = 0; i < kItems; ++i) {
        auto w = TestWaiter::Make(session);
        auto got = q->Get(Caller{session}, w);
        if (!got.ok()) {
          ++failures;
          return;
        }
        DeliverCompletions(std::move(got->completions));
        Value item = got->item;
        if (got->parked) {
          if (!w->Await() || !w->result().granted) {
            ++failures;
            return;
          }
          item = w->result().item;
        }
        const int64_t producer = item.AsItems()[0].AsInt();
        const int64_t seq = item.AsItems()[1].AsInt();
        // FIFO: one consumer sees each producer's items in order.
        if (seq <= last[producer]) ++failures;
        last[producer] = seq;
        sum += seq;
        auto done = q->TaskDone();
        if (!done.ok()) ++failures;
        DeliverCompletions(*std::move(done));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(sum.load(), int64_t{kProducers} * kItems * (kItems - 1) / 2);
  QueueState state = q->State();
  EXPECT_EQ(state.size, 0);
  EXPECT_EQ(state.unfinished, 0);
  EXPECT_TRUE(state.getters.empty());
  EXPECT_TRUE(state.putters.empty());
  EXPECT_TRUE(q->Join(Caller{}, nullptr)->done);
}

}  // namespace
}  // namespace statehub
