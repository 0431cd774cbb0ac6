// The C++ client across a restart of a durable server (--data_dir): the
// server is SIGKILLed and started again on the same socket and data dir,
// and the client, left alone meanwhile, still holds what it held and finds
// what it stored. A second client (another process's) cannot take the lock
// in between. Over the transport the test run chooses (testing/transport.h).

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

class DurabilityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/statehub-data-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    data_dir_ = dir;
    auto server = testing::ServerProcess::Start(
        {absl::StrCat("--data_dir=", data_dir_), "--fsync=always",
         absl::StrCat("--lease_ttl=", absl::ToInt64Seconds(lease()), "s")});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(data_dir_, ignored);
  }

  std::unique_ptr<Client> Connect() {
    auto client =
        Client::Connect(server_->unix_address(), testing::TestOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // The lease the restarted server gives the session back with. The gRPC
  // client takes up to about 6 s (ASan build) to open its session stream
  // again after the server was killed; the lane client well under 1 s.
  static absl::Duration lease() {
    return testing::TestTransport() == Transport::kGrpc ? absl::Seconds(10)
                                                        : absl::Seconds(5);
  }

  std::string data_dir_;
  std::unique_ptr<testing::ServerProcess> server_;
};

TEST_F(DurabilityE2eTest, ClientKeepsItsLockAndDataAcrossASigkill) {
  std::unique_ptr<Client> client = Connect();
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Dict> jobs = client->OpenDict("jobs");
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_TRUE(jobs->Set("a", 1).ok());
  absl::StatusOr<Lock> lock = client->OpenLock("L");
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<Acquisition> held = lock->Acquire();
  ASSERT_TRUE(held.ok() && held->acquired) << held.status();
  const std::string session = client->session_id();

  ASSERT_TRUE(server_->KillAndRestart().ok());
  // Longer than the lease, with no call: the client's own reconnect keeps
  // its session alive.
  absl::SleepFor(lease() + absl::Seconds(1));

  std::unique_ptr<Client> other = Connect();
  ASSERT_NE(other, nullptr);
  absl::StatusOr<Lock> other_lock = other->OpenLock("L");
  ASSERT_TRUE(other_lock.ok()) << other_lock.status();
  absl::StatusOr<Acquisition> taken = other_lock->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_FALSE(taken->acquired);

  absl::StatusOr<Value> a = jobs->Get("a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, Value(1));
  EXPECT_EQ(client->session_id(), session);
  EXPECT_TRUE(lock->Release().ok());
  absl::StatusOr<Acquisition> next = other_lock->Acquire(absl::ZeroDuration());
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->acquired);
  EXPECT_GT(next->fencing_token, held->fencing_token);
}

}  // namespace
}  // namespace statehub
