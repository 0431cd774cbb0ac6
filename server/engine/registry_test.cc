#include "server/engine/registry.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/dict.h"
#include "server/engine/engine.h"
#include "server/engine/list.h"

namespace statehub {
namespace {

using ::testing::HasSubstr;

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() : engine_(Limits{}, absl::Seconds(10)) {}

  SessionId NewSession() {
    return engine_.sessions().Open(0, "test", absl::Now())->id;
  }
  Registry& registry() { return engine_.registry(); }

  // Opens an anonymous dict held by `session`; returns its name.
  std::string NewAnonymousDict(SessionId session) {
    auto opened = registry().Open("", ObjectType::kDict, {}, Caller{session});
    EXPECT_TRUE(opened.ok()) << opened.status();
    return opened->object->name();
  }

  bool Exists(const std::string& name) {
    return registry().Describe(name).ok();
  }

  Engine engine_;
};

TEST_F(RegistryTest, OpenCreatesOnceAndKeepsFirstContents) {
  InitialContents first;
  first.entries.emplace_back("a", 1);
  auto a = registry().Open("cfg", ObjectType::kDict, first, Caller{});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->created);

  InitialContents second;
  second.entries.emplace_back("a", 2);
  auto b = registry().Open("cfg", ObjectType::kDict, second, Caller{});
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(a->object, b->object);
  auto dict = registry().Find<DictObject>("cfg");
  ASSERT_TRUE(dict.ok());
  EXPECT_EQ((*dict)->Get(Caller{}, "a", nullptr)->value, Value(1));
}

TEST_F(RegistryTest, OpenWithAnotherTypeNamesBothTypes) {
  ASSERT_TRUE(registry().Open("jobs", ObjectType::kDict, {}, Caller{}).ok());
  auto wrong = registry().Open("jobs", ObjectType::kList, {}, Caller{});
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(GetErrorKind(wrong.status()), ErrorKind::kTypeError);
  EXPECT_EQ(wrong.status().message(), "dict \"jobs\": cannot open as a list");
  auto find = registry().Find<ListObject>("jobs");
  EXPECT_EQ(GetErrorKind(find.status()), ErrorKind::kTypeError);
  EXPECT_THAT(find.status().message(), HasSubstr("is a dict, not a list"));
}

TEST_F(RegistryTest, BadNamesAreValueErrors) {
  for (const char* name : {"has space", "tab\t", "é", "a*b"}) {
    auto opened = registry().Open(name, ObjectType::kDict, {}, Caller{});
    EXPECT_EQ(GetErrorKind(opened.status()), ErrorKind::kValueError) << name;
  }
  auto long_name =
      registry().Open(std::string(257, 'x'), ObjectType::kDict, {}, Caller{});
  EXPECT_EQ(GetErrorKind(long_name.status()), ErrorKind::kValueError);
  EXPECT_TRUE(registry()
                  .Open(std::string(256, 'x'), ObjectType::kDict, {}, Caller{})
                  .ok());
  EXPECT_TRUE(
      registry().Open("a/b.c:d-e_f", ObjectType::kDict, {}, Caller{}).ok());
}

TEST_F(RegistryTest, ClientsCannotCreateAnonymousNames) {
  auto opened = registry().Open("_anon/dict/999", ObjectType::kDict, {},
                                Caller{NewSession()});
  EXPECT_EQ(GetErrorKind(opened.status()), ErrorKind::kObjectNotFound);
}

TEST_F(RegistryTest, AnonymousNeedsASession) {
  auto opened = registry().Open("", ObjectType::kDict, {}, Caller{});
  EXPECT_EQ(GetErrorKind(opened.status()), ErrorKind::kSessionError);
}

TEST_F(RegistryTest, AnonymousObjectFreedWhenItsSessionEnds) {
  const SessionId session = NewSession();
  const std::string name = NewAnonymousDict(session);
  EXPECT_TRUE(Exists(name));
  engine_.sessions().End(session);
  EXPECT_FALSE(Exists(name));
}

TEST_F(RegistryTest, AnonymousObjectKeptWhileADictHoldsARef) {
  const SessionId session = NewSession();
  const std::string inner = NewAnonymousDict(session);
  ASSERT_TRUE(registry().Open("outer", ObjectType::kDict, {}, Caller{}).ok());
  auto outer = *registry().Find<DictObject>("outer");
  ASSERT_TRUE(outer->Set("child", Ref{inner, ObjectType::kDict}).ok());

  engine_.sessions().End(session);
  EXPECT_TRUE(Exists(inner)) << "a stored ref keeps it alive";
  EXPECT_EQ(registry().Describe(inner)->referrers, 1);

  ASSERT_TRUE(outer->Delete("child").ok());
  EXPECT_FALSE(Exists(inner)) << "last ref gone, no session holds it";
}

TEST_F(RegistryTest, ReadingARefGivesTheReaderAHold) {
  const SessionId writer = NewSession();
  const SessionId reader = NewSession();
  const std::string inner = NewAnonymousDict(writer);
  ASSERT_TRUE(registry().Open("outer", ObjectType::kDict, {}, Caller{}).ok());
  auto outer = *registry().Find<DictObject>("outer");
  ASSERT_TRUE(outer->Set("child", Ref{inner, ObjectType::kDict}).ok());
  engine_.sessions().End(writer);

  // pop hands the ref to the reader: the reader's hold keeps it alive.
  auto popped = outer->Pop(Caller{reader}, "child", nullptr);
  ASSERT_TRUE(popped.ok());
  EXPECT_TRUE(Exists(inner));
  EXPECT_EQ(registry().Describe(inner)->holders, 1);
  registry().ReleaseHolds(reader, {inner});
  EXPECT_FALSE(Exists(inner));
}

TEST_F(RegistryTest, ChainsOfAnonymousObjectsAreFreedTransitively) {
  const SessionId session = NewSession();
  std::string previous = NewAnonymousDict(session);
  const std::string first = previous;
  for (int i = 0; i < 1000; ++i) {
    const std::string next = NewAnonymousDict(session);
    auto dict = *registry().Find<DictObject>(next);
    ASSERT_TRUE(dict->Set("next", Ref{previous, ObjectType::kDict}).ok());
    previous = next;
  }
  EXPECT_EQ(registry().Count(), 1001);
  engine_.sessions().End(session);
  EXPECT_EQ(registry().Count(), 0);
  EXPECT_FALSE(Exists(first));
}

TEST_F(RegistryTest, RefToMissingOrMistypedObjectIsRefused) {
  ASSERT_TRUE(registry().Open("d", ObjectType::kDict, {}, Caller{}).ok());
  ASSERT_TRUE(registry().Open("l", ObjectType::kList, {}, Caller{}).ok());
  auto dict = *registry().Find<DictObject>("d");
  absl::Status missing = dict->Set("k", Ref{"nope", ObjectType::kDict});
  EXPECT_EQ(GetErrorKind(missing), ErrorKind::kObjectNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("dict \"d\""));
  absl::Status mistyped = dict->Set("k", Ref{"l", ObjectType::kDict});
  EXPECT_EQ(GetErrorKind(mistyped), ErrorKind::kTypeError);
  EXPECT_EQ(*dict->Len(), 0) << "the dict is unchanged";
}

TEST_F(RegistryTest, DeletedObjectFailsThroughOldHandles) {
  ASSERT_TRUE(registry().Open("gone", ObjectType::kList, {}, Caller{}).ok());
  auto list = *registry().Find<ListObject>("gone");
  ASSERT_TRUE(registry().Delete("gone").ok());
  EXPECT_EQ(GetErrorKind(list->Append(1).status()), ErrorKind::kObjectNotFound);
  EXPECT_EQ(GetErrorKind(registry().Delete("gone")),
            ErrorKind::kObjectNotFound);
}

TEST_F(RegistryTest, MaxObjectsIsALimitNamingTheFlag) {
  Limits limits;
  limits.max_objects = 2;
  Registry small(limits);
  ASSERT_TRUE(small.Open("a", ObjectType::kDict, {}, Caller{}).ok());
  ASSERT_TRUE(small.Open("b", ObjectType::kDict, {}, Caller{}).ok());
  auto third = small.Open("c", ObjectType::kDict, {}, Caller{});
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorLimit(third.status()), "max_objects");
  EXPECT_TRUE(small.Open("a", ObjectType::kDict, {}, Caller{}).ok())
      << "opening an existing object is not creating one";
}

TEST_F(RegistryTest, ListFiltersByPrefixInNameOrder) {
  for (const char* name : {"app/b", "app/a", "other", "app2"}) {
    ASSERT_TRUE(registry().Open(name, ObjectType::kDict, {}, Caller{}).ok());
  }
  std::vector<std::string> names;
  for (const ObjectInfo& info : registry().List("app/", false)) {
    names.push_back(info.name);
  }
  EXPECT_THAT(names, ::testing::ElementsAre("app/a", "app/b"));
}

}  // namespace
}  // namespace statehub
