// Numbered calls: the stream holds a call's records back until its answer
// follows them, and the answers a session keeps for retries, across a
// replay too.

#include "server/engine/replies.h"

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/test_recorder.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::ChangeRecord Cell(int64_t value) {
  v1::ChangeRecord record;
  record.set_object("cell");
  record.mutable_cell_set()->mutable_value()->set_int_value(value);
  return record;
}

v1::ChangeRecord Answered(uint64_t call, absl::string_view response) {
  v1::ChangeRecord record;
  record.mutable_call_answered()->set_call(call);
  record.mutable_call_answered()->set_response(std::string(response));
  return record;
}

// What the sink saw: "revision:kind" with the call number when set.
std::vector<std::string> Seen(const RecordingSink& sink) {
  std::vector<std::string> out;
  for (const v1::ChangeRecord& r : sink.records()) {
    std::string what = r.has_call_answered() ? "answer" : "cell";
    out.push_back(absl::StrCat(r.revision(), ":", what,
                               r.call() ? absl::StrCat("#", r.call()) : ""));
  }
  return out;
}

void PublishOnAnotherThread(ChangeStream& changes, int64_t value) {
  std::thread([&changes, value] {
    v1::ChangeRecord record = Cell(value);
    changes.Publish(record);
  }).join();
}

class NumberedCallTest : public ::testing::Test {
 protected:
  Engine engine_{Limits{}, absl::Seconds(10)};
  RecordingSink sink_{engine_};
  ChangeStream& changes_ = engine_.changes();
};

TEST_F(NumberedCallTest, HoldsItsRecordsAndLaterOnesBackUntilItsAnswer) {
  {
    NumberedCall call(changes_, 7, 1);
    v1::ChangeRecord mine = Cell(1);
    changes_.Publish(mine);
    // Another call's change, after this one's: it waits too, or the log
    // could hold it and not the answer this call's retry needs.
    PublishOnAnotherThread(changes_, 2);
    EXPECT_THAT(Seen(sink_), IsEmpty());
    EXPECT_EQ(changes_.revision(), 2u);
    v1::ChangeRecord answer = Answered(1, "r");
    call.Answer(answer);
    EXPECT_EQ(answer.session(), 7u);
  }
  EXPECT_THAT(Seen(sink_), ElementsAre("1:cell#1", "2:cell", "3:answer#1"));
}

TEST_F(NumberedCallTest, ACallThatChangesNothingLogsNoAnswerAndHoldsNothing) {
  NumberedCall call(changes_, 7, 1);
  v1::ChangeRecord answer = Answered(1, "r");
  call.Answer(answer);
  PublishOnAnotherThread(changes_, 2);
  EXPECT_THAT(Seen(sink_), ElementsAre("1:cell"));
}

TEST_F(NumberedCallTest, OverlappingCallsGoOutWhenTheOldestIsAnswered) {
  NumberedCall first(changes_, 7, 1);
  v1::ChangeRecord mine = Cell(1);
  changes_.Publish(mine);
  std::thread([this] {
    NumberedCall second(changes_, 8, 1);
    v1::ChangeRecord theirs = Cell(2);
    changes_.Publish(theirs);
    v1::ChangeRecord answer = Answered(1, "b");
    second.Answer(answer);
  }).join();
  EXPECT_THAT(Seen(sink_), IsEmpty());
  v1::ChangeRecord answer = Answered(1, "a");
  first.Answer(answer);
  EXPECT_THAT(Seen(sink_),
              ElementsAre("1:cell#1", "2:cell#1", "3:answer#1", "4:answer#1"));
}

TEST_F(NumberedCallTest, EndingWithoutAnAnswerLetsTheRecordsGo) {
  {
    NumberedCall call(changes_, 7, 1);
    v1::ChangeRecord mine = Cell(1);
    changes_.Publish(mine);
  }
  PublishOnAnotherThread(changes_, 2);
  EXPECT_THAT(Seen(sink_), ElementsAre("1:cell#1", "2:cell"));
}

// Keeps how records reached it: one group per Write or WriteGroup.
class GroupSink final : public ChangeSink {
 public:
  void Write(const v1::ChangeRecord& record) override {
    groups.push_back({record.revision()});
    more.push_back(record.more());
  }
  void WriteGroup(absl::Span<const v1::ChangeRecord> records) override {
    std::vector<uint64_t>& group = groups.emplace_back();
    for (const v1::ChangeRecord& r : records) {
      group.push_back(r.revision());
      more.push_back(r.more());
    }
  }
  std::vector<std::vector<uint64_t>> groups;
  // ChangeRecord.more of every record, in order.
  std::vector<bool> more;
};

TEST(NumberedCallGroupTest, ACallsChangesAndAnswerReachTheSinkAsOneGroup) {
  // The log takes a group all or none: a crash cannot keep the changes of
  // a call without the answer its retry needs.
  ChangeStream changes;
  GroupSink sink;
  changes.set_sink(&sink);
  {
    NumberedCall call(changes, 7, 1);
    v1::ChangeRecord first = Cell(1);
    changes.Publish(first);
    v1::ChangeRecord second = Cell(2);
    changes.Publish(second);
    v1::ChangeRecord answer = Answered(1, "r");
    call.Answer(answer);
  }
  v1::ChangeRecord after = Cell(3);
  changes.Publish(after);
  EXPECT_THAT(sink.groups, ElementsAre(ElementsAre(1, 2, 3), ElementsAre(4)));
  EXPECT_THAT(sink.more, ElementsAre(true, true, false, false));
  changes.set_sink(nullptr);
}

TEST(NumberedCallGroupTest, AGroupNeverEndsInsideACall) {
  // The first call opens, a second opens while it runs, then the first
  // changes more and is answered: its records lie on both sides of the
  // second's start, so nothing may go before the second is answered too.
  ChangeStream changes;
  GroupSink sink;
  changes.set_sink(&sink);
  // std::promise, not absl::Notification: TSan sees how the former
  // orders the threads, not the latter (docs/decisions.md,
  // "ThreadSanitizer").
  std::promise<void> second_published;
  std::promise<void> first_answered;
  NumberedCall first(changes, 7, 1);
  v1::ChangeRecord one = Cell(1);
  changes.Publish(one);
  std::thread second_thread([&] {
    NumberedCall second(changes, 8, 1);
    v1::ChangeRecord two = Cell(2);
    changes.Publish(two);
    second_published.set_value();
    first_answered.get_future().wait();
    v1::ChangeRecord answer = Answered(1, "b");
    second.Answer(answer);
  });
  second_published.get_future().wait();
  v1::ChangeRecord three = Cell(3);
  changes.Publish(three);
  v1::ChangeRecord answer = Answered(1, "a");
  first.Answer(answer);
  EXPECT_THAT(sink.groups, IsEmpty());
  first_answered.set_value();
  second_thread.join();
  EXPECT_THAT(sink.groups, ElementsAre(ElementsAre(1, 2, 3, 4, 5)));
  EXPECT_THAT(sink.more, ElementsAre(true, true, true, true, false));
  changes.set_sink(nullptr);
}

TEST(NumberedCallGroupTest, RecordsBeforeAnOpenCallGoWhenNoCallStraddlesIt) {
  ChangeStream changes;
  GroupSink sink;
  changes.set_sink(&sink);
  std::promise<void> third_published;
  std::promise<void> release_third;
  std::thread third_thread;
  {
    NumberedCall first(changes, 7, 1);
    v1::ChangeRecord one = Cell(1);
    changes.Publish(one);
    std::thread([&] {
      NumberedCall second(changes, 8, 1);
      v1::ChangeRecord two = Cell(2);
      changes.Publish(two);
      v1::ChangeRecord answer = Answered(1, "b");
      second.Answer(answer);
    }).join();
    third_thread = std::thread([&] {
      NumberedCall third(changes, 9, 1);
      v1::ChangeRecord four = Cell(4);
      changes.Publish(four);
      third_published.set_value();
      release_third.get_future().wait();
      v1::ChangeRecord answer = Answered(1, "c");
      third.Answer(answer);
    });
    third_published.get_future().wait();
    EXPECT_THAT(sink.groups, IsEmpty());
    // The first call ends without an answer (it changed nothing more).
  }
  // The first two calls lie wholly below the third's start: they go.
  EXPECT_THAT(sink.groups, ElementsAre(ElementsAre(1, 2, 3)));
  release_third.set_value();
  third_thread.join();
  EXPECT_THAT(sink.groups,
              ElementsAre(ElementsAre(1, 2, 3), ElementsAre(4, 5)));
  EXPECT_THAT(sink.more, ElementsAre(true, true, false, true, false));
  changes.set_sink(nullptr);
}

v1::CallAnswered Answer(uint64_t call, absl::string_view response) {
  v1::CallAnswered answer;
  answer.set_call(call);
  answer.set_response(std::string(response));
  return answer;
}

TEST(RepliesTest, RemembersUntilTheClientHasSeenTheAnswer) {
  Replies replies;
  EXPECT_FALSE(replies.Begin(1, 1, 1).has_value());
  replies.Remember(1, Answer(1, "one"));
  replies.Remember(1, Answer(2, "two"));
  ASSERT_TRUE(replies.Begin(1, 1, 1).has_value());
  EXPECT_EQ(replies.Begin(1, 1, 1)->response(), "one");
  EXPECT_FALSE(replies.Begin(2, 1, 1).has_value()) << "another session's";
  // The client has seen every answer below 2: the first is forgotten.
  EXPECT_EQ(replies.Begin(1, 2, 2)->response(), "two");
  EXPECT_FALSE(replies.Begin(1, 1, 2).has_value());
  EXPECT_EQ(replies.Count(), 1u);
  replies.Forget(1);
  EXPECT_EQ(replies.Count(), 0u);
}

TEST(RepliesTest, KeepsAtMostAFixedNumberPerSessionDroppingTheOldest) {
  Replies replies;
  for (uint64_t n = 1; n <= Replies::kMaxPerSession + 5; ++n) {
    replies.Remember(1, Answer(n, "x"));
  }
  EXPECT_EQ(replies.Count(), Replies::kMaxPerSession);
  EXPECT_FALSE(replies.Begin(1, 5, 1).has_value());
  EXPECT_TRUE(replies.Begin(1, 6, 1).has_value());
}

TEST(RepliesTest, AnswersComeBackFromTheLogAndFromASnapshot) {
  Engine engine(Limits{}, absl::Seconds(10));
  RecordingSink sink(engine);
  const SessionId live = engine.sessions().Open(0, "a", absl::Now())->id;
  const SessionId gone = engine.sessions().Open(0, "b", absl::Now())->id;
  ASSERT_TRUE(
      engine.registry().Open("d", ObjectType::kDict, {}, Caller{live}).ok());
  for (SessionId session : {live, gone}) {
    NumberedCall call(engine.changes(), session, 3);
    v1::ChangeRecord change;
    change.set_object("d");
    v1::MapEntry* entry = change.mutable_entries_set()->add_entries();
    entry->mutable_key()->set_string_value("k");
    entry->mutable_value()->set_int_value(static_cast<int64_t>(session));
    engine.changes().Publish(change);
    v1::ChangeRecord answer = Answered(3, "three");
    call.Answer(answer);
    engine.replies().Remember(session, answer.call_answered());
  }
  engine.sessions().End(gone);
  EXPECT_EQ(engine.replies().Count(), 1u);

  // From the log: the ended session's answer goes with it.
  Engine from_log(Limits{}, absl::Seconds(10));
  for (const v1::ChangeRecord& record : sink.records()) {
    ASSERT_TRUE(from_log.Replay(record).ok()) << record.ShortDebugString();
  }
  ASSERT_TRUE(from_log.FinishRecovery(absl::Now()).ok());
  ASSERT_TRUE(from_log.replies().Begin(live, 3, 1).has_value());
  EXPECT_EQ(from_log.replies().Begin(live, 3, 1)->response(), "three");
  EXPECT_FALSE(from_log.replies().Begin(gone, 3, 1).has_value());

  // From a snapshot of that engine.
  Engine from_snapshot(Limits{}, absl::Seconds(10));
  std::vector<v1::ChangeRecord> dump;
  const uint64_t start = from_log.DumpTo(
      [&dump](v1::ChangeRecord& record) { dump.push_back(record); });
  for (const v1::ChangeRecord& record : dump) {
    ASSERT_TRUE(from_snapshot.ReplaySnapshot(start, record).ok())
        << record.ShortDebugString();
  }
  ASSERT_TRUE(from_snapshot.FinishRecovery(absl::Now()).ok());
  EXPECT_EQ(from_snapshot.replies().Begin(live, 3, 1)->response(), "three");
}

}  // namespace
}  // namespace statehub
