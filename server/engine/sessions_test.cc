#include "server/engine/sessions.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace statehub {
namespace {

class SessionTableTest : public ::testing::Test {
 protected:
  SessionTableTest()
      : table_(
            absl::Seconds(2), [this](SessionId id) { begun_.push_back(id); },
            [this](SessionId id, SessionEnd) { ended_.push_back(id); }) {}

  const absl::Time t0_ = absl::FromUnixSeconds(1'000'000);
  std::vector<SessionId> begun_;
  std::vector<SessionId> ended_;
  SessionTable table_;
};

TEST_F(SessionTableTest, SessionWithoutKeepalivesEndsAfterTheTtl) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  EXPECT_TRUE(table_.ExpireDue(t0_ + absl::Milliseconds(1999)).empty());
  EXPECT_TRUE(table_.IsLive(id, t0_ + absl::Milliseconds(1999)));
  EXPECT_THAT(table_.ExpireDue(t0_ + absl::Seconds(2)),
              ::testing::ElementsAre(id));
  EXPECT_THAT(ended_, ::testing::ElementsAre(id));
  EXPECT_FALSE(table_.Touch(id, t0_ + absl::Seconds(2)));
}

TEST_F(SessionTableTest, KeepalivesExtendTheLease) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  for (int s = 1; s <= 10; ++s) {
    ASSERT_TRUE(table_.Touch(id, t0_ + absl::Seconds(s)));
    EXPECT_TRUE(table_.ExpireDue(t0_ + absl::Seconds(s)).empty());
  }
  EXPECT_TRUE(ended_.empty());
}

TEST_F(SessionTableTest, ResumeWithinTtlKeepsTheSession) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  const SessionTable::Opened again =
      *table_.Open(id, "w", t0_ + absl::Seconds(1));
  EXPECT_TRUE(again.resumed);
  EXPECT_EQ(again.id, id);
  EXPECT_EQ(begun_.size(), 1u);
}

TEST_F(SessionTableTest, ResumeAfterExpiryStartsANewSession) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  table_.ExpireDue(t0_ + absl::Seconds(3));
  const SessionTable::Opened again =
      *table_.Open(id, "w", t0_ + absl::Seconds(3));
  EXPECT_FALSE(again.resumed);
  EXPECT_NE(again.id, id);
}

TEST(SessionLimitsTest, OpeningOneSessionTooManyNamesTheLimit) {
  Limits limits;
  limits.max_sessions = 2;
  SessionTable table(
      absl::Seconds(2), [](SessionId) {}, [](SessionId, SessionEnd) {}, limits);
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  const SessionId first = table.Open(0, "a", now)->id;
  ASSERT_TRUE(table.Open(0, "b", now).ok());

  const absl::StatusOr<SessionTable::Opened> third = table.Open(0, "c", now);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorKind(third.status()), ErrorKind::kLimitExceeded);
  EXPECT_EQ(GetErrorLimit(third.status()), "max_sessions");
  EXPECT_THAT(third.status().message(), testing::HasSubstr("--max_sessions=2"));
  // Resuming a live session is not a new one; ending one makes room.
  EXPECT_TRUE(table.Open(first, "a", now).ok());
  table.End(first);
  EXPECT_TRUE(table.Open(0, "c", now).ok());
}

TEST(SessionLimitsTest, WaitersPerSessionAreCountedUntilTheyEnd) {
  Limits limits;
  limits.max_waiters_per_session = 2;
  SessionTable table(
      absl::Seconds(2), [](SessionId) {}, [](SessionId, SessionEnd) {}, limits);
  const absl::Time now = absl::FromUnixSeconds(1'000'000);
  const SessionId a = table.Open(0, "a", now)->id;
  const SessionId b = table.Open(0, "b", now)->id;
  ASSERT_TRUE(table.BeginWaiter(a).ok());
  ASSERT_TRUE(table.BeginWaiter(a).ok());

  const absl::Status third = table.BeginWaiter(a);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GetErrorLimit(third), "max_waiters_per_session");
  EXPECT_THAT(third.message(),
              testing::HasSubstr("--max_waiters_per_session=2"));
  EXPECT_TRUE(table.BeginWaiter(b).ok());  // per session
  table.EndWaiter(a);
  EXPECT_TRUE(table.BeginWaiter(a).ok());
}

TEST_F(SessionTableTest, EndRunsTheCallbackOnce) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  table_.End(id);
  table_.End(id);
  EXPECT_THAT(ended_, ::testing::ElementsAre(id));
}

TEST_F(SessionTableTest, IdsRoundTripAsHex) {
  const SessionId id = table_.Open(0, "w", t0_)->id;
  EXPECT_EQ(SessionTable::ParseId(SessionTable::FormatId(id)), id);
  EXPECT_EQ(SessionTable::ParseId("not-an-id"), 0u);
  EXPECT_EQ(SessionTable::ParseId(""), 0u);
}

}  // namespace
}  // namespace statehub
