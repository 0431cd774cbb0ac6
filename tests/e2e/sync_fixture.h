// File: tests/e2e/sync_fixture.h
//
// The fixture of the synchronization end-to-end tests: a fresh server with
// a short lease per test, a client on it, and child processes
// (tests/e2e/e2e_client) pointed at it.

#ifndef STATEHUB_TESTS_E2E_SYNC_FIXTURE_H_
#define STATEHUB_TESTS_E2E_SYNC_FIXTURE_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/child_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {

using ChildProcess = testing::ChildProcess;

// SyncE2eTest starts a server and a client per test. The lease is 10 s:
// under load (sanitizers, 8 busy processes on 2 cores) a shorter one can
// lapse between keepalives and end live sessions.
class SyncE2eTest : public ::testing::Test {
 protected:
  // lease_ttl is the server's --lease_ttl.
  virtual absl::Duration lease_ttl() const { return absl::Seconds(10); }
  // server_flags are more flags for the server, after --lease_ttl.
  virtual std::vector<std::string> server_flags() const { return {}; }

  void SetUp() override {
    std::vector<std::string> flags = {
        absl::StrCat("--lease_ttl=", absl::FormatDuration(lease_ttl()))};
    for (std::string& flag : server_flags()) flags.push_back(std::move(flag));
    auto server = testing::ServerProcess::Start(std::move(flags));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = NewClient();
  }

  std::unique_ptr<Client> NewClient() {
    auto client =
        Client::Connect(server_->unix_address(), testing::TestOptions());
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  // StartChild runs e2e_client with args[0] as the mode and the server's
  // address inserted after it.
  ChildProcess StartChild(std::vector<std::string> args) {
    args.insert(args.begin() + 1, server_->unix_address());
    std::optional<ChildProcess> child = ChildProcess::Start(std::move(args));
    EXPECT_TRUE(child.has_value());
    return *std::move(child);
  }

  // WaitUntil polls `done` every `interval` for up to `limit`.
  template <typename F>
  static bool WaitUntil(F done, absl::Duration limit = absl::Seconds(30),
                        absl::Duration interval = absl::Milliseconds(10)) {
    const absl::Time give_up = absl::Now() + limit;
    while (!done()) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(interval);
    }
    return true;
  }

  std::unique_ptr<testing::ServerProcess> server_;
  std::unique_ptr<Client> client_;
};

// ShortLeaseE2eTest is SyncE2eTest with a 1 s lease, for tests that wait
// for a killed process's session to end.
class ShortLeaseE2eTest : public SyncE2eTest {
 protected:
  absl::Duration lease_ttl() const override { return absl::Seconds(1); }
};

// ExpectError checks a failed status's code and error kind.
inline void ExpectError(const absl::Status& s, absl::StatusCode code,
                        ErrorKind kind) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_EQ(GetErrorKind(s), kind) << s;
}

}  // namespace statehub

#endif  // STATEHUB_TESTS_E2E_SYNC_FIXTURE_H_
