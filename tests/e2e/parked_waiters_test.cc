// 10,000 acquires parked on one lock from a few client processes (each
// parks its share through gRPC's callback API, without a thread per call):
// the server must hold them as memory, not threads, and serve them in FIFO
// order. Prints the server's thread count and VmRSS while they are parked.

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/sync_fixture.h"
#include "tests/testing/scrape.h"

namespace statehub {
namespace {

constexpr int kProcesses = 4;
constexpr int kPerProcess = 2'500;
constexpr int kWaiters = kProcesses * kPerProcess;
// The server runs a small fixed set of threads (gRPC's pollers and callback
// executor, the lease expiry thread); a thread per parked call would show
// as thousands.
constexpr int64_t kMaxServerThreads = 32;

// StatusField returns a numeric field of /proc/<pid>/status ("Threads",
// "VmRSS" in kB), or -1.
int64_t StatusField(pid_t pid, const std::string& field) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::ByAnyChar(": \t"), absl::SkipEmpty());
    int64_t value;
    if (parts.size() >= 2 && parts[0] == field &&
        absl::SimpleAtoi(parts[1], &value)) {
      return value;
    }
  }
  return -1;
}

using ParkedWaitersTest = SyncE2eTest;

TEST_F(ParkedWaitersTest, TenThousandParkedAcquiresCostNoThreadsAndGoFifo) {
  auto lock = client_->OpenLock("crowd");
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(lock->Acquire()->acquired);
  const int64_t threads_before = StatusField(server_->pid(), "Threads");
  const int64_t rss_before = StatusField(server_->pid(), "VmRSS");

  std::vector<ChildProcess> children;
  for (int i = 0; i < kProcesses; ++i) {
    children.push_back(
        StartChild({"park-many", "crowd", std::to_string(kPerProcess),
                    std::to_string(i * 1'000'000)}));
  }
  for (ChildProcess& child : children) EXPECT_EQ(child.ReadLine(), "parked");
  absl::StatusOr<LockState> parked;
  ASSERT_TRUE(WaitUntil(
      [&] {
        parked = lock->State();
        return parked.ok() && parked->waiters.size() == kWaiters;
      },
      absl::Seconds(60), absl::Milliseconds(200)))
      << "parked: " << (parked.ok() ? parked->waiters.size() : 0);

  const int64_t threads = StatusField(server_->pid(), "Threads");
  const int64_t rss = StatusField(server_->pid(), "VmRSS");
  std::printf(
      "server with %d parked acquires: %lld threads (%lld before), VmRSS "
      "%lld kB (%lld kB before)\n",
      kWaiters, static_cast<long long>(threads),
      static_cast<long long>(threads_before), static_cast<long long>(rss),
      static_cast<long long>(rss_before));
  EXPECT_GT(threads, 0);
  EXPECT_LE(threads, kMaxServerThreads);

  // The order they will be served in, by (session, thread id).
  std::vector<std::pair<std::string, uint64_t>> expected;
  for (const Waiter& w : parked->waiters) {
    expected.emplace_back(w.holder.session_id, w.holder.thread_id);
  }
  ASSERT_TRUE(lock->Release().ok());

  // Each child reports its grants; fencing tokens order them globally.
  std::map<uint64_t, std::pair<std::string, uint64_t>> by_token;
  int failed = 0;
  for (ChildProcess& child : children) {
    std::optional<std::string> line = child.ReadLine(/*timeout_ms=*/120'000);
    ASSERT_TRUE(line.has_value());
    std::vector<std::string> session = absl::StrSplit(*line, ' ');
    ASSERT_EQ(session.size(), 2u);
    ASSERT_EQ(session[0], "session");
    while ((line = child.ReadLine()).has_value() && *line != "done") {
      std::vector<std::string> f = absl::StrSplit(*line, ' ');
      ASSERT_EQ(f.size(), 2u) << *line;
      if (f[0] == "failed") {
        ++failed;
        continue;
      }
      uint64_t thread_id, token;
      ASSERT_TRUE(absl::SimpleAtoi(f[0], &thread_id));
      ASSERT_TRUE(absl::SimpleAtoi(f[1], &token));
      by_token[token] = {session[1], thread_id};
    }
    EXPECT_EQ(line, "done");
  }
  EXPECT_EQ(failed, 0) << "no call was cancelled or failed";
  std::vector<std::pair<std::string, uint64_t>> served;
  for (auto& [token, who] : by_token) served.push_back(who);
  ASSERT_EQ(served.size(), expected.size());
  EXPECT_TRUE(served == expected) << "served in the order they parked";
  EXPECT_FALSE(lock->State()->locked);
  // Waits for a holder that waits for nothing are no cycle: the wait-for
  // graph saw 10,000 of them and found none.
  const std::string scrape = testing::HttpGet(server_->metrics_url());
  EXPECT_EQ(testing::MetricValue(scrape, "statehub_deadlocks_total"),
            std::optional<double>(0))
      << scrape;
}

}  // namespace
}  // namespace statehub
