// Change records of dict entries with a ttl: deadlines are absolute and
// recorded, an expiry is a record of the server's own, and replaying the
// log or a snapshot restores the same deadlines and expires the same
// entries.

#include <functional>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/dict.h"
#include "server/engine/engine.h"
#include "server/engine/test_recorder.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// Expired returns the keys of the expiry records in `records`, as strings.
std::vector<std::string> Expired(const std::vector<v1::ChangeRecord>& records) {
  std::vector<std::string> keys;
  for (const v1::ChangeRecord& record : records) {
    if (!record.entries_removed().expired()) continue;
    EXPECT_EQ(record.session(), 0u) << record.ShortDebugString();
    for (const v1::Value& key : record.entries_removed().keys()) {
      keys.push_back(key.string_value());
    }
  }
  return keys;
}

class DictReplayTest : public ::testing::Test {
 protected:
  DictReplayTest() : engine_(Limits{}, absl::Seconds(10)), sink_(engine_) {
    EXPECT_TRUE(
        engine_.registry().Open("d", ObjectType::kDict, {}, Caller{}).ok());
    dict_ = *engine_.registry().Find<DictObject>("d");
  }

  Engine engine_;
  RecordingSink sink_;
  std::shared_ptr<DictObject> dict_;
};

TEST_F(DictReplayTest, RecordsCarryAbsoluteDeadlines) {
  const int64_t before = absl::ToUnixMicros(absl::Now());
  ASSERT_TRUE(dict_->Set("k", 1, 10).ok());
  ASSERT_TRUE(dict_->Increment("k", 1).ok());
  ASSERT_TRUE(dict_->Expire("k", 20).ok());
  ASSERT_TRUE(dict_->Set("k", 3).ok());
  const int64_t after = absl::ToUnixMicros(absl::Now());
  std::vector<v1::ChangeRecord> records = sink_.records();
  ASSERT_EQ(records.size(), 5u);  // created, then the four writes
  const v1::EntriesSet& set = records[1].entries_set();
  ASSERT_EQ(set.deadlines_size(), 1);
  EXPECT_GE(set.deadlines(0), before + 10'000'000);
  EXPECT_LE(set.deadlines(0), after + 10'000'000);
  // The increment kept it; expire recorded the entry with its new one; a
  // plain set records none.
  EXPECT_THAT(records[2].entries_set().deadlines(),
              ElementsAre(set.deadlines(0)));
  EXPECT_EQ(records[2].entries_set().entries(0).value().int_value(), 2);
  ASSERT_EQ(records[3].entries_set().deadlines_size(), 1);
  EXPECT_GE(records[3].entries_set().deadlines(0), before + 20'000'000);
  EXPECT_EQ(records[3].entries_set().entries(0).value().int_value(), 2);
  EXPECT_EQ(records[4].entries_set().deadlines_size(), 0);
}

TEST_F(DictReplayTest, AnExpiryIsARecordOfTheServerEvenInsideACall) {
  ASSERT_TRUE(dict_->Set("k", 1, 0.001).ok());
  absl::SleepFor(absl::Milliseconds(10));
  {
    // A call of session 7 comes upon the expired entry first.
    ChangeAuthor author(7);
    ASSERT_TRUE(dict_->Set("other", 1).ok());
  }
  EXPECT_TRUE(Eventually([&] { return !Expired(sink_.records()).empty(); }));
  EXPECT_THAT(Expired(sink_.records()), ElementsAre("k"));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(DictReplayTest, TheBackgroundExpirerRecordsWithoutAnyCall) {
  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(dict_->Set(key, 1, 0.02).ok());
  }
  ASSERT_TRUE(dict_->Set("stays", 1).ok());
  EXPECT_TRUE(Eventually([&] { return Expired(sink_.records()).size() == 3; }));
  EXPECT_THAT(Expired(sink_.records()),
              ::testing::UnorderedElementsAre("a", "b", "c"));
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(DictReplayTest, ReplayRestoresTheSameDeadlines) {
  ASSERT_TRUE(dict_->Set("a", 1, 100).ok());
  ASSERT_TRUE(dict_->Set("b", 2).ok());
  ASSERT_TRUE(dict_->Update({{"c", 3}, {"d", 4}}).ok());
  ASSERT_TRUE(dict_->Expire("d", 200).ok());
  ASSERT_TRUE(dict_->Delete("a").ok());
  ASSERT_TRUE(dict_->Set("a", 5, 50).ok());
  ASSERT_TRUE(dict_->Set("b", 6, 60).ok());
  ASSERT_TRUE(dict_->Set("b", 7).ok());
  // The dump carries each entry's deadline (0: none): equal dumps mean
  // equal deadlines.
  std::vector<v1::ChangeRecord> dump;
  dict_->Dump(&dump);
  ASSERT_EQ(dump.size(), 1u);
  const auto& deadlines = dump[0].created().entry_deadlines();
  ASSERT_EQ(deadlines.size(), 4);  // b c d a
  EXPECT_EQ(deadlines[0], 0);
  EXPECT_EQ(deadlines[1], 0);
  EXPECT_NE(deadlines[2], 0);
  EXPECT_NE(deadlines[3], 0);
  ExpectReplaysTo(engine_, sink_.records());
}

TEST_F(DictReplayTest, ADeadlinePassedWhileDownExpiresAsARecordOnceServing) {
  // This engine stands for the server that went down: it expires nothing.
  engine_.registry().expirer().Pause();
  ASSERT_TRUE(dict_->Set("gone", 1, 0.05).ok());
  ASSERT_TRUE(dict_->Set("stays", 2, 1000).ok());
  const std::vector<v1::ChangeRecord> log = sink_.records();

  // The "restart": replay into a fresh engine, then the deadline passes
  // before it serves.
  Engine restarted(engine_.limits(), engine_.sessions().ttl());
  for (const v1::ChangeRecord& record : log) {
    ASSERT_TRUE(restarted.Replay(record).ok());
  }
  ASSERT_TRUE(restarted.FinishRecovery(absl::Now()).ok());
  absl::SleepFor(absl::Milliseconds(100));
  // Recovery keeps the entry (with its past deadline) until the server
  // serves: nothing expires unrecorded.
  EXPECT_THAT(DumpText(restarted), ElementsAreArray(DumpText(engine_)));

  RecordingSink sink(restarted);
  restarted.registry().expirer().Resume();
  EXPECT_TRUE(Eventually([&] { return !Expired(sink.records()).empty(); }));
  EXPECT_THAT(Expired(sink.records()), ElementsAre("gone"));
  auto dict = *restarted.registry().Find<DictObject>("d");
  EXPECT_FALSE(*dict->Contains("gone"));
  EXPECT_GT(**dict->Ttl("stays"), absl::Seconds(900));
  // The restarted server's records continue the log.
  std::vector<v1::ChangeRecord> whole = log;
  for (const v1::ChangeRecord& record : sink.records()) whole.push_back(record);
  ExpectReplaysTo(restarted, whole);
}

TEST_F(DictReplayTest, ASnapshotCarriesDeadlinesAndReplaysTheLogAfterIt) {
  ASSERT_TRUE(dict_->Set("a", 1, 1000).ok());
  ASSERT_TRUE(dict_->Set("soon", 2, 0.05).ok());
  ASSERT_TRUE(dict_->Set("b", 3).ok());
  std::vector<v1::ChangeRecord> snapshot;
  const uint64_t start = engine_.DumpTo(
      [&](v1::ChangeRecord& record) { snapshot.push_back(record); });
  // After the snapshot: an expiry and more writes, in the log only.
  EXPECT_TRUE(Eventually([&] { return !Expired(sink_.records()).empty(); }));
  ASSERT_TRUE(dict_->Expire("b", 500).ok());

  Engine fresh(engine_.limits(), engine_.sessions().ttl());
  for (const v1::ChangeRecord& record : snapshot) {
    ASSERT_TRUE(fresh.ReplaySnapshot(start, record).ok());
  }
  for (const v1::ChangeRecord& record : sink_.records()) {
    if (record.revision() <= start) continue;
    const absl::Status s = fresh.Replay(record);
    ASSERT_TRUE(s.ok()) << s << " on " << record.ShortDebugString();
  }
  ASSERT_TRUE(fresh.FinishRecovery(absl::Now()).ok());
  EXPECT_THAT(DumpText(fresh), ElementsAreArray(DumpText(engine_)));
}

TEST_F(DictReplayTest, MismatchedDeadlinesAreDataLoss) {
  v1::ChangeRecord record;
  record.set_revision(1000);
  record.set_object("d");
  v1::EntriesSet* set = record.mutable_entries_set();
  set->add_entries()->mutable_key()->set_string_value("k");
  set->add_entries()->mutable_key()->set_string_value("j");
  set->add_deadlines(5);
  EXPECT_EQ(dict_->Apply(record).code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(*dict_->Contains("k"));
}

}  // namespace
}  // namespace statehub
