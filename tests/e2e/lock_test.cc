// Locks against the real server through the raw Locks service: parked
// acquires, timeouts as results, FIFO hand-off with growing fencing tokens,
// and robust ownership when a holder process is killed.

#include <signal.h>

#include <thread>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "tests/e2e/sync_fixture.h"

namespace statehub {
namespace {

// LockE2eTest adds a raw Locks stub and a LOCK named "mutex" to the
// fixture's server (with its 1 s lease).
class LockE2eTest : public ShortLeaseE2eTest {
 protected:
  void SetUp() override {
    ShortLeaseE2eTest::SetUp();
    if (HasFatalFailure()) return;
    channel_ = grpc::CreateChannel(server_->unix_address(),
                                   grpc::InsecureChannelCredentials());
    locks_ = v1::Locks::NewStub(channel_);
    v1::OpenRequest open;
    open.set_name("mutex");
    open.set_type(v1::LOCK);
    v1::OpenResponse opened;
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::Objects::NewStub(channel_)->Open(&ctx, open, &opened).ok());
  }

  // Acquires "mutex" for `client`; timeout < 0 blocks forever.
  grpc::Status Acquire(Client& client, absl::Duration timeout,
                       v1::LockAcquireResponse* resp,
                       absl::Duration deadline = absl::Seconds(30)) {
    v1::LockAcquireRequest req;
    req.set_name("mutex");
    req.set_blocking(true);
    if (timeout >= absl::ZeroDuration()) {
      internal::DurationToWire(timeout, req.mutable_timeout());
    }
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, client.session_id());
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    return locks_->Acquire(&ctx, req, resp);
  }

  grpc::Status Release(Client& client) {
    v1::LockReleaseRequest req;
    req.set_name("mutex");
    v1::LockReleaseResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, client.session_id());
    return locks_->Release(&ctx, req, &resp);
  }

  v1::LockStateResponse State() {
    v1::LockStateRequest req;
    req.set_name("mutex");
    v1::LockStateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(locks_->State(&ctx, req, &resp).ok());
    return resp;
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Locks::Stub> locks_;
};

TEST_F(LockE2eTest, TimedOutAcquireReturnsFalseNotBeforeTheTimeout) {
  auto a = NewClient();
  auto b = NewClient();
  v1::LockAcquireResponse held, timed_out;
  ASSERT_TRUE(Acquire(*a, absl::ZeroDuration(), &held).ok());
  ASSERT_TRUE(held.acquired());
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Acquire(*b, absl::Milliseconds(300), &timed_out).ok());
  EXPECT_FALSE(timed_out.acquired());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  EXPECT_EQ(State().waiters_size(), 0) << "the timed-out waiter left";
}

TEST_F(LockE2eTest, ParkedAcquirerGetsTheLockOnReleaseWithAGreaterToken) {
  auto a = NewClient();
  auto b = NewClient();
  v1::LockAcquireResponse first, second;
  ASSERT_TRUE(Acquire(*a, absl::ZeroDuration(), &first).ok());
  grpc::Status waited;
  std::thread waiter(
      [&] { waited = Acquire(*b, absl::InfiniteDuration() * -1, &second); });
  // Not ASSERT while the waiter runs: a test returning with it would abort.
  const bool parked = WaitUntil([&] { return State().waiters_size() == 1; });
  EXPECT_TRUE(parked) << "the acquire parked";
  if (parked) {
    EXPECT_EQ(State().waiters(0).holder().session_id(), b->session_id());
  }
  EXPECT_TRUE(Release(*a).ok());
  waiter.join();
  ASSERT_TRUE(waited.ok()) << waited.error_message();
  EXPECT_TRUE(second.acquired());
  EXPECT_GT(second.fencing_token(), first.fencing_token());
  EXPECT_FALSE(second.owner_died());
}

TEST_F(LockE2eTest, KilledHoldersLockGoesToTheWaiterWithOwnerDied) {
  auto child = testing::ChildProcess::Start(
      {"hold-lock", server_->unix_address(), "mutex"});
  ASSERT_TRUE(child.has_value());
  std::optional<std::string> token = child->ReadLine();
  ASSERT_TRUE(token.has_value());
  auto waiter = NewClient();
  v1::LockAcquireResponse got;
  grpc::Status waited;
  std::thread t([&] { waited = Acquire(*waiter, absl::Seconds(10), &got); });
  EXPECT_TRUE(WaitUntil([&] { return State().waiters_size() == 1; }))
      << "the acquire parked";
  const absl::Time killed = absl::Now();
  child->Kill();
  t.join();
  ASSERT_TRUE(waited.ok()) << waited.error_message();
  EXPECT_TRUE(got.acquired());
  EXPECT_TRUE(got.owner_died());
  EXPECT_GT(got.fencing_token(), std::stoull(*token));
  EXPECT_LT(absl::Now() - killed, absl::Seconds(3)) << "within the 1 s lease";
}

TEST_F(LockE2eTest, CancelledWaiterLeavesTheQueue) {
  auto a = NewClient();
  auto b = NewClient();
  v1::LockAcquireResponse held, never;
  ASSERT_TRUE(Acquire(*a, absl::ZeroDuration(), &held).ok());
  grpc::Status status = Acquire(*b, absl::InfiniteDuration() * -1, &never,
                                absl::Milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server noticed the cancellation and dropped the waiter.
  EXPECT_TRUE(WaitUntil([&] { return State().waiters_size() == 0; }));
  EXPECT_EQ(State().waiters_size(), 0);
  ASSERT_TRUE(Release(*a).ok());
  EXPECT_FALSE(State().locked()) << "nobody was granted the lock";
}

}  // namespace
}  // namespace statehub
