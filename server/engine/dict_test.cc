#include "server/engine/dict.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

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

}  // namespace
}  // namespace statehub
