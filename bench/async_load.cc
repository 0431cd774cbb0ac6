#include "bench/async_load.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"

namespace statehub::bench {
namespace {

constexpr char kDict[] = "bench/lane_loop/dict";
constexpr char kList[] = "bench/lane_loop/list";

enum class Op { kDictSet, kDictGet, kListAppend, kListPop };

std::optional<Op> FindOp(const std::string& name) {
  if (name == "dict_set") return Op::kDictSet;
  if (name == "dict_get") return Op::kDictGet;
  if (name == "list_append") return Op::kListAppend;
  if (name == "list_pop") return Op::kListPop;
  return std::nullopt;
}

// Window is one op's run: the window it measures, what it saw, and the
// calls in flight.
struct Window {
  Op op;
  int64_t from = 0;   // measured calls are issued at or after this
  int64_t until = 0;  // and complete before this; none is issued after
  int64_t in_flight = 0;
  LoopResult result;
};

}  // namespace

// Connection is one AsyncClient and the handles its calls use.
class AsyncLoad::Connection {
 public:
  Connection(std::unique_ptr<AsyncClient> client, int index)
      : client_(std::move(client)),
        dict_(client_->dict(kDict)),
        list_(client_->list(kList)),
        key_(absl::StrCat("k", index)),
        index_(index) {}

  // Issue starts one call of the window's op; its callback records it and
  // issues the next until the window closes.
  void Issue(Window& w) {
    ++w.in_flight;
    const int64_t start = MonotonicNanos();
    switch (w.op) {
      case Op::kDictSet:
        dict_.Set(key_, index_,
                  [this, &w, start](absl::Status s) { Done(w, start, s); });
        break;
      case Op::kDictGet:
        dict_.Get(key_, [this, &w, start](absl::StatusOr<Value> v) {
          Done(w, start, v.status());
        });
        break;
      case Op::kListAppend:
        list_.Append(index_, [this, &w, start](absl::StatusOr<int64_t> n) {
          Done(w, start, n.status());
        });
        break;
      case Op::kListPop:
        list_.Pop([this, &w, start](absl::StatusOr<Value> v) {
          Done(w, start, v.status());
        });
        break;
    }
  }

 private:
  void Done(Window& w, int64_t start, const absl::Status& status) {
    const int64_t now = MonotonicNanos();
    --w.in_flight;
    if (start >= w.from && now < w.until) {
      ++w.result.ops;
      w.result.latencies_ns.push_back(now - start);
      if (!status.ok() && w.result.errors++ == 0) {
        w.result.first_error = status.ToString();
      }
    }
    if (now < w.until) Issue(w);
  }

  std::unique_ptr<AsyncClient> client_;
  AsyncDict dict_;
  AsyncList list_;
  const Value key_;
  const int index_;
};

AsyncLoad::AsyncLoad() = default;
AsyncLoad::~AsyncLoad() = default;

absl::StatusOr<std::unique_ptr<AsyncLoad>> AsyncLoad::Connect(
    const std::string& address, int connections) {
  std::unique_ptr<AsyncLoad> load(new AsyncLoad());
  for (int i = 0; i < connections; ++i) {
    AsyncClientOptions options;
    options.label = absl::StrCat("lane_loop:", i);
    absl::StatusOr<std::unique_ptr<AsyncClient>> client =
        AsyncClient::Connect(load->loop_, address, options);
    if (!client.ok()) return client.status();
    load->conns_.push_back(std::make_unique<Connection>(*std::move(client), i));
  }
  absl::StatusOr<std::unique_ptr<AsyncClient>> setup =
      AsyncClient::Connect(load->loop_, address);
  if (!setup.ok()) return setup.status();
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
  load->loop_.RunUntil([&] { return done == 2; });
  for (const absl::Status& s : opened) {
    if (!s.ok()) return s;
  }
  return load;
}

absl::StatusOr<LoopResult> AsyncLoad::Run(const std::string& op, int pipeline,
                                          double warmup, double seconds) {
  std::optional<Op> found = FindOp(op);
  if (!found.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown op ", op));
  }
  Window w;
  w.op = *found;
  w.result.latencies_ns.reserve(1 << 20);
  w.from = MonotonicNanos() + static_cast<int64_t>(warmup * 1e9);
  w.until = w.from + static_cast<int64_t>(seconds * 1e9);
  for (auto& conn : conns_) {
    for (int i = 0; i < pipeline; ++i) conn->Issue(w);
  }
  loop_.RunUntil([&] { return w.in_flight == 0; });
  w.result.seconds = seconds;
  return std::move(w.result);
}

}  // namespace statehub::bench
