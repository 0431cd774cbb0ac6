// memory_bench: what statehub's server spends in memory on dict entries and
// on parked calls.
//
// Starts a private statehub-server and reads its VmRSS (/proc/<pid>/status)
// around two loads:
//   - dict entries: --entries entries "k<i>" -> i (a small int) put into one
//     dict with Dicts.Update batches of --batch, --inflight batches in
//     flight;
//   - parked calls: --waiters Locks.Acquire calls parked on one held lock,
//     in flight at once from --waiter_connections connections (each with
//     its own session).
// RSS counts what the allocator keeps, not only live objects: request
// buffers freed after the load may stay in the process, so bytes per entry
// is an upper bound on the entry's own size. bench/memory.sh runs this next
// to the same load on Redis.
//
//   scripts/build.sh release memory_bench && build/bench/memory_bench
//       [--entries=1000000] [--waiters=10000] [--csv]

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/v1/dict.grpc.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"

ABSL_FLAG(int64_t, entries, 1'000'000, "Dict entries to insert.");
ABSL_FLAG(int, batch, 1000, "Entries per Dicts.Update call.");
ABSL_FLAG(int, inflight, 8, "Update calls in flight.");
ABSL_FLAG(int, waiters, 10'000, "Locks.Acquire calls to park.");
ABSL_FLAG(int, waiter_connections, 4,
          "Connections (and sessions) the parked calls come from.");
ABSL_FLAG(double, settle, 1,
          "Seconds to wait before each RSS reading, so the server is idle.");
ABSL_FLAG(bool, csv, false,
          "Print CSV (measure,count,rss_before,rss_after,bytes_each) instead "
          "of a table.");

namespace statehub::bench {
namespace {

constexpr char kDict[] = "bench/memory";
constexpr char kLock[] = "bench/memory-lock";

struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Session> session;
  std::unique_ptr<v1::Dicts::Stub> dicts;
  std::unique_ptr<v1::Locks::Stub> locks;
};

// Countdown lets main wait until `n` calls have finished.
class Countdown {
 public:
  explicit Countdown(int64_t n) : left_(n) {}
  void Done() {
    absl::MutexLock lock(&mu_);
    --left_;
  }
  void Wait() {
    absl::MutexLock lock(&mu_);
    auto zero = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return left_ == 0; };
    mu_.Await(absl::Condition(&zero));
  }

 private:
  absl::Mutex mu_;
  int64_t left_ ABSL_GUARDED_BY(mu_);
};

// Inserter is one stream of Update calls: it takes the next batch number,
// sends that batch, and repeats until none are left.
class Inserter {
 public:
  Inserter(Connection& conn, std::atomic<int64_t>& next_batch, Countdown& done)
      : conn_(conn), next_batch_(next_batch), done_(done) {}

  void Next() {
    const int64_t entries = absl::GetFlag(FLAGS_entries);
    const int batch = absl::GetFlag(FLAGS_batch);
    const int64_t first = next_batch_.fetch_add(1) * batch;
    if (first >= entries) {
      done_.Done();
      return;
    }
    request_.Clear();
    request_.set_name(kDict);
    for (int64_t i = first; i < std::min(entries, first + batch); ++i) {
      v1::MapEntry* entry = request_.add_entries();
      entry->mutable_key()->set_string_value(absl::StrCat("k", i));
      entry->mutable_value()->set_int_value(i);
    }
    ctx_ = std::make_unique<grpc::ClientContext>();
    conn_.dicts->async()->Update(ctx_.get(), &request_, &response_,
                                 [this](grpc::Status status) {
                                   DieIfError(status, "dict update");
                                   Next();
                                 });
  }

 private:
  Connection& conn_;
  std::atomic<int64_t>& next_batch_;
  Countdown& done_;
  // Replaced per call, inside the previous call's reaction (safe: gRPC
  // keeps its own reference to that call until the reaction returns).
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::DictUpdateRequest request_;
  v1::DictUpdateResponse response_;
};

// ParkedAcquire is one blocking Acquire call left in flight.
struct ParkedAcquire {
  grpc::ClientContext ctx;
  v1::LockAcquireRequest request;
  v1::LockAcquireResponse response;
};

int64_t Rss(pid_t pid) {
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_settle)));
  absl::StatusOr<int64_t> rss = RssBytes(pid);
  DieIfError(rss.status(), "server RSS");
  return *rss;
}

int LockWaiters(Connection& conn) {
  v1::LockStateRequest request;
  request.set_name(kLock);
  v1::LockStateResponse response;
  grpc::ClientContext ctx;
  DieIfError(conn.locks->State(&ctx, request, &response), "lock state");
  return response.waiters_size();
}

struct Row {
  const char* measure;
  int64_t count;
  int64_t before;
  int64_t after;
};

int Main() {
  absl::StatusOr<Target> target = Target::Resolve("", false);
  DieIfError(target.status(), "server");
  const pid_t pid = *target->server_pid();

  std::vector<Connection> conns(
      std::max(1, absl::GetFlag(FLAGS_waiter_connections)));
  for (int i = 0; i < static_cast<int>(conns.size()); ++i) {
    Connection& conn = conns[i];
    conn.channel = MakeChannel(target->address(), i);
    auto session = Session::Open(conn.channel, absl::StrCat("memory-", i));
    DieIfError(session.status(), "session");
    conn.session = std::move(*session);
    conn.dicts = v1::Dicts::NewStub(conn.channel);
    conn.locks = v1::Locks::NewStub(conn.channel);
  }
  auto objects = v1::Objects::NewStub(conns[0].channel);
  for (auto [name, type] : {std::pair{kDict, v1::DICT}, {kLock, v1::LOCK}}) {
    v1::OpenRequest request;
    request.set_name(name);
    request.set_type(type);
    v1::OpenResponse response;
    grpc::ClientContext ctx;
    DieIfError(objects->Open(&ctx, request, &response), "open");
  }
  std::vector<Row> rows;

  // Dict entries.
  const int64_t entries = absl::GetFlag(FLAGS_entries);
  int64_t before = Rss(pid);
  {
    std::atomic<int64_t> next_batch{0};
    const int inflight = std::max(1, absl::GetFlag(FLAGS_inflight));
    Countdown done(inflight);
    std::vector<std::unique_ptr<Inserter>> inserters;
    for (int i = 0; i < inflight; ++i) {
      inserters.push_back(std::make_unique<Inserter>(conns[i % conns.size()],
                                                     next_batch, done));
    }
    for (auto& inserter : inserters) inserter->Next();
    done.Wait();
  }
  {
    v1::DictLenRequest request;
    request.set_name(kDict);
    v1::DictLenResponse response;
    grpc::ClientContext ctx;
    DieIfError(conns[0].dicts->Len(&ctx, request, &response), "dict len");
    if (response.length() != entries) {
      std::fprintf(stderr, "memory_bench: dict has %lld entries, not %lld\n",
                   static_cast<long long>(response.length()),
                   static_cast<long long>(entries));
      return 1;
    }
  }
  rows.push_back({"dict entries", entries, before, Rss(pid)});

  // Parked calls: conns[0]'s session holds the lock; every connection parks
  // its share of acquires behind it.
  {
    v1::LockAcquireRequest request;
    request.set_name(kLock);
    request.set_blocking(true);
    v1::LockAcquireResponse response;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, conns[0].session->id());
    DieIfError(conns[0].locks->Acquire(&ctx, request, &response), "acquire");
  }
  const int waiters = absl::GetFlag(FLAGS_waiters);
  before = Rss(pid);
  std::vector<std::unique_ptr<ParkedAcquire>> parked;
  Countdown finished(waiters);
  for (int i = 0; i < waiters; ++i) {
    Connection& conn = conns[i % conns.size()];
    auto call = std::make_unique<ParkedAcquire>();
    call->ctx.AddMetadata(internal::kSessionKey, conn.session->id());
    call->request.set_name(kLock);
    call->request.set_blocking(true);
    call->request.set_thread_id(i + 1);
    conn.locks->async()->Acquire(
        &call->ctx, &call->request, &call->response,
        [&finished](grpc::Status) { finished.Done(); });
    parked.push_back(std::move(call));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  int seen = 0;
  while ((seen = LockWaiters(conns[0])) < waiters) {
    if (absl::Now() > deadline) {
      std::fprintf(stderr, "memory_bench: only %d of %d acquires parked\n",
                   seen, waiters);
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  rows.push_back({"parked Locks.Acquire calls", waiters, before, Rss(pid)});
  // Cancel before releasing, so no parked call is granted on the way out.
  for (auto& call : parked) call->ctx.TryCancel();
  finished.Wait();
  for (Connection& conn : conns) conn.session->Close();

  if (absl::GetFlag(FLAGS_csv)) {
    std::printf("measure,count,rss_before,rss_after,bytes_each\n");
    for (const Row& row : rows) {
      std::printf("%s,%lld,%lld,%lld,%.1f\n", row.measure,
                  static_cast<long long>(row.count),
                  static_cast<long long>(row.before),
                  static_cast<long long>(row.after),
                  static_cast<double>(row.after - row.before) / row.count);
    }
    return 0;
  }
  std::printf("\nmemory_bench: statehub-server VmRSS around each load\n");
  std::printf("%-28s %9s %14s %14s %11s\n", "measure", "count", "RSS before",
              "RSS after", "bytes each");
  for (const Row& row : rows) {
    std::printf("%-28s %9lld %14lld %14lld %11.1f\n", row.measure,
                static_cast<long long>(row.count),
                static_cast<long long>(row.before),
                static_cast<long long>(row.after),
                static_cast<double>(row.after - row.before) / row.count);
  }
  return 0;
}

}  // namespace
}  // namespace statehub::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return statehub::bench::Main();
}
