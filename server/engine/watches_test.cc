#include "server/engine/watches.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/dict.h"
#include "server/engine/engine.h"
#include "statehub/internal/value_codec.h"
#include "statehub/status.h"

namespace statehub {
namespace {

class WatchesTest : public ::testing::Test {
 protected:
  WatchesTest() : engine_(Limits{}, absl::Seconds(10)) {
    EXPECT_TRUE(
        engine_.registry().Open("jobs", ObjectType::kDict, {}, Caller{}).ok());
    jobs_ = *engine_.registry().Find<DictObject>("jobs");
  }

  std::shared_ptr<Watch> Start(WatchSpec spec) {
    absl::StatusOr<std::shared_ptr<Watch>> watch =
        engine_.watches().Start(spec, [this] { wakes_++; });
    EXPECT_TRUE(watch.ok()) << watch.status();
    return watch.ok() ? *watch : nullptr;
  }

  static std::string Key(const v1::Value& wire) {
    absl::StatusOr<Value> key = internal::DecodeValue(wire, 8);
    return key.ok() && key->is_string() ? key->AsString() : "?";
  }

  // Keys lists the keys the records set, in order.
  static std::vector<std::string> Keys(const Watch::Batch& batch) {
    std::vector<std::string> keys;
    for (const auto& change : batch.changes) {
      for (const v1::MapEntry& e : change->record.entries_set().entries()) {
        keys.push_back(Key(e.key()));
      }
    }
    return keys;
  }

  Engine engine_;
  std::shared_ptr<DictObject> jobs_;
  std::atomic<int> wakes_{0};
};

TEST_F(WatchesTest, DeliversAnObjectsChangesInOrderAndWakesOnce) {
  std::shared_ptr<Watch> watch = Start({.name = "jobs"});
  ASSERT_NE(watch, nullptr);
  EXPECT_EQ(watch->Take(100, 1 << 20).changes.size(), 0u);
  ASSERT_TRUE(jobs_->Set("a", 1).ok());
  ASSERT_TRUE(jobs_->Set("b", 2).ok());
  EXPECT_EQ(wakes_.load(), 1);  // once until taken
  Watch::Batch batch = watch->Take(100, 1 << 20);
  ASSERT_EQ(batch.changes.size(), 2u);
  EXPECT_LT(batch.changes[0]->record.revision(),
            batch.changes[1]->record.revision());
  EXPECT_EQ(batch.revision, batch.changes[1]->record.revision());
  EXPECT_FALSE(batch.more);
  ASSERT_TRUE(jobs_->Delete("a").ok());
  EXPECT_EQ(wakes_.load(), 2);
  batch = watch->Take(100, 1 << 20);
  ASSERT_EQ(batch.changes.size(), 1u);
  EXPECT_TRUE(batch.changes[0]->record.has_entries_removed());
  watch->Cancel();
  ASSERT_TRUE(jobs_->Set("c", 3).ok());
  EXPECT_EQ(wakes_.load(), 2);
  EXPECT_EQ(engine_.watches().watches(), 0u);
}

TEST_F(WatchesTest, InitialContentsAndChangesMeetWithoutGapOrRepeat) {
  ASSERT_TRUE(jobs_->Set("before", 1).ok());
  // Writers race the watch's start: every key must be either in the
  // initial contents or in an event, never both, never neither.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      ASSERT_TRUE(jobs_->Set(absl::StrCat("k", i), i).ok());
    }
  });
  absl::SleepFor(absl::Milliseconds(5));
  std::shared_ptr<Watch> watch = Start({.name = "jobs", .initial = true});
  absl::SleepFor(absl::Milliseconds(5));
  stop = true;
  writer.join();
  ASSERT_NE(watch, nullptr);
  absl::flat_hash_set<std::string> initial;
  for (const v1::ChangeRecord& r : watch->initial()) {
    for (const v1::MapEntry& e : r.created().entries()) {
      initial.insert(Key(e.key()));
    }
  }
  EXPECT_TRUE(initial.contains("before"));
  std::vector<std::string> events;
  for (;;) {
    Watch::Batch batch = watch->Take(1000, 1 << 20);
    for (const std::string& k : Keys(batch)) events.push_back(k);
    if (!batch.more) break;
  }
  for (const std::string& k : events) EXPECT_FALSE(initial.contains(k)) << k;
  const int64_t total = jobs_->Size();
  EXPECT_EQ(static_cast<int64_t>(initial.size() + events.size()), total);
}

TEST_F(WatchesTest, ResumesFromHistoryAndSaysWhenItIsTooOld) {
  std::shared_ptr<Watch> first = Start({.name = "jobs"});
  ASSERT_TRUE(jobs_->Set("a", 1).ok());
  const uint64_t after_a = first->Take(10, 1 << 20).revision;
  ASSERT_TRUE(jobs_->Set("b", 2).ok());
  ASSERT_TRUE(jobs_->Set("c", 3).ok());
  first->Cancel();

  std::shared_ptr<Watch> resumed = Start({.name = "jobs", .since = after_a});
  EXPECT_THAT(Keys(resumed->Take(10, 1 << 20)),
              ::testing::ElementsAre("b", "c"));

  WatchHub::Options small;
  small.history_records = 2;
  engine_.watches().set_options(small);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(jobs_->Set("x", i).ok());
  absl::StatusOr<std::shared_ptr<Watch>> old =
      engine_.watches().Start({.name = "jobs", .since = after_a}, [] {});
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(GetErrorKind(old.status()), ErrorKind::kWatchTooOld);
  const auto [revision, oldest] = GetWatchRevisions(old.status());
  EXPECT_EQ(revision, engine_.changes().revision());
  EXPECT_GT(oldest, after_a);
  EXPECT_THAT(old.status().message(), ::testing::HasSubstr("jobs"));
}

TEST_F(WatchesTest, ASlowWatcherIsEndedWithBoundedBacklog) {
  WatchHub::Options small;
  small.max_backlog = 10;
  engine_.watches().set_options(small);
  std::shared_ptr<Watch> watch = Start({.name = "jobs"});
  watch->Take(10, 1 << 20);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(jobs_->Set("k", i).ok());
  Watch::Batch batch = watch->Take(100, 1 << 20);
  EXPECT_TRUE(batch.changes.empty());
  EXPECT_EQ(GetErrorKind(batch.end), ErrorKind::kWatchTooOld);
  EXPECT_THAT(batch.end.message(), ::testing::HasSubstr("behind"));
}

TEST_F(WatchesTest, PrefixWatchSeesCreationAndDeletionUnderIt) {
  ASSERT_TRUE(
      engine_.registry().Open("cfg/a", ObjectType::kDict, {}, Caller{}).ok());
  std::shared_ptr<Watch> watch =
      Start({.name = "cfg/", .by_prefix = true, .initial = true});
  ASSERT_EQ(watch->initial().size(), 1u);
  EXPECT_EQ(watch->initial()[0].object(), "cfg/a");
  watch->Take(10, 1 << 20);
  ASSERT_TRUE(
      engine_.registry().Open("cfg/b", ObjectType::kList, {}, Caller{}).ok());
  ASSERT_TRUE(
      engine_.registry().Open("other", ObjectType::kList, {}, Caller{}).ok());
  ASSERT_TRUE(engine_.registry().Delete("cfg/a").ok());
  Watch::Batch batch = watch->Take(10, 1 << 20);
  ASSERT_EQ(batch.changes.size(), 2u);
  EXPECT_EQ(batch.changes[0]->record.object(), "cfg/b");
  EXPECT_TRUE(batch.changes[0]->record.has_created());
  EXPECT_EQ(batch.changes[1]->record.object(), "cfg/a");
  EXPECT_TRUE(batch.changes[1]->record.has_deleted());
}

TEST_F(WatchesTest, BadRequestsGetClearErrors) {
  auto start = [&](WatchSpec spec) {
    return engine_.watches().Start(spec, [] {}).status();
  };
  absl::Status missing = start({.name = "nope"});
  EXPECT_EQ(GetErrorKind(missing), ErrorKind::kObjectNotFound);
  EXPECT_THAT(missing.message(), ::testing::HasSubstr("nope"));
  EXPECT_EQ(GetErrorKind(start({.name = "bad name!"})), ErrorKind::kValueError);
  absl::Status future = start({.name = "jobs", .since = 1'000'000});
  EXPECT_EQ(future.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(future.message(), ::testing::HasSubstr("after the server"));
  EXPECT_EQ(start({.name = "jobs", .since = 0, .initial = true}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(WatchesTest, ThousandsOfWatchesOnOneObjectEachGetEveryChange) {
  std::vector<std::shared_ptr<Watch>> watches;
  for (int i = 0; i < 5000; ++i) {
    watches.push_back(Start({.name = "jobs"}));
    watches.back()->Take(10, 1 << 20);
  }
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(jobs_->Set("k", i).ok());
  EXPECT_EQ(wakes_.load(), 5000);  // each woken once
  const WatchedChange* first = nullptr;
  for (const std::shared_ptr<Watch>& watch : watches) {
    Watch::Batch batch = watch->Take(100, 1 << 20);
    ASSERT_EQ(batch.changes.size(), 10u);
    // One copy of a record, shared by every watch.
    if (first == nullptr) first = batch.changes[0].get();
    EXPECT_EQ(batch.changes[0].get(), first);
  }
  EXPECT_EQ(engine_.watches().events(), 50'000u);
  for (const std::shared_ptr<Watch>& watch : watches) watch->Cancel();
  EXPECT_EQ(engine_.watches().watches(), 0u);
  ASSERT_TRUE(jobs_->Set("k", 11).ok());
  EXPECT_EQ(wakes_.load(), 5000);
}

TEST_F(WatchesTest, IdleWatchesGetProgressNotices) {
  WatchHub::Options options;
  options.progress_interval = absl::Milliseconds(1);
  engine_.watches().set_options(options);
  std::shared_ptr<Watch> watch = Start({.name = "jobs"});
  watch->Take(10, 1 << 20);
  engine_.watches().Tick(absl::Now() + absl::Seconds(1));
  EXPECT_EQ(wakes_.load(), 1);
  Watch::Batch batch = watch->Take(10, 1 << 20);
  EXPECT_TRUE(batch.progress);
  EXPECT_TRUE(batch.changes.empty());
}

}  // namespace
}  // namespace statehub
