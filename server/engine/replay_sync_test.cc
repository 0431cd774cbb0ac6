// Change records of queues, semaphores, events and barriers: what each
// mutation records, and that replaying the records into a fresh engine gives
// back the same state (test_recorder.h).

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/barrier.h"
#include "server/engine/engine.h"
#include "server/engine/event.h"
#include "server/engine/lock.h"
#include "server/engine/queue.h"
#include "server/engine/semaphore.h"
#include "server/engine/test_recorder.h"
#include "server/engine/test_waiter.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

class ReplaySyncTest : public ::testing::Test {
 protected:
  ReplaySyncTest() : engine_(Limits{}, absl::Seconds(10)), sink_(engine_) {}

  SessionId NewSession() {
    return engine_.sessions().Open(0, "label", absl::Now())->id;
  }
  Registry& registry() { return engine_.registry(); }

  template <typename T>
  std::shared_ptr<T> Open(const std::string& name, ObjectType type,
                          const InitialContents& init = {}) {
    auto opened = registry().Open(name, type, init, Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *registry().Find<T>(name);
  }
  std::shared_ptr<QueueObject> OpenQueue(const std::string& name,
                                         int64_t maxsize, bool joinable) {
    InitialContents init;
    init.maxsize = maxsize;
    return Open<QueueObject>(
        name, joinable ? ObjectType::kJoinableQueue : ObjectType::kQueue, init);
  }
  std::shared_ptr<SemaphoreObject> OpenSemaphore(const std::string& name,
                                                 int64_t value, bool bounded) {
    InitialContents init;
    init.semaphore_value = value;
    return Open<SemaphoreObject>(
        name, bounded ? ObjectType::kBoundedSemaphore : ObjectType::kSemaphore,
        init);
  }
  std::shared_ptr<BarrierObject> OpenBarrier(const std::string& name,
                                             int64_t parties) {
    InitialContents init;
    init.parties = parties;
    return Open<BarrierObject>(name, ObjectType::kBarrier, init);
  }

  // The change cases recorded about `object`, in order.
  std::vector<v1::ChangeRecord::ChangeCase> Changes(const std::string& object) {
    std::vector<v1::ChangeRecord::ChangeCase> out;
    for (const v1::ChangeRecord& record : sink_.records()) {
      if (record.object() == object) out.push_back(record.change_case());
    }
    return out;
  }

  static void Deliver(absl::StatusOr<std::vector<Completion>> completions) {
    ASSERT_TRUE(completions.ok()) << completions.status();
    DeliverCompletions(*std::move(completions));
  }
  static void PutNow(QueueObject& q, Value item, SessionId session = 0) {
    auto stored = q.Put(Caller{session}, std::move(item), nullptr);
    ASSERT_TRUE(stored.ok()) << stored.status();
    ASSERT_TRUE(stored->stored);
    DeliverCompletions(std::move(stored->completions));
  }
  static Value GetNow(QueueObject& q, SessionId session = 0) {
    auto got = q.Get(Caller{session}, nullptr);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || !got->got) return Value();
    DeliverCompletions(std::move(got->completions));
    return got->item;
  }
  static void AcquireNow(SemaphoreObject& sem, SessionId session) {
    auto acquired = sem.Acquire(Caller{session}, nullptr);
    ASSERT_TRUE(acquired.ok()) << acquired.status();
    ASSERT_TRUE(acquired->acquired);
  }
  static std::shared_ptr<TestWaiter> ParkBarrier(BarrierObject& barrier,
                                                 SessionId session) {
    auto w = TestWaiter::Make(session);
    auto waited = barrier.Wait(Caller{session}, w);
    EXPECT_TRUE(waited.ok() && waited->parked);
    return w;
  }
  static void PassBarrier(BarrierObject& barrier, SessionId session) {
    auto waited = barrier.Wait(Caller{session}, TestWaiter::Make(session));
    ASSERT_TRUE(waited.ok()) << waited.status();
    ASSERT_TRUE(waited->passed);
    DeliverCompletions(std::move(waited->completions));
  }

  Engine engine_;
  RecordingSink sink_;
};

TEST_F(ReplaySyncTest, JoinableQueuePutGetAndTaskDoneReplay) {
  auto q = OpenQueue("jobs", 0, /*joinable=*/true);
  PutNow(*q, "a");
  PutNow(*q, "b");
  PutNow(*q, "c");
  EXPECT_EQ(GetNow(*q), Value("a"));
  Deliver(q->TaskDone());
  ExpectReplaysTo(engine_, sink_.records());
  EXPECT_EQ(q->State().unfinished, 2);
  EXPECT_EQ(q->State().size, 2);
}

TEST_F(ReplaySyncTest, UnfinishedTasksOfAnEmptiedQueueReplay) {
  auto q = OpenQueue("jobs", 0, /*joinable=*/true);
  PutNow(*q, 1);
  PutNow(*q, 2);
  GetNow(*q);
  GetNow(*q);
  // Nothing stored, but two tasks unfinished: the count alone must survive.
  ExpectReplaysTo(engine_, sink_.records());
  Deliver(q->TaskDone());
  Deliver(q->TaskDone());
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, PlainQueueCountsTasksInItsRecordsToo) {
  auto q = OpenQueue("q", 0, /*joinable=*/false);
  PutNow(*q, 1);
  EXPECT_THAT(Changes("q"), ElementsAre(v1::ChangeRecord::kCreated,
                                        v1::ChangeRecord::kQueuePut,
                                        v1::ChangeRecord::kTasksChanged));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, PutHandedToAParkedGetterRecordsOnlyItsTask) {
  auto q = OpenQueue("q", 0, /*joinable=*/true);
  const SessionId reader = NewSession();
  auto getter = TestWaiter::Make(reader);
  auto got = q->Get(Caller{reader}, getter);
  ASSERT_TRUE(got.ok() && got->parked);
  PutNow(*q, 7);
  ASSERT_TRUE(getter->done());
  EXPECT_EQ(getter->result().item, Value(7));
  // The item never rested in the queue; the parked get was never recorded.
  EXPECT_THAT(Changes("q"), ElementsAre(v1::ChangeRecord::kCreated,
                                        v1::ChangeRecord::kTasksChanged));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, GetThatLetsAParkedPutterInReplays) {
  auto q = OpenQueue("q", 1, /*joinable=*/true);
  const SessionId writer = NewSession();
  PutNow(*q, "a");
  auto putter = TestWaiter::Make(writer);
  auto stored = q->Put(Caller{writer}, Value("b"), putter);
  ASSERT_TRUE(stored.ok() && stored->parked);
  // The parked put is not state yet.
  ExpectReplaysTo(engine_, sink_.records());
  EXPECT_EQ(GetNow(*q), Value("a"));
  ASSERT_TRUE(putter->done());
  EXPECT_TRUE(putter->result().granted);
  EXPECT_THAT(
      Changes("q"),
      ElementsAre(v1::ChangeRecord::kCreated, v1::ChangeRecord::kQueuePut,
                  v1::ChangeRecord::kTasksChanged,
                  v1::ChangeRecord::kQueueTaken, v1::ChangeRecord::kQueuePut,
                  v1::ChangeRecord::kTasksChanged));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, RolledBackGetReplaysAtTheFront) {
  auto q = OpenQueue("q", 0, /*joinable=*/false);
  const SessionId reader = NewSession();
  PutNow(*q, 1);
  PutNow(*q, 2);
  const Value item = GetNow(*q, reader);
  ASSERT_EQ(item, Value(1));
  DeliverCompletions(q->RollbackGet(reader, item));
  ExpectReplaysTo(engine_, sink_.records());
  EXPECT_EQ(GetNow(*q), Value(1));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, SemaphoreHoldingsOfTwoSessionsReplay) {
  auto sem = OpenSemaphore("slots", 3, /*bounded=*/true);
  const SessionId a = NewSession();
  const SessionId b = NewSession();
  const SessionId c = NewSession();
  AcquireNow(*sem, a);
  AcquireNow(*sem, a);
  AcquireNow(*sem, b);
  auto parked = TestWaiter::Make(c);
  auto acquired = sem->Acquire(Caller{c}, parked);
  ASSERT_TRUE(acquired.ok() && acquired->parked);
  ExpectReplaysTo(engine_, sink_.records());
  // The release and the grant to c are one change.
  const size_t before = sink_.records().size();
  Deliver(sem->Release(Caller{a}, 1));
  ASSERT_TRUE(parked->done());
  ASSERT_EQ(sink_.records().size(), before + 1);
  // Holdings oldest first.
  const std::vector<v1::ChangeRecord> records = sink_.records();
  std::vector<std::pair<SessionId, int64_t>> holdings;
  for (const v1::SemaphoreUnits& h :
       records.back().semaphore_changed().holdings()) {
    holdings.emplace_back(h.session(), h.units());
  }
  EXPECT_THAT(holdings, ElementsAre(Pair(a, 1), Pair(b, 1), Pair(c, 1)));
  ExpectReplaysTo(engine_, sink_.records());
  // b's end releases its unit back.
  engine_.sessions().End(b);
  EXPECT_EQ(sem->State().value, 1);
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, ReplayedSemaphoreReleasesUnitsWhenAHolderEnds) {
  auto sem = OpenSemaphore("slots", 3, /*bounded=*/false);
  const SessionId a = NewSession();
  const SessionId b = NewSession();
  AcquireNow(*sem, a);
  AcquireNow(*sem, b);
  AcquireNow(*sem, b);

  Engine fresh(engine_.limits(), engine_.sessions().ttl());
  for (const v1::ChangeRecord& record : sink_.records()) {
    ASSERT_TRUE(fresh.Replay(record).ok()) << record.ShortDebugString();
  }
  ASSERT_TRUE(fresh.FinishRecovery(absl::Now()).ok());
  auto replayed = *fresh.registry().Find<SemaphoreObject>("slots");
  EXPECT_EQ(replayed->State().value, 0);
  // A release by a session holding nothing is credited to the oldest
  // holding: the age order survived.
  Deliver(replayed->Release(Caller{}, 1));
  EXPECT_THAT(replayed->State().holders, ElementsAre(Pair(b, 2)));
  // b's holding was tracked on replay, so its end releases its units.
  fresh.sessions().End(b);
  EXPECT_EQ(replayed->State().value, 3);
  EXPECT_TRUE(replayed->State().holders.empty());
}

TEST_F(ReplaySyncTest, LocksAndUnitsLeftByAGoodbyeStayTakenAfterRecovery) {
  auto sem = OpenSemaphore("slots", 2, /*bounded=*/true);
  auto lock = Open<LockObject>("lk", ObjectType::kLock);
  const SessionId leaving = NewSession();
  AcquireNow(*sem, leaving);
  ASSERT_TRUE(lock->Acquire(Caller{leaving}, 1, nullptr, "w")->acquired);
  engine_.sessions().End(leaving, SessionEnd::kLeaveLocks);
  ExpectReplaysTo(engine_, sink_.records());

  // FinishRecovery frees what ended sessions held, but not what they left.
  Engine fresh(engine_.limits(), engine_.sessions().ttl());
  for (const v1::ChangeRecord& record : sink_.records()) {
    ASSERT_TRUE(fresh.Replay(record).ok()) << record.ShortDebugString();
  }
  ASSERT_TRUE(fresh.FinishRecovery(absl::Now()).ok());
  auto replayed_sem = *fresh.registry().Find<SemaphoreObject>("slots");
  auto replayed_lock = *fresh.registry().Find<LockObject>("lk");
  EXPECT_EQ(replayed_sem->State().value, 1);
  EXPECT_TRUE(replayed_lock->State().locked);
  // Another session releases both, as with Manager.
  const SessionId other = fresh.sessions().Open(0, "o", absl::Now())->id;
  Deliver(replayed_sem->Release(Caller{other}, 1));
  Deliver(replayed_lock->Release(Caller{other}, 1));
  EXPECT_EQ(replayed_sem->State().value, 2);
  EXPECT_FALSE(replayed_lock->State().locked);
}

TEST_F(ReplaySyncTest, EventRecordsOnlyChangesOfItsFlag) {
  auto event = Open<EventObject>("ready", ObjectType::kEvent);
  Deliver(event->Set());
  Deliver(event->Set());
  ExpectReplaysTo(engine_, sink_.records());
  ASSERT_TRUE(event->Clear().ok());
  ASSERT_TRUE(event->Clear().ok());
  ExpectReplaysTo(engine_, sink_.records());
  Deliver(event->Set());
  EXPECT_THAT(Changes("ready"), ElementsAre(v1::ChangeRecord::kCreated,
                                            v1::ChangeRecord::kEventChanged,
                                            v1::ChangeRecord::kEventChanged,
                                            v1::ChangeRecord::kEventChanged));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, BarrierTripsBreakAndResetReplay) {
  auto barrier = OpenBarrier("start", 2);
  const SessionId s = NewSession();
  for (int i = 0; i < 2; ++i) {
    auto first = ParkBarrier(*barrier, s);
    PassBarrier(*barrier, s);
    ASSERT_TRUE(first->done());
  }
  // A parked party is not state.
  auto parked = ParkBarrier(*barrier, s);
  ExpectReplaysTo(engine_, sink_.records());
  Deliver(barrier->Abort());
  ASSERT_TRUE(parked->done());
  Deliver(barrier->Abort());
  EXPECT_EQ(barrier->State().generation, 2u);
  EXPECT_TRUE(barrier->State().broken);
  ExpectReplaysTo(engine_, sink_.records());
  Deliver(barrier->Reset());
  ExpectReplaysTo(engine_, sink_.records());
  // A reset of a barrier that is not broken changes nothing recorded.
  Deliver(barrier->Reset());
  EXPECT_THAT(Changes("start"), ElementsAre(v1::ChangeRecord::kCreated,
                                            v1::ChangeRecord::kBarrierChanged,
                                            v1::ChangeRecord::kBarrierChanged,
                                            v1::ChangeRecord::kBarrierChanged,
                                            v1::ChangeRecord::kBarrierChanged));
}

TEST_F(ReplaySyncTest, BarrierPassWithAnActionIsRecordedAtActionDone) {
  auto barrier = OpenBarrier("start", 2);
  const SessionId s = NewSession();
  auto held = ParkBarrier(*barrier, s);
  auto waited =
      barrier->Wait(Caller{s}, TestWaiter::Make(s), /*run_action=*/true);
  ASSERT_TRUE(waited.ok() && waited->run_action);
  // Mid-action, the barrier replays to the generation before the pass.
  EXPECT_THAT(Changes("start"), ElementsAre(v1::ChangeRecord::kCreated));
  ExpectReplaysTo(engine_, sink_.records());
  Deliver(barrier->ActionDone(Caller{s}, /*failed=*/false));
  ASSERT_TRUE(held->done());
  EXPECT_EQ(barrier->State().generation, 1u);
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(ReplaySyncTest, TimedOutBarrierPartyBreaksItInTheRecords) {
  auto barrier = OpenBarrier("start", 3);
  const SessionId s = NewSession();
  auto w = ParkBarrier(*barrier, s);
  ASSERT_TRUE(w->TryClaim());
  Deliver(barrier->TimeoutBreak(w.get()));
  EXPECT_TRUE(barrier->State().broken);
  ExpectReplaysTo(engine_, sink_.records());
}

// A record that does not fit the state is DATA_LOSS, never a crash.
class ReplayBadRecordTest : public ::testing::Test {
 protected:
  ReplayBadRecordTest() : engine_(Limits{}, absl::Seconds(10)) {}

  void Create(const std::string& name, v1::ObjectType type) {
    v1::ChangeRecord record;
    record.set_revision(++revision_);
    record.set_object(name);
    record.mutable_created()->set_type(type);
    record.mutable_created()->set_semaphore_value(1);
    record.mutable_created()->set_parties(2);
    ASSERT_TRUE(engine_.Replay(record).ok());
  }
  absl::Status Replay(const std::string& name, v1::ChangeRecord record) {
    record.set_revision(++revision_);
    record.set_object(name);
    return engine_.Replay(record);
  }

  Engine engine_;
  uint64_t revision_ = 0;
};

TEST_F(ReplayBadRecordTest, QueueTakenFromAnEmptyQueueIsDataLoss) {
  Create("q", v1::QUEUE);
  v1::ChangeRecord taken;
  taken.mutable_queue_taken();
  EXPECT_EQ(Replay("q", taken).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord tasks;
  tasks.mutable_tasks_changed()->set_unfinished(-1);
  EXPECT_EQ(Replay("q", tasks).code(), absl::StatusCode::kDataLoss);
}

TEST_F(ReplayBadRecordTest, RecordsOfAnotherTypeAreDataLoss) {
  Create("q", v1::QUEUE);
  Create("s", v1::BOUNDED_SEMAPHORE);
  Create("e", v1::EVENT);
  Create("b", v1::BARRIER);
  v1::ChangeRecord semaphore;
  semaphore.mutable_semaphore_changed()->set_value(0);
  EXPECT_EQ(Replay("q", semaphore).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord event;
  event.mutable_event_changed()->set_set(true);
  EXPECT_EQ(Replay("s", event).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord barrier;
  barrier.mutable_barrier_changed()->set_generation(1);
  EXPECT_EQ(Replay("e", barrier).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord put;
  put.mutable_queue_put();
  EXPECT_EQ(Replay("b", put).code(), absl::StatusCode::kDataLoss);
}

TEST_F(ReplayBadRecordTest, SemaphoreStatesThatCannotBeAreDataLoss) {
  Create("s", v1::BOUNDED_SEMAPHORE);  // initial value 1
  v1::ChangeRecord negative;
  negative.mutable_semaphore_changed()->set_value(-1);
  EXPECT_EQ(Replay("s", negative).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord past_bound;
  past_bound.mutable_semaphore_changed()->set_value(1);
  v1::SemaphoreUnits* holding =
      past_bound.mutable_semaphore_changed()->add_holdings();
  holding->set_session(5);
  holding->set_units(1);
  EXPECT_EQ(Replay("s", past_bound).code(), absl::StatusCode::kDataLoss);
  v1::ChangeRecord no_units;
  no_units.mutable_semaphore_changed()->add_holdings()->set_session(5);
  EXPECT_EQ(Replay("s", no_units).code(), absl::StatusCode::kDataLoss);
}

TEST_F(ReplayBadRecordTest, BarrierGenerationGoingBackIsDataLoss) {
  Create("b", v1::BARRIER);
  v1::ChangeRecord two;
  two.mutable_barrier_changed()->set_generation(2);
  ASSERT_TRUE(Replay("b", two).ok());
  v1::ChangeRecord one;
  one.mutable_barrier_changed()->set_generation(1);
  EXPECT_EQ(Replay("b", one).code(), absl::StatusCode::kDataLoss);
}

TEST(ReplaySyncNoSinkTest, NothingIsRecordedWithoutASink) {
  Engine engine(Limits{}, absl::Seconds(10));
  const SessionId s = engine.sessions().Open(0, "label", absl::Now())->id;
  InitialContents init;
  init.parties = 1;
  init.semaphore_value = 1;
  Registry& registry = engine.registry();
  ASSERT_TRUE(registry.Open("q", ObjectType::kQueue, init, Caller{}).ok());
  ASSERT_TRUE(registry.Open("s", ObjectType::kSemaphore, init, Caller{}).ok());
  ASSERT_TRUE(registry.Open("e", ObjectType::kEvent, init, Caller{}).ok());
  ASSERT_TRUE(registry.Open("b", ObjectType::kBarrier, init, Caller{}).ok());
  auto q = *registry.Find<QueueObject>("q");
  ASSERT_TRUE(q->Put(Caller{s}, Value(1), nullptr).ok());
  ASSERT_TRUE(q->Get(Caller{s}, nullptr).ok());
  ASSERT_TRUE(q->TaskDone().ok());
  auto sem = *registry.Find<SemaphoreObject>("s");
  ASSERT_TRUE(sem->Acquire(Caller{s}, nullptr).ok());
  ASSERT_TRUE(sem->Release(Caller{s}, 1).ok());
  ASSERT_TRUE((*registry.Find<EventObject>("e"))->Set().ok());
  auto barrier = *registry.Find<BarrierObject>("b");
  ASSERT_TRUE(barrier->Wait(Caller{s}, TestWaiter::Make(s)).ok());
  ASSERT_TRUE(barrier->Abort().ok());
  EXPECT_EQ(engine.changes().revision(), 0u);
}

}  // namespace
}  // namespace statehub
