// A client process that end-to-end tests start, stop (SIGSTOP) and kill
// (SIGKILL), to show what the server does when a real process misbehaves,
// and to run synchronization across real processes.
//
//   e2e_client hold-anonymous ADDRESS
//       opens an anonymous dict, prints its name, then waits forever.
//   e2e_client hold-lock ADDRESS LOCK
//       acquires LOCK (a lock object), prints its fencing token, then waits
//       forever holding it.
//   e2e_client acquire ADDRESS LOCK
//       acquires LOCK, waiting as long as it takes, and prints
//       "<fencing token> <owner_died 0|1>"; then waits forever holding it.
//   e2e_client hammer ADDRESS DICT
//       prints "ready", then writes DICT's keys 0..99 to one value per
//       update, forever (each Update is atomic: a reader must never see
//       mixed values).
//   e2e_client rmw ADDRESS LOCK DICT N
//       N times, under LOCK (std::lock_guard): reads DICT["n"] (0 if
//       missing) and writes it back plus one. Prints "done".
//   e2e_client ping-pong ADDRESS ROLE ROUNDS
//       ROUNDS times, under lock "pp/lock": waits on condition "pp/cond"
//       until dict "pp"["turn"] % 2 == ROLE, increments it and notifies.
//       Prints "done", or "stuck" if a wait saw no turn for 30 s.
//   e2e_client cond-wait ADDRESS
//       under lock "cw/lock": increments dict "cw"["parked"], waits on
//       condition "cw/cond" (untimed), then prints "woken".
//   e2e_client park-many ADDRESS LOCK N FIRST
//       parks N acquires of LOCK at once through gRPC's callback API (no
//       thread each), with thread ids FIRST..FIRST+N-1, and prints
//       "parked". Releases LOCK after each grant. Once all N are answered
//       prints "session <id>", one "<thread id> <fencing token>" per grant
//       in the order they came, "failed <thread id>" per failed call, and
//       "done".
//   e2e_client produce ADDRESS QUEUE FIRST N
//       puts the integers FIRST..FIRST+N-1 on QUEUE; prints "done".
//   e2e_client consume ADDRESS QUEUE DICT
//       gets items from QUEUE until it gets null; adds each to DICT["sum"],
//       counts it in DICT["count"], then marks it done. Prints "done".
//   e2e_client barrier-wait ADDRESS BARRIER PARTIES
//       waits on BARRIER; prints the arrival index, or "broken".
//   e2e_client barrier-abort ADDRESS BARRIER PARTIES
//       aborts BARRIER; prints "aborted".

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "tests/testing/transport.h"

namespace {

using statehub::Client;

// Line prints one line at once (tests read stdout line by line).
template <typename... Args>
void Line(const char* format, Args... args) {
  std::printf(format, args...);
  std::printf("\n");
  std::fflush(stdout);
}

[[noreturn]] void Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "e2e_client: %s: %s\n", what, status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> result, const char* what) {
  if (!result.ok()) Fail(what, result.status());
  return *std::move(result);
}

void Must(const absl::Status& status, const char* what) {
  if (!status.ok()) Fail(what, status);
}

int Rmw(Client& client, const char* lock_name, const char* dict_name,
        int64_t n) {
  statehub::Lock lock = Must(client.OpenLock(lock_name), "open lock");
  statehub::Dict dict = Must(client.OpenDict(dict_name), "open dict");
  for (int64_t i = 0; i < n; ++i) {
    std::lock_guard<statehub::Lock> hold(lock);
    const statehub::Value v = Must(dict.Get("n", 0), "get");
    Must(dict.Set("n", v.AsInt() + 1), "set");
  }
  Line("done");
  return 0;
}

int PingPong(Client& client, int64_t role, int64_t rounds) {
  statehub::Lock lock = Must(client.OpenLock("pp/lock"), "open lock");
  statehub::Condition cond =
      Must(client.OpenCondition("pp/cond", lock), "open condition");
  statehub::Dict state = Must(client.OpenDict("pp"), "open dict");
  auto turn = [&] { return Must(state.Get("turn", 0), "get").AsInt(); };
  for (int64_t r = 0; r < rounds; ++r) {
    std::unique_lock<statehub::Lock> hold(lock);
    if (!cond.wait_for(hold, std::chrono::seconds(30),
                       [&] { return turn() % 2 == role; })) {
      Line("stuck");
      return 1;
    }
    Must(state.Set("turn", turn() + 1), "set");
    cond.notify_one();
  }
  Line("done");
  return 0;
}

int CondWait(Client& client) {
  statehub::Lock lock = Must(client.OpenLock("cw/lock"), "open lock");
  statehub::Condition cond =
      Must(client.OpenCondition("cw/cond", lock), "open condition");
  statehub::Dict state = Must(client.OpenDict("cw"), "open dict");
  std::unique_lock<statehub::Lock> hold(lock);
  Must(state.Increment("parked").status(), "increment");
  cond.wait(hold);
  Line("woken");
  return 0;
}

int ParkMany(Client& client, const std::string& address,
             const std::string& lock_name, int n, uint64_t first) {
  statehub::Lock lock = Must(client.OpenLock(lock_name), "open lock");
  const std::string session = client.session_id();
  auto stub = statehub::v1::Locks::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  struct Call {
    grpc::ClientContext ctx;
    statehub::v1::LockAcquireRequest request;
    statehub::v1::LockAcquireResponse response;
  };
  std::vector<std::unique_ptr<Call>> calls;
  absl::Mutex mu;
  std::deque<int> granted;  // indices of calls granted, not yet released
  int answered = 0;
  for (int i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<Call>());
    Call& c = *calls.back();
    c.ctx.AddMetadata(statehub::internal::kSessionKey, session);
    c.request.set_name(lock_name);
    c.request.set_blocking(true);
    c.request.set_thread_id(first + i);
    // Callbacks run on gRPC's threads and must not block: the main thread
    // releases the lock for them.
    stub->async()->Acquire(&c.ctx, &c.request, &c.response,
                           [&, i](grpc::Status status) {
                             absl::MutexLock l(&mu);
                             ++answered;
                             if (status.ok() && calls[i]->response.acquired()) {
                               granted.push_back(i);
                             } else {
                               calls[i]->response.set_fencing_token(0);
                             }
                           });
  }
  Line("parked");
  std::vector<int> order;
  for (;;) {
    int next;
    {
      absl::MutexLock l(&mu);
      auto ready = [&] { return !granted.empty() || answered == n; };
      mu.Await(absl::Condition(&ready));
      if (granted.empty()) break;
      next = granted.front();
      granted.pop_front();
    }
    order.push_back(next);
    Must(lock.Release(), "release");
  }
  Line("session %s", session.c_str());
  for (int i : order) {
    Line("%llu %llu", static_cast<unsigned long long>(first + i),
         static_cast<unsigned long long>(calls[i]->response.fencing_token()));
  }
  for (int i = 0; i < n; ++i) {
    if (calls[i]->response.fencing_token() == 0) {
      Line("failed %llu", static_cast<unsigned long long>(first + i));
    }
  }
  Line("done");
  return 0;
}

int Produce(Client& client, const char* queue_name, int64_t first, int64_t n) {
  statehub::Queue queue = Must(client.OpenJoinableQueue(queue_name), "open");
  for (int64_t i = first; i < first + n; ++i) {
    if (!Must(queue.Put(i), "put")) Fail("put", absl::InternalError("full"));
  }
  Line("done");
  return 0;
}

int Consume(Client& client, const char* queue_name, const char* dict_name) {
  statehub::Queue queue = Must(client.OpenJoinableQueue(queue_name), "open");
  statehub::Dict totals = Must(client.OpenDict(dict_name), "open dict");
  for (;;) {
    std::optional<statehub::Value> item = Must(queue.Get(), "get");
    if (!item.has_value()) Fail("get", absl::InternalError("empty"));
    if (item->is_null()) break;
    Must(totals.Increment("sum", *item).status(), "sum");
    Must(totals.Increment("count").status(), "count");
    Must(queue.TaskDone(), "task_done");
  }
  Must(queue.TaskDone(), "task_done");
  Line("done");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: e2e_client MODE ADDRESS [ARGS]\n");
    return 2;
  }
  const std::string mode = argv[1];
  auto client =
      statehub::Client::Connect(argv[2], statehub::testing::TestOptions());
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  Client& c = **client;
  if (mode == "hold-anonymous") {
    statehub::Dict dict = Must(c.OpenDict(""), "open");
    Line("%s", dict.name().c_str());
    for (;;) pause();
  }
  if ((mode == "hold-lock" || mode == "acquire") && argc == 4) {
    statehub::Lock lock = Must(c.OpenLock(argv[3]), "open");
    const statehub::Acquisition got = Must(lock.Acquire(), "acquire");
    if (mode == "hold-lock") {
      Line("%llu", static_cast<unsigned long long>(got.fencing_token));
    } else {
      Line("%llu %d", static_cast<unsigned long long>(got.fencing_token),
           got.owner_died ? 1 : 0);
    }
    for (;;) pause();
  }
  if (mode == "hammer" && argc == 4) {
    statehub::Dict dict = Must(c.OpenDict(argv[3]), "open");
    Line("ready");
    for (int64_t round = 1;; ++round) {
      statehub::Value::Entries entries;
      for (int k = 0; k < 100; ++k) entries.emplace_back(k, round);
      Must(dict.Update(entries), "update");
    }
  }
  if (mode == "rmw" && argc == 6) {
    return Rmw(c, argv[3], argv[4], std::atoll(argv[5]));
  }
  if (mode == "ping-pong" && argc == 5) {
    return PingPong(c, std::atoll(argv[3]), std::atoll(argv[4]));
  }
  if (mode == "cond-wait" && argc == 3) return CondWait(c);
  if (mode == "park-many" && argc == 6) {
    return ParkMany(c, argv[2], argv[3], std::atoi(argv[4]),
                    std::strtoull(argv[5], nullptr, 10));
  }
  if (mode == "produce" && argc == 6) {
    return Produce(c, argv[3], std::atoll(argv[4]), std::atoll(argv[5]));
  }
  if (mode == "consume" && argc == 5) return Consume(c, argv[3], argv[4]);
  if ((mode == "barrier-wait" || mode == "barrier-abort") && argc == 5) {
    statehub::Barrier barrier =
        Must(c.OpenBarrier(argv[3], std::atoll(argv[4])), "open");
    if (mode == "barrier-abort") {
      Must(barrier.Abort(), "abort");
      Line("aborted");
      return 0;
    }
    absl::StatusOr<int64_t> index = barrier.Wait();
    if (statehub::GetErrorKind(index.status()) ==
        statehub::ErrorKind::kBrokenBarrier) {
      Line("broken");
      return 0;
    }
    Line("%lld", static_cast<long long>(Must(index, "wait")));
    return 0;
  }
  std::fprintf(stderr, "unknown mode or arguments: %s\n", mode.c_str());
  return 2;
}
