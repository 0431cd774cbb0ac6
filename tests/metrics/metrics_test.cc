// Server metrics against the real server: a contended lock scenario whose
// every step is deterministic, then scrapes of /metrics over HTTP checking
// the counts, histogram counts and gauges exactly.

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "statehub/internal/wire.h"
#include "statehub/prometheus.h"
#include "statehub/statehub.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/queue.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "tests/testing/scrape.h"
#include "tests/testing/server_process.h"
#include "tests/testing/shell.h"

extern char** environ;

namespace statehub {
namespace {

using testing::FreePort;
using testing::HttpGet;
using testing::MetricValue;
using testing::Shell;

// Runs `promtool check metrics` on `scrape`; returns its exit status and
// puts what it printed in `output`.
int Promtool(const std::string& scrape, std::string* output) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/scrape-", getpid(), ".txt");
  std::ofstream(path) << scrape;
  int status;
  *output = Shell(absl::StrCat("promtool check metrics < ", path), &status);
  std::remove(path.c_str());
  return status;
}

// The PromQL expressions of the Grafana dashboard, with Grafana's variables
// replaced by values Prometheus accepts.
std::vector<std::string> DashboardQueries() {
  std::ifstream file(STATEHUB_DASHBOARD_PATH);
  const std::string json((std::istreambuf_iterator<char>(file)),
                         std::istreambuf_iterator<char>());
  std::vector<std::string> queries;
  const std::string kKey = R"("expr": ")";
  for (size_t at = json.find(kKey); at != std::string::npos;
       at = json.find(kKey, at)) {
    at += kKey.size();
    std::string expr;
    while (at < json.size() && json[at] != '"') {
      if (json[at] == '\\') ++at;  // \" and \\ in JSON
      expr += json[at++];
    }
    queries.push_back(absl::StrReplaceAll(
        expr,
        {{"$__rate_interval", "1m"}, {"$__range", "5m"}, {"$lock", ".*"}}));
  }
  return queries;
}

std::string UrlEncode(absl::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-') {
      out += static_cast<char>(c);
    } else {
      out += absl::StrFormat("%%%02X", c);
    }
  }
  return out;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = testing::ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_FALSE(server_->metrics_url().empty());
    channel_ = grpc::CreateChannel(server_->unix_address(),
                                   grpc::InsecureChannelCredentials());
    locks_ = v1::Locks::NewStub(channel_);
    Open("contended", v1::LOCK);
  }

  void Open(const std::string& name, v1::ObjectType type) {
    v1::OpenRequest open;
    open.set_name(name);
    open.set_type(type);
    v1::OpenResponse opened;
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::Objects::NewStub(channel_)->Open(&ctx, open, &opened).ok());
  }

  std::unique_ptr<Client> NewClient(std::string label = "") {
    ClientOptions options;
    options.label = std::move(label);
    auto client = Client::Connect(server_->unix_address(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  // Acquires "contended" for `client`; nullopt timeout blocks.
  v1::LockAcquireResponse Acquire(Client& client,
                                  std::optional<absl::Duration> timeout) {
    v1::LockAcquireRequest req;
    req.set_name("contended");
    req.set_blocking(true);
    if (timeout) {
      req.mutable_timeout()->set_nanos(
          static_cast<int32_t>(absl::ToInt64Nanoseconds(*timeout)));
    }
    v1::LockAcquireResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, client.session_id());
    const grpc::Status status = locks_->Acquire(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  void Release(Client& client) {
    v1::LockReleaseRequest req;
    req.set_name("contended");
    v1::LockReleaseResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, client.session_id());
    const grpc::Status status = locks_->Release(&ctx, req, &resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  int64_t Waiters() {
    v1::LockStateRequest req;
    req.set_name("contended");
    v1::LockStateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(locks_->State(&ctx, req, &resp).ok());
    return resp.waiters_size();
  }

  std::string Scrape() { return HttpGet(server_->metrics_url()); }

  std::unique_ptr<testing::ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Locks::Stub> locks_;
};

TEST_F(MetricsTest, ContendedLockIsCountedExactly) {
  std::unique_ptr<Client> a = NewClient();
  std::unique_ptr<Client> b = NewClient();

  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());             // uncontended
  EXPECT_FALSE(Acquire(*b, absl::Milliseconds(50)).acquired());  // timed out
  std::thread waiter(
      [&] { EXPECT_TRUE(Acquire(*b, std::nullopt).acquired()); });
  while (Waiters() == 0) absl::SleepFor(absl::Milliseconds(5));

  // One holder, one waiter parked now.
  std::string scrape = Scrape();
  EXPECT_EQ(MetricValue(scrape, R"(statehub_lock_waiters{name="contended"})"),
            1);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_lock_held{name="contended"})"), 1);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_parked_calls{type="lock"})"), 1);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_objects{type="lock"})"), 1);
  EXPECT_EQ(MetricValue(scrape, "statehub_sessions"), 2);
  // A waiter behind a holder that waits for nothing is no deadlock; both
  // series are there from the start.
  EXPECT_EQ(MetricValue(scrape, "statehub_deadlocks_total"), 0);
  EXPECT_EQ(MetricValue(scrape, "statehub_deadlocks"), 0);

  Release(*a);  // hands the lock to b
  waiter.join();
  Release(*b);
  // a takes it again and ends its session holding it: b's next acquire is
  // told the owner died.
  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());
  a->Close();
  EXPECT_TRUE(Acquire(*b, std::nullopt).owner_died());
  Release(*b);

  scrape = Scrape();
  const std::string name = R"(name="contended")";
  auto lock_series = [&](absl::string_view metric, absl::string_view extra) {
    return MetricValue(scrape, absl::StrCat(metric, "{", name, extra, "}"));
  };
  EXPECT_EQ(
      lock_series("statehub_lock_acquisitions_total", R"(,result="acquired")"),
      3);
  EXPECT_EQ(lock_series("statehub_lock_acquisitions_total",
                        R"(,result="owner_died")"),
            1);
  EXPECT_EQ(
      lock_series("statehub_lock_acquisitions_total", R"(,result="timed_out")"),
      1);
  EXPECT_EQ(
      lock_series("statehub_lock_acquisitions_total", R"(,result="cancelled")"),
      0);
  // Contended: the timed-out try and the parked acquire.
  EXPECT_EQ(lock_series("statehub_lock_contended_acquisitions_total", ""), 2);
  EXPECT_EQ(lock_series("statehub_lock_uncontended_acquisitions_total", ""), 3);
  EXPECT_EQ(lock_series("statehub_lock_wait_seconds_count", ""), 4);
  // Released: a, b, a (by its session's end), b.
  EXPECT_EQ(lock_series("statehub_lock_hold_seconds_count", ""), 4);
  EXPECT_EQ(lock_series("statehub_lock_waiters", ""), 0);
  EXPECT_EQ(lock_series("statehub_lock_held", ""), 0);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_parked_calls{type="lock"})"), 0);
  EXPECT_EQ(MetricValue(scrape, "statehub_sessions"), 1);
  EXPECT_EQ(
      MetricValue(scrape, R"(statehub_rpc_requests_total{)"
                          R"(code="OK",method="statehub.v1.Locks.Acquire",)"
                          R"(transport="grpc"})"),
      5);
  EXPECT_EQ(
      MetricValue(scrape, R"(statehub_rpc_requests_total{)"
                          R"(code="OK",method="statehub.v1.Locks.Release",)"
                          R"(transport="grpc"})"),
      3);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_rpc_duration_seconds_count{)"
                                R"(method="statehub.v1.Locks.Acquire",)"
                                R"(transport="grpc"})"),
            5);
}

TEST_F(MetricsTest, PromtoolAcceptsTheScrape) {
  std::unique_ptr<Client> a = NewClient();
  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());
  Release(*a);
  std::string output;
  EXPECT_EQ(Promtool(Scrape(), &output), 0) << output;
  EXPECT_EQ(output, "");  // no lint findings either
}

// A real Prometheus scrapes the server and answers a query for the waiters
// gauge while an acquire is parked.
TEST_F(MetricsTest, PrometheusSeesParkedWaiters) {
  std::unique_ptr<Client> a = NewClient();
  std::unique_ptr<Client> b = NewClient();
  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());
  std::thread waiter(
      [&] { EXPECT_TRUE(Acquire(*b, std::nullopt).acquired()); });
  while (Waiters() == 0) absl::SleepFor(absl::Milliseconds(5));

  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/prometheus-", getpid());
  int status;
  Shell(absl::StrCat("mkdir -p ", dir), &status);
  ASSERT_EQ(status, 0);
  absl::string_view target = server_->metrics_url();
  ASSERT_TRUE(absl::ConsumePrefix(&target, "http://"));
  target = target.substr(0, target.find('/'));
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n"
      << "scrape_configs:\n  - job_name: statehub\n"
      << "    static_configs:\n      - targets: ['" << target << "']\n";
  const int port = FreePort();
  std::vector<std::string> args = {
      "prometheus", "--config.file=" + dir + "/prometheus.yml",
      "--storage.tsdb.path=" + dir + "/data",
      absl::StrCat("--web.listen-address=127.0.0.1:", port),
      "--log.level=warn"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid;
  ASSERT_EQ(
      posix_spawnp(&pid, "prometheus", nullptr, nullptr, argv.data(), environ),
      0)
      << "prometheus not found: scripts/setup.sh installs it";

  // Prometheus needs a few scrapes; allow a minute on a loaded machine.
  const std::string query = absl::StrCat(
      "http://127.0.0.1:", port,
      "/api/v1/query?query=statehub_lock_waiters%7Bname%3D%22contended%22%7D");
  std::string answer;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    answer = HttpGet(query);
    if (absl::StrContains(answer, R"("name":"contended")")) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  // Every query of the Grafana dashboard is valid PromQL over these
  // metrics (names included: each must select something).
  std::vector<std::string> failed_queries;
  for (const std::string& expr : DashboardQueries()) {
    const std::string result = HttpGet(absl::StrCat(
        "http://127.0.0.1:", port, "/api/v1/query?query=", UrlEncode(expr)));
    if (!absl::StrContains(result, R"("status":"success")")) {
      failed_queries.push_back(expr + " -> " + result);
    }
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  Shell(absl::StrCat("rm -rf ", dir));
  Release(*a);
  waiter.join();

  EXPECT_TRUE(absl::StrContains(answer, R"("status":"success")")) << answer;
  // The instant vector's value is the string "1".
  EXPECT_TRUE(absl::StrContains(answer, R"(,"1"]})")) << answer;
  EXPECT_THAT(failed_queries, ::testing::IsEmpty());
}

// The dashboard only queries metrics the server exports.
TEST_F(MetricsTest, DashboardUsesExportedMetrics) {
  std::unique_ptr<Client> a = NewClient();
  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());
  Release(*a);
  const std::string scrape = Scrape();
  const std::vector<std::string> queries = DashboardQueries();
  ASSERT_GE(queries.size(), 10u);
  for (const std::string& expr : queries) {
    for (size_t at = expr.find("statehub_"); at != std::string::npos;
         at = expr.find("statehub_", at + 1)) {
      size_t end = at;
      while (end < expr.size() &&
             (absl::ascii_isalnum(expr[end]) || expr[end] == '_')) {
        ++end;
      }
      const std::string metric = expr.substr(at, end - at);
      EXPECT_TRUE(absl::StrContains(scrape, "\n" + metric + "{") ||
                  absl::StrContains(scrape, "\n" + metric + " "))
          << metric << " in " << expr;
    }
  }
}

TEST_F(MetricsTest, CliShowsHolderAndWaitersInOrder) {
  std::unique_ptr<Client> a = NewClient("holder-a");
  std::unique_ptr<Client> b = NewClient("waiter-b");
  std::unique_ptr<Client> c = NewClient("waiter-c");
  ASSERT_TRUE(Acquire(*a, std::nullopt).acquired());
  std::thread first([&] { EXPECT_TRUE(Acquire(*b, std::nullopt).acquired()); });
  while (Waiters() < 1) absl::SleepFor(absl::Milliseconds(5));
  std::thread second(
      [&] { EXPECT_TRUE(Acquire(*c, std::nullopt).acquired()); });
  while (Waiters() < 2) absl::SleepFor(absl::Milliseconds(5));

  const std::string cli =
      absl::StrCat(STATEHUB_CLI_PATH, " --address=", server_->unix_address());
  const std::string locks = Shell(cli + " locks");
  const std::string ls = Shell(cli + " ls");
  Release(*a);
  first.join();
  Release(*b);
  second.join();
  Release(*c);

  const std::vector<std::string> lines = absl::StrSplit(locks, '\n');
  ASSERT_GE(lines.size(), 3u) << locks;
  EXPECT_TRUE(absl::StartsWith(lines[0],
                               absl::StrCat("lock contended: held by session ",
                                            a->session_id(), " holder-a")))
      << locks;
  EXPECT_TRUE(absl::StartsWith(
      lines[1],
      absl::StrCat("  waiter 1: session ", b->session_id(), " waiter-b")))
      << locks;
  EXPECT_TRUE(absl::StartsWith(
      lines[2],
      absl::StrCat("  waiter 2: session ", c->session_id(), " waiter-c")))
      << locks;
  EXPECT_TRUE(absl::StartsWith(ls, "contended ")) << ls;
  EXPECT_TRUE(absl::StrContains(ls, " lock ")) << ls;
}

TEST_F(MetricsTest, SemaphoreIsCounted) {
  Open("slots", v1::SEMAPHORE);  // one unit
  auto semaphores = v1::Semaphores::NewStub(channel_);
  std::unique_ptr<Client> a = NewClient();
  std::unique_ptr<Client> b = NewClient();
  auto acquire = [&](Client& client, bool blocking) {
    v1::SemaphoreAcquireRequest req;
    req.set_name("slots");
    req.set_blocking(blocking);
    v1::SemaphoreAcquireResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata(internal::kSessionKey, client.session_id());
    EXPECT_TRUE(semaphores->Acquire(&ctx, req, &resp).ok());
    return resp.acquired();
  };
  EXPECT_TRUE(acquire(*a, true));
  EXPECT_FALSE(acquire(*b, false));
  std::thread waiter([&] { EXPECT_TRUE(acquire(*b, true)); });
  while (MetricValue(Scrape(), R"(statehub_semaphore_waiters{name="slots"})") !=
         1) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(MetricValue(Scrape(), R"(statehub_semaphore_value{name="slots"})"),
            0);
  a->Close();  // its unit comes back and goes to b
  waiter.join();

  const std::string scrape = Scrape();
  EXPECT_EQ(MetricValue(scrape, R"(statehub_semaphore_acquisitions_total{)"
                                R"(name="slots",result="acquired"})"),
            2);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_semaphore_acquisitions_total{)"
                                R"(name="slots",result="timed_out"})"),
            1);
  EXPECT_EQ(
      MetricValue(scrape, R"(statehub_semaphore_contended_acquisitions_total{)"
                          R"(name="slots"})"),
      2);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_semaphore_wait_seconds_count{)"
                                R"(name="slots"})"),
            2);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_semaphore_waiters{name="slots"})"),
            0);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_parked_calls{type="semaphore"})"),
            0);
}

// The server counts every rpc under the transport that carried it: the C++
// client's calls come over the lane, the raw stubs' over gRPC.
TEST_F(MetricsTest, RpcsAreCountedByTransport) {
  auto client = Client::Connect(server_->unix_address());
  ASSERT_TRUE(client.ok()) << client.status();
  auto d = (*client)->OpenDict("by-transport");
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(d->Set("k", i).ok());
  EXPECT_FALSE(d->Get("missing").ok());
  v1::LockStateRequest req;
  req.set_name("contended");
  v1::LockStateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(locks_->State(&ctx, req, &resp).ok());

  const std::string scrape = Scrape();
  EXPECT_EQ(MetricValue(scrape, R"(statehub_rpc_requests_total{code="OK",)"
                                R"(method="statehub.v1.Dicts.Set",)"
                                R"(transport="lane"})"),
            4);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_rpc_requests_total{)"
                                R"(code="NOT_FOUND",)"
                                R"(method="statehub.v1.Dicts.Get",)"
                                R"(transport="lane"})"),
            1);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_rpc_requests_total{code="OK",)"
                                R"(method="statehub.v1.Locks.State",)"
                                R"(transport="grpc"})"),
            1);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_rpc_duration_seconds_count{)"
                                R"(method="statehub.v1.Dicts.Set",)"
                                R"(transport="lane"})"),
            4);
}

// The C++ client's own metrics (statehub/prometheus.h) in an application
// registry.
TEST_F(MetricsTest, ClientMetricsLandInTheApplicationsRegistry) {
  prometheus::Registry registry;
  ClientOptions options;
  options.observer = std::make_shared<PrometheusObserver>(registry);
  auto client = Client::Connect(server_->unix_address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto d = (*client)->OpenDict("client-metrics");
  ASSERT_TRUE(d.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(d->Set("k", i).ok());
  EXPECT_FALSE(d->Get("missing").ok());
  auto lock = (*client)->OpenLock("client-metrics-lock");
  ASSERT_TRUE(lock.ok());
  ASSERT_TRUE(lock->Acquire()->acquired);
  // A Lock is not reentrant: a second acquire waits, then times out.
  EXPECT_FALSE(lock->Acquire(absl::Milliseconds(10))->acquired);
  ASSERT_TRUE(lock->Release().ok());

  const std::string text =
      prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_EQ(
      MetricValue(text,
                  R"(statehub_client_calls_total{code="OK",rpc="DictSet"})"),
      3);
  EXPECT_EQ(MetricValue(text, R"(statehub_client_call_duration_seconds_count{)"
                              R"(rpc="DictSet"})"),
            3);
  EXPECT_EQ(MetricValue(text, R"(statehub_client_calls_total{)"
                              R"(code="NOT_FOUND",rpc="DictGet"})"),
            1)
      << text;
  EXPECT_EQ(MetricValue(text, R"(statehub_client_acquire_wait_seconds_count{)"
                              R"(result="acquired",rpc="LockAcquire"})"),
            1);
  EXPECT_EQ(MetricValue(text, R"(statehub_client_acquire_wait_seconds_count{)"
                              R"(result="not_acquired",rpc="LockAcquire"})"),
            1);
}

// A near cache's counts (Dict::Cached) in the application's registry,
// under the Python client's names.
TEST_F(MetricsTest, NearCacheCountsLandInTheApplicationsRegistry) {
  prometheus::Registry registry;
  ClientOptions options;
  options.observer = std::make_shared<PrometheusObserver>(registry);
  auto client = Client::Connect(server_->unix_address(), options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto d = (*client)->OpenDict("client-cache-metrics", {{"k", 1}});
  ASSERT_TRUE(d.ok()) << d.status();
  auto cached = d->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cached->Get("k").ok());

  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  const std::string object = R"({object="client-cache-metrics"})";
  EXPECT_EQ(MetricValue(text, "statehub_client_cache_hits_total" + object), 2)
      << text;
  EXPECT_EQ(MetricValue(text, "statehub_client_cache_misses_total" + object),
            1);
  EXPECT_EQ(MetricValue(text, "statehub_client_cache_entries" + object), 1);
  EXPECT_EQ(
      MetricValue(text, "statehub_client_cache_invalidations_total" + object),
      0);

  // The handle's own write drops the key as it is sent and when answered.
  ASSERT_TRUE(cached->Set("k", 2).ok());
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_EQ(MetricValue(text, "statehub_client_cache_entries" + object), 0);
  EXPECT_GE(
      MetricValue(text, "statehub_client_cache_invalidations_total" + object),
      2);
}

TEST_F(MetricsTest, ErrorsAreCountedByCode) {
  v1::LockReleaseRequest req;
  req.set_name("contended");
  v1::LockReleaseResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(locks_->Release(&ctx, req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(MetricValue(Scrape(), R"(statehub_rpc_requests_total{)"
                                  R"(code="FAILED_PRECONDITION",)"
                                  R"(method="statehub.v1.Locks.Release",)"
                                  R"(transport="grpc"})"),
            1);
}

TEST_F(MetricsTest, LockNamesPastTheCapFoldIntoOther) {
  auto server = testing::ServerProcess::Start({"--metrics_max_lock_names=2"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateChannel((*server)->unix_address(),
                                     grpc::InsecureChannelCredentials());
  for (const char* name : {"one", "two", "three", "four"}) {
    v1::OpenRequest open;
    open.set_name(name);
    open.set_type(v1::LOCK);
    v1::OpenResponse opened;
    grpc::ClientContext ctx;
    ASSERT_TRUE(v1::Objects::NewStub(channel)->Open(&ctx, open, &opened).ok());
  }
  const std::string scrape = HttpGet((*server)->metrics_url());
  EXPECT_EQ(MetricValue(scrape, R"(statehub_lock_held{name="one"})"), 0);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_lock_held{name="two"})"), 0);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_lock_held{name="three"})"),
            std::nullopt);
  EXPECT_EQ(
      MetricValue(scrape, R"(statehub_lock_wait_seconds_count{name="_other"})"),
      0);
  EXPECT_EQ(MetricValue(scrape, R"(statehub_objects{type="lock"})"), 4);
}

TEST_F(MetricsTest, OffMeansNoEndpoint) {
  auto server = testing::ServerProcess::Start({"--metrics_listen="});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->metrics_url(), "");
}

}  // namespace
}  // namespace statehub
