#include "tests/testing/server_process.h"

#include <signal.h>
#include <unistd.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"

namespace statehub::testing {
namespace {

TEST(ServerProcessTest, StartsOnBothAddressesAndStopsCleanly) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(absl::StartsWith((*server)->unix_address(), "unix:///"));
  EXPECT_TRUE(absl::StartsWith((*server)->tcp_address(), "127.0.0.1:"));
  EXPECT_GT((*server)->pid(), 0);
  EXPECT_TRUE((*server)->Alive());

  for (const std::string& address :
       {(*server)->unix_address(), (*server)->tcp_address()}) {
    absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address);
    ASSERT_TRUE(client.ok()) << address << ": " << client.status();
    absl::StatusOr<Dict> d = (*client)->OpenDict("server_process_test");
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_TRUE(d->Set("k", 1).ok());
  }

  EXPECT_TRUE((*server)->Stop().ok());
  EXPECT_FALSE((*server)->Alive());
  EXPECT_TRUE((*server)->Stop().ok()) << "Stop is idempotent";
}

TEST(ServerProcessTest, ExtraFlagsReachTheServer) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--max_depth=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::unique_ptr<Client>> client =
      Client::Connect((*server)->unix_address());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<Dict> d = (*client)->OpenDict("server_process_test");
  ASSERT_TRUE(d.ok()) << d.status();
  Value deep = 1;
  for (int i = 0; i < 10; ++i) deep = Value::List({deep});
  absl::Status status = d->Set("deep", deep);
  EXPECT_EQ(GetErrorKind(status), ErrorKind::kLimitExceeded) << status;
}

TEST(ServerProcessTest, ServerThatExitsBeforeReadyIsUnavailable) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--no_such_flag=1"});
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable)
      << server.status();
  EXPECT_TRUE(absl::StrContains(server.status().message(), "exited"))
      << server.status();
}

TEST(ServerProcessTest, StopReportsAServerThatDied) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(kill((*server)->pid(), SIGKILL), 0);
  for (int i = 0; i < 500 && (*server)->Alive(); ++i) usleep(10'000);
  EXPECT_FALSE((*server)->Alive());
  absl::Status status = (*server)->Stop();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), "signal 9")) << status;
}

}  // namespace
}  // namespace statehub::testing
