// Unit tests of statehub::Value against Python's semantics. Every expected
// result here was checked by running the same expression in python3 (3.11).

#include "statehub/value.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace statehub {
namespace {

// {1: 'a', 1.0: 'b', True: 'c'} == {1: 'c'}; hash(1) == hash(1.0) == hash(True)
TEST(ValueTest, OneAndOnePointZeroAndTrueAreOneKey) {
  const Value one = 1, one_double = 1.0, yes = true;
  EXPECT_TRUE(KeyEq()(one, one_double));
  EXPECT_TRUE(KeyEq()(one, yes));
  EXPECT_EQ(KeyHash()(one), KeyHash()(one_double));
  EXPECT_EQ(KeyHash()(one), KeyHash()(yes));
  EXPECT_EQ(Value::Map({{1, "a"}, {1.0, "b"}, {true, "c"}}).Repr(), "{1: 'c'}");
}

// -0.0 == 0 and hash(-0.0) == hash(0); (1, 2.0) == (1.0, 2) as keys.
TEST(ValueTest, IntegralDoublesHashAsIntegers) {
  EXPECT_EQ(KeyHash()(Value(-0.0)), KeyHash()(Value(0)));
  const Value a = Value::Tuple({1, 2.0}), b = Value::Tuple({1.0, 2});
  EXPECT_TRUE(KeyEq()(a, b));
  EXPECT_EQ(KeyHash()(a), KeyHash()(b));
}

// [1] == (1,) is False.
TEST(ValueTest, ListNeverEqualsTuple) {
  EXPECT_NE(Value::List({1}), Value::Tuple({1}));
  EXPECT_EQ(Value::List({1}), Value::List({1.0}));
}

// {'a': 1, 'b': 2} == {'b': 2, 'a': 1} is True.
TEST(ValueTest, MapEqualityIgnoresOrder) {
  EXPECT_EQ(Value::Map({{"a", 1}, {"b", 2}}), Value::Map({{"b", 2}, {"a", 1}}));
  EXPECT_NE(Value::Map({{"a", 1}}), Value::Map({{"a", 2}}));
  EXPECT_NE(Value::Map({{"a", 1}}), Value::Map({{"a", 1}, {"b", 2}}));
}

// nan == nan is False.
TEST(ValueTest, NanEqualsNothing) {
  const Value nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(nan, nan);
  EXPECT_NE(nan, Value(0));
}

// "a" == b"a" is False.
TEST(ValueTest, StringNeverEqualsBytes) {
  EXPECT_NE(Value("a"), Value::Bytes("a"));
}

// hash([1]), hash({}) and hash((1, [2])) raise TypeError: unhashable type.
TEST(ValueTest, CheckKeyRefusesListMapAndNan) {
  absl::Status list = CheckKey(Value::List({1}));
  EXPECT_EQ(list.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(list.message(), "unhashable type: 'list'");
  EXPECT_EQ(CheckKey(Value::Map()).message(), "unhashable type: 'dict'");
  EXPECT_EQ(CheckKey(Value::Tuple({1, Value::List({2})})).message(),
            "unhashable type: 'list'");
  EXPECT_FALSE(CheckKey(Value(std::nan(""))).ok());
}

// hash((1, 'a')) works; so do None, bools, ints, floats, str and bytes.
TEST(ValueTest, CheckKeyAcceptsScalarsAndTuplesOfScalars) {
  EXPECT_TRUE(CheckKey(Value::Tuple({1, "a"})).ok());
  EXPECT_TRUE(CheckKey(Value::Tuple({Value::Tuple({1}), 2.5})).ok());
  EXPECT_TRUE(CheckKey(Value()).ok());
  EXPECT_TRUE(CheckKey(Value(true)).ok());
  EXPECT_TRUE(CheckKey(Value(7)).ok());
  EXPECT_TRUE(CheckKey(Value(1.5)).ok());
  EXPECT_TRUE(CheckKey(Value("k")).ok());
  EXPECT_TRUE(CheckKey(Value::Bytes("k")).ok());
}

// 'a' < 1, [1] < (1,) and None < None raise TypeError with these messages.
TEST(ValueTest, CompareOfMixedTypesFailsLikePython) {
  absl::StatusOr<int> r = Compare(Value("a"), Value(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "'<' not supported between instances of 'str' and 'int'");
  EXPECT_EQ(Compare(Value::List({1}), Value::Tuple({1})).status().message(),
            "'<' not supported between instances of 'list' and 'tuple'");
  EXPECT_EQ(Compare(Value(), Value()).status().message(),
            "'<' not supported between instances of 'NoneType' and "
            "'NoneType'");
}

// 2**53 + 1 > float(2**53) is True and == is False, although
// float(2**53 + 1) == float(2**53).
TEST(ValueTest, CompareOfBigIntAndDoubleIsExact) {
  const Value big = int64_t{9007199254740993};  // 2**53 + 1
  const Value f = 9007199254740992.0;           // float(2**53)
  absl::StatusOr<int> r = Compare(big, f);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0);
  r = Compare(f, big);
  ASSERT_TRUE(r.ok());
  EXPECT_LT(*r, 0);
  EXPECT_NE(big, f);
  EXPECT_EQ(Value(int64_t{9007199254740992}), f);
}

// True < 2 < 2.5; 'a' < 'b'; [1, 2] < [1, 3]; (1,) < (1, 0).
TEST(ValueTest, CompareOrdersLikePython) {
  EXPECT_LT(*Compare(true, 2), 0);
  EXPECT_LT(*Compare(2, 2.5), 0);
  EXPECT_LT(*Compare("a", "b"), 0);
  EXPECT_LT(*Compare(Value::List({1, 2}), Value::List({1, 3})), 0);
  EXPECT_LT(*Compare(Value::Tuple({1}), Value::Tuple({1, 0})), 0);
  EXPECT_EQ(*Compare(1, 1.0), 0);
}

// repr() of each value in python3.
TEST(ValueTest, ReprMatchesPython) {
  EXPECT_EQ(Value().Repr(), "None");
  EXPECT_EQ(Value(true).Repr(), "True");
  EXPECT_EQ(Value(false).Repr(), "False");
  EXPECT_EQ(Value(1.5).Repr(), "1.5");
  EXPECT_EQ(Value(1.0).Repr(), "1.0");
  EXPECT_EQ(Value("a").Repr(), "'a'");
  EXPECT_EQ(Value("it's").Repr(), "\"it's\"");
  EXPECT_EQ(Value("a\"b'c").Repr(), "'a\"b\\'c'");
  EXPECT_EQ(Value::Bytes(std::string("\0", 1)).Repr(), "b'\\x00'");
  EXPECT_EQ(Value::Bytes("it's").Repr(), "b\"it's\"");
  EXPECT_EQ(Value::Bytes("\xff").Repr(), "b'\\xff'");
  EXPECT_EQ(Value::Tuple({1}).Repr(), "(1,)");
  EXPECT_EQ(Value::Tuple({}).Repr(), "()");
  EXPECT_EQ(Value::List({1, "a"}).Repr(), "[1, 'a']");
  EXPECT_EQ(Value::Map({{"k", 1}}).Repr(), "{'k': 1}");
  EXPECT_EQ(Value(int64_t{9223372036854775807}).Repr(), "9223372036854775807");
}

// repr() of floats: positional for decimal exponents in [-4, 16).
TEST(ValueTest, FloatReprMatchesPython) {
  EXPECT_EQ(Value(1e6).Repr(), "1000000.0");
  EXPECT_EQ(Value(1e15).Repr(), "1000000000000000.0");
  EXPECT_EQ(Value(1e16).Repr(), "1e+16");
  EXPECT_EQ(Value(1e22).Repr(), "1e+22");
  EXPECT_EQ(Value(1e-4).Repr(), "0.0001");
  EXPECT_EQ(Value(1e-5).Repr(), "1e-05");
  EXPECT_EQ(Value(0.1).Repr(), "0.1");
  EXPECT_EQ(Value(-0.0).Repr(), "-0.0");
  EXPECT_EQ(Value(12345.678).Repr(), "12345.678");
  EXPECT_EQ(Value(1.5e300).Repr(), "1.5e+300");
  EXPECT_EQ(Value(123456789012345680.0).Repr(), "1.2345678901234568e+17");
  EXPECT_EQ(Value(9007199254740992.0).Repr(), "9007199254740992.0");
  EXPECT_EQ(Value(std::numeric_limits<double>::infinity()).Repr(), "inf");
  EXPECT_EQ(Value(std::nan("")).Repr(), "nan");
}

// {'a': 1, 'b': 2, 'a': 3} == {'a': 3, 'b': 2}, in that order.
TEST(ValueTest, MapKeepsFirstPositionAndLastValueOfRepeatedKey) {
  const Value m = Value::Map({{"a", 1}, {"b", 2}, {"a", 3}});
  ASSERT_EQ(m.AsEntries().size(), 2u);
  EXPECT_EQ(m.AsEntries()[0].first, Value("a"));
  EXPECT_EQ(m.AsEntries()[0].second, Value(3));
  EXPECT_EQ(m.Repr(), "{'a': 3, 'b': 2}");
  EXPECT_EQ(*m.Find("a"), Value(3));
  EXPECT_EQ(m.Find("z"), nullptr);
}

TEST(ValueTest, RefsCompareByNameAndTypeOnly) {
  const Value a = Ref{"_anon/1", ObjectType::kDict, nullptr};
  const Value b = Ref{"_anon/1", ObjectType::kDict, std::make_shared<int>(0)};
  EXPECT_EQ(a, b);
  EXPECT_NE(a, Value(Ref{"_anon/1", ObjectType::kList, nullptr}));
  EXPECT_EQ(a.Repr(), "<dict \"_anon/1\">");
  EXPECT_TRUE(Value::List({Value::Map({{"k", a}})}).HasRefs());
}

}  // namespace
}  // namespace statehub
