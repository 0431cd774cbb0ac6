// File: tests/e2e/shared_server.h
//
// `SharedServerTest` is a fixture whose tests share one statehub-server,
// started once for the suite (a server per test would be most of the
// suite's time), with the helpers such tests need: a client connected with
// the test options, and object names unique to the test.
//
// Example:
//
//   class WatchE2eTest : public testing::SharedServerTest {};
//   TEST_F(WatchE2eTest, X) {
//     auto client = Connect(server_->unix_address());
//     client->OpenDict(Name("d"));   // "WatchE2eTest/X/d"
//   }

#ifndef STATEHUB_TESTS_E2E_SHARED_SERVER_H_
#define STATEHUB_TESTS_E2E_SHARED_SERVER_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "statehub/client.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub::testing {

class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override { ASSERT_NE(server_, nullptr); }

  // Connect returns a client of `address` with the test options over
  // `options`, or null (the test has failed then).
  static std::unique_ptr<Client> Connect(const std::string& address,
                                         ClientOptions options = {}) {
    auto client = Client::Connect(address, TestOptions(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // Name is a fresh object name for this test: "Suite/Test/what".
  static std::string Name(absl::string_view what) {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    return absl::StrCat(info->test_suite_name(), "/", info->name(), "/", what);
  }

  // The suite's server; the suites of one binary run one after another.
  static inline ServerProcess* server_ = nullptr;
};

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_E2E_SHARED_SERVER_H_
