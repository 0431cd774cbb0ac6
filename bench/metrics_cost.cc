// metrics_cost: what server metrics cost on lock acquire+release throughput.
//
// Starts the real statehub-server twice per round, once with metrics off
// (--metrics_listen=) and once on, and drives each with the same load:
// `clients` client connections, each with its own session, looping
// acquire + release for `seconds`:
//   - uncontended: each client on its own lock;
//   - contended: every client on one lock (acquires park and hand off).
// Rounds alternate off/on so drift on a noisy machine hits both alike; the
// table shows the best round of each and the on/off ratio.
//
// With --baseline_server=PATH it compares builds instead: each round runs
// the baseline binary, then this build's, both with metrics on (how the
// cost of deadlock detection was measured: docs/deadlocks.md). The loop
// calls Locks.Acquire and Release over raw gRPC (--transport=grpc, the
// default, as the figures in docs/metrics.md) or through the C++ client's
// lock handle on the lane (--transport=lane), where the server's own work
// is a larger share of a call.
//
//   ninja -C build metrics_cost && build/bench/metrics_cost [--clients=4]
//       [--seconds=3] [--rounds=2] [--transport=grpc|lane]
//       [--baseline_server=/path/to/old/statehub-server]

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "tests/testing/server_process.h"

ABSL_FLAG(int, clients, 4, "Concurrent client connections.");
ABSL_FLAG(int, seconds, 3, "Seconds per measurement.");
ABSL_FLAG(int, rounds, 2, "Off/on rounds; the best of each is shown.");
ABSL_FLAG(std::string, transport, "grpc",
          "grpc: raw Locks stubs; lane: the C++ client's lock handles.");
ABSL_FLAG(std::string, baseline_server, "",
          "Compare this statehub-server binary (metrics on) with this "
          "build's, instead of metrics off with on.");

namespace {

using statehub::testing::ServerProcess;

// Runs the load against `server`; returns acquire+release pairs per second.
double Measure(const ServerProcess& server, bool contended) {
  const int clients = absl::GetFlag(FLAGS_clients);
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pairs{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto client = statehub::Client::Connect(server.unix_address());
      if (!client.ok()) {
        std::fprintf(stderr, "connect: %s\n",
                     client.status().ToString().c_str());
        std::exit(1);
      }
      const std::string name =
          contended ? "bench/lock" : absl::StrCat("bench/lock-", i);
      if (absl::GetFlag(FLAGS_transport) == "lane") {
        auto lock = (*client)->OpenLock(name);
        if (!lock.ok()) {
          std::fprintf(stderr, "open: %s\n", lock.status().ToString().c_str());
          std::exit(1);
        }
        while (!go.load()) std::this_thread::yield();
        int64_t done = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          if (!lock->Acquire().ok() || !lock->Release().ok()) break;
          ++done;
        }
        pairs += done;
        return;
      }
      auto channel = grpc::CreateChannel(server.unix_address(),
                                         grpc::InsecureChannelCredentials());
      auto objects = statehub::v1::Objects::NewStub(channel);
      auto locks = statehub::v1::Locks::NewStub(channel);
      {
        statehub::v1::OpenRequest open;
        open.set_name(name);
        open.set_type(statehub::v1::LOCK);
        statehub::v1::OpenResponse opened;
        grpc::ClientContext ctx;
        (void)objects->Open(&ctx, open, &opened);
      }
      const std::string session = (*client)->session_id();
      statehub::v1::LockAcquireRequest acquire;
      acquire.set_name(name);
      acquire.set_blocking(true);
      statehub::v1::LockReleaseRequest release;
      release.set_name(name);
      while (!go.load()) std::this_thread::yield();
      int64_t done = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        statehub::v1::LockAcquireResponse acquired;
        grpc::ClientContext actx;
        actx.AddMetadata(statehub::internal::kSessionKey, session);
        if (!locks->Acquire(&actx, acquire, &acquired).ok()) break;
        statehub::v1::LockReleaseResponse released;
        grpc::ClientContext rctx;
        rctx.AddMetadata(statehub::internal::kSessionKey, session);
        if (!locks->Release(&rctx, release, &released).ok()) break;
        ++done;
      }
      pairs += done;
    });
  }
  absl::SleepFor(absl::Milliseconds(500));  // connections and sessions up
  const absl::Time start = absl::Now();
  go = true;
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  const absl::Duration elapsed = absl::Now() - start;
  for (std::thread& t : threads) t.join();
  return static_cast<double>(pairs.load()) / absl::ToDoubleSeconds(elapsed);
}

// Runs one measurement: `second` is the table's second column, metrics on
// (or, against a baseline, this build); else the first, metrics off (or the
// baseline).
double Run(bool second, bool contended) {
  const std::string baseline = absl::GetFlag(FLAGS_baseline_server);
  auto server =
      baseline.empty()
          ? ServerProcess::Start(
                {second ? "--metrics_listen=127.0.0.1:0" : "--metrics_listen=",
                 "--log_level=warn"})
      : second ? ServerProcess::Start({"--log_level=warn"})
               : ServerProcess::StartBinary(baseline, {"--log_level=warn"});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    std::exit(1);
  }
  const double rate = Measure(**server, contended);
  (void)(*server)->Stop();
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  struct Row {
    const char* scenario;
    double off = 0;
    double on = 0;
  };
  std::vector<Row> rows = {{"uncontended"}, {"contended"}};
  for (Row& row : rows) {
    const bool contended = &row == &rows[1];
    for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
      row.off = std::max(row.off, Run(false, contended));
      row.on = std::max(row.on, Run(true, contended));
    }
  }
  // After every run: the servers' startup lines are echoed above.
  const bool builds = !absl::GetFlag(FLAGS_baseline_server).empty();
  std::printf(
      "\n%s on lock acquire+release (%s): %d clients, %d s per run, "
      "best of %d rounds\n",
      builds ? "this build against the baseline" : "metrics cost",
      absl::GetFlag(FLAGS_transport).c_str(), absl::GetFlag(FLAGS_clients),
      absl::GetFlag(FLAGS_seconds), absl::GetFlag(FLAGS_rounds));
  std::printf("%-12s %14s %14s %8s\n", "scenario",
              builds ? "base pairs/s" : "off pairs/s",
              builds ? "this pairs/s" : "on pairs/s",
              builds ? "this/base" : "on/off");
  for (const Row& row : rows) {
    std::printf("%-12s %14.0f %14.0f %8.3f\n", row.scenario, row.off, row.on,
                row.on / row.off);
  }
  return 0;
}
