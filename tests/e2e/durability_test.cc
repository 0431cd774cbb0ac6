// The C++ client across a restart of a durable server (--data_dir): the
// server is SIGKILLed and started again on the same socket and data dir,
// and the client, left alone meanwhile, still holds what it held and finds
// what it stored. A second client (another process's) cannot take the lock
// in between. Calls in flight at the kill are sent again and applied once
// (writes), made again (parked calls) or retried (reads); without a data
// dir a write in flight fails with a clear error instead. Over the
// transport the test run chooses (testing/transport.h).

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

TEST_F(DurabilityE2eTest, TtlDeadlinesSurviveASigkillAndExpireWhileDown) {
  std::unique_ptr<Client> client = Connect();
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Dict> d = client->OpenDict("ttl");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->Set("soon", 1, absl::Milliseconds(500)).ok());
  ASSERT_TRUE(d->Set("later", 2, absl::Hours(1)).ok());
  ASSERT_TRUE(d->Set("plain", 3).ok());
  absl::StatusOr<std::optional<absl::Duration>> before = d->Ttl("later");
  ASSERT_TRUE(before.ok() && before->has_value()) << before.status();

  // Down past "soon"'s deadline: it expires once the server is back.
  ASSERT_TRUE(server_->KillAndRestart().ok());
  absl::SleepFor(absl::Seconds(1));
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  absl::StatusOr<bool> soon = d->Contains("soon");
  while ((!soon.ok() || *soon) && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
    soon = d->Contains("soon");
  }
  ASSERT_TRUE(soon.ok()) << soon.status();
  EXPECT_FALSE(*soon);
  // The deadline is absolute: "later" kept its own, it did not start over.
  absl::StatusOr<std::optional<absl::Duration>> after = d->Ttl("later");
  ASSERT_TRUE(after.ok() && after->has_value()) << after.status();
  EXPECT_LT(**after, **before);
  EXPECT_GT(**after, absl::Minutes(59));
  absl::StatusOr<std::optional<absl::Duration>> plain = d->Ttl("plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->has_value());
  EXPECT_EQ(*d->Len(), 2);

  // The expiry was recorded: a second restart does not bring "soon" back.
  ASSERT_TRUE(server_->KillAndRestart().ok());
  absl::StatusOr<bool> again = d->Contains("soon");
  for (int i = 0; i < 200 && !again.ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    again = d->Contains("soon");
  }
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(*again);
}

// Errors collects what calls on several threads failed with.
class Errors {
 public:
  void Add(absl::string_view what, const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    all_.push_back(absl::StrCat(what, ": ", status.ToString()));
  }
  std::vector<std::string> all() const {
    absl::MutexLock lock(&mu_);
    return all_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> all_ ABSL_GUARDED_BY(mu_);
};

TEST_F(DurabilityE2eTest, WritesInFlightAcrossSigkillsAreAppliedExactlyOnce) {
  std::unique_ptr<Client> client = Connect();
  ASSERT_NE(client, nullptr);
  const std::string session = client->session_id();
  absl::StatusOr<Dict> counters = client->OpenDict("counters");
  ASSERT_TRUE(counters.ok()) << counters.status();
  absl::StatusOr<List> log = client->OpenList("log");
  ASSERT_TRUE(log.ok()) << log.status();

  // Writers increment a counter and append to a list as fast as they can
  // (each write waits for an fsync, so the kills find many in flight); a
  // reader reads the growing list meanwhile.
  constexpr int kWriters = 4;
  std::atomic<bool> stop{false};
  Errors errors;
  std::vector<int64_t> increments(kWriters, 0);
  std::vector<std::vector<std::string>> appended(kWriters);
  std::atomic<int64_t> reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; !stop.load(); ++i) {
        absl::StatusOr<Value> n = counters->Increment("n");
        if (n.ok()) {
          ++increments[w];
        } else {
          errors.Add("Increment", n.status());
        }
        const std::string item = absl::StrCat(w, "-", i);
        absl::StatusOr<int64_t> len = log->Append(item);
        if (len.ok()) {
          appended[w].push_back(item);
        } else {
          errors.Add("Append", len.status());
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      absl::StatusOr<Value::Items> items = log->Snapshot();
      if (items.ok()) {
        ++reads;
      } else {
        errors.Add("Snapshot", items.status());
      }
    }
  });

  for (int restart = 0; restart < 3; ++restart) {
    absl::SleepFor(absl::Milliseconds(400));
    ASSERT_TRUE(server_->KillAndRestart().ok());
  }
  absl::SleepFor(absl::Milliseconds(400));
  const int64_t reads_before_stop = reads.load();
  stop = true;
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(errors.all(), std::vector<std::string>{});
  EXPECT_GT(reads_before_stop, 0);
  int64_t acknowledged = 0;
  for (int64_t n : increments) acknowledged += n;
  absl::StatusOr<Value> n = counters->Get("n");
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_TRUE(n->is_int());
  EXPECT_EQ(n->AsInt(), acknowledged);

  absl::StatusOr<Value::Items> items = log->Snapshot();
  ASSERT_TRUE(items.ok()) << items.status();
  absl::flat_hash_map<std::string, int> times;
  for (const Value& item : *items) ++times[item.AsString()];
  size_t expected = 0;
  for (const std::vector<std::string>& mine : appended) {
    expected += mine.size();
    for (const std::string& item : mine) {
      EXPECT_EQ(times[item], 1) << item;
    }
  }
  EXPECT_EQ(items->size(), expected);
  EXPECT_GT(expected, 0u);
  EXPECT_EQ(client->session_id(), session);
}

TEST_F(DurabilityE2eTest, ParkedCallsAreMadeAgainAcrossASigkill) {
  std::unique_ptr<Client> holder = Connect();
  ASSERT_NE(holder, nullptr);
  std::unique_ptr<Client> waiter = Connect();
  ASSERT_NE(waiter, nullptr);
  absl::StatusOr<Lock> held = holder->OpenLock("L");
  ASSERT_TRUE(held.ok()) << held.status();
  absl::StatusOr<Acquisition> taken = held->Acquire();
  ASSERT_TRUE(taken.ok() && taken->acquired) << taken.status();
  absl::StatusOr<Queue> feed = holder->OpenQueue("q");
  ASSERT_TRUE(feed.ok()) << feed.status();

  absl::StatusOr<Lock> lock = waiter->OpenLock("L");
  ASSERT_TRUE(lock.ok()) << lock.status();
  absl::StatusOr<Queue> queue = waiter->OpenQueue("q");
  ASSERT_TRUE(queue.ok()) << queue.status();
  const absl::Duration timeout = absl::Seconds(60);
  std::optional<absl::StatusOr<Acquisition>> acquired;
  std::optional<absl::StatusOr<std::optional<Value>>> got;
  std::thread acquirer([&] { acquired = lock->Acquire(timeout); });
  std::thread getter([&] { got = queue->Get(/*block=*/true, timeout); });
  // Both parked on the server before it is killed.
  for (absl::Time until = absl::Now() + absl::Seconds(10);;) {
    absl::StatusOr<LockState> l = held->State();
    absl::StatusOr<QueueState> q = feed->State();
    ASSERT_TRUE(l.ok() && q.ok());
    if (l->waiters.size() == 1 && q->getters.size() == 1) break;
    ASSERT_LT(absl::Now(), until) << "the calls did not park";
    absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(server_->KillAndRestart().ok());
  // The waiter's calls park again; then the holder lets go and feeds.
  for (absl::Time until = absl::Now() + absl::Seconds(20);;) {
    absl::StatusOr<LockState> l = held->State();
    absl::StatusOr<QueueState> q = feed->State();
    if (l.ok() && q.ok() && l->waiters.size() == 1 && q->getters.size() == 1) {
      break;
    }
    ASSERT_LT(absl::Now(), until) << "the calls did not park again";
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(held->Release().ok());
  absl::StatusOr<bool> put = feed->Put("item");
  EXPECT_TRUE(put.ok() && *put) << put.status();
  acquirer.join();
  getter.join();
  // Served, well before their timeouts.
  EXPECT_LT(absl::Now() - killed, timeout / 2);
  ASSERT_TRUE(acquired->ok()) << acquired->status();
  EXPECT_TRUE((*acquired)->acquired);
  EXPECT_GT((*acquired)->fencing_token, taken->fencing_token);
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ(**got, std::optional<Value>(Value("item")));
  EXPECT_TRUE(lock->Release().ok());
}

// Without --data_dir the session dies with the server: a write in flight
// may or may not have been applied, and says so instead of waiting or
// running twice. Over TCP (and always on gRPC) writes are numbered and the
// error says that the session ended; on a Unix socket the lane numbers
// nothing (its session ends with its connection anyway) and the error says
// that a write is not retried.
TEST(DurabilityNoDataDirE2eTest, WriteInFlightFailsClearlyWhenItsSessionEnds) {
  char dir[] = "/tmp/statehub-socket-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  // A fixed TCP port, so that the restarted server is found on it again.
  const int port = testing::FreePort();
  ASSERT_NE(port, 0);
  auto server = testing::ServerProcess::Start(
      {absl::StrCat("--listen=unix://", dir, "/s.sock,127.0.0.1:", port)});
  ASSERT_TRUE(server.ok()) << server.status();
  struct Case {
    std::string address;
    bool numbered;
  };
  const bool grpc = testing::TestTransport() == Transport::kGrpc;
  const std::vector<Case> cases = {{(*server)->unix_address(), grpc},
                                   {(*server)->tcp_address(), true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.address);
    auto client = Client::Connect(c.address, testing::TestOptions());
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<Queue> queue = (*client)->OpenQueue("q", /*maxsize=*/1);
    ASSERT_TRUE(queue.ok()) << queue.status();
    absl::StatusOr<bool> first = queue->Put("first");
    ASSERT_TRUE(first.ok() && *first) << first.status();
    // A put on a full queue parks: in flight when the server is killed.
    std::optional<absl::StatusOr<bool>> put;
    std::thread putter([&] { put = queue->Put("second"); });
    for (absl::Time until = absl::Now() + absl::Seconds(10);;) {
      absl::StatusOr<QueueState> state = queue->State();
      ASSERT_TRUE(state.ok()) << state.status();
      if (state->putters.size() == 1) break;
      ASSERT_LT(absl::Now(), until) << "the put did not park";
      absl::SleepFor(absl::Milliseconds(10));
    }
    const absl::Time killed = absl::Now();
    ASSERT_TRUE((*server)->KillAndRestart().ok());
    putter.join();
    EXPECT_LT(absl::Now() - killed, absl::Seconds(20));
    ASSERT_FALSE(put->ok());
    const absl::Status& status = put->status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_TRUE(absl::StrContains(status.message(), "Queues.Put on \"q\""))
        << status;
    EXPECT_TRUE(absl::StrContains(status.message(),
                                  "it may or may not have been applied"))
        << status;
    EXPECT_TRUE(absl::StrContains(
        status.message(),
        c.numbered ? "the session it ran in has ended" : "it is not retried"))
        << status;
    EXPECT_EQ(GetErrorObject(status), "q");
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace statehub
