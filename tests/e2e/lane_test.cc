// The C++ client on the lane (api/LANE.md) against the real server: what the
// lane promises beyond what the whole e2e suite checks on both transports.

#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/child_process.h"
#include "tests/testing/server_process.h"

namespace statehub {
namespace {

using testing::ChildProcess;
using testing::ServerProcess;

ClientOptions Lane() {
  ClientOptions options;
  options.transport = Transport::kLane;
  return options;
}

template <typename F>
bool WaitUntil(F done, absl::Duration limit = absl::Seconds(20)) {
  const absl::Time give_up = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

class LaneTest : public ::testing::Test {
 protected:
  // A long lease: whatever ends a session here, it is not the lease.
  void SetUp() override { Start({"--lease_ttl=30s"}); }

  void Start(std::vector<std::string> flags) {
    auto server = ServerProcess::Start(std::move(flags));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto client = Client::Connect(server_->unix_address(), Lane());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(LaneTest, SigkilledHoldersLockGoesToTheWaiterAtOnceWithOwnerDied) {
  // Children read the transport from the environment: make it the lane.
  setenv("STATEHUB_TEST_TRANSPORT", "lane", 1);
  std::optional<ChildProcess> child = ChildProcess::Start(
      {"hold-lock", server_->unix_address(), "lane/robust"});
  ASSERT_TRUE(child.has_value());
  ASSERT_TRUE(child->ReadLine().has_value()) << "the child holds the lock";
  auto lock = client_->OpenLock("lane/robust");
  ASSERT_TRUE(lock.ok()) << lock.status();

  absl::StatusOr<Acquisition> got;
  absl::Time acquired_at;
  std::thread waiter([&] {
    got = lock->Acquire(absl::Seconds(25));
    acquired_at = absl::Now();
  });
  ASSERT_TRUE(WaitUntil([&] {
    auto state = lock->State();
    return state.ok() && state->waiters.size() == 1;
  })) << "the acquire is parked";
  const absl::Time killed_at = absl::Now();
  child->Kill();
  waiter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->acquired);
  EXPECT_TRUE(got->owner_died);
  EXPECT_LT(acquired_at - killed_at, absl::Seconds(2))
      << "the kernel closed the owning connection: no wait for the 30 s "
         "lease";
}

TEST_F(LaneTest, ParkedCallsTimeOutOnTheServerAndWakeOnRelease) {
  auto other = Client::Connect(server_->unix_address(), Lane());
  ASSERT_TRUE(other.ok());
  auto held = client_->OpenLock("lane/parked");
  auto lock = (*other)->OpenLock("lane/parked");
  ASSERT_TRUE(held.ok() && lock.ok());
  auto first = held->Acquire();
  ASSERT_TRUE(first.ok() && first->acquired);

  const absl::Time start = absl::Now();
  auto timed = lock->Acquire(absl::Milliseconds(300));
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(timed.ok()) << timed.status();
  EXPECT_FALSE(timed->acquired);
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(3));

  absl::StatusOr<Acquisition> untimed;
  std::thread parked([&] { untimed = lock->Acquire(); });
  ASSERT_TRUE(WaitUntil([&] { return held->State()->waiters.size() == 1; }));
  // While one thread is parked, the same client's other calls go on.
  auto counters = (*other)->OpenDict("lane/counters");
  ASSERT_TRUE(counters.ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(counters->Increment("n").ok());
  ASSERT_TRUE(held->Release().ok());
  parked.join();
  ASSERT_TRUE(untimed.ok()) << untimed.status();
  EXPECT_TRUE(untimed->acquired);
  EXPECT_GT(untimed->fencing_token, first->fencing_token);
  EXPECT_FALSE(untimed->owner_died);
}

TEST_F(LaneTest, TimedWaitsOfOtherPrimitivesReturnFalseOnTime) {
  auto event = client_->OpenEvent("lane/event");
  auto queue = client_->OpenQueue("lane/queue");
  ASSERT_TRUE(event.ok() && queue.ok());
  absl::Time start = absl::Now();
  auto waited = event->Wait(absl::Milliseconds(200));
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_FALSE(*waited);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  start = absl::Now();
  auto item = queue->Get(true, absl::Milliseconds(200));
  ASSERT_TRUE(item.ok()) << item.status();
  EXPECT_FALSE(item->has_value()) << "empty: queue.Empty, not an error";
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
}

TEST_F(LaneTest, CloseAnswersTheSessionsParkedCalls) {
  auto other = Client::Connect(server_->unix_address(), Lane());
  ASSERT_TRUE(other.ok());
  auto held = client_->OpenLock("lane/closed");
  auto lock = (*other)->OpenLock("lane/closed");
  ASSERT_TRUE(held.ok() && lock.ok());
  ASSERT_TRUE(held->Acquire()->acquired);
  absl::StatusOr<Acquisition> parked;
  std::thread waiter([&] { parked = lock->Acquire(); });
  ASSERT_TRUE(WaitUntil([&] { return held->State()->waiters.size() == 1; }));
  const absl::Time closed_at = absl::Now();
  (*other)->Close();
  waiter.join();
  EXPECT_LT(absl::Now() - closed_at, absl::Seconds(5));
  EXPECT_FALSE(parked.ok() && parked->acquired)
      << "an untimed acquire of a closed session is not granted";
  EXPECT_TRUE(held->State()->waiters.empty());
}

TEST_F(LaneTest, AClientDeadlinePastAStalledServerCancelsAndRecovers) {
  ClientOptions options = Lane();
  options.call_timeout = absl::Milliseconds(100);
  auto impatient = Client::Connect(server_->unix_address(), options);
  ASSERT_TRUE(impatient.ok());
  auto held = client_->OpenLock("lane/stalled");
  auto lock = (*impatient)->OpenLock("lane/stalled");
  ASSERT_TRUE(held.ok() && lock.ok());
  ASSERT_TRUE(held->Acquire()->acquired);

  absl::StatusOr<Acquisition> timed;
  absl::Time returned_at;
  std::thread waiter([&] {
    timed = lock->Acquire(absl::Milliseconds(200));
    returned_at = absl::Now();
  });
  ASSERT_TRUE(WaitUntil([&] { return held->State()->waiters.size() == 1; }));
  // The server stops past the call's timeout and its client deadline
  // (200 + 100 ms): the client sends CANCEL and waits for the answer.
  kill(server_->pid(), SIGSTOP);
  absl::SleepFor(absl::Milliseconds(600));
  kill(server_->pid(), SIGCONT);
  waiter.join();
  // The server's own timeout and the CANCEL race; either answer is right,
  // and neither grants the lock.
  if (timed.ok()) {
    EXPECT_FALSE(timed->acquired);
  } else {
    EXPECT_EQ(timed.status().code(), absl::StatusCode::kDeadlineExceeded)
        << timed.status();
  }
  EXPECT_TRUE(held->State()->waiters.empty());
  ASSERT_TRUE(held->Release().ok());
  auto again = lock->Acquire(absl::Seconds(1));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->acquired) << "the client goes on after the stall";
}

TEST_F(LaneTest, ManyThreadsOnOneClientShareItsSession) {
  const std::string session = client_->session_id();
  ASSERT_FALSE(session.empty());
  constexpr int kThreads = 16;
  std::vector<std::string> anonymous(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto counters = client_->OpenDict("lane/shared");
      auto lock = client_->OpenLock(absl::StrCat("lane/own-", t));
      auto mine = client_->OpenList("");
      if (!counters.ok() || !lock.ok() || !mine.ok()) {
        ++failures;
        return;
      }
      anonymous[t] = mine->name();
      for (int i = 0; i < 500; ++i) {
        if (!counters->Increment("hits").ok()) ++failures;
      }
      if (!lock->Acquire().ok()) ++failures;
      auto state = lock->State();
      if (!state.ok() || state->holder.session_id != session) ++failures;
      if (!lock->Release().ok()) ++failures;
      // The handle goes: its hold is queued for release, and sent ahead of
      // a later call.
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto counters = client_->OpenDict("lane/shared");
  EXPECT_EQ(*counters->Get("hits"), Value(kThreads * 500));
  EXPECT_EQ(client_->session_id(), session);
  for (const std::string& name : anonymous) {
    // Each Describe carries the releases queued before it.
    EXPECT_TRUE(WaitUntil([&] { return !client_->Describe(name).ok(); },
                          absl::Seconds(5)))
        << name << " was released when its handle died";
  }
}

TEST_F(LaneTest, AMessageOverTheLimitFailsTheCallNotTheSession) {
  Start({"--lease_ttl=30s", "--max_message_bytes=4096"});
  auto kept = client_->OpenDict("");
  ASSERT_TRUE(kept.ok()) << kept.status();
  const std::string session = client_->session_id();
  const absl::Status s = kept->Set("k", std::string(10'000, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(GetErrorLimit(s), "max_message_bytes") << s;
  // The server closed the connection the call ran on, not the one that owns
  // the session: the anonymous dict and the session live on.
  EXPECT_TRUE(kept->Set("k", "small").ok());
  EXPECT_EQ(client_->session_id(), session);
  EXPECT_EQ(client_->Describe(kept->name())->holders, 1);
}

TEST_F(LaneTest, AnIdleTcpClientKeepsItsSessionPastTheLease) {
  Start({"--lease_ttl=1s"});
  auto tcp = Client::Connect(server_->tcp_address(), Lane());
  ASSERT_TRUE(tcp.ok()) << tcp.status();
  EXPECT_EQ((*tcp)->lease_ttl(), absl::Seconds(1));
  auto kept = (*tcp)->OpenDict("");
  ASSERT_TRUE(kept.ok());
  absl::SleepFor(absl::Seconds(3));  // three leases, no calls: only PINGs
  EXPECT_TRUE(client_->Describe(kept->name()).ok())
      << "the keepalive thread renewed the lease";
  (*tcp)->Close();
  EXPECT_TRUE(WaitUntil([&] { return !client_->Describe(kept->name()).ok(); },
                        absl::Seconds(5)))
      << "GOODBYE ended the session";
}

TEST_F(LaneTest, TheGrpcTransportOptionServesTheSameObjects) {
  ClientOptions options;
  options.transport = Transport::kGrpc;
  auto grpc = Client::Connect(server_->unix_address(), options);
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  EXPECT_FALSE((*grpc)->session_id().empty());
  EXPECT_NE((*grpc)->session_id(), client_->session_id());

  auto over_grpc = (*grpc)->OpenDict("lane/both");
  auto over_lane = client_->OpenDict("lane/both");
  ASSERT_TRUE(over_grpc.ok()) << over_grpc.status();
  ASSERT_TRUE(over_lane.ok()) << over_lane.status();
  ASSERT_TRUE(over_grpc->Set("from", "grpc").ok());
  EXPECT_EQ(*over_lane->Get("from"), Value("grpc"));

  auto lock_grpc = (*grpc)->OpenLock("lane/both-lock");
  auto lock_lane = client_->OpenLock("lane/both-lock");
  ASSERT_TRUE(lock_grpc.ok() && lock_lane.ok());
  ASSERT_TRUE(lock_grpc->Acquire()->acquired);
  EXPECT_FALSE(lock_lane->Acquire(absl::Milliseconds(50))->acquired);
  ASSERT_TRUE(lock_grpc->Release().ok());
  EXPECT_TRUE(lock_lane->Acquire(absl::Seconds(5))->acquired);

  // The same error, kind and object on either transport.
  const absl::Status on_grpc = over_grpc->Get("missing").status();
  const absl::Status on_lane = over_lane->Get("missing").status();
  EXPECT_EQ(on_grpc.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(on_lane.code(), on_grpc.code());
  EXPECT_EQ(on_lane.message(), on_grpc.message());
  EXPECT_EQ(GetErrorKind(on_lane), ErrorKind::kKeyError);
  EXPECT_EQ(GetErrorObject(on_lane), GetErrorObject(on_grpc));
}

TEST_F(LaneTest, ABadAddressOrNoServerFailsConnect) {
  ClientOptions quick = Lane();
  quick.connect_timeout = absl::Seconds(2);
  auto bad = Client::Connect("no-port-here", quick);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument)
      << bad.status();
  auto nobody = Client::Connect("unix:///nonexistent/statehub.sock", quick);
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kUnavailable)
      << nobody.status();
}

}  // namespace
}  // namespace statehub
