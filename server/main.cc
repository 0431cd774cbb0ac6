// statehub-server: parses flags, starts the engine and the gRPC server, and
// waits for SIGTERM or SIGINT. Nothing else lives here.
//
// Standard output carries one machine-readable line per listening address,
// `statehub-server listening on <address>`, then `statehub-server ready`;
// logs go to standard error.

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/service/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "unix:///tmp/statehub.sock,127.0.0.1:7420",
          "Comma-separated addresses to serve gRPC on: unix:///path and/or "
          "host:port (port 0 picks a free port).");
ABSL_FLAG(absl::Duration, lease_ttl, absl::Seconds(10),
          "A session ends this long after its last message (keepalive); "
          "everything it held is then released.");
ABSL_FLAG(int64_t, max_value_bytes, 16 << 20,
          "Largest encoded size of one value in a request.");
// Protobuf's parser stops at 100 nested messages, two per level of Value
// nesting, so deeper values cannot even be decoded: 48 is the most that can
// be reported as LIMIT_EXCEEDED rather than a parse failure.
constexpr int kMaxDepthCeiling = 48;
ABSL_FLAG(int, max_depth, 32,
          "Deepest nesting of a value (at most 48: the wire's own limit).");
ABSL_FLAG(int64_t, max_objects, 1'000'000,
          "Most objects (named and anonymous) that may exist at once.");
ABSL_FLAG(int64_t, max_elements, 10'000'000,
          "Most entries of one dict or items of one list or array.");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest gRPC message accepted or sent.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9420",
          "host:port to serve Prometheus metrics on, at /metrics (port 0 "
          "picks a free port); empty turns metrics off.");
ABSL_FLAG(int, metrics_max_lock_names, 100,
          "Most lock names with their own metric series; further locks "
          "report as name=\"_other\" (anonymous ones as \"_anonymous\").");
ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error, critical or off.");

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // A fixed mmap threshold: blocks of 256 KiB and more (a dict's slot array
  // and index as they grow, a large request) are mapped on their own and
  // given back to the system when freed. glibc's default raises the
  // threshold after such a free, and later large blocks then stay in the
  // heap as resident memory nobody uses (about 10% of a 1M-entry dict's
  // footprint; docs/benchmarks.md).
  mallopt(M_MMAP_THRESHOLD, 256 << 10);
#endif
  // Debian's Abseil is built with Mutex deadlock detection on: every lock
  // of every absl::Mutex (gRPC's included) updates a global lock graph,
  // about 8% of the server's CPU under load (docs/benchmarks.md). The tests
  // keep it; the server binary turns it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "statehub-server: shared dicts, lists, values and more over gRPC.\n"
      "With no flags it serves on unix:///tmp/statehub.sock and "
      "127.0.0.1:7420, and metrics on http://127.0.0.1:9420/metrics.");
  absl::ParseCommandLine(argc, argv);

  auto logger = spdlog::stderr_color_mt("statehub");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));

  // Block the stop signals in every thread gRPC will start; main waits for
  // them with sigwait, so no work happens in a signal handler.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  statehub::Limits limits;
  limits.max_value_bytes = absl::GetFlag(FLAGS_max_value_bytes);
  limits.max_depth = absl::GetFlag(FLAGS_max_depth);
  limits.max_objects = absl::GetFlag(FLAGS_max_objects);
  limits.max_elements = absl::GetFlag(FLAGS_max_elements);
  const absl::Duration ttl = absl::GetFlag(FLAGS_lease_ttl);
  if (ttl <= absl::ZeroDuration() || limits.max_value_bytes <= 0 ||
      limits.max_depth <= 0 || limits.max_objects <= 0 ||
      limits.max_elements <= 0 || absl::GetFlag(FLAGS_max_message_bytes) <= 0) {
    spdlog::critical("--lease_ttl and every --max_* flag must be positive");
    return 2;
  }
  if (limits.max_depth > kMaxDepthCeiling) {
    spdlog::critical(
        "--max_depth={} is over {}, the deepest a value can be "
        "decoded on the wire",
        limits.max_depth, kMaxDepthCeiling);
    return 2;
  }

  std::vector<std::string> listen =
      absl::StrSplit(absl::GetFlag(FLAGS_listen), ',', absl::SkipWhitespace());
  if (listen.empty()) {
    spdlog::critical("--listen names no address");
    return 2;
  }

  // Declared before the engine: lock objects keep metric handles until the
  // engine is gone.
  std::unique_ptr<statehub::metrics::Metrics> metrics;
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty()) {
    metrics = std::make_unique<statehub::metrics::Metrics>(
        statehub::metrics::MetricsOptions{
            absl::GetFlag(FLAGS_metrics_max_lock_names)});
  }

  statehub::Engine engine(limits, ttl);
  std::unique_ptr<prometheus::Exposer> exposer;
  if (metrics != nullptr) {
    engine.registry().set_observers(metrics.get());
    metrics->AttachEngine(&engine);
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen);
    } catch (const std::exception& e) {
      spdlog::critical("could not serve metrics on {}: {}", metrics_listen,
                       e.what());
      return 1;
    }
    metrics->ServeOn(*exposer);
  }
  statehub::service::ServerOptions options;
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.metrics = metrics.get();
  auto server = statehub::service::Server::Start(engine, listen, options);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  for (const std::string& address : (*server)->addresses()) {
    std::printf("statehub-server listening on %s\n", address.c_str());
  }
  if (exposer != nullptr) {
    const std::vector<int> ports = exposer->GetListeningPorts();
    const std::string host =
        metrics_listen.substr(0, metrics_listen.rfind(':'));
    std::printf("statehub-server metrics on http://%s:%d/metrics\n",
                host.c_str(), ports.empty() ? 0 : ports.front());
  }
  std::printf("statehub-server ready\n");
  std::fflush(stdout);
  spdlog::info("serving; lease TTL {}", absl::FormatDuration(ttl));

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("{} received; shutting down", strsignal(signal));
  (*server)->Shutdown();
  spdlog::info("stopped");
  return 0;
}
