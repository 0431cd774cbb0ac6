#include "server/engine/dict.h"

#include <cmath>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/deadlines.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;

class DictTest : public ::testing::Test {
 protected:
  DictTest() : registry_(Limits{}) {
    EXPECT_TRUE(registry_.Open("d", ObjectType::kDict, {}, Caller{}).ok());
    dict_ = *registry_.Find<DictObject>("d");
  }
  Registry registry_;
  std::shared_ptr<DictObject> dict_;
};

TEST_F(DictTest, ConcurrentIncrementsAreExact) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 10'000; ++i)
        ASSERT_TRUE(dict_->Increment("n", 1).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(dict_->Get(Caller{}, "n", nullptr)->value, Value(80'000));
}

TEST_F(DictTest, NumericKeysUnifyAndKeepTheFirstSpelling) {
  ASSERT_TRUE(dict_->Set(1.0, "a").ok());
  ASSERT_TRUE(dict_->Set(1, "b").ok());
  ASSERT_TRUE(dict_->Set(true, "c").ok());
  auto page = dict_->Items(Caller{}, 0, 0, 0, false);
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_TRUE(page->entries[0].first.is_double());  // {1.0: 'c'} in Python
  EXPECT_EQ(page->entries[0].second, Value("c"));
}

TEST_F(DictTest, IterationDetectsAChangeOfSize) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(dict_->Set(i, i).ok());
  auto first = dict_->Items(Caller{}, 0, 2, 0, true);
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first->next_cursor, 0);
  // Overwriting a key does not change the size: iteration goes on.
  ASSERT_TRUE(dict_->Set(0, 100).ok());
  auto second =
      dict_->Items(Caller{}, first->next_cursor, 2, first->size_version, true);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(dict_->Set("new", 1).ok());
  auto third = dict_->Items(Caller{}, second->next_cursor, 2,
                            second->size_version, true);
  EXPECT_EQ(GetErrorKind(third.status()), ErrorKind::kRuntimeError);
  EXPECT_EQ(third.status().message(),
            "dict \"d\": dictionary changed size during iteration");
}

TEST_F(DictTest, PagesCoverEveryEntryOnceAfterDeletes) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(dict_->Set(i, i).ok());
  for (int i = 0; i < 100; i += 3) ASSERT_TRUE(dict_->Delete(i).ok());
  std::vector<int64_t> seen;
  int64_t cursor = 0, version = 0;
  do {
    auto page = dict_->Items(Caller{}, cursor, 7, version, true);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& [k, v] : page->entries) seen.push_back(k.AsInt());
    cursor = page->next_cursor;
    version = page->size_version;
  } while (cursor != 0);
  std::vector<int64_t> expected;
  for (int i = 0; i < 100; ++i) {
    if (i % 3 != 0) expected.push_back(i);
  }
  EXPECT_EQ(seen, expected);
}

TEST_F(DictTest, UnhashableKeyNamesTheDict) {
  absl::Status s = dict_->Set(Value::List({1}), 1);
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kTypeError);
  EXPECT_EQ(s.message(), "dict \"d\": unhashable type: 'list'");
}

TEST_F(DictTest, MaxElementsLeavesTheDictUnchanged) {
  Limits limits;
  limits.max_elements = 3;
  Registry small(limits);
  ASSERT_TRUE(small.Open("d", ObjectType::kDict, {}, Caller{}).ok());
  auto dict = *small.Find<DictObject>("d");
  ASSERT_TRUE(dict->Update({{1, 1}, {2, 2}, {3, 3}}).ok());
  absl::Status s = dict->Update({{3, 30}, {4, 4}});
  EXPECT_EQ(GetErrorLimit(s), "max_elements");
  EXPECT_EQ(dict->Get(Caller{}, 3, nullptr)->value, Value(3));
  EXPECT_TRUE(dict->Set(3, 33).ok()) << "overwriting does not grow";
}

TEST_F(DictTest, IncrementRefusesNonNumbersAndOverflow) {
  ASSERT_TRUE(dict_->Set("s", "text").ok());
  EXPECT_EQ(GetErrorKind(dict_->Increment("s", 1).status()),
            ErrorKind::kTypeError);
  ASSERT_TRUE(dict_->Set("big", INT64_MAX).ok());
  EXPECT_EQ(GetErrorKind(dict_->Increment("big", 1).status()),
            ErrorKind::kValueError);
  EXPECT_EQ(dict_->Get(Caller{}, "big", nullptr)->value, Value(INT64_MAX));
  EXPECT_EQ(*dict_->Increment("f", 0.5), Value(0.5));
}

// -- TTL ---------------------------------------------------------------------

// Eventually polls `done` until it holds or 5 s pass: tests of expiry never
// assert how long it took, only that it happens.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(DeadlineIndexTest, PopsDueKeysEarliestFirstAndForgetsErasedOnes) {
  DeadlineIndex index;
  EXPECT_TRUE(index.empty());
  EXPECT_EQ(index.Earliest(), DeadlineIndex::kNone);
  index.Set("c", 30);
  index.Set("a", 10);
  index.Set("b", 20);
  index.Set("gone", 5);
  EXPECT_TRUE(index.Erase("gone"));
  EXPECT_FALSE(index.Erase("gone"));
  index.Set("a", 25);  // replaces a's deadline
  EXPECT_EQ(index.Get("a"), 25);
  EXPECT_EQ(index.Get("missing"), 0);
  EXPECT_EQ(index.Earliest(), 20);
  EXPECT_EQ(index.CountDue(25), 2);
  EXPECT_THAT(index.PopDue(100, 2), ElementsAre(Value("b"), Value("a")));
  EXPECT_THAT(index.PopDue(29, 10), ElementsAre());
  EXPECT_THAT(index.PopDue(30, 10), ElementsAre(Value("c")));
  EXPECT_TRUE(index.empty());
}

TEST(DeadlineIndexTest, NumericKeysAreOneKey) {
  DeadlineIndex index;
  index.Set(1, 10);
  index.Set(1.0, 20);
  EXPECT_EQ(index.size(), 1);
  EXPECT_EQ(index.Get(true), 20);
}

TEST_F(DictTest, EntryIsGoneAfterItsTtl) {
  ASSERT_TRUE(dict_->Set("k", 1, 0.05).ok());
  ASSERT_TRUE(dict_->Set("stays", 2).ok());
  EXPECT_TRUE(Eventually([&] { return !*dict_->Contains("k"); }));
  EXPECT_EQ(GetErrorKind(dict_->Get(Caller{}, "k", nullptr).status()),
            ErrorKind::kKeyError);
  EXPECT_EQ(*dict_->Len(), 1);
  EXPECT_EQ(dict_->Size(), 1);
}

TEST_F(DictTest, BackgroundExpirerReclaimsWithoutAnyCall) {
  ASSERT_TRUE(dict_->Set("k", 1, 0.02).ok());
  // Size reads without reclaiming: it drops to 0 once the expirer has
  // reclaimed, and even before it counts only live entries.
  EXPECT_TRUE(Eventually([&] { return dict_->Size() == 0; }));
}

TEST_F(DictTest, ExpiredEntriesAreNeverReturnedByAnyRead) {
  ASSERT_TRUE(dict_->Set("live", 1).ok());
  // Stops the background expirer, so that only the reads' own reclaiming
  // is left to hide the expired entries.
  registry_.expirer().Pause();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(dict_->Set(i, i, 0.001).ok());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(dict_->Size(), 1);
  EXPECT_FALSE(*dict_->Contains(3));
  const Value fallback("default");
  EXPECT_EQ(dict_->Get(Caller{}, 3, &fallback)->value, fallback);
  EXPECT_EQ(*dict_->Len(), 1);
  auto page = dict_->Items(Caller{}, 0, 0, 0, false);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->entries.size(), 1u);
  EXPECT_EQ(page->entries[0].first, Value("live"));
  registry_.expirer().Resume();
}

TEST_F(DictTest, ExpiredEntriesAreInvisibleToWritesToo) {
  registry_.expirer().Pause();
  ASSERT_TRUE(dict_->Set("live", 1).ok());
  for (const char* key : {"pop", "cas", "sd", "inc", "gas", "exp", "ttl"}) {
    ASSERT_TRUE(dict_->Set(key, 7, 0.001).ok());
  }
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(GetErrorKind(dict_->Pop(Caller{}, "pop", nullptr).status()),
            ErrorKind::kKeyError);
  EXPECT_EQ(GetErrorKind(dict_->Delete("pop")), ErrorKind::kKeyError);
  // Missing, so a compare-and-set that wants it missing swaps.
  EXPECT_TRUE(dict_->CompareAndSet(Caller{}, "cas", nullptr, 8)->swapped);
  EXPECT_EQ(*dict_->SetDefault(Caller{}, "sd", 9), Value(9));
  EXPECT_EQ(*dict_->Increment("inc", 1), Value(1));
  EXPECT_FALSE(dict_->GetAndSet(Caller{}, "gas", 3)->has_value());
  EXPECT_FALSE(*dict_->Expire("exp", 10));
  EXPECT_EQ(GetErrorKind(dict_->Ttl("ttl").status()), ErrorKind::kKeyError);
  // The new entries went to the end, as new keys do.
  auto page = dict_->Items(Caller{}, 0, 0, 0, true);
  std::vector<Value> keys;
  for (const auto& [key, value] : page->entries) keys.push_back(key);
  EXPECT_THAT(keys, ElementsAre(Value("live"), Value("cas"), Value("sd"),
                                Value("inc"), Value("gas")));
  // The last live entry is what popitem takes.
  ASSERT_TRUE(dict_->Set("last", 1, 0.001).ok());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(dict_->PopItem(Caller{})->first, Value("gas"));
  registry_.expirer().Resume();
}

TEST_F(DictTest, TtlCountsDown) {
  ASSERT_TRUE(dict_->Set("k", 1, 100).ok());
  absl::StatusOr<std::optional<absl::Duration>> first = dict_->Ttl("k");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_LE(**first, absl::Seconds(100));
  EXPECT_GT(**first, absl::Seconds(90));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_LT(**dict_->Ttl("k"), **first);
}

TEST_F(DictTest, TtlOfAKeyWithoutOneIsNoneAndOfAMissingKeyKeyError) {
  ASSERT_TRUE(dict_->Set("k", 1).ok());
  EXPECT_FALSE(dict_->Ttl("k")->has_value());
  absl::Status missing = dict_->Ttl("nope").status();
  EXPECT_EQ(GetErrorKind(missing), ErrorKind::kKeyError);
  EXPECT_EQ(missing.message(), "dict \"d\": key 'nope' not found");
}

TEST_F(DictTest, WritesWithoutATtlClearItAndIncrementKeepsIt) {
  auto has_ttl = [&](const Value& key) { return dict_->Ttl(key)->has_value(); };
  for (const char* key : {"set", "upd", "cas", "gas", "sd", "inc"}) {
    ASSERT_TRUE(dict_->Set(key, 1, 100).ok());
  }
  ASSERT_TRUE(dict_->Set("set", 2).ok());
  EXPECT_FALSE(has_ttl("set"));
  ASSERT_TRUE(dict_->Update({{"upd", 2}}).ok());
  EXPECT_FALSE(has_ttl("upd"));
  const Value one(1);
  ASSERT_TRUE(dict_->CompareAndSet(Caller{}, "cas", &one, 2)->swapped);
  EXPECT_FALSE(has_ttl("cas"));
  ASSERT_TRUE(dict_->GetAndSet(Caller{}, "gas", 2).ok());
  EXPECT_FALSE(has_ttl("gas"));
  // Kept: setdefault of a present key changes nothing, increment keeps it.
  ASSERT_TRUE(dict_->SetDefault(Caller{}, "sd", 2).ok());
  EXPECT_TRUE(has_ttl("sd"));
  ASSERT_TRUE(dict_->Increment("inc", 1).ok());
  EXPECT_TRUE(has_ttl("inc"));
  // A failed compare-and-set changes nothing.
  const Value other(5);
  ASSERT_FALSE(dict_->CompareAndSet(Caller{}, "sd", &other, 2)->swapped);
  EXPECT_TRUE(has_ttl("sd"));
  // A removed key's ttl does not come back with the key.
  ASSERT_TRUE(dict_->Delete("sd").ok());
  ASSERT_TRUE(dict_->Set("sd", 1).ok());
  EXPECT_FALSE(has_ttl("sd"));
}

TEST_F(DictTest, ExpireGivesAnExistingKeyATtl) {
  EXPECT_FALSE(*dict_->Expire("k", 10));
  EXPECT_FALSE(*dict_->Contains("k"));
  ASSERT_TRUE(dict_->Set("k", 1).ok());
  ASSERT_TRUE(dict_->Set("after", 2).ok());
  EXPECT_TRUE(*dict_->Expire("k", 10));
  EXPECT_GT(**dict_->Ttl("k"), absl::Seconds(9));
  EXPECT_TRUE(*dict_->Expire("k", 0.02));
  EXPECT_TRUE(Eventually([&] { return !*dict_->Contains("k"); }));
  EXPECT_EQ(*dict_->Len(), 1);
}

TEST_F(DictTest, BadTtlsAreValueErrorsNamingDictAndKey) {
  const double bad[] = {0,
                        -1,
                        std::nan(""),
                        std::numeric_limits<double>::infinity(),
                        -std::numeric_limits<double>::infinity(),
                        DictObject::kMaxTtlSeconds * 2};
  ASSERT_TRUE(dict_->Set("k", 1).ok());
  for (double ttl : bad) {
    absl::Status set = dict_->Set("x", 1, ttl);
    EXPECT_EQ(GetErrorKind(set), ErrorKind::kValueError) << ttl;
    EXPECT_EQ(set.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(set.message()),
                ::testing::StartsWith("dict \"d\": key 'x': "
                                      "a ttl must be"));
    absl::Status expire = dict_->Expire("k", ttl).status();
    EXPECT_EQ(GetErrorKind(expire), ErrorKind::kValueError) << ttl;
    EXPECT_THAT(std::string(expire.message()), ::testing::HasSubstr("key 'k'"));
  }
  // Nothing was stored, and k kept no ttl.
  EXPECT_FALSE(*dict_->Contains("x"));
  EXPECT_FALSE(dict_->Ttl("k")->has_value());
  // The cap itself is allowed.
  EXPECT_TRUE(dict_->Set("x", 1, DictObject::kMaxTtlSeconds).ok());
}

TEST_F(DictTest, ClearDropsTtls) {
  ASSERT_TRUE(dict_->Set("k", 1, 100).ok());
  ASSERT_TRUE(dict_->Clear().ok());
  ASSERT_TRUE(dict_->Set("k", 1).ok());
  EXPECT_FALSE(dict_->Ttl("k")->has_value());
}

TEST_F(DictTest, ADeletedDictIsNotKeptAliveByItsDeadlines) {
  ASSERT_TRUE(dict_->Set("k", 1, 1000).ok());
  std::weak_ptr<DictObject> weak = dict_;
  dict_.reset();
  ASSERT_TRUE(registry_.Delete("d").ok());
  EXPECT_TRUE(weak.expired());
}

TEST_F(DictTest, ConcurrentTtlWritesReadsAndExpiries) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 2000; ++i) {
        const Value key(i % 50);
        switch ((i + t) % 5) {
          case 0:
            ASSERT_TRUE(dict_->Set(key, i, 0.0005 * (i % 7 + 1)).ok());
            break;
          case 1:
            ASSERT_TRUE(dict_->Set(key, i).ok());
            break;
          case 2:
            ASSERT_TRUE(dict_->Expire(key, 0.001).ok());
            break;
          case 3:
            ASSERT_TRUE(dict_->Items(Caller{}, 0, 0, 0, false).ok());
            break;
          default:
            ASSERT_TRUE(dict_->Increment(key, 1).ok());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // Whatever is left with a ttl expires.
  EXPECT_TRUE(Eventually([&] {
    auto page = dict_->Items(Caller{}, 0, 0, 0, true);
    for (const auto& [key, value] : page->entries) {
      if (dict_->Ttl(key).ok() && dict_->Ttl(key)->has_value()) return false;
    }
    return true;
  }));
}

}  // namespace
}  // namespace statehub
