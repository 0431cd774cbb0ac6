// Deadlock detection (issue 15) against the real server: two sessions take
// two locks in opposite order. Under --deadlock=fail the acquire that closes
// the cycle fails with DEADLOCK and the other side goes on; under the
// default (report) the cycle is listed by Locks.Deadlocks, Locks.State and
// `statehub-cli` while it lasts, counted once in statehub_deadlocks_total,
// and gone when one of its waits ends. An RLock re-entry is no cycle.
//
// The locks are taken through the C++ client (on the transport under test);
// the deadlock listings, which the client does not expose, through a raw
// gRPC Locks stub. Every wait that must end has a timeout, so that a server
// that fails to break a cycle fails the test instead of hanging it.

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "tests/e2e/sync_fixture.h"
#include "tests/testing/scrape.h"
#include "tests/testing/shell.h"

namespace statehub {
namespace {

using testing::Shell;

// How long a wait that should be served or failed may take before the test
// gives up on it (the server never broke the cycle).
constexpr absl::Duration kSafety = absl::Seconds(60);

// One side of the cycle: a client (its own session) with handles on both
// locks, "first" taken before "second".
struct Side {
  std::unique_ptr<Client> client;
  std::optional<Lock> first;
  std::optional<Lock> second;
  // thread is the CurrentThreadId() of the thread that takes the locks.
  std::atomic<uint64_t> thread{0};
  std::atomic<bool> holds_first{false};
};

// TakeInOrder runs on the side's own thread: takes its first lock, then
// waits (up to kSafety) for its second, and releases what it got. `second`
// gets the second acquire's result, or an error if the first failed.
void TakeInOrder(Side* side, absl::StatusOr<Acquisition>* second) {
  side->thread = CurrentThreadId();
  absl::StatusOr<Acquisition> held = side->first->Acquire(kSafety);
  if (!held.ok() || !held->acquired) {
    *second = held.ok() ? absl::InternalError("first lock not acquired")
                        : held.status();
    return;
  }
  side->holds_first = true;
  *second = side->second->Acquire(kSafety);
  if (second->ok() && (*second)->acquired) {
    EXPECT_TRUE(side->second->Release().ok());
  }
  EXPECT_TRUE(side->first->Release().ok());
}

// DeadlockE2eTest runs the server with the default policy, report.
class DeadlockE2eTest : public SyncE2eTest {
 protected:
  void SetUp() override {
    SyncE2eTest::SetUp();
    if (HasFatalFailure()) return;
    locks_ = v1::Locks::NewStub(grpc::CreateChannel(
        server_->unix_address(), grpc::InsecureChannelCredentials()));
  }

  std::unique_ptr<Client> NewLabelledClient(const std::string& label) {
    ClientOptions options;
    options.label = label;
    auto client =
        Client::Connect(server_->unix_address(), testing::TestOptions(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // MakeSide connects a client labelled `label` and opens `first` and
  // `second` (LOCKs) through it.
  void MakeSide(Side* side, const std::string& label, const std::string& first,
                const std::string& second) {
    side->client = NewLabelledClient(label);
    ASSERT_NE(side->client, nullptr);
    auto f = side->client->OpenLock(first);
    ASSERT_TRUE(f.ok()) << f.status();
    auto s = side->client->OpenLock(second);
    ASSERT_TRUE(s.ok()) << s.status();
    side->first.emplace(*std::move(f));
    side->second.emplace(*std::move(s));
  }

  // Deadlocks calls Locks.Deadlocks.
  std::vector<v1::Deadlock> Deadlocks() {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::LockDeadlocksResponse resp;
    const grpc::Status status =
        locks_->Deadlocks(&ctx, v1::LockDeadlocksRequest(), &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {resp.deadlocks().begin(), resp.deadlocks().end()};
  }

  // State calls Locks.State for `name`.
  v1::LockStateResponse State(const std::string& name) {
    v1::LockStateRequest req;
    req.set_name(name);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::LockStateResponse resp;
    const grpc::Status status = locks_->State(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  // Metric reads one sample of a fresh scrape.
  std::optional<double> Metric(const std::string& series) {
    return testing::MetricValue(testing::HttpGet(server_->metrics_url()),
                                series);
  }

  // Cli runs statehub-cli against the server.
  std::string Cli(const std::string& args, int* status) {
    return Shell(absl::StrCat(STATEHUB_CLI_PATH, " --address=",
                              server_->unix_address(), " ", args),
                 status);
  }

  std::unique_ptr<v1::Locks::Stub> locks_;
};

// DeadlockFailE2eTest runs the server with --deadlock=fail.
class DeadlockFailE2eTest : public DeadlockE2eTest {
 protected:
  std::vector<std::string> server_flags() const override {
    return {"--deadlock=fail"};
  }
};

// Checks that `d` is the cycle "a waits for dl/b held by b, b waits for
// dl/a held by a", in either rotation.
void ExpectTheCycle(const v1::Deadlock& d, const Side& a, const Side& b) {
  ASSERT_EQ(d.edges_size(), 2) << d.DebugString();
  for (int i = 0; i < 2; ++i) {
    const v1::DeadlockEdge& edge = d.edges(i);
    const v1::DeadlockEdge& next = d.edges((i + 1) % 2);
    const bool on_b = edge.lock() == "dl/b";
    const Side& waiter = on_b ? a : b;
    const Side& holder = on_b ? b : a;
    EXPECT_EQ(edge.lock(), on_b ? "dl/b" : "dl/a");
    EXPECT_FALSE(edge.reentrant());
    EXPECT_FALSE(edge.condition());
    EXPECT_EQ(edge.waiter().session_id(), waiter.client->session_id());
    EXPECT_EQ(edge.waiter().thread_id(), waiter.thread.load());
    EXPECT_EQ(edge.holder().session_id(), holder.client->session_id());
    EXPECT_EQ(edge.holder().thread_id(), holder.thread.load());
    // Edge i's holder is edge i + 1's waiter.
    EXPECT_EQ(edge.holder().session_id(), next.waiter().session_id());
    EXPECT_EQ(edge.holder().thread_id(), next.waiter().thread_id());
  }
  EXPECT_NE(d.edges(0).lock(), d.edges(1).lock());
}

TEST_F(DeadlockFailE2eTest, TheAcquireThatClosesACycleFailsAndTheOtherGoesOn) {
  Side a, b;
  ASSERT_NO_FATAL_FAILURE(MakeSide(&a, "side-a", "dl/a", "dl/b"));
  ASSERT_NO_FATAL_FAILURE(MakeSide(&b, "side-b", "dl/b", "dl/a"));
  // This thread is side a: it holds dl/a.
  a.thread = CurrentThreadId();
  ASSERT_TRUE(a.first->Acquire()->acquired);

  absl::StatusOr<Acquisition> b_second;
  // b holds dl/b, then parks on dl/a (a holds it).
  std::jthread b_thread([&] { TakeInOrder(&b, &b_second); });
  // Not ASSERT while b waits for dl/a: it waits until a releases it.
  EXPECT_TRUE(WaitUntil([&] {
    return b.holds_first && State("dl/a").waiters_size() == 1;
  })) << "b holds dl/b and waits for dl/a";

  // a's acquire of dl/b closes the cycle: it fails at once.
  const absl::StatusOr<Acquisition> closing = a.second->Acquire(kSafety);
  EXPECT_FALSE(closing.ok()) << "the acquire that closed the cycle returned";
  ExpectError(closing.status(), absl::StatusCode::kAborted,
              ErrorKind::kDeadlock);
  const std::string message(closing.status().message());
  EXPECT_TRUE(absl::StrContains(message, "\"dl/a\"")) << message;
  EXPECT_TRUE(absl::StrContains(message, "\"dl/b\"")) << message;
  EXPECT_TRUE(absl::StrContains(message, a.client->session_id())) << message;
  EXPECT_TRUE(absl::StrContains(message, b.client->session_id())) << message;
  // A refused wait never parked: no cycle is left to list.
  EXPECT_TRUE(Deadlocks().empty());
  EXPECT_EQ(State("dl/b").waiters_size(), 0);

  // The failing side lets go of dl/a; b gets it.
  EXPECT_TRUE(a.first->Release().ok());
  b_thread.join();
  ASSERT_TRUE(b_second.ok()) << b_second.status();
  EXPECT_TRUE(b_second->acquired);
  EXPECT_EQ(Metric("statehub_deadlocks_total"), 1);
  EXPECT_EQ(Metric("statehub_deadlocks"), 0);
}

TEST_F(DeadlockE2eTest, ACycleIsListedUntilOneOfItsWaitsTimesOut) {
  Side a, b;
  ASSERT_NO_FATAL_FAILURE(MakeSide(&a, "side-a", "dl/a", "dl/b"));
  ASSERT_NO_FATAL_FAILURE(MakeSide(&b, "side-b", "dl/b", "dl/a"));
  std::atomic<bool> go{false};
  absl::StatusOr<Acquisition> a_second, b_second;
  std::vector<v1::Deadlock> after_timeout;
  std::jthread a_thread([&] {
    a.thread = CurrentThreadId();
    if (!a.first->Acquire(kSafety).value_or(Acquisition{}).acquired) return;
    a.holds_first = true;
    while (!go) absl::SleepFor(absl::Milliseconds(5));
    // Closes the cycle; no one breaks it, so it times out.
    a_second = a.second->Acquire(absl::Seconds(1));
    after_timeout = Deadlocks();
    EXPECT_TRUE(a.first->Release().ok());
  });
  EXPECT_TRUE(WaitUntil([&] { return a.holds_first.load(); }));
  // b holds dl/b, then parks on dl/a (a holds it).
  std::jthread b_thread([&] { TakeInOrder(&b, &b_second); });
  EXPECT_TRUE(WaitUntil([&] {
    return b.holds_first && State("dl/a").waiters_size() == 1;
  })) << "b holds dl/b and waits for dl/a";
  EXPECT_TRUE(Deadlocks().empty()) << "one wait is no cycle";

  go = true;
  // The cycle lasts as long as a's 1 s wait: look at it meanwhile.
  std::vector<v1::Deadlock> listed;
  v1::LockStateResponse state_a;
  EXPECT_TRUE(WaitUntil(
      [&] {
        listed = Deadlocks();
        return !listed.empty();
      },
      absl::Seconds(30), absl::Milliseconds(1)))
      << "the cycle was listed while a waited";
  if (!listed.empty()) state_a = State("dl/a");

  a_thread.join();
  b_thread.join();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id(), 1u);
  ExpectTheCycle(listed[0], a, b);
  // Locks.State lists it for either lock (taken before a's timeout if the
  // list was).
  if (state_a.deadlocks_size() > 0) {
    EXPECT_EQ(state_a.deadlocks(0).id(), 1u);
  }
  ASSERT_TRUE(a_second.ok()) << a_second.status();
  EXPECT_FALSE(a_second->acquired) << "timed out";
  EXPECT_TRUE(after_timeout.empty()) << "gone when the wait timed out";
  ASSERT_TRUE(b_second.ok()) << b_second.status();
  EXPECT_TRUE(b_second->acquired) << "b got dl/a once a let go";
  EXPECT_TRUE(Deadlocks().empty());
  EXPECT_EQ(Metric("statehub_deadlocks_total"), 1) << "counted once";
  EXPECT_EQ(Metric("statehub_deadlocks"), 0);
}

// statehub-cli shows a cycle while it lasts: `deadlocks` lists its waits,
// `locks` marks each of its locks. The cycle lasts until this thread, a
// third session, releases dl/a (a LOCK any caller may release).
TEST_F(DeadlockE2eTest, CliShowsTheCycle) {
  int status = -1;
  EXPECT_EQ(Cli("deadlocks", &status), "no deadlocks\n");
  EXPECT_EQ(status, 0);

  Side a, b;
  ASSERT_NO_FATAL_FAILURE(MakeSide(&a, "side-a", "dl/a", "dl/b"));
  ASSERT_NO_FATAL_FAILURE(MakeSide(&b, "side-b", "dl/b", "dl/a"));
  auto releaser = client_->OpenLock("dl/a");
  ASSERT_TRUE(releaser.ok()) << releaser.status();
  std::atomic<bool> go{false};
  absl::StatusOr<Acquisition> a_second, b_second;
  std::jthread a_thread([&] {
    a.thread = CurrentThreadId();
    if (!a.first->Acquire(kSafety).value_or(Acquisition{}).acquired) return;
    a.holds_first = true;
    while (!go) absl::SleepFor(absl::Milliseconds(5));
    a_second = a.second->Acquire(kSafety);  // closes the cycle
    if (a_second.ok() && a_second->acquired)
      EXPECT_TRUE(a.second->Release().ok());
    // dl/a was released for a, by the test.
  });
  EXPECT_TRUE(WaitUntil([&] { return a.holds_first.load(); }));
  // b holds dl/b, then parks on dl/a (a holds it).
  std::jthread b_thread([&] { TakeInOrder(&b, &b_second); });
  EXPECT_TRUE(WaitUntil(
      [&] { return b.holds_first && State("dl/a").waiters_size() == 1; }));
  go = true;
  EXPECT_TRUE(WaitUntil([&] { return !Deadlocks().empty(); }));
  const std::optional<double> present = Metric("statehub_deadlocks");
  int deadlocks_status = -1, locks_status = -1;
  const std::string deadlocks = Cli("deadlocks", &deadlocks_status);
  const std::string locks = Cli("locks dl/", &locks_status);
  const std::vector<v1::Deadlock> listed = Deadlocks();

  EXPECT_TRUE(releaser->Release().ok());  // b gets dl/a, then a gets dl/b
  a_thread.join();
  b_thread.join();
  EXPECT_TRUE(a_second.ok() && a_second->acquired);
  EXPECT_TRUE(b_second.ok() && b_second->acquired);
  EXPECT_TRUE(Deadlocks().empty()) << "dl/a changed hands";

  EXPECT_EQ(present, 1);
  ASSERT_EQ(listed.size(), 1u);
  ExpectTheCycle(listed[0], a, b);
  auto who = [](const Side& side, const std::string& label) {
    return absl::StrFormat("session %s %s thread %x", side.client->session_id(),
                           label, side.thread.load());
  };
  const std::string a_waits =
      absl::StrCat("  ", who(a, "side-a"), " waits for lock \"dl/b\" held by ",
                   who(b, "side-b"));
  const std::string b_waits =
      absl::StrCat("  ", who(b, "side-b"), " waits for lock \"dl/a\" held by ",
                   who(a, "side-a"));
  EXPECT_EQ(deadlocks_status, 0);
  const std::vector<std::string> lines =
      absl::StrSplit(deadlocks, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << deadlocks;
  EXPECT_TRUE(absl::StartsWith(lines[0], "deadlock 1 (for ")) << deadlocks;
  EXPECT_TRUE(absl::EndsWith(lines[0], "):")) << deadlocks;
  EXPECT_TRUE((lines[1] == a_waits && lines[2] == b_waits) ||
              (lines[1] == b_waits && lines[2] == a_waits))
      << deadlocks << "expected:\n"
      << a_waits << "\n"
      << b_waits;

  EXPECT_EQ(locks_status, 0);
  // Each lock's block ends with its waiter and the deadlock.
  for (const char* lock : {"lock dl/a: held by ", "lock dl/b: held by "}) {
    const size_t at = locks.find(lock);
    ASSERT_NE(at, std::string::npos) << locks;
    const size_t next = locks.find("\nlock ", at);
    const std::string block = locks.substr(at, next - at);
    EXPECT_TRUE(absl::StrContains(block, "\n  waiter 1: ")) << block;
    EXPECT_TRUE(
        absl::EndsWith(absl::StripSuffix(block, "\n"), "\n  in deadlock 1"))
        << block;
  }
}

TEST_F(DeadlockE2eTest, CliDeadlocksTakesNoPrefix) {
  int status = -1;
  const std::string output = Cli("deadlocks dl/", &status);
  EXPECT_EQ(status, 2) << output;
}

// An RLock's owner acquiring it again while another session's thread waits
// for it: a re-entry never waits, so there is no cycle.
TEST_F(DeadlockE2eTest, RLockReentryWhileAnotherWaitsIsNoCycle) {
  auto mine = client_->OpenRLock("dl/r");
  ASSERT_TRUE(mine.ok()) << mine.status();
  std::unique_ptr<Client> other = NewClient();
  auto theirs = other->OpenRLock("dl/r");
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_TRUE(mine->Acquire()->acquired);

  absl::StatusOr<Acquisition> waited;
  std::jthread waiter([&] {
    waited = theirs->Acquire(kSafety);
    if (waited.ok() && waited->acquired) EXPECT_TRUE(theirs->Release().ok());
  });
  EXPECT_TRUE(WaitUntil([&] { return State("dl/r").waiters_size() == 1; }));
  const absl::StatusOr<Acquisition> again = mine->Acquire(kSafety);
  const v1::LockStateResponse state = State("dl/r");
  const std::vector<v1::Deadlock> listed = Deadlocks();
  EXPECT_TRUE(mine->Release().ok());
  EXPECT_TRUE(mine->Release().ok());
  waiter.join();

  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->acquired);
  EXPECT_EQ(state.recursion(), 2);
  EXPECT_EQ(state.deadlocks_size(), 0);
  EXPECT_TRUE(listed.empty());
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_TRUE(waited->acquired);
  EXPECT_EQ(Metric("statehub_deadlocks_total"), 0);
}

}  // namespace
}  // namespace statehub
