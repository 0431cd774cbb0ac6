// Change records of the data objects (list, array, namespace, value cell)
// and of conditions: what each mutation records, and that replaying the
// records into a fresh engine gives back the same state.

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/array.h"
#include "server/engine/condition.h"
#include "server/engine/engine.h"
#include "server/engine/list.h"
#include "server/engine/namespace.h"
#include "server/engine/records.h"
#include "server/engine/test_recorder.h"
#include "server/engine/value_cell.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Change renders a record's change alone (no revision, session or object),
// so a recorded record compares with one made by the records:: builders.
std::string Change(v1::ChangeRecord record) {
  record.clear_revision();
  record.clear_session();
  record.clear_object();
  return record.ShortDebugString();
}

// Changes renders every record `sink` kept from index `from` on.
std::vector<std::string> Changes(const RecordingSink& sink, size_t from = 0) {
  std::vector<std::string> out;
  const std::vector<v1::ChangeRecord> records = sink.records();
  for (size_t i = from; i < records.size(); ++i) {
    out.push_back(Change(records[i]));
  }
  return out;
}

std::string Spliced(int64_t start, int64_t removed, Value::Items items) {
  return Change(records::Spliced(start, removed, items));
}

// A record of `change` about `object`, as a log would hold it.
v1::ChangeRecord About(absl::string_view object, v1::ChangeRecord change) {
  change.set_revision(1000);
  change.set_object(std::string(object));
  return change;
}

// DumpedItems decodes a dumped created record's items.
Value DumpedItems(const Object& object) {
  std::vector<v1::ChangeRecord> out;
  object.Dump(&out);
  EXPECT_EQ(out.size(), 1u);
  absl::StatusOr<Value::Items> items =
      records::DecodeItems(out[0].created().items());
  EXPECT_TRUE(items.ok()) << items.status();
  return Value::List(*std::move(items));
}

class ReplayDataTest : public ::testing::Test {
 protected:
  ReplayDataTest() : engine_(Limits{}, absl::Seconds(10)), sink_(engine_) {}

  template <typename T>
  std::shared_ptr<T> Open(const std::string& name, InitialContents init = {}) {
    absl::StatusOr<Registry::Opened> opened =
        engine_.registry().Open(name, T::kType, std::move(init), Caller{});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return *engine_.registry().Find<T>(name);
  }
  std::shared_ptr<ArrayObject> OpenArray(const std::string& name,
                                         std::string typecode,
                                         Value::Items items) {
    InitialContents init;
    init.typecode = std::move(typecode);
    init.items = std::move(items);
    return Open<ArrayObject>(name, std::move(init));
  }
  void ExpectReplays() { ExpectReplaysTo(engine_, sink_.records()); }
  size_t Recorded() const { return sink_.records().size(); }

  Engine engine_;
  RecordingSink sink_;
};

using ListReplayTest = ReplayDataTest;
using ArrayReplayTest = ReplayDataTest;
using NamespaceReplayTest = ReplayDataTest;
using ValueCellReplayTest = ReplayDataTest;
using ConditionReplayTest = ReplayDataTest;

// Refs stored in lists, namespaces and value cells keep anonymous objects
// alive after a replay as they did before it.
TEST_F(ReplayDataTest, StoredRefsKeepAnonymousObjectsAliveAcrossReplay) {
  const SessionId session = engine_.sessions().Open(0, "test", absl::Now())->id;
  std::vector<std::string> anonymous;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Registry::Opened> opened =
        engine_.registry().Open("", ObjectType::kDict, {}, Caller{session});
    ASSERT_TRUE(opened.ok()) << opened.status();
    anonymous.push_back(opened->object->name());
  }
  auto list = Open<ListObject>("l");
  auto ns = Open<NamespaceObject>("ns");
  auto cell = Open<ValueCell>("v");
  ASSERT_TRUE(list->Append(Ref{anonymous[0], ObjectType::kDict}).ok());
  ASSERT_TRUE(ns->Set("a", Ref{anonymous[1], ObjectType::kDict}).ok());
  ASSERT_TRUE(cell->Set(Ref{anonymous[2], ObjectType::kDict}).ok());
  engine_.sessions().End(session);
  ASSERT_EQ(engine_.registry().Count(), 6);
  ExpectReplays();

  ASSERT_TRUE(list->Clear().ok());
  ASSERT_TRUE(ns->Delete("a").ok());
  ASSERT_TRUE(cell->Set(0).ok());
  ASSERT_EQ(engine_.registry().Count(), 3);
  ExpectReplays();
}

// Lists.

TEST_F(ListReplayTest, EveryMutationReplaysToTheSameList) {
  Open<ListObject>("d");  // a list item refers to it below
  InitialContents init;
  init.items = {"a", "b"};
  auto list = Open<ListObject>("l", std::move(init));
  ASSERT_TRUE(list->Append(1).ok());
  ASSERT_TRUE(list->Append(Ref{"d", ObjectType::kList}).ok());
  ASSERT_TRUE(list->Extend({2, 3.5, Value::List({4, "x"})}).ok());
  ASSERT_TRUE(list->Insert(0, "first").ok());
  ASSERT_TRUE(list->Insert(-2, "near end").ok());
  ASSERT_TRUE(list->Insert(100, "last").ok());
  ExpectReplays();
  ASSERT_TRUE(list->Set(-1, "LAST").ok());
  ASSERT_TRUE(list->SetSlice({1, 3, std::nullopt}, {"p", "q", "r"}).ok());
  ASSERT_TRUE(list->SetSlice({2, 2, std::nullopt}, {"inserted"}).ok());
  ASSERT_TRUE(list->SetSlice({0, 4, std::nullopt}, {"shrunk"}).ok());
  ASSERT_TRUE(
      list->SetSlice({std::nullopt, std::nullopt, 2}, {0, 0, 0, 0, 0}).ok());
  ASSERT_TRUE(list->SetSlice({3, 0, -1}, {"c", "b", "a"}).ok());
  ExpectReplays();
  ASSERT_TRUE(list->Delete(0).ok());
  ASSERT_TRUE(list->DeleteSlice({1, 3, std::nullopt}).ok());
  ASSERT_TRUE(list->DeleteSlice({std::nullopt, std::nullopt, 3}).ok());
  ASSERT_TRUE(list->Pop(Caller{}, std::nullopt).ok());
  ASSERT_TRUE(list->Pop(Caller{}, 0).ok());
  ASSERT_TRUE(list->Extend({5, 3, 9, 1, 3}).ok());
  ASSERT_TRUE(list->Remove(3).ok());
  ExpectReplays();
  ASSERT_TRUE(list->Clear().ok());
  ASSERT_TRUE(list->Extend({5, 3, 9, 1, 3.0, true}).ok());
  ASSERT_TRUE(list->Sort(false).ok());
  ASSERT_TRUE(list->Reverse().ok());
  ASSERT_TRUE(list->Sort(true).ok());
  ASSERT_TRUE(list->Repeat(3).ok());
  ExpectReplays();
  ASSERT_TRUE(list->Repeat(0).ok());
  ASSERT_TRUE(list->Append("again").ok());
  ExpectReplays();
}

TEST_F(ListReplayTest, InsertIsOneSplice) {
  InitialContents init;
  init.items = {"a", "b"};
  auto list = Open<ListObject>("l", std::move(init));
  const size_t before = Recorded();
  ASSERT_TRUE(list->Insert(1, "x").ok());
  EXPECT_THAT(Changes(sink_, before), ElementsAre(Spliced(1, 0, {"x"})));
  EXPECT_EQ(sink_.records().back().object(), "l");
}

TEST_F(ListReplayTest, AppendExtendAndPopAreSplicesAtTheirIndex) {
  auto list = Open<ListObject>("l");
  const size_t before = Recorded();
  ASSERT_TRUE(list->Append(1).ok());
  ASSERT_TRUE(list->Extend({2, 3}).ok());
  ASSERT_TRUE(list->Set(0, "one").ok());
  ASSERT_TRUE(list->Pop(Caller{}, std::nullopt).ok());
  ASSERT_TRUE(list->Remove("one").ok());
  EXPECT_THAT(Changes(sink_, before),
              ElementsAre(Spliced(0, 0, {1}), Spliced(1, 0, {2, 3}),
                          Spliced(0, 1, {"one"}), Spliced(2, 1, {}),
                          Spliced(0, 1, {})));
}

TEST_F(ListReplayTest, SortRecordsOnlyTheItemsThatMoved) {
  InitialContents init;
  init.items = {1, 2, 3, 5, 4, 6};
  auto list = Open<ListObject>("l", std::move(init));
  const size_t before = Recorded();
  ASSERT_TRUE(list->Sort(false).ok());
  EXPECT_THAT(Changes(sink_, before), ElementsAre(Spliced(3, 2, {4, 5})));
  ExpectReplays();
}

TEST_F(ListReplayTest, ExtendedSliceAndReverseRewriteTheWholeList) {
  InitialContents init;
  init.items = {0, 1, 2, 3};
  auto list = Open<ListObject>("l", std::move(init));
  const size_t before = Recorded();
  ASSERT_TRUE(list->SetSlice({std::nullopt, std::nullopt, 2}, {"a", "b"}).ok());
  ASSERT_TRUE(list->DeleteSlice({std::nullopt, std::nullopt, 2}).ok());
  ASSERT_TRUE(list->Reverse().ok());
  EXPECT_THAT(Changes(sink_, before),
              ElementsAre(Spliced(0, 4, {"a", 1, "b", 3}),
                          Spliced(0, 4, {1, 3}), Spliced(0, 2, {3, 1})));
}

TEST_F(ListReplayTest, RepeatIsOneSpliceAtTheEndAndRepeatByZeroClears) {
  InitialContents init;
  init.items = {1, 2};
  auto list = Open<ListObject>("l", std::move(init));
  const size_t before = Recorded();
  ASSERT_TRUE(list->Repeat(3).ok());
  ASSERT_TRUE(list->Repeat(0).ok());
  EXPECT_THAT(Changes(sink_, before), ElementsAre(Spliced(2, 0, {1, 2, 1, 2}),
                                                  Change(records::Cleared())));
}

TEST_F(ListReplayTest, OperationsThatChangeNothingRecordNothing) {
  auto list = Open<ListObject>("l");
  const size_t before = Recorded();
  ASSERT_TRUE(list->Clear().ok());
  ASSERT_TRUE(list->Extend({}).ok());
  ASSERT_TRUE(list->Repeat(5).ok());
  ASSERT_TRUE(list->SetSlice({0, 0, std::nullopt}, {}).ok());
  ASSERT_TRUE(list->Append(1).ok());
  ASSERT_TRUE(list->Reverse().ok());
  ASSERT_TRUE(list->Repeat(1).ok());
  ASSERT_TRUE(list->DeleteSlice({1, std::nullopt, std::nullopt}).ok());
  ASSERT_TRUE(list->Extend({2, 3}).ok());
  ASSERT_TRUE(list->Sort(false).ok());  // already sorted
  EXPECT_FALSE(list->Remove("missing").ok());
  EXPECT_FALSE(list->Pop(Caller{}, 10).ok());
  EXPECT_FALSE(list->Set(10, 0).ok());
  ASSERT_TRUE(list->Append("a").ok());
  EXPECT_FALSE(list->Sort(false).ok());  // 1 < "a" is a TypeError
  EXPECT_THAT(Changes(sink_, before),
              ElementsAre(Spliced(0, 0, {1}), Spliced(1, 0, {2, 3}),
                          Spliced(3, 0, {"a"})));
}

TEST_F(ListReplayTest, DumpCarriesTheItems) {
  auto list = Open<ListObject>("l");
  ASSERT_TRUE(list->Extend({1, "two", Value::List({3})}).ok());
  EXPECT_EQ(DumpedItems(*list), Value::List({1, "two", Value::List({3})}));
}

TEST_F(ListReplayTest, SpliceOutsideTheListIsDataLossAndChangesNothing) {
  InitialContents init;
  init.items = {1, 2};
  auto list = Open<ListObject>("l", std::move(init));
  for (const v1::ChangeRecord& bad :
       {records::Spliced(3, 0, {Value(9)}), records::Spliced(-1, 0, {}),
        records::Spliced(1, 2, {}), records::Spliced(0, -1, {}),
        records::CellSet(1)}) {
    absl::Status s = list->Apply(About("l", bad));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << bad.ShortDebugString();
  }
  EXPECT_EQ(DumpedItems(*list), Value::List({1, 2}));
  EXPECT_TRUE(list->Apply(About("l", records::Spliced(2, 0, {Value(3)}))).ok());
  EXPECT_EQ(DumpedItems(*list), Value::List({1, 2, 3}));
}

TEST_F(ListReplayTest, NothingIsRecordedWithoutASink) {
  Engine engine(Limits{}, absl::Seconds(10));
  ASSERT_TRUE(
      engine.registry().Open("l", ObjectType::kList, {}, Caller{}).ok());
  auto list = *engine.registry().Find<ListObject>("l");
  ASSERT_TRUE(list->Append(1).ok());
  ASSERT_TRUE(list->Sort(false).ok());
  ASSERT_TRUE(list->Clear().ok());
  EXPECT_EQ(engine.changes().revision(), 0u);
}

// Arrays.

TEST_F(ArrayReplayTest, EverySetReplaysToTheSameArray) {
  auto ints = OpenArray("i", "i", {0, 0, 0, 0, 0});
  auto reals = OpenArray("d", "f", {0.0, 0.0});
  ASSERT_TRUE(ints->Set(1, 7).ok());
  ASSERT_TRUE(ints->Set(-1, true).ok());
  ASSERT_TRUE(ints->SetSlice({1, 3, std::nullopt}, {8, 9}).ok());
  ASSERT_TRUE(ints->SetSlice({std::nullopt, std::nullopt, -2}, {1, 2, 3}).ok());
  ASSERT_TRUE(reals->Set(0, 0.1).ok());
  ASSERT_TRUE(
      reals->SetSlice({std::nullopt, std::nullopt, std::nullopt}, {3, 2.5})
          .ok());
  ExpectReplays();
}

TEST_F(ArrayReplayTest, SetsRewriteCellsInPlace) {
  auto array = OpenArray("a", "i", {0, 0, 0, 0});
  const size_t before = Recorded();
  ASSERT_TRUE(array->Set(2, 7).ok());
  ASSERT_TRUE(array->SetSlice({0, 2, std::nullopt}, {true, 5}).ok());
  ASSERT_TRUE(array->SetSlice({1, std::nullopt, 2}, {6, 6}).ok());
  ASSERT_TRUE(array->SetSlice({2, 2, std::nullopt}, {}).ok());
  EXPECT_FALSE(array->Set(9, 1).ok());
  EXPECT_FALSE(array->Set(0, "x").ok());
  // Values are recorded as stored: True became 1.
  EXPECT_THAT(Changes(sink_, before),
              ElementsAre(Spliced(2, 1, {7}), Spliced(0, 2, {1, 5}),
                          Spliced(0, 4, {1, 6, 7, 6})));
}

TEST_F(ArrayReplayTest, DumpCarriesTypecodeAndCells) {
  auto array = OpenArray("a", "d", {1.5, 2});
  std::vector<v1::ChangeRecord> out;
  array->Dump(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].created().typecode(), "d");
  EXPECT_EQ(DumpedItems(*array), Value::List({1.5, 2.0}));
}

TEST_F(ArrayReplayTest, SpliceThatWouldChangeTheLengthIsDataLoss) {
  auto array = OpenArray("a", "i", {1, 2});
  for (const v1::ChangeRecord& bad :
       {records::Spliced(0, 1, {}), records::Spliced(2, 0, {Value(3)}),
        records::Spliced(1, 2, {Value(3), Value(4)}),
        records::Spliced(-1, 1, {Value(3)}), records::Cleared()}) {
    absl::Status s = array->Apply(About("a", bad));
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << bad.ShortDebugString();
  }
  EXPECT_EQ(DumpedItems(*array), Value::List({1, 2}));
}

// Namespaces.

TEST_F(NamespaceReplayTest, SetAndDeleteReplayToTheSameNamespace) {
  InitialContents init;
  init.entries = {{"a", 1}};
  auto ns = Open<NamespaceObject>("ns", std::move(init));
  ASSERT_TRUE(ns->Set("b", 2).ok());
  ASSERT_TRUE(ns->Set("a", "one").ok());
  ASSERT_TRUE(ns->Set("c", Value::List({3})).ok());
  ASSERT_TRUE(ns->Delete("b").ok());
  ExpectReplays();
}

TEST_F(NamespaceReplayTest, AttributesAreRecordedAsStringKeys) {
  auto ns = Open<NamespaceObject>("ns");
  const size_t before = Recorded();
  ASSERT_TRUE(ns->Set("x", 1).ok());
  ASSERT_TRUE(ns->Delete("x").ok());
  EXPECT_FALSE(ns->Delete("x").ok());
  EXPECT_FALSE(ns->Set("_private", 1).ok());
  EXPECT_THAT(Changes(sink_, before),
              ElementsAre(Change(records::EntrySet("x", 1)),
                          Change(records::EntryRemoved("x"))));
}

TEST_F(NamespaceReplayTest, RemovingAMissingAttributeIsDataLoss) {
  auto ns = Open<NamespaceObject>("ns");
  absl::Status s = ns->Apply(About("ns", records::EntryRemoved("x")));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  s = ns->Apply(About("ns", records::Spliced(0, 0, {})));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
}

// Value cells.

TEST_F(ValueCellReplayTest, EveryWriteReplaysToTheSameValue) {
  InitialContents init;
  init.value = 1;
  init.typecode = "i";
  auto cell = Open<ValueCell>("v", std::move(init));
  ASSERT_TRUE(cell->Increment(4).ok());
  ASSERT_TRUE(cell->CompareAndSet(Caller{}, 5, 6).ok());
  ASSERT_TRUE(cell->GetAndSet(Caller{}, "text").ok());
  ExpectReplays();
  ASSERT_TRUE(cell->Set(Value::List({1, 2})).ok());
  ExpectReplays();
}

TEST_F(ValueCellReplayTest, EachWriteRecordsTheNewValue) {
  InitialContents init;
  init.value = 1;
  auto cell = Open<ValueCell>("v", std::move(init));
  const size_t before = Recorded();
  ASSERT_TRUE(cell->Increment(4).ok());
  ASSERT_FALSE(cell->CompareAndSet(Caller{}, 1, 7)->swapped);
  ASSERT_TRUE(cell->CompareAndSet(Caller{}, 5, 7)->swapped);
  ASSERT_TRUE(cell->GetAndSet(Caller{}, 8).ok());
  ASSERT_TRUE(cell->Set(9).ok());
  EXPECT_FALSE(cell->Increment("not a number").ok());
  EXPECT_THAT(
      Changes(sink_, before),
      ElementsAre(Change(records::CellSet(5)), Change(records::CellSet(7)),
                  Change(records::CellSet(8)), Change(records::CellSet(9))));
}

TEST_F(ValueCellReplayTest, DumpCarriesTypecodeAndValue) {
  InitialContents init;
  init.value = 2.5;
  init.typecode = "d";
  auto cell = Open<ValueCell>("v", std::move(init));
  std::vector<v1::ChangeRecord> out;
  cell->Dump(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].object(), "v");
  EXPECT_EQ(out[0].created().typecode(), "d");
  EXPECT_EQ(*records::Decode(out[0].created().value()), Value(2.5));
}

TEST_F(ValueCellReplayTest, OnlyCellSetApplies) {
  auto cell = Open<ValueCell>("v");
  EXPECT_EQ(cell->Apply(About("v", records::Cleared())).code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(cell->Apply(About("v", records::CellSet("x"))).ok());
  EXPECT_EQ(*cell->Get(Caller{}), Value("x"));
}

// Conditions.

TEST_F(ConditionReplayTest, ReplaysBoundToItsLock) {
  ASSERT_TRUE(
      engine_.registry().Open("lk", ObjectType::kLock, {}, Caller{}).ok());
  InitialContents init;
  init.condition_lock = "lk";
  auto condition = Open<ConditionObject>("c", std::move(init));
  std::vector<v1::ChangeRecord> out;
  condition->Dump(&out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].created().condition_lock(), "lk");
  EXPECT_THAT(out[0].created().items(), IsEmpty());
  ExpectReplays();
}

TEST_F(ConditionReplayTest, TakesNoRecordButItsCreation) {
  ASSERT_TRUE(
      engine_.registry().Open("lk", ObjectType::kLock, {}, Caller{}).ok());
  InitialContents init;
  init.condition_lock = "lk";
  auto condition = Open<ConditionObject>("c", std::move(init));
  EXPECT_EQ(condition->Apply(About("c", records::Cleared())).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace statehub
