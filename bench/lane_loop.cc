// lane_loop: statehub's dict and list calls driven from one event loop, as
// redis-benchmark drives Redis: --connections lane connections served by
// one thread, each with --pipeline calls in flight, by one of two clients
// (--client):
//
//   async  the C++ client's asynchronous API (statehub/async.h): one
//          AsyncClient per connection, all on one AsyncLoop
//          (bench/async_load.h). What an application gets.
//   raw    raw lane frames (api/LANE.md) written and read by this program
//          on an epoll loop: what the server can do for a client that
//          costs next to nothing. Each connection opens its own session
//          (HELLO) and follows the server's advice in WELCOME: over TCP,
//          calls that change state are numbered (api/LANE.md, "Numbered
//          calls"), as the blocking clients number them. Replies of one
//          connection come back in order (none of these calls parks), so
//          the latency of a call is the time from the write that carried
//          its request to the read that brought its reply.
//
// Where loadgen measures the blocking C++ client with a thread per caller,
// this is redis-benchmark's shape, so that the comparison with
// redis-benchmark -c N -P M is like for like.
//
// Ops (--ops, in the order given; list_pop pops what list_append pushed):
//   dict_set     Dicts.Set of an int on key "k<connection>" of one dict
//   dict_get     Dicts.Get of that key
//   list_append  Lists.Append of an int to one shared list
//   list_pop     Lists.Pop of the list's last item
//
// With no --address it starts a private statehub-server and dials its TCP
// loopback address (--unix_socket: its Unix socket).
//
//   scripts/build.sh release lane_loop && build/bench/lane_loop
//       [--client=async|raw] [--address=host:port|unix:///path]
//       [--connections=50] [--pipeline=1] [--seconds=5] [--warmup=1]
//       [--ops=dict_set,dict_get,list_append,list_pop] [--csv]

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/async_load.h"
#include "bench/bench_util.h"
#include "statehub/internal/lane.h"
#include "statehub/v1/dict.pb.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/list.pb.h"
#include "statehub/v1/objects.pb.h"
#include "statehub/v1/session.pb.h"

ABSL_FLAG(std::string, client, "async",
          "async: the C++ client's asynchronous API; raw: lane frames "
          "written by hand.");
ABSL_FLAG(std::string, address, "",
          "Server to drive (host:port or unix:///path); empty starts a "
          "private statehub-server.");
ABSL_FLAG(bool, unix_socket, false,
          "With no --address: dial the private server's Unix socket.");
ABSL_FLAG(int, connections, 50, "Lane connections, one session each.");
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

using lane::Frame;
using lane::FrameError;
using lane::FrameReader;
using lane::Kind;

// Lane method ids (api/statehub/v1/*.proto, option lane_method).
constexpr uint16_t kObjectsOpen = 1;
constexpr uint16_t kDictsSet = 17;
constexpr uint16_t kDictsGet = 16;
constexpr uint16_t kListsAppend = 36;
constexpr uint16_t kListsPop = 39;

constexpr char kDict[] = "bench/lane_loop/dict";
constexpr char kList[] = "bench/lane_loop/list";

struct Op {
  std::string name;
  uint16_t method;
  bool changes;  // numbered when the server advises it
};

std::optional<Op> FindOp(const std::string& name) {
  if (name == "dict_set") return Op{name, kDictsSet, true};
  if (name == "dict_get") return Op{name, kDictsGet, false};
  if (name == "list_append") return Op{name, kListsAppend, true};
  if (name == "list_pop") return Op{name, kListsPop, true};
  return std::nullopt;
}

// The request body of `op` for connection `index`.
std::string Body(const Op& op, int index) {
  switch (op.method) {
    case kDictsSet: {
      v1::DictSetRequest r;
      r.set_name(kDict);
      r.mutable_key()->set_string_value(absl::StrCat("k", index));
      r.mutable_value()->set_int_value(index);
      return r.SerializeAsString();
    }
    case kDictsGet: {
      v1::DictGetRequest r;
      r.set_name(kDict);
      r.mutable_key()->set_string_value(absl::StrCat("k", index));
      return r.SerializeAsString();
    }
    case kListsAppend: {
      v1::ListAppendRequest r;
      r.set_name(kList);
      r.mutable_value()->set_int_value(index);
      return r.SerializeAsString();
    }
    default: {
      v1::ListPopRequest r;
      r.set_name(kList);
      return r.SerializeAsString();
    }
  }
}

absl::StatusOr<int> Dial(const std::string& address) {
  int fd = -1;
  if (absl::StartsWith(address, "unix://")) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    const std::string path = address.substr(7);
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return absl::UnavailableError(
          absl::StrCat("connect ", address, ": ", std::strerror(errno)));
    }
    return fd;
  }
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat(address, " is neither host:port nor unix:///path"));
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  std::string host = address.substr(0, colon);
  if (host == "localhost") host = "127.0.0.1";
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(host, " is not an IPv4 address"));
  }
  fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect ", address, ": ", std::strerror(errno)));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// One lane connection: its session, its calls in flight, what it read.
struct Connection {
  int fd = -1;
  int index = 0;
  bool number = false;  // WELCOME advised numbered calls
  uint64_t next_number = 0;
  uint64_t seen = 0;  // the last numbered call whose answer was read
  uint32_t next_id = 0;
  std::string body;              // the current op's request body
  std::deque<int64_t> sent;      // send times of the calls in flight
  std::deque<uint64_t> numbers;  // their numbers (0: not numbered)
  std::string out;               // bytes not written yet
  FrameReader reader{64 << 20, /*expect_preface=*/false};
};

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("send: ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// ReadFrame blocks (setup only) until the next whole frame.
absl::StatusOr<Frame> ReadFrame(Connection& c) {
  Frame frame;
  std::optional<FrameError> error;
  char buffer[4096];
  while (!c.reader.Next(&frame, &error)) {
    if (error) return error->status;
    const ssize_t n = ::recv(c.fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return absl::UnavailableError("the server closed");
    c.reader.Append(absl::string_view(buffer, static_cast<size_t>(n)));
  }
  return frame;
}

// A blocking call, for setup.
absl::Status Call(Connection& c, uint16_t method,
                  const google::protobuf::MessageLite& request) {
  std::string frame;
  lane::AppendFrame(&frame, Kind::kRequest, ++c.next_id, method, &request);
  if (absl::Status s = WriteAll(c.fd, frame); !s.ok()) return s;
  absl::StatusOr<Frame> reply = ReadFrame(c);
  if (!reply.ok()) return reply.status();
  if (static_cast<Kind>(reply->header.kind) == Kind::kError) {
    v1::LaneError e;
    e.ParseFromArray(reply->body.data(), static_cast<int>(reply->body.size()));
    return absl::InternalError(e.message());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& address,
                                                 int index) {
  absl::StatusOr<int> fd = Dial(address);
  if (!fd.ok()) return fd.status();
  auto c = std::make_unique<Connection>();
  c->fd = *fd;
  c->index = index;
  v1::LaneHello hello;
  hello.set_protocol_version(lane::kProtocolVersion);
  hello.set_label(absl::StrCat("lane_loop:", index));
  std::string out(lane::kPreface);
  lane::AppendFrame(&out, Kind::kHello, 0, 0, &hello);
  if (absl::Status s = WriteAll(c->fd, out); !s.ok()) return s;
  absl::StatusOr<Frame> welcome = ReadFrame(*c);
  if (!welcome.ok()) return welcome.status();
  if (static_cast<Kind>(welcome->header.kind) != Kind::kWelcome) {
    return absl::UnavailableError("the server refused HELLO");
  }
  v1::Welcome w;
  w.ParseFromArray(welcome->body.data(),
                   static_cast<int>(welcome->body.size()));
  c->number = w.number_calls();
  return c;
}

// Sends connection c's next call (into c.out; Flush writes it).
void Queue(Connection& c, const Op& op, int64_t now) {
  uint64_t number = 0;
  uint8_t flags = 0;
  absl::string_view body = c.body;
  std::string numbered;
  if (op.changes && c.number) {
    number = ++c.next_number;
    numbered.resize(lane::kNumberSize);
    absl::little_endian::Store64(numbered.data(), number);
    absl::little_endian::Store64(numbered.data() + 8, c.seen);
    numbered.append(c.body);
    body = numbered;
    flags = lane::kNumbered;
  }
  lane::Header h;
  h.length = static_cast<uint32_t>(body.size());
  h.request_id = ++c.next_id;
  h.method = op.method;
  h.kind = static_cast<uint8_t>(Kind::kRequest);
  h.flags = flags;
  char header[lane::kHeaderSize];
  lane::EncodeHeader(h, header);
  c.out.append(header, lane::kHeaderSize);
  c.out.append(body.data(), body.size());
  c.sent.push_back(now);
  c.numbers.push_back(number);
}

// Runs `op` on every connection from one epoll loop: warmup, then the
// measured window. Returns what the window saw.
absl::StatusOr<LoopResult> Run(std::vector<std::unique_ptr<Connection>>& conns,
                               const Op& op, int pipeline, double warmup,
                               double seconds) {
  const int ep = ::epoll_create1(0);
  for (auto& c : conns) {
    c->body = Body(op, c->index);
    ::fcntl(c->fd, F_SETFL, ::fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = c.get();
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
  }
  const int64_t start = MonotonicNanos();
  const int64_t from = start + static_cast<int64_t>(warmup * 1e9);
  const int64_t until = from + static_cast<int64_t>(seconds * 1e9);
  for (auto& c : conns) {
    for (int i = 0; i < pipeline; ++i) Queue(*c, op, start);
    if (absl::Status s = WriteAll(c->fd, c->out); !s.ok()) return s;
    c->out.clear();
  }
  LoopResult result;
  result.latencies_ns.reserve(1 << 20);
  std::vector<epoll_event> events(conns.size());
  char buffer[64 << 10];
  bool stopping = false;
  size_t in_flight = conns.size() * static_cast<size_t>(pipeline);
  while (in_flight > 0) {
    const int n =
        ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    if (n < 0 && errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("epoll_wait: ", std::strerror(errno)));
    }
    for (int i = 0; i < n; ++i) {
      Connection& c = *static_cast<Connection*>(events[i].data.ptr);
      const ssize_t got = ::recv(c.fd, buffer, sizeof(buffer), 0);
      if (got == 0) return absl::UnavailableError("the server closed");
      if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return absl::UnavailableError(
            absl::StrCat("recv: ", std::strerror(errno)));
      }
      const int64_t now = MonotonicNanos();
      stopping = now >= until;
      c.reader.Append(absl::string_view(buffer, static_cast<size_t>(got)));
      Frame frame;
      std::optional<FrameError> error;
      while (c.reader.Next(&frame, &error)) {
        const auto kind = static_cast<Kind>(frame.header.kind);
        if (kind != Kind::kResponse && kind != Kind::kError) continue;
        const int64_t sent = c.sent.front();
        c.sent.pop_front();
        if (c.numbers.front() != 0) c.seen = c.numbers.front();
        c.numbers.pop_front();
        --in_flight;
        if (sent >= from && now < until) {
          ++result.ops;
          if (kind == Kind::kError) ++result.errors;
          result.latencies_ns.push_back(now - sent);
        }
        if (!stopping) {
          Queue(c, op, now);
          ++in_flight;
        }
      }
      if (error) return error->status;
      if (!c.out.empty()) {
        if (absl::Status s = WriteAll(c.fd, c.out); !s.ok()) return s;
        c.out.clear();
      }
    }
  }
  ::close(ep);
  for (auto& c : conns) {
    ::fcntl(c->fd, F_SETFL, ::fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
  }
  result.seconds = seconds;
  return result;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));
  const int pipeline = std::max(1, absl::GetFlag(FLAGS_pipeline));
  std::vector<Op> ops;
  for (const std::string& name : absl::GetFlag(FLAGS_ops)) {
    std::optional<Op> op = FindOp(name);
    if (!op) {
      std::fprintf(stderr, "lane_loop: unknown op %s\n", name.c_str());
      return 2;
    }
    ops.push_back(*op);
  }
  absl::StatusOr<Target> target = Target::Resolve(
      absl::GetFlag(FLAGS_address), absl::GetFlag(FLAGS_unix_socket));
  DieIfError(target.status(), "server");
  const std::string address = target->address();
  const std::string client = absl::GetFlag(FLAGS_client);
  const double warmup = absl::GetFlag(FLAGS_warmup);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  // run measures one op on the chosen client's connections.
  std::function<absl::StatusOr<LoopResult>(const Op&)> run;
  std::unique_ptr<AsyncLoad> load;
  std::vector<std::unique_ptr<Connection>> conns;
  if (client == "async") {
    absl::StatusOr<std::unique_ptr<AsyncLoad>> connected =
        AsyncLoad::Connect(address, connections);
    DieIfError(connected.status(), "connect");
    load = *std::move(connected);
    run = [&](const Op& op) {
      return load->Run(op.name, pipeline, warmup, seconds);
    };
  } else if (client == "raw") {
    for (int i = 0; i < connections; ++i) {
      absl::StatusOr<std::unique_ptr<Connection>> c = Open(address, i);
      DieIfError(c.status(), "connect");
      conns.push_back(*std::move(c));
    }
    v1::OpenRequest open;
    open.set_name(kDict);
    open.set_type(v1::DICT);
    DieIfError(Call(*conns[0], kObjectsOpen, open), "open the dict");
    open.set_name(kList);
    open.set_type(v1::LIST);
    DieIfError(Call(*conns[0], kObjectsOpen, open), "open the list");
    run = [&](const Op& op) {
      return Run(conns, op, pipeline, warmup, seconds);
    };
  } else {
    std::fprintf(stderr, "lane_loop: --client must be async or raw\n");
    return 2;
  }

  const bool csv = absl::GetFlag(FLAGS_csv);
  if (csv) {
    std::printf("op,connections,pipeline,ops_per_s,p50_us,p99_us,errors\n");
  } else {
    std::printf("%-12s %11s %8s %12s %8s %8s %7s\n", "op", "connections",
                "pipeline", "ops/s", "p50 us", "p99 us", "errors");
  }
  for (const Op& op : ops) {
    absl::StatusOr<LoopResult> r = run(op);
    DieIfError(r.status(), op.name);
    // list_pop's errors are pops of an emptied list, as Redis's nils.
    if (r->errors > 0 && !r->first_error.empty() && op.name != "list_pop") {
      std::fprintf(stderr, "lane_loop: %s: %s\n", op.name.c_str(),
                   r->first_error.c_str());
    }
    const double rate = static_cast<double>(r->ops) / r->seconds;
    const double p50 = Percentile(r->latencies_ns, 0.50) / 1e3;
    const double p99 = Percentile(r->latencies_ns, 0.99) / 1e3;
    if (csv) {
      std::printf("%s,%d,%d,%.1f,%.1f,%.1f,%lld\n", op.name.c_str(),
                  connections, pipeline, rate, p50, p99,
                  static_cast<long long>(r->errors));
    } else {
      std::printf("%-12s %11d %8d %12.1f %8.1f %8.1f %7lld\n", op.name.c_str(),
                  connections, pipeline, rate, p50, p99,
                  static_cast<long long>(r->errors));
    }
    std::fflush(stdout);
  }
  for (auto& c : conns) ::close(c->fd);
  return 0;
}

}  // namespace
}  // namespace statehub::bench

int main(int argc, char** argv) { return statehub::bench::Main(argc, argv); }
