#include "server/engine/list.h"

#include "gtest/gtest.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

class ListTest : public ::testing::Test {
 protected:
  ListTest() : registry_(Limits{}) {
    EXPECT_TRUE(registry_.Open("l", ObjectType::kList, {}, Caller{}).ok());
    list_ = *registry_.Find<ListObject>("l");
  }
  Value Contents() { return *list_->GetSlice(Caller{}, {}); }
  Registry registry_;
  std::shared_ptr<ListObject> list_;
};

TEST_F(ListTest, FailedSortLeavesTheListUnchanged) {
  ASSERT_TRUE(list_->Extend({3, "a", 1, 2}).ok());
  absl::Status s = list_->Sort(false);
  EXPECT_EQ(GetErrorKind(s), ErrorKind::kTypeError);
  EXPECT_EQ(Contents(), Value::List({3, "a", 1, 2}));
}

TEST_F(ListTest, ReverseSortIsStable) {
  // sorted([(1,'a'),(0,'b'),(1,'c')], reverse=True) compares whole tuples;
  // use equal numbers of different kinds to see stability: 1, 1.0, True.
  ASSERT_TRUE(list_->Extend({1, 2, 1.0, true}).ok());
  ASSERT_TRUE(list_->Sort(true).ok());
  const Value contents = Contents();
  const Value::Items& items = contents.AsItems();
  EXPECT_TRUE(items[0].is_int() && items[0].AsInt() == 2);
  EXPECT_TRUE(items[1].is_int());
  EXPECT_TRUE(items[2].is_double());
  EXPECT_TRUE(items[3].is_bool());
}

TEST_F(ListTest, RepeatIsBoundedByMaxElements) {
  Limits limits;
  limits.max_elements = 10;
  Registry small(limits);
  ASSERT_TRUE(small.Open("l", ObjectType::kList, {}, Caller{}).ok());
  auto list = *small.Find<ListObject>("l");
  ASSERT_TRUE(list->Extend({1, 2, 3}).ok());
  EXPECT_EQ(GetErrorLimit(list->Repeat(INT64_MAX).status()), "max_elements");
  EXPECT_EQ(*list->Len(), 3);
  EXPECT_EQ(*list->Repeat(3), 9);
}

}  // namespace
}  // namespace statehub
