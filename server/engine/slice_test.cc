#include "server/engine/slice.h"

#include <vector>

#include "gtest/gtest.h"

namespace statehub {
namespace {

// Positions a slice selects, as Python's range(10)[slice] would list them.
std::vector<int64_t> Select(SliceSpec spec, int64_t length = 10) {
  absl::StatusOr<SliceRange> r = ResolveSlice(spec, length);
  EXPECT_TRUE(r.ok());
  std::vector<int64_t> out;
  for (int64_t i = 0; i < r->count; ++i) out.push_back(r->at(i));
  return out;
}

using V = std::vector<int64_t>;

// Expected values are from CPython 3.11: list(range(10))[start:stop:step].
TEST(SliceTest, MatchesPython) {
  EXPECT_EQ(Select({}), (V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(Select({2, 5, {}}), (V{2, 3, 4}));
  EXPECT_EQ(Select({-3, {}, {}}), (V{7, 8, 9}));
  EXPECT_EQ(Select({{}, -7, {}}), (V{0, 1, 2}));
  EXPECT_EQ(Select({{}, {}, 3}), (V{0, 3, 6, 9}));
  EXPECT_EQ(Select({{}, {}, -1}), (V{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(Select({8, 2, -2}), (V{8, 6, 4}));
  EXPECT_EQ(Select({-1, -4, -1}), (V{9, 8, 7}));
  EXPECT_EQ(Select({100, {}, -3}), (V{9, 6, 3, 0}));
  EXPECT_EQ(Select({-100, 100, {}}), (V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(Select({5, 2, {}}), V{});
  EXPECT_EQ(Select({{}, {}, INT64_MIN}), (V{9}));
  EXPECT_EQ(Select({{}, {}, {}}, 0), V{});
}

TEST(SliceTest, StepZeroIsAnError) {
  EXPECT_FALSE(ResolveSlice({{}, {}, 0}, 10).ok());
}

TEST(SliceTest, NormalizeIndex) {
  EXPECT_EQ(NormalizeIndex(-1, 3), 2);
  EXPECT_EQ(NormalizeIndex(2, 3), 2);
  EXPECT_EQ(NormalizeIndex(3, 3), std::nullopt);
  EXPECT_EQ(NormalizeIndex(-4, 3), std::nullopt);
}

}  // namespace
}  // namespace statehub
