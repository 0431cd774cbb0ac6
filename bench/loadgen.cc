// loadgen: throughput and latency of statehub's basic operations under
// concurrent clients.
//
// Clients = --connections x --inflight, each a closed loop with one call
// outstanding at a time. Every op runs for --warmup seconds unmeasured, then
// --seconds measured; the table shows, per op, completed ops per second and
// the p50 / p99 latency of one op.
//
// --transport=lane (the default) drives the C++ client library as an
// application does: each connection is one statehub::Client (its own
// session on the lane), and its --inflight clients are threads making
// blocking calls through its handles (each call on its own pooled lane
// connection). --transport=grpc drives raw gRPC instead: each connection is
// its own gRPC channel (its own TCP connection) with its own session, and
// its clients use gRPC's callback API on the generated stubs.
//
// Ops (--ops, comma-separated, default all):
//   dict_set          Dicts.Set of a small int on key "k<client>" of one dict
//   dict_get          Dicts.Get of that key
//   list_append       Lists.Append of a small int to one shared list
//   list_pop          Lists.Pop of the last item of that list (pre-filled)
//   lock_uncontended  Locks.Acquire + Locks.Release of the client's own lock
//   lock_contended    the same on one lock shared by every client
//   queue_put_get     Queues.Put then Queues.Get on one shared queue; one op
//                     is both calls (two round trips)
//
// With no --address it starts a private statehub-server (metrics on, as by
// default) and dials it on TCP loopback (--unix_socket: its Unix socket).
//
//   scripts/build.sh release loadgen && build/bench/loadgen
//       [--address=host:port] [--transport=lane|grpc]
//       [--connections=10] [--inflight=5]
//       [--seconds=5] [--warmup=1] [--ops=dict_set,dict_get] [--csv]

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_util.h"
#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/dict.grpc.pb.h"
#include "statehub/v1/list.grpc.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/queue.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"

ABSL_FLAG(std::string, address, "",
          "Server to load (host:port or unix:///path); empty starts a "
          "private server.");
ABSL_FLAG(bool, unix_socket, false,
          "With no --address, dial the private server's Unix socket instead "
          "of TCP loopback.");
ABSL_FLAG(std::string, transport, "lane",
          "lane: the C++ client library on the lane, one Client per "
          "connection, one thread per client; grpc: raw gRPC callback "
          "calls, one channel per connection.");
ABSL_FLAG(int, connections, 10,
          "Sessions: statehub Clients (lane) or gRPC channels (grpc).");
ABSL_FLAG(int, inflight, 5,
          "Concurrent clients (calls in flight) per "
          "connection.");
ABSL_FLAG(double, seconds, 5, "Measured seconds per op.");
ABSL_FLAG(double, warmup, 1, "Unmeasured seconds before each op's run.");
ABSL_FLAG(std::vector<std::string>, ops, {"all"},
          "Ops to run, comma-separated: dict_set, dict_get, list_append, "
          "list_pop, lock_uncontended, lock_contended, queue_put_get, or "
          "all.");
ABSL_FLAG(bool, csv, false,
          "Print CSV (op,connections,inflight,clients,ops_per_s,p50_us,"
          "p99_us,errors) instead of a table.");

namespace statehub::bench {
namespace {

enum class Op {
  kDictSet,
  kDictGet,
  kListAppend,
  kListPop,
  kLockUncontended,
  kLockContended,
  kQueuePutGet,
};

struct OpName {
  Op op;
  const char* name;
};
constexpr OpName kOps[] = {
    {Op::kDictSet, "dict_set"},
    {Op::kDictGet, "dict_get"},
    {Op::kListAppend, "list_append"},
    {Op::kListPop, "list_pop"},
    {Op::kLockUncontended, "lock_uncontended"},
    {Op::kLockContended, "lock_contended"},
    {Op::kQueuePutGet, "queue_put_get"},
};

constexpr char kDict[] = "bench/dict";
constexpr char kList[] = "bench/list";
constexpr char kQueue[] = "bench/queue";
constexpr char kSharedLock[] = "bench/lock";
// Every call gets this deadline, so a lost reply ends a run with an error
// instead of hanging it.
constexpr absl::Duration kCallDeadline = absl::Seconds(30);

std::string ClientKey(int client) { return absl::StrCat("k", client); }
std::string ClientLock(int client) {
  return absl::StrCat("bench/lock-", client);
}

// Connection is one channel, its session and the stubs on it.
struct Connection {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Session> session;
  std::unique_ptr<v1::Objects::Stub> objects;
  std::unique_ptr<v1::Dicts::Stub> dicts;
  std::unique_ptr<v1::Lists::Stub> lists;
  std::unique_ptr<v1::Locks::Stub> locks;
  std::unique_ptr<v1::Queues::Stub> queues;
};

// Phase is where a run is; clients read it when an op starts and ends.
enum class Phase { kWarmup, kMeasure, kStop };

// Run is one op's run: the phase, and the count of clients still looping.
class Run {
 public:
  explicit Run(int clients) : running_(clients) {}

  Phase phase() const { return phase_.load(std::memory_order_relaxed); }
  void set_phase(Phase phase) { phase_.store(phase); }

  // ClientStopped is called once by each client when it sees kStop.
  void ClientStopped() {
    absl::MutexLock lock(&mu_);
    --running_;
  }
  // WaitAllStopped blocks until every client has stopped.
  void WaitAllStopped() {
    absl::MutexLock lock(&mu_);
    auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return running_ == 0;
    };
    mu_.Await(absl::Condition(&stopped));
  }

 private:
  std::atomic<Phase> phase_{Phase::kWarmup};
  absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_);
};

// LoopClient is one closed-loop client: it starts an op, and when the op
// completes records its latency (during the measured phase) and starts the
// next, until the run stops. Its reactions run on gRPC's callback threads,
// one at a time (each starts the next call), so its fields need no lock.
class LoopClient {
 public:
  LoopClient(Op op, Connection& conn, int id, Run& run)
      : op_(op), conn_(conn), run_(run) {
    dict_set_.set_name(kDict);
    dict_set_.mutable_key()->set_string_value(ClientKey(id));
    dict_set_.mutable_value()->set_int_value(id);
    dict_get_.set_name(kDict);
    dict_get_.mutable_key()->set_string_value(ClientKey(id));
    append_.set_name(kList);
    append_.mutable_value()->set_int_value(id);
    pop_.set_name(kList);
    const std::string lock =
        op == Op::kLockContended ? kSharedLock : ClientLock(id);
    acquire_.set_name(lock);
    acquire_.set_blocking(true);
    acquire_.set_thread_id(id + 1);
    release_.set_name(lock);
    release_.set_thread_id(id + 1);
    put_.set_name(kQueue);
    put_.mutable_item()->set_int_value(id);
    put_.set_block(true);
    put_.set_thread_id(id + 1);
    get_.set_name(kQueue);
    get_.set_block(true);
    get_.set_thread_id(id + 1);
  }

  LoopClient(const LoopClient&) = delete;
  LoopClient& operator=(const LoopClient&) = delete;

  void Start() { Issue(); }

  std::vector<int64_t>& latencies() { return latencies_; }
  int64_t errors() const { return errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  // Issue starts one op.
  void Issue() {
    start_ns_ = MonotonicNanos();
    measured_ = run_.phase() == Phase::kMeasure;
    auto finish = [this](grpc::Status status) { Finish(status); };
    switch (op_) {
      case Op::kDictSet:
        conn_.dicts->async()->Set(NewContext(), &dict_set_, &dict_set_reply_,
                                  finish);
        break;
      case Op::kDictGet:
        conn_.dicts->async()->Get(NewContext(), &dict_get_, &dict_get_reply_,
                                  finish);
        break;
      case Op::kListAppend:
        conn_.lists->async()->Append(NewContext(), &append_, &append_reply_,
                                     finish);
        break;
      case Op::kListPop:
        conn_.lists->async()->Pop(NewContext(), &pop_, &pop_reply_, finish);
        break;
      case Op::kLockUncontended:
      case Op::kLockContended:
        conn_.locks->async()->Acquire(NewContext(), &acquire_, &acquire_reply_,
                                      [this, finish](grpc::Status status) {
                                        if (!status.ok()) return Finish(status);
                                        conn_.locks->async()->Release(
                                            NewContext(), &release_,
                                            &release_reply_, finish);
                                      });
        break;
      case Op::kQueuePutGet:
        conn_.queues->async()->Put(NewContext(), &put_, &put_reply_,
                                   [this, finish](grpc::Status status) {
                                     if (!status.ok()) return Finish(status);
                                     conn_.queues->async()->Get(
                                         NewContext(), &get_, &get_reply_,
                                         finish);
                                   });
        break;
    }
  }

  void Finish(const grpc::Status& status) {
    const int64_t end_ns = MonotonicNanos();
    const Phase phase = run_.phase();
    if (measured_ && phase == Phase::kMeasure) {
      if (status.ok()) {
        latencies_.push_back(end_ns - start_ns_);
      } else {
        if (errors_++ == 0) {
          first_error_ = absl::StrCat("gRPC ", status.error_code(), ": ",
                                      status.error_message());
        }
      }
    }
    if (phase == Phase::kStop) {
      // The last touch of this object: main may destroy it after this.
      run_.ClientStopped();
      return;
    }
    Issue();
  }

  // NewContext returns a fresh context for the next call, destroying the
  // previous one. That is safe inside the previous call's own reaction:
  // gRPC keeps its own reference to the call until the reaction returns.
  grpc::ClientContext* NewContext() {
    ctx_.emplace();
    ctx_->AddMetadata(internal::kSessionKey, conn_.session->id());
    ctx_->set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
    return &*ctx_;
  }

  const Op op_;
  Connection& conn_;
  Run& run_;

  std::optional<grpc::ClientContext> ctx_;
  int64_t start_ns_ = 0;
  bool measured_ = false;
  std::vector<int64_t> latencies_;
  int64_t errors_ = 0;
  std::string first_error_;

  v1::DictSetRequest dict_set_;
  v1::DictSetResponse dict_set_reply_;
  v1::DictGetRequest dict_get_;
  v1::DictGetResponse dict_get_reply_;
  v1::ListAppendRequest append_;
  v1::ListAppendResponse append_reply_;
  v1::ListPopRequest pop_;
  v1::ListPopResponse pop_reply_;
  v1::LockAcquireRequest acquire_;
  v1::LockAcquireResponse acquire_reply_;
  v1::LockReleaseRequest release_;
  v1::LockReleaseResponse release_reply_;
  v1::QueuePutRequest put_;
  v1::QueuePutResponse put_reply_;
  v1::QueueGetRequest get_;
  v1::QueueGetResponse get_reply_;
};

// Result is one row of the table.
struct Result {
  const char* op;
  double ops_per_second = 0;
  int64_t p50_ns = 0;
  int64_t p99_ns = 0;
  int64_t errors = 0;
};

// --- the lane: the client library, a thread per client ------------------

// LaneThread is one closed-loop client on the lane: a thread making one
// blocking call (or pair, for locks and queues) after another through the
// handles of its connection's Client.
class LaneThread {
 public:
  LaneThread(Op op, Client& client, int id, Run& run)
      : op_(op), client_(client), id_(id), run_(run) {}

  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  void Join() { thread_.join(); }

  std::vector<int64_t>& latencies() { return latencies_; }
  int64_t errors() const { return errors_; }
  const std::string& first_error() const { return first_error_; }

 private:
  void Loop() {
    absl::Status opened = Open();
    while (true) {
      const int64_t start_ns = MonotonicNanos();
      const bool measured = run_.phase() == Phase::kMeasure;
      const absl::Status status = opened.ok() ? One() : opened;
      const int64_t end_ns = MonotonicNanos();
      const Phase phase = run_.phase();
      if (measured && phase == Phase::kMeasure) {
        if (status.ok()) {
          latencies_.push_back(end_ns - start_ns);
        } else if (errors_++ == 0) {
          first_error_ = status.ToString();
        }
      }
      if (phase == Phase::kStop) break;
      if (!opened.ok()) absl::SleepFor(absl::Milliseconds(10));
    }
    run_.ClientStopped();
  }

  // Open makes this client's handles (before the measured phase).
  absl::Status Open() {
    switch (op_) {
      case Op::kDictSet:
      case Op::kDictGet: {
        absl::StatusOr<Dict> dict = client_.OpenDict(kDict);
        if (!dict.ok()) return dict.status();
        dict_.emplace(*std::move(dict));
        break;
      }
      case Op::kListAppend:
      case Op::kListPop: {
        absl::StatusOr<List> list = client_.OpenList(kList);
        if (!list.ok()) return list.status();
        list_.emplace(*std::move(list));
        break;
      }
      case Op::kLockUncontended:
      case Op::kLockContended: {
        absl::StatusOr<Lock> lock = client_.OpenLock(
            op_ == Op::kLockContended ? kSharedLock : ClientLock(id_));
        if (!lock.ok()) return lock.status();
        lock_.emplace(*std::move(lock));
        break;
      }
      case Op::kQueuePutGet: {
        absl::StatusOr<Queue> queue = client_.OpenQueue(kQueue);
        if (!queue.ok()) return queue.status();
        queue_.emplace(*std::move(queue));
        break;
      }
    }
    return absl::OkStatus();
  }

  absl::Status One() {
    switch (op_) {
      case Op::kDictSet:
        return dict_->Set(key_, id_);
      case Op::kDictGet:
        return dict_->Get(key_).status();
      case Op::kListAppend:
        return list_->Append(id_).status();
      case Op::kListPop:
        return list_->Pop().status();
      case Op::kLockUncontended:
      case Op::kLockContended: {
        absl::StatusOr<Acquisition> got = lock_->Acquire();
        if (!got.ok()) return got.status();
        return lock_->Release();
      }
      case Op::kQueuePutGet: {
        absl::StatusOr<bool> put = queue_->Put(id_);
        if (!put.ok()) return put.status();
        return queue_->Get().status();
      }
    }
    return absl::OkStatus();
  }

  const Op op_;
  Client& client_;
  const int id_;
  const Value key_ = Value(ClientKey(id_));
  Run& run_;
  std::thread thread_;
  std::optional<Dict> dict_;
  std::optional<List> list_;
  std::optional<Lock> lock_;
  std::optional<Queue> queue_;
  std::vector<int64_t> latencies_;
  int64_t errors_ = 0;
  std::string first_error_;
};

// SetupLane is Setup through the client library.
void SetupLane(Op op, Client& client, int clients, int64_t pop_items) {
  absl::StatusOr<Dict> dict = client.OpenDict(kDict);
  DieIfError(dict.status(), "open dict");
  absl::StatusOr<List> list = client.OpenList(kList);
  DieIfError(list.status(), "open list");
  DieIfError(client.OpenQueue(kQueue).status(), "open queue");
  DieIfError(client.OpenLock(kSharedLock).status(), "open lock");
  if (op == Op::kLockUncontended) {
    for (int i = 0; i < clients; ++i) {
      DieIfError(client.OpenLock(ClientLock(i)).status(), "open lock");
    }
  }
  if (op == Op::kDictGet) {
    for (int i = 0; i < clients; ++i) {
      DieIfError(dict->Set(ClientKey(i), i), "dict set");
    }
  }
  if (op == Op::kListPop) {
    constexpr int64_t kBatch = 10'000;
    absl::StatusOr<int64_t> have = list->Len();
    DieIfError(have.status(), "list len");
    for (int64_t n = *have; n < pop_items; n += kBatch) {
      Value::Items items;
      items.reserve(kBatch);
      for (int64_t i = 0; i < kBatch; ++i) items.emplace_back(i);
      DieIfError(list->Extend(std::move(items)).status(), "list extend");
    }
  }
}

Result MeasureLane(const OpName& op,
                   std::vector<std::unique_ptr<Client>>& conns, int inflight);

void Open(Connection& conn, const std::string& name, v1::ObjectType type) {
  v1::OpenRequest request;
  request.set_name(name);
  request.set_type(type);
  v1::OpenResponse response;
  grpc::ClientContext ctx;
  DieIfError(conn.objects->Open(&ctx, request, &response),
             absl::StrCat("open ", name));
}

int64_t ListLength(Connection& conn) {
  v1::ListLenRequest request;
  request.set_name(kList);
  v1::ListLenResponse response;
  grpc::ClientContext ctx;
  DieIfError(conn.lists->Len(&ctx, request, &response), "list len");
  return response.length();
}

// Setup makes what `op` needs before its run: the objects, the keys
// dict_get reads, and at least `pop_items` items for list_pop.
void Setup(Op op, std::vector<Connection>& conns, int clients,
           int64_t pop_items) {
  Connection& conn = conns.front();
  Open(conn, kDict, v1::DICT);
  Open(conn, kList, v1::LIST);
  Open(conn, kQueue, v1::QUEUE);
  Open(conn, kSharedLock, v1::LOCK);
  if (op == Op::kLockUncontended) {
    for (int i = 0; i < clients; ++i) Open(conn, ClientLock(i), v1::LOCK);
  }
  if (op == Op::kDictGet) {
    for (int i = 0; i < clients; ++i) {
      v1::DictSetRequest request;
      request.set_name(kDict);
      request.mutable_key()->set_string_value(ClientKey(i));
      request.mutable_value()->set_int_value(i);
      v1::DictSetResponse response;
      grpc::ClientContext ctx;
      DieIfError(conn.dicts->Set(&ctx, request, &response), "dict set");
    }
  }
  if (op == Op::kListPop) {
    constexpr int64_t kBatch = 10'000;
    for (int64_t have = ListLength(conn); have < pop_items; have += kBatch) {
      v1::ListExtendRequest request;
      request.set_name(kList);
      for (int64_t i = 0; i < kBatch; ++i) {
        request.add_items()->set_int_value(i);
      }
      v1::ListExtendResponse response;
      grpc::ClientContext ctx;
      DieIfError(conn.lists->Extend(&ctx, request, &response), "list extend");
    }
  }
}

Result Measure(const OpName& op, std::vector<Connection>& conns, int inflight) {
  const int clients = static_cast<int>(conns.size()) * inflight;
  Run run(clients);
  std::vector<std::unique_ptr<LoopClient>> loop;
  for (int c = 0; c < static_cast<int>(conns.size()); ++c) {
    for (int s = 0; s < inflight; ++s) {
      loop.push_back(
          std::make_unique<LoopClient>(op.op, conns[c], c * inflight + s, run));
    }
  }
  for (auto& client : loop) client->Start();
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_warmup)));
  const int64_t start_ns = MonotonicNanos();
  run.set_phase(Phase::kMeasure);
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  run.set_phase(Phase::kStop);
  const int64_t stop_ns = MonotonicNanos();
  run.WaitAllStopped();

  Result result{op.name};
  std::vector<int64_t> all;
  for (auto& client : loop) {
    all.insert(all.end(), client->latencies().begin(),
               client->latencies().end());
    if (client->errors() > 0 && result.errors == 0) {
      std::fprintf(stderr, "loadgen: %s: %s\n", op.name,
                   client->first_error().c_str());
    }
    result.errors += client->errors();
  }
  result.ops_per_second = static_cast<double>(all.size()) * 1e9 /
                          static_cast<double>(stop_ns - start_ns);
  result.p50_ns = Percentile(all, 0.50);
  result.p99_ns = Percentile(all, 0.99);
  return result;
}

Result MeasureLane(const OpName& op,
                   std::vector<std::unique_ptr<Client>>& conns, int inflight) {
  const int clients = static_cast<int>(conns.size()) * inflight;
  Run run(clients);
  std::vector<std::unique_ptr<LaneThread>> loop;
  for (int c = 0; c < static_cast<int>(conns.size()); ++c) {
    for (int s = 0; s < inflight; ++s) {
      loop.push_back(std::make_unique<LaneThread>(op.op, *conns[c],
                                                  c * inflight + s, run));
    }
  }
  for (auto& client : loop) client->Start();
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_warmup)));
  const int64_t start_ns = MonotonicNanos();
  run.set_phase(Phase::kMeasure);
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  run.set_phase(Phase::kStop);
  const int64_t stop_ns = MonotonicNanos();
  run.WaitAllStopped();
  for (auto& client : loop) client->Join();

  Result result{op.name};
  std::vector<int64_t> all;
  for (auto& client : loop) {
    all.insert(all.end(), client->latencies().begin(),
               client->latencies().end());
    if (client->errors() > 0 && result.errors == 0) {
      std::fprintf(stderr, "loadgen: %s: %s\n", op.name,
                   client->first_error().c_str());
    }
    result.errors += client->errors();
  }
  result.ops_per_second = static_cast<double>(all.size()) * 1e9 /
                          static_cast<double>(stop_ns - start_ns);
  result.p50_ns = Percentile(all, 0.50);
  result.p99_ns = Percentile(all, 0.99);
  return result;
}

std::vector<OpName> SelectedOps() {
  std::vector<OpName> selected;
  for (const std::string& name : absl::GetFlag(FLAGS_ops)) {
    if (name == "all") return {std::begin(kOps), std::end(kOps)};
    bool found = false;
    for (const OpName& op : kOps) {
      if (name == op.name) {
        selected.push_back(op);
        found = true;
      }
    }
    if (!found) {
      std::fprintf(stderr, "loadgen: unknown op '%s'\n", name.c_str());
      std::exit(2);
    }
  }
  return selected;
}

void RunGrpc(const std::vector<OpName>& ops, const Target& target,
             int connections, int inflight, std::vector<Result>* out);
int Report(const std::vector<Result>& results, const std::string& transport,
           int connections, int inflight, const Target& target);

int Main() {
  const std::vector<OpName> ops = SelectedOps();
  const int connections = absl::GetFlag(FLAGS_connections);
  const int inflight = absl::GetFlag(FLAGS_inflight);
  if (connections < 1 || inflight < 1) {
    std::fprintf(stderr,
                 "loadgen: --connections and --inflight must be >= 1\n");
    return 2;
  }
  const std::string transport = absl::GetFlag(FLAGS_transport);
  if (transport != "lane" && transport != "grpc") {
    std::fprintf(stderr, "loadgen: --transport must be lane or grpc\n");
    return 2;
  }
  absl::StatusOr<Target> target = Target::Resolve(
      absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_unix_socket));
  DieIfError(target.status(), "server");

  const int clients = connections * inflight;
  const double run_seconds =
      absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_seconds);
  // list_pop needs an item per pop: enough for list_append's rate if it ran,
  // else for a generous guess, with margin.
  double append_rate = 100'000;
  std::vector<Result> results;
  if (transport == "lane") {
    std::vector<std::unique_ptr<Client>> lane_conns;
    for (int i = 0; i < connections; ++i) {
      ClientOptions options;
      options.transport = Transport::kLane;
      options.label = absl::StrCat("loadgen-", i);
      options.call_timeout = kCallDeadline;
      absl::StatusOr<std::unique_ptr<Client>> client =
          Client::Connect(target->address(), options);
      DieIfError(client.status(), absl::StrCat("client ", i));
      lane_conns.push_back(*std::move(client));
    }
    for (const OpName& op : ops) {
      const auto pop_items =
          static_cast<int64_t>(1.5 * append_rate * run_seconds);
      SetupLane(op.op, *lane_conns.front(), clients, pop_items);
      results.push_back(MeasureLane(op, lane_conns, inflight));
      if (op.op == Op::kListAppend) {
        append_rate = results.back().ops_per_second;
      }
    }
    for (auto& client : lane_conns) client->Close();
  } else {
    RunGrpc(ops, *target, connections, inflight, &results);
  }
  return Report(results, transport, connections, inflight, *target);
}

// RunGrpc measures `ops` on raw gRPC, appending to *results.
void RunGrpc(const std::vector<OpName>& ops, const Target& target,
             int connections, int inflight, std::vector<Result>* out) {
  std::vector<Connection> conns(connections);
  for (int i = 0; i < connections; ++i) {
    Connection& conn = conns[i];
    conn.channel = MakeChannel(target.address(), i);
    auto session = Session::Open(conn.channel, absl::StrCat("loadgen-", i));
    DieIfError(session.status(), absl::StrCat("session on connection ", i));
    conn.session = std::move(*session);
    conn.objects = v1::Objects::NewStub(conn.channel);
    conn.dicts = v1::Dicts::NewStub(conn.channel);
    conn.lists = v1::Lists::NewStub(conn.channel);
    conn.locks = v1::Locks::NewStub(conn.channel);
    conn.queues = v1::Queues::NewStub(conn.channel);
  }

  const int clients = connections * inflight;
  const double run_seconds =
      absl::GetFlag(FLAGS_warmup) + absl::GetFlag(FLAGS_seconds);
  double append_rate = 100'000;
  std::vector<Result>& results = *out;
  for (const OpName& op : ops) {
    const auto pop_items =
        static_cast<int64_t>(1.5 * append_rate * run_seconds);
    Setup(op.op, conns, clients, pop_items);
    results.push_back(Measure(op, conns, inflight));
    if (op.op == Op::kListAppend) append_rate = results.back().ops_per_second;
  }
  for (Connection& conn : conns) conn.session->Close();
}

// Report prints the results as a table or CSV.
int Report(const std::vector<Result>& results, const std::string& transport,
           int connections, int inflight, const Target& target) {
  const int clients = connections * inflight;
  if (absl::GetFlag(FLAGS_csv)) {
    std::printf(
        "op,connections,inflight,clients,ops_per_s,p50_us,p99_us,errors\n");
    for (const Result& r : results) {
      std::printf("%s,%d,%d,%d,%.1f,%.1f,%.1f,%lld\n", r.op, connections,
                  inflight, clients, r.ops_per_second, r.p50_ns / 1e3,
                  r.p99_ns / 1e3, static_cast<long long>(r.errors));
    }
    return 0;
  }
  std::printf(
      "\nloadgen: %s, %d connections x %d in flight = %d clients; %g s per "
      "op after %g s warmup; server %s\n",
      transport.c_str(), connections, inflight, clients,
      absl::GetFlag(FLAGS_seconds), absl::GetFlag(FLAGS_warmup),
      target.address().c_str());
  std::printf("%-17s %8s %12s %10s %10s %8s\n", "op", "clients", "ops/s",
              "p50 us", "p99 us", "errors");
  for (const Result& r : results) {
    std::printf("%-17s %8d %12.1f %10.1f %10.1f %8lld\n", r.op, clients,
                r.ops_per_second, r.p50_ns / 1e3, r.p99_ns / 1e3,
                static_cast<long long>(r.errors));
  }
  return 0;
}

}  // namespace
}  // namespace statehub::bench

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return statehub::bench::Main();
}
