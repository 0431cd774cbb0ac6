// Sessions and anonymous-object lifetime against the real server and real
// client processes.

#include <signal.h>

#include <functional>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/child_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

using testing::ChildProcess;
using testing::ServerProcess;

// Polls `condition` until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition,
                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

class LifetimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start({"--lease_ttl=1s"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto observer =
        Client::Connect(server_->unix_address(), testing::TestOptions());
    ASSERT_TRUE(observer.ok()) << observer.status();
    observer_ = *std::move(observer);
  }

  bool Exists(const std::string& name) {
    return observer_->Describe(name).ok();
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> observer_;
};

TEST_F(LifetimeTest, AnonymousObjectFreedWhenItsClientCloses) {
  auto owner = Client::Connect(server_->tcp_address(), testing::TestOptions());
  ASSERT_TRUE(owner.ok());
  auto dict = (*owner)->OpenDict("");
  ASSERT_TRUE(dict.ok()) << dict.status();
  const std::string name = dict->name();
  EXPECT_TRUE(Exists(name));
  (*owner)->Close();
  EXPECT_TRUE(Eventually([&] { return !Exists(name); }, absl::Seconds(5)));
}

TEST_F(LifetimeTest, AnonymousObjectKeptWhileADictHoldsARef) {
  auto owner = Client::Connect(server_->unix_address(), testing::TestOptions());
  ASSERT_TRUE(owner.ok());
  auto inner = (*owner)->OpenList("", {1, 2});
  ASSERT_TRUE(inner.ok());
  const std::string name = inner->name();
  auto outer = observer_->OpenDict("outer");
  ASSERT_TRUE(outer.ok());
  ASSERT_TRUE(outer->Set("items", inner->ref()).ok());
  (*owner)->Close();

  absl::SleepFor(absl::Seconds(2));  // past the lease TTL
  ASSERT_TRUE(Exists(name)) << "the stored ref keeps the list alive";
  auto through_ref = outer->Get("items");
  ASSERT_TRUE(through_ref.ok());
  auto list = observer_->ListFromRef(*through_ref);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list->Len(), 2);

  ASSERT_TRUE(outer->Delete("items").ok());
  // The observer still holds the list through `list` and `through_ref`.
  EXPECT_TRUE(Exists(name));
  list = absl::UnknownError("dropped");
  through_ref = absl::UnknownError("dropped");
  EXPECT_TRUE(Eventually([&] { return !Exists(name); }, absl::Seconds(5)))
      << "the last holder released it";
}

TEST_F(LifetimeTest, KilledClientsAnonymousObjectFreedAfterTheLease) {
  auto child = ChildProcess::Start({"hold-anonymous", server_->tcp_address()});
  ASSERT_TRUE(child.has_value());
  std::optional<std::string> name = child->ReadLine();
  ASSERT_TRUE(name.has_value());
  ASSERT_TRUE(Exists(*name));
  child->Kill();
  EXPECT_TRUE(Eventually([&] { return !Exists(*name); }, absl::Seconds(5)));
}

TEST_F(LifetimeTest, SessionThatStopsSendingKeepalivesEndsAfterTheTtl) {
  // SIGSTOP keeps the process and its TCP connection alive but silent: only
  // the server's own lease timer can end the session.
  auto child = ChildProcess::Start({"hold-anonymous", server_->tcp_address()});
  ASSERT_TRUE(child.has_value());
  std::optional<std::string> name = child->ReadLine();
  ASSERT_TRUE(name.has_value());
  child->Signal(SIGSTOP);
  const absl::Time stopped = absl::Now();
  EXPECT_TRUE(Eventually([&] { return !Exists(*name); }, absl::Seconds(5)));
  EXPECT_GE(absl::Now() - stopped, absl::Milliseconds(500))
      << "not before most of the 1 s lease has passed";
  child->Signal(SIGCONT);
}

TEST_F(LifetimeTest, ChildAdoptsAnAnonymousObjectByName) {
  auto child = ChildProcess::Start({"hold-anonymous", server_->unix_address()});
  ASSERT_TRUE(child.has_value());
  std::optional<std::string> name = child->ReadLine();
  ASSERT_TRUE(name.has_value());
  // Opening an existing anonymous object by name adds this session's hold.
  auto adopted = observer_->OpenDict(*name);
  ASSERT_TRUE(adopted.ok()) << adopted.status();
  child->Kill();
  absl::SleepFor(absl::Seconds(2));
  EXPECT_TRUE(Exists(*name)) << "the adopter still holds it";
  EXPECT_EQ(observer_->Describe(*name)->holders, 1);
}

}  // namespace
}  // namespace statehub
