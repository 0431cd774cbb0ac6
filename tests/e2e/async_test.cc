// The asynchronous C++ API (statehub/async.h) against the real server over
// real sockets: calls in flight together on one connection, pipelining,
// errors, a server that dies under calls, and the blocking API beside it.
// No test here measures time: deadlines only keep a broken build from
// hanging.

#include "statehub/async.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "statehub/v1/sync.pb.h"
#include "tests/testing/server_process.h"

namespace statehub {
namespace {

using ::testing::HasSubstr;
using testing::ServerProcess;

// Generous: reached only if something hangs.
constexpr absl::Duration kHang = absl::Seconds(60);

// Stopped is whether every thread of process `pid` is stopped (SIGSTOP
// takes effect on each thread in its own time).
bool Stopped(pid_t pid) {
  const std::string tasks = absl::StrCat("/proc/", pid, "/task");
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    std::ifstream stat(task.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // "tid (comm) S ...": the state follows the last ')'.
    const size_t paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size() ||
        line[paren + 2] != 'T') {
      return false;
    }
  }
  return true;
}

// AcquireRequest is a Locks.Acquire of lock `name`, for AsyncClient::Call.
v1::LockAcquireRequest AcquireRequest(const std::string& name, bool blocking) {
  v1::LockAcquireRequest request;
  request.set_name(name);
  request.set_blocking(blocking);
  request.set_thread_id(1);
  return request;
}

class AsyncTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start({"--lease_ttl=30s"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto blocking = Client::Connect(address());
    ASSERT_TRUE(blocking.ok()) << blocking.status();
    blocking_ = *std::move(blocking);
    auto client = AsyncClient::Connect(loop_, address());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  // address is the Unix socket, or TCP loopback for the TCP instances.
  std::string address() const {
    return GetParam() ? server_->tcp_address() : server_->unix_address();
  }

  // RunUntilCount runs the loop until `n` counts `expected` callbacks.
  bool RunUntilCount(const int& n, int expected) {
    return loop_.RunUntil([&] { return n >= expected; }, absl::Now() + kHang);
  }

  // PollUntil runs the loop until `done()`, which depends on something
  // other than the loop's callbacks (the server's state): it polls.
  template <typename F>
  bool PollUntil(F done) {
    const absl::Time give_up = absl::Now() + kHang;
    while (true) {
      loop_.Poll();
      if (done()) return true;
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Client> blocking_;
  // Declared before the client: destroyed after it.
  AsyncLoop loop_;
  std::unique_ptr<AsyncClient> client_;
};

INSTANTIATE_TEST_SUITE_P(Sockets, AsyncTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Tcp" : "Unix";
                         });

TEST_P(AsyncTest, CallsInFlightTogetherOnOneConnectionGetTheirOwnResults) {
  ASSERT_TRUE(blocking_->OpenDict("async/mixed").ok());
  AsyncDict dict = client_->dict("async/mixed");
  constexpr int kKeys = 100;
  // Every call is issued before the loop runs once: all are in flight on
  // the one connection together.
  std::vector<std::optional<absl::StatusOr<Value>>> sums(kKeys);
  std::vector<std::optional<absl::StatusOr<bool>>> contains(kKeys);
  int done = 0;
  for (int i = 0; i < kKeys; ++i) {
    dict.Increment(absl::StrCat("k", i), i, [&, i](absl::StatusOr<Value> v) {
      sums[i] = std::move(v);
      ++done;
    });
    dict.Contains(absl::StrCat("k", i), [&, i](absl::StatusOr<bool> c) {
      contains[i] = std::move(c);
      ++done;
    });
  }
  std::optional<absl::StatusOr<int64_t>> length;
  dict.Len([&](absl::StatusOr<int64_t> n) {
    length = std::move(n);
    ++done;
  });
  EXPECT_EQ(client_->in_flight(), 2 * kKeys + 1);
  ASSERT_TRUE(RunUntilCount(done, 2 * kKeys + 1));
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_TRUE(sums[i].has_value() && sums[i]->ok()) << i;
    EXPECT_EQ(**sums[i], Value(i));
    ASSERT_TRUE(contains[i].has_value() && contains[i]->ok()) << i;
    EXPECT_TRUE(**contains[i]) << "issued after its increment: " << i;
  }
  ASSERT_TRUE(length.has_value() && length->ok());
  EXPECT_EQ(**length, kKeys);
  EXPECT_EQ(client_->in_flight(), 0);
}

TEST_P(AsyncTest, PipelinedThousandSetsAreReadBackByPipelinedGets) {
  ASSERT_TRUE(blocking_->OpenDict("async/pipelined").ok());
  AsyncDict dict = client_->dict("async/pipelined");
  constexpr int kCalls = 1000;
  int set = 0;
  for (int i = 0; i < kCalls; ++i) {
    dict.Set(i, absl::StrCat("v", i), [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++set;
    });
  }
  ASSERT_TRUE(RunUntilCount(set, kCalls));
  std::vector<std::optional<absl::StatusOr<Value>>> got(kCalls);
  int read = 0;
  for (int i = 0; i < kCalls; ++i) {
    dict.Get(i, [&, i](absl::StatusOr<Value> v) {
      got[i] = std::move(v);
      ++read;
    });
  }
  ASSERT_TRUE(RunUntilCount(read, kCalls));
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(got[i]->ok()) << got[i]->status();
    EXPECT_EQ(**got[i], Value(absl::StrCat("v", i)));
  }
}

TEST_P(AsyncTest, ListAppendsAndGetsFromCallbacks) {
  AsyncList list = client_->list("unused");
  int opened = 0;
  client_->OpenList("async/list", [&](absl::StatusOr<AsyncList> l) {
    ASSERT_TRUE(l.ok()) << l.status();
    list = *std::move(l);
    ++opened;
  });
  ASSERT_TRUE(RunUntilCount(opened, 1));
  EXPECT_EQ(list.name(), "async/list");
  // Each append's callback issues the next: a chain on one connection.
  int appended = 0;
  std::function<void(absl::StatusOr<int64_t>)> next =
      [&](absl::StatusOr<int64_t> length) {
        ASSERT_TRUE(length.ok()) << length.status();
        EXPECT_EQ(*length, ++appended);
        if (appended < 10) list.Append(appended * 10, next);
      };
  list.Append(0, next);
  ASSERT_TRUE(RunUntilCount(appended, 10));
  std::optional<absl::StatusOr<Value>> third;
  std::optional<absl::StatusOr<int64_t>> length;
  int done = 0;
  list.Get(3, [&](absl::StatusOr<Value> v) {
    third = std::move(v);
    ++done;
  });
  list.Len([&](absl::StatusOr<int64_t> n) {
    length = std::move(n);
    ++done;
  });
  ASSERT_TRUE(RunUntilCount(done, 2));
  ASSERT_TRUE(third->ok()) << third->status();
  EXPECT_EQ(**third, Value(30));
  EXPECT_EQ(**length, 10);
}

TEST_P(AsyncTest, ErrorsReachTheirOwnCallbacksNamingTheObject) {
  ASSERT_TRUE(blocking_->OpenDict("async/present").ok());
  ASSERT_TRUE(blocking_->OpenList("async/a-list").ok());
  AsyncDict present = client_->dict("async/present");
  AsyncDict missing = client_->dict("async/missing");
  AsyncDict wrong_type = client_->dict("async/a-list");
  std::optional<absl::Status> missing_key, missing_object, not_a_dict, set;
  std::optional<absl::StatusOr<Value>> overflow;
  int done = 0;
  present.Set("n", INT64_MAX, [&](absl::Status s) {
    set = s;
    ++done;
  });
  present.Get("nope", [&](absl::StatusOr<Value> v) {
    missing_key = v.status();
    ++done;
  });
  missing.Get("k", [&](absl::StatusOr<Value> v) {
    missing_object = v.status();
    ++done;
  });
  wrong_type.Len([&](absl::StatusOr<int64_t> n) {
    not_a_dict = n.status();
    ++done;
  });
  present.Increment("n", 1, [&](absl::StatusOr<Value> v) {
    overflow = std::move(v);
    ++done;
  });
  ASSERT_TRUE(RunUntilCount(done, 5));
  EXPECT_TRUE(set->ok()) << *set;

  EXPECT_EQ(GetErrorKind(*missing_key), ErrorKind::kKeyError) << *missing_key;
  EXPECT_THAT(missing_key->message(), HasSubstr("async/present"));
  EXPECT_EQ(GetErrorKind(*missing_object), ErrorKind::kObjectNotFound)
      << *missing_object;
  EXPECT_THAT(missing_object->message(), HasSubstr("async/missing"));
  EXPECT_EQ(GetErrorKind(*not_a_dict), ErrorKind::kTypeError) << *not_a_dict;
  EXPECT_THAT(not_a_dict->message(), HasSubstr("async/a-list"));
  EXPECT_EQ(GetErrorKind(overflow->status()), ErrorKind::kValueError)
      << overflow->status();

  // The same failures through the blocking API: the same codes, kinds and
  // messages.
  auto blocking_present = blocking_->OpenDict("async/present");
  const absl::Status blocking_missing_key =
      blocking_present->Get("nope").status();
  EXPECT_EQ(blocking_missing_key, *missing_key);
}

TEST_P(AsyncTest, AParkedCallIsAnsweredAfterLaterCalls) {
  auto held = blocking_->OpenLock("async/lock");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held->Acquire()->acquired);
  std::optional<absl::StatusOr<v1::LockAcquireResponse>> granted;
  client_->Call<v1::LockAcquireResponse>(
      AcquireRequest("async/lock", true),
      [&](absl::StatusOr<v1::LockAcquireResponse> r) {
        granted = std::move(r);
      });
  // Calls issued after the parked acquire complete while it waits.
  ASSERT_TRUE(blocking_->OpenDict("async/beside").ok());
  int done = 0;
  for (int i = 0; i < 50; ++i) {
    client_->dict("async/beside").Set(i, i, [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++done;
    });
  }
  ASSERT_TRUE(RunUntilCount(done, 50));
  EXPECT_FALSE(granted.has_value());
  EXPECT_EQ(client_->in_flight(), 1);
  ASSERT_TRUE(held->Release().ok());
  ASSERT_TRUE(
      loop_.RunUntil([&] { return granted.has_value(); }, absl::Now() + kHang));
  ASSERT_TRUE(granted->ok()) << granted->status();
  EXPECT_TRUE((*granted)->acquired());
}

TEST_P(AsyncTest, AKilledServerFailsEveryCallInFlightWithUnavailable) {
  ASSERT_TRUE(blocking_->OpenDict("async/doomed").ok());
  auto held = blocking_->OpenLock("async/doomed-lock");
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(held->Acquire()->acquired);
  // A parked call, and then writes the server will never read.
  std::vector<absl::Status> statuses;
  client_->Call<v1::LockAcquireResponse>(
      AcquireRequest("async/doomed-lock", true),
      [&](absl::StatusOr<v1::LockAcquireResponse> r) {
        statuses.push_back(r.status());
      });
  ASSERT_TRUE(PollUntil([&] { return held->State()->waiters.size() == 1; }));
  kill(server_->pid(), SIGSTOP);
  ASSERT_TRUE(PollUntil([&] { return Stopped(server_->pid()); }));
  AsyncDict dict = client_->dict("async/doomed");
  constexpr int kWrites = 500;
  for (int i = 0; i < kWrites; ++i) {
    dict.Set(i, std::string(100, 'x'),
             [&](absl::Status s) { statuses.push_back(s); });
  }
  loop_.Poll();  // the writes go out (as far as the socket takes them)
  kill(server_->pid(), SIGKILL);
  ASSERT_TRUE(loop_.RunUntil([&] { return statuses.size() == kWrites + 1; },
                             absl::Now() + kHang))
      << statuses.size() << " of " << kWrites + 1 << " callbacks ran";
  for (const absl::Status& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  }
  EXPECT_THAT(statuses.front().message(), HasSubstr("Locks.Acquire"));
  EXPECT_THAT(statuses.back().message(), HasSubstr("Dicts.Set"));
  EXPECT_EQ(client_->in_flight(), 0);

  // Later calls fail too, on the loop's next turn, never inside the call.
  std::optional<absl::Status> late;
  dict.Get(1, [&](absl::StatusOr<Value> v) { late = v.status(); });
  EXPECT_FALSE(late.has_value());
  ASSERT_TRUE(
      loop_.RunUntil([&] { return late.has_value(); }, absl::Now() + kHang));
  EXPECT_EQ(late->code(), absl::StatusCode::kUnavailable) << *late;
}

TEST_P(AsyncTest, WhatOneApiWritesTheOtherReads) {
  auto blocking_dict = blocking_->OpenDict("async/shared");
  ASSERT_TRUE(blocking_dict.ok());
  ASSERT_TRUE(
      blocking_dict->Set("from-blocking", Value::List({1, "two"})).ok());
  AsyncDict dict = client_->dict("async/shared");
  std::optional<absl::StatusOr<Value>> got;
  int done = 0;
  dict.Set("from-async", Value::Map({{"k", 2.5}}), [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    ++done;
  });
  dict.Get("from-blocking", [&](absl::StatusOr<Value> v) {
    got = std::move(v);
    ++done;
  });
  ASSERT_TRUE(RunUntilCount(done, 2));
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ(**got, Value::List({1, "two"}));
  auto read = blocking_dict->Get("from-async");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, Value::Map({{"k", 2.5}}));
}

TEST_P(AsyncTest, FuturesWaitWhileAnotherThreadRunsTheLoop) {
  ASSERT_TRUE(blocking_->OpenDict("async/futures").ok());
  std::thread runner([&] { loop_.Run(); });
  AsyncDict dict = client_->dict("async/futures");
  std::promise<absl::Status> set;
  std::future<absl::Status> set_done = set.get_future();
  dict.Set("k", 42, Fulfill(std::move(set)));
  EXPECT_TRUE(set_done.get().ok());
  std::promise<absl::StatusOr<Value>> got;
  std::future<absl::StatusOr<Value>> value = got.get_future();
  dict.Get("k", Fulfill(std::move(got)));
  absl::StatusOr<Value> v = value.get();
  loop_.Stop();
  runner.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, Value(42));
}

TEST_P(AsyncTest, AnAnonymousObjectLivesWhileAHandleHoldsIt) {
  std::optional<AsyncDict> anonymous;
  client_->OpenDict("", [&](absl::StatusOr<AsyncDict> d) {
    ASSERT_TRUE(d.ok()) << d.status();
    anonymous = *std::move(d);
  });
  ASSERT_TRUE(loop_.RunUntil([&] { return anonymous.has_value(); },
                             absl::Now() + kHang));
  const std::string name = anonymous->name();
  EXPECT_THAT(name, HasSubstr("_anon/"));
  auto info = blocking_->Describe(name);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->holders, 1);
  anonymous.reset();  // the last hold: a RELEASE goes out from the loop
  ASSERT_TRUE(PollUntil([&] { return !blocking_->Describe(name).ok(); }))
      << name << " was released when its handle died";
}

TEST_P(AsyncTest, AJoinedClientRunsUnderTheBlockingClientsSession) {
  AsyncClientOptions options;
  options.join_session_id = blocking_->session_id();
  auto joined = AsyncClient::Connect(loop_, address(), options);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ((*joined)->session_id(), blocking_->session_id());
  auto held = blocking_->OpenLock("async/joined");
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<v1::LockAcquireResponse>> got;
  (*joined)->Call<v1::LockAcquireResponse>(
      AcquireRequest("async/joined", false),
      [&](absl::StatusOr<v1::LockAcquireResponse> r) { got = std::move(r); });
  ASSERT_TRUE(
      loop_.RunUntil([&] { return got.has_value(); }, absl::Now() + kHang));
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_TRUE((*got)->acquired());
  EXPECT_EQ(held->State()->holder.session_id, blocking_->session_id());

  // Closing the joined client ends its connection, not the session.
  (*joined)->Close();
  ASSERT_TRUE(loop_.RunUntil([&] { return (*joined)->in_flight() == 0; },
                             absl::Now() + kHang));
  std::optional<absl::Status> after_close;
  (*joined)->dict("async/any").Len([&](absl::StatusOr<int64_t> n) {
    after_close = n.status();
  });
  ASSERT_TRUE(loop_.RunUntil([&] { return after_close.has_value(); },
                             absl::Now() + kHang));
  EXPECT_EQ(after_close->code(), absl::StatusCode::kUnavailable);
  joined->reset();
  loop_.Poll();
  EXPECT_EQ(held->State()->holder.session_id, blocking_->session_id())
      << "the session and the lock it holds live on";

  options.join_session_id = "no-such-session";
  auto refused = AsyncClient::Connect(loop_, address(), options);
  EXPECT_EQ(GetErrorKind(refused.status()), ErrorKind::kSessionError)
      << refused.status();
}

TEST_P(AsyncTest, CloseAnswersWhatCameBeforeAndRefusesWhatCameAfter) {
  ASSERT_TRUE(blocking_->OpenDict("async/closing").ok());
  AsyncDict dict = client_->dict("async/closing");
  std::vector<absl::Status> before, after;
  for (int i = 0; i < 20; ++i) {
    dict.Set(i, i, [&](absl::Status s) { before.push_back(s); });
  }
  client_->Close();
  dict.Set("late", 1, [&](absl::Status s) { after.push_back(s); });
  ASSERT_TRUE(
      loop_.RunUntil([&] { return before.size() == 20 && after.size() == 1; },
                     absl::Now() + kHang));
  for (const absl::Status& s : before) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(after[0].code(), absl::StatusCode::kUnavailable) << after[0];
  EXPECT_EQ(blocking_->OpenDict("async/closing")->Len().value_or(-1), 20);
}

TEST_P(AsyncTest, DestroyingTheLoopFailsWhatIsInFlight) {
  auto loop = std::make_unique<AsyncLoop>();
  auto client = AsyncClient::Connect(*loop, address());
  ASSERT_TRUE(client.ok()) << client.status();
  AsyncDict dict = (*client)->dict("async/orphan");
  std::vector<absl::Status> statuses;
  for (int i = 0; i < 10; ++i) {
    dict.Set(i, i, [&](absl::Status s) { statuses.push_back(s); });
  }
  loop.reset();  // never run: the calls never went out
  ASSERT_EQ(statuses.size(), 10u);
  for (const absl::Status& s : statuses) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  }
  // The handle outlived the loop: its calls fail inside the call.
  std::optional<absl::Status> late;
  dict.Len([&](absl::StatusOr<int64_t> n) { late = n.status(); });
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->code(), absl::StatusCode::kUnavailable) << *late;
  client->reset();
}

}  // namespace
}  // namespace statehub
