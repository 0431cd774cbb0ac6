// async_loop: the C++ client's asynchronous API (statehub/async.h) driving
// statehub's dict and list calls as redis-benchmark drives Redis:
// --connections AsyncClients (a lane connection and a session each) on one
// AsyncLoop run by this program's one thread, each with --pipeline calls in
// flight; each callback records its call and issues the next. Where
// lane_loop writes raw frames by hand to measure the server alone, this
// measures the client library too: encoding, the request id map, Asio, the
// callbacks. The async client numbers no calls (it never sends one again),
// so over TCP its writes are not numbered, as Redis's are not.
//
// Ops (--ops, in the order given; list_pop pops what list_append pushed):
//   dict_set     AsyncDict::Set of an int on key "k<connection>" of one dict
//   dict_get     AsyncDict::Get of that key
//   list_append  AsyncList::Append of an int to one shared list
//   list_pop     AsyncList::Pop of the list's last item
//
// A call's latency runs from its issue to its callback. With no --address
// it starts a private statehub-server and dials its TCP loopback address
// (--unix_socket: its Unix socket).
//
//   scripts/build.sh release async_loop && build/bench/async_loop
//       [--address=host:port|unix:///path] [--connections=50]
//       [--pipeline=1] [--seconds=5] [--warmup=1]
//       [--ops=dict_set,dict_get,list_append,list_pop] [--csv]

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "statehub/async.h"

ABSL_FLAG(std::string, address, "",
          "Server to drive (host:port or unix:///path); empty starts a "
          "private statehub-server.");
ABSL_FLAG(bool, unix_socket, false,
          "With no --address: dial the private server's Unix socket.");
ABSL_FLAG(int, connections, 50,
          "AsyncClients: lane connections, a session "
          "each, all on one event loop.");
ABSL_FLAG(int, pipeline, 1, "Calls in flight on each connection.");
ABSL_FLAG(double, seconds, 5, "Measured seconds per op.");
ABSL_FLAG(double, warmup, 1, "Unmeasured seconds before each op's run.");
ABSL_FLAG(std::vector<std::string>, ops,
          std::vector<std::string>({"dict_set", "dict_get", "list_append",
                                    "list_pop"}),
          "Ops to run, in order.");
ABSL_FLAG(bool, csv, false, "Print CSV rows instead of a table.");

namespace statehub::bench {
namespace {

constexpr char kDict[] = "bench/async_loop/dict";
constexpr char kList[] = "bench/async_loop/list";

enum class Op { kDictSet, kDictGet, kListAppend, kListPop };

std::optional<Op> FindOp(const std::string& name) {
  if (name == "dict_set") return Op::kDictSet;
  if (name == "dict_get") return Op::kDictGet;
  if (name == "list_append") return Op::kListAppend;
  if (name == "list_pop") return Op::kListPop;
  return std::nullopt;
}

// Run is one op's run over every connection: the window it measures and
// what it saw.
struct Run {
  Op op;
  int64_t from = 0;   // measured calls are issued at or after this
  int64_t until = 0;  // and complete before this; none is issued after
  int64_t ops = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<int64_t> latencies_ns;
  int64_t in_flight = 0;
};

// Connection is one AsyncClient and the handles its calls use.
class Connection {
 public:
  Connection(std::unique_ptr<AsyncClient> client, int index)
      : client_(std::move(client)),
        dict_(client_->dict(kDict)),
        list_(client_->list(kList)),
        key_(absl::StrCat("k", index)),
        index_(index) {}

  // Issue starts one call of the run's op; its callback records it and
  // issues the next until the run's window closes.
  void Issue(Run& run) {
    ++run.in_flight;
    const int64_t start = MonotonicNanos();
    switch (run.op) {
      case Op::kDictSet:
        dict_.Set(key_, index_,
                  [this, &run, start](absl::Status s) { Done(run, start, s); });
        break;
      case Op::kDictGet:
        dict_.Get(key_, [this, &run, start](absl::StatusOr<Value> v) {
          Done(run, start, v.status());
        });
        break;
      case Op::kListAppend:
        list_.Append(index_, [this, &run, start](absl::StatusOr<int64_t> n) {
          Done(run, start, n.status());
        });
        break;
      case Op::kListPop:
        list_.Pop([this, &run, start](absl::StatusOr<Value> v) {
          Done(run, start, v.status());
        });
        break;
    }
  }

 private:
  void Done(Run& run, int64_t start, const absl::Status& status) {
    const int64_t now = MonotonicNanos();
    --run.in_flight;
    if (start >= run.from && now < run.until) {
      ++run.ops;
      run.latencies_ns.push_back(now - start);
      if (!status.ok() && run.errors++ == 0) {
        run.first_error = status.ToString();
      }
    }
    if (now < run.until) Issue(run);
  }

  std::unique_ptr<AsyncClient> client_;
  AsyncDict dict_;
  AsyncList list_;
  const Value key_;
  const int index_;
};

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));
  const int pipeline = std::max(1, absl::GetFlag(FLAGS_pipeline));
  std::vector<std::pair<std::string, Op>> ops;
  for (const std::string& name : absl::GetFlag(FLAGS_ops)) {
    std::optional<Op> op = FindOp(name);
    if (!op) {
      std::fprintf(stderr, "async_loop: unknown op %s\n", name.c_str());
      return 2;
    }
    ops.emplace_back(name, *op);
  }
  absl::StatusOr<Target> target = Target::Resolve(
      absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_unix_socket));
  DieIfError(target.status(), "server");

  AsyncLoop loop;
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < connections; ++i) {
    AsyncClientOptions options;
    options.label = absl::StrCat("async_loop:", i);
    absl::StatusOr<std::unique_ptr<AsyncClient>> client =
        AsyncClient::Connect(loop, target->address(), options);
    DieIfError(client.status(), absl::StrCat("connect ", i));
    conns.push_back(std::make_unique<Connection>(*std::move(client), i));
  }
  {
    // The objects, opened by the first connection.
    absl::StatusOr<std::unique_ptr<AsyncClient>> setup =
        AsyncClient::Connect(loop, target->address());
    DieIfError(setup.status(), "connect");
    absl::Status opened[2];
    int done = 0;
    (*setup)->OpenDict(kDict, [&](absl::StatusOr<AsyncDict> d) {
      opened[0] = d.status();
      ++done;
    });
    (*setup)->OpenList(kList, [&](absl::StatusOr<AsyncList> l) {
      opened[1] = l.status();
      ++done;
    });
    loop.RunUntil([&] { return done == 2; });
    DieIfError(opened[0], "open the dict");
    DieIfError(opened[1], "open the list");
  }

  const bool csv = absl::GetFlag(FLAGS_csv);
  if (csv) {
    std::printf("op,connections,pipeline,ops_per_s,p50_us,p99_us,errors\n");
  } else {
    std::printf("%-12s %11s %8s %12s %8s %8s %7s\n", "op", "connections",
                "pipeline", "ops/s", "p50 us", "p99 us", "errors");
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  for (const auto& [name, op] : ops) {
    Run run;
    run.op = op;
    run.latencies_ns.reserve(1 << 20);
    const int64_t start = MonotonicNanos();
    run.from = start + static_cast<int64_t>(absl::GetFlag(FLAGS_warmup) * 1e9);
    run.until = run.from + static_cast<int64_t>(seconds * 1e9);
    for (auto& conn : conns) {
      for (int i = 0; i < pipeline; ++i) conn->Issue(run);
    }
    loop.RunUntil([&] { return run.in_flight == 0; });
    if (run.errors > 0 && op != Op::kListPop) {
      std::fprintf(stderr, "async_loop: %s: %s\n", name.c_str(),
                   run.first_error.c_str());
    }
    const double rate = static_cast<double>(run.ops) / seconds;
    const double p50 = Percentile(run.latencies_ns, 0.50) / 1e3;
    const double p99 = Percentile(run.latencies_ns, 0.99) / 1e3;
    if (csv) {
      std::printf("%s,%d,%d,%.1f,%.1f,%.1f,%lld\n", name.c_str(), connections,
                  pipeline, rate, p50, p99, static_cast<long long>(run.errors));
    } else {
      std::printf("%-12s %11d %8d %12.1f %8.1f %8.1f %7lld\n", name.c_str(),
                  connections, pipeline, rate, p50, p99,
                  static_cast<long long>(run.errors));
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace statehub::bench

int main(int argc, char** argv) { return statehub::bench::Main(argc, argv); }
