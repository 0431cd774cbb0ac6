// statehub-server: parses flags, starts the engine and the gRPC server, and
// waits for SIGTERM or SIGINT (or, with --watch_stdin, for its standard
// input to close). Nothing else lives here.
//
// Standard output carries one machine-readable line per listening address,
// `statehub-server listening on <address>`, then `statehub-server ready`;
// logs go to standard error.

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/exposer.h"
#include "server/durability/durability.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/server.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "unix:///tmp/statehub.sock,127.0.0.1:7420",
          "Comma-separated addresses to serve on: unix:///path and/or "
          "host:port (port 0 picks a free port). Each serves gRPC and the "
          "lane (statehub's framed transport; not on TLS addresses).");
ABSL_FLAG(int, event_threads, 2,
          "Event loops, a thread each, that serve the lane's connections "
          "(each on one loop, its handlers inline) and time every parked "
          "call; 1 to 16.");
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
ABSL_FLAG(int64_t, max_sessions, 10'000, "Most sessions open at once.");
ABSL_FLAG(int64_t, max_waiters_per_session, 10'000,
          "Most blocking calls (acquire, wait, get, ...) one session may "
          "have in flight at once.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding the bearer token every call must present "
          "(`authorization: Bearer <token>` metadata; surrounding whitespace "
          "is ignored). gRPC health stays open. Empty: no token.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve host:port addresses with TLS "
          "(needs --tls_key). Unix sockets stay plaintext.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: require clients to present a certificate "
          "signed by one of them (mutual TLS). Needs --tls_cert.");
ABSL_FLAG(bool, unix_socket_group_access, false,
          "Create Unix sockets with mode 0660 (owner and group) instead of "
          "0600 (owner only).");
ABSL_FLAG(bool, allow_insecure_non_loopback, false,
          "Serve a non-loopback host:port address with neither TLS nor a "
          "token. Only for networks where every peer is trusted.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9420",
          "host:port to serve Prometheus metrics on, at /metrics (port 0 "
          "picks a free port); empty turns metrics off.");
ABSL_FLAG(int, metrics_max_lock_names, 100,
          "Most lock names with their own metric series; further locks "
          "report as name=\"_other\" (anonymous ones as \"_anonymous\").");
ABSL_FLAG(std::string, log_level, "info",
          "Log level: trace, debug, info, warn, error, critical or off.");
ABSL_FLAG(std::string, deadlock, "report",
          "What to do with a cycle of waits among locks and rlocks "
          "(docs/deadlocks.md): report (count it, log it, list it; the "
          "waiters stay parked) or fail (also fail the acquire that closed "
          "it with DEADLOCK).");
ABSL_FLAG(std::string, data_dir, "",
          "Directory of the snapshot and the change log: with it every "
          "object, lock, queued item and session outlives a restart; "
          "without it the state lives in memory only. Created if missing; "
          "one server per directory.");
ABSL_FLAG(std::string, fsync, "everysec",
          "With --data_dir, when the log reaches the disk: always (no reply "
          "before its change is fsynced; one fsync for every reply waiting), "
          "everysec (written before the reply, fsynced about once a second: "
          "a power cut loses at most about a second, a crash of the server "
          "nothing), no (the OS decides).");
ABSL_FLAG(int64_t, snapshot_log_bytes, int64_t{64} << 20,
          "With --data_dir, take a snapshot in the background once this "
          "many bytes of log were written since the last one, and delete "
          "the log it covers; 0 never does.");
ABSL_FLAG(int64_t, log_segment_bytes, int64_t{64} << 20,
          "With --data_dir, start a new log segment once the current one "
          "holds this many bytes (a snapshot deletes only whole segments).");
ABSL_FLAG(int64_t, watch_history, 100'000,
          "How many recent changes the server keeps (at most 64 MiB of "
          "them) so that a watch can resume after a revision; a watch that "
          "resumes from further back is told it is too old.");
ABSL_FLAG(int64_t, watch_backlog, 10'000,
          "How many changes may wait for one watcher that reads too slowly "
          "before its watch is ended (it may resume from its last revision "
          "while the server keeps it).");
ABSL_FLAG(bool, watch_stdin, false,
          "Shut down when standard input reaches end of file. A client "
          "library that starts a private server holds the other end of the "
          "pipe, so the server exits when that process dies, however it "
          "dies (statehub.Manager() passes it).");

namespace {

// Set when --watch_stdin saw standard input close.
std::atomic<bool> stdin_closed{false};

// WatchStdin reads standard input until it ends, then stops the server as
// SIGTERM would: the process holding the pipe's other end is gone.
void WatchStdin() {
  std::thread([] {
    char buffer[256];
    while (true) {
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof(buffer));
      if (n > 0 || (n < 0 && errno == EINTR)) continue;
      break;
    }
    stdin_closed = true;
    kill(getpid(), SIGTERM);
  }).detach();
}

// ReadFile returns the contents of `path`; `what` names the flag in errors.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--", what, "=", path, ": cannot read the file"));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// TlsCredentials builds the TLS credentials the flags ask for; null when
// they ask for none.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() && key.empty() && client_ca.empty()) return nullptr;
  if (cert.empty() || key.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (and --tls_client_ca needs "
        "both)");
  }
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> pem = ReadFile(cert, "tls_cert");
  if (!pem.ok()) return pem.status();
  pair.cert_chain = *std::move(pem);
  pem = ReadFile(key, "tls_key");
  if (!pem.ok()) return pem.status();
  pair.private_key = *std::move(pem);
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!client_ca.empty()) {
    pem = ReadFile(client_ca, "tls_client_ca");
    if (!pem.ok()) return pem.status();
    options.pem_root_certs = *std::move(pem);
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

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
  // A write past RLIMIT_FSIZE fails with EFBIG, which the log reports and
  // retries like a full disk, instead of the signal killing the server.
  signal(SIGXFSZ, SIG_IGN);

  statehub::Limits limits;
  limits.max_value_bytes = absl::GetFlag(FLAGS_max_value_bytes);
  limits.max_depth = absl::GetFlag(FLAGS_max_depth);
  limits.max_objects = absl::GetFlag(FLAGS_max_objects);
  limits.max_elements = absl::GetFlag(FLAGS_max_elements);
  limits.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  limits.max_waiters_per_session = absl::GetFlag(FLAGS_max_waiters_per_session);
  const absl::Duration ttl = absl::GetFlag(FLAGS_lease_ttl);
  if (ttl <= absl::ZeroDuration() || limits.max_value_bytes <= 0 ||
      limits.max_depth <= 0 || limits.max_objects <= 0 ||
      limits.max_elements <= 0 || limits.max_sessions <= 0 ||
      limits.max_waiters_per_session <= 0 ||
      absl::GetFlag(FLAGS_max_message_bytes) <= 0) {
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

  const std::string deadlock = absl::GetFlag(FLAGS_deadlock);
  if (deadlock != "report" && deadlock != "fail") {
    spdlog::critical("--deadlock={}: must be report or fail", deadlock);
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
  engine.registry().wait_for_graph().Configure(
      deadlock == "fail" ? statehub::DeadlockPolicy::kFail
                         : statehub::DeadlockPolicy::kReport,
      [m = metrics.get()](const statehub::Deadlock& found) {
        if (m != nullptr) m->DeadlockFound();
        spdlog::warn("{}", statehub::DescribeDeadlock(found));
      });
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file);
      !path.empty()) {
    absl::StatusOr<std::string> token = ReadFile(path, "auth_token_file");
    if (!token.ok()) {
      spdlog::critical("{}", std::string(token.status().message()));
      return 2;
    }
    const absl::string_view trimmed = absl::StripAsciiWhitespace(*token);
    if (trimmed.empty()) {
      spdlog::critical("--auth_token_file={} holds no token", path);
      return 2;
    }
    engine.RequireToken(trimmed);
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
      TlsCredentials();
  if (!tls.ok()) {
    spdlog::critical("{}", std::string(tls.status().message()));
    return 2;
  }
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
  // Recovered before the server listens: no call sees a half-recovered
  // state.
  std::unique_ptr<statehub::Durability> durability;
  // Scrapes read the durability: detach it before it goes (the exposer
  // outlives it).
  absl::Cleanup detach_durability = [&metrics] {
    if (metrics != nullptr) metrics->AttachDurability(nullptr);
  };
  if (const std::string dir = absl::GetFlag(FLAGS_data_dir); !dir.empty()) {
    absl::StatusOr<statehub::storage::FsyncPolicy> fsync =
        statehub::storage::ParseFsyncPolicy(absl::GetFlag(FLAGS_fsync));
    if (!fsync.ok()) {
      spdlog::critical("{}", std::string(fsync.status().message()));
      return 2;
    }
    statehub::DurabilityOptions durable;
    durable.data_dir = dir;
    durable.fsync = *fsync;
    durable.segment_bytes = static_cast<uint64_t>(
        std::max<int64_t>(4096, absl::GetFlag(FLAGS_log_segment_bytes)));
    durable.snapshot_log_bytes = static_cast<uint64_t>(
        std::max<int64_t>(0, absl::GetFlag(FLAGS_snapshot_log_bytes)));
    durable.observer = metrics.get();  // log writes and fsyncs; may be null
    if (metrics != nullptr) {
      durable.snapshot_taken = [m = metrics.get()](absl::Duration took,
                                                   int64_t bytes) {
        m->SnapshotTaken(took, bytes);
      };
    }
    absl::StatusOr<std::unique_ptr<statehub::Durability>> opened =
        statehub::Durability::Open(engine, durable);
    if (!opened.ok()) {
      spdlog::critical("cannot start on --data_dir={}: {}", dir,
                       std::string(opened.status().message()));
      return 1;
    }
    durability = *std::move(opened);
    if (metrics != nullptr) metrics->AttachDurability(durability.get());
    const statehub::RecoveryStats& r = durability->recovered();
    const double seconds = absl::ToDoubleSeconds(r.took);
    spdlog::info(
        "data dir {}: recovered revision {} ({} snapshot and {} log records, "
        "{} bytes, {} objects, {} sessions) in {:.3f} s ({:.0f} MB/s); "
        "--fsync={}",
        dir, r.revision, r.snapshot_records, r.log_records, r.bytes, r.objects,
        r.sessions, seconds,
        seconds > 0 ? static_cast<double>(r.bytes) / 1e6 / seconds : 0.0,
        std::string(statehub::storage::FsyncPolicyName(*fsync)));
  }

  statehub::WatchHub::Options watch_options;
  watch_options.history_records = static_cast<size_t>(
      std::max<int64_t>(absl::GetFlag(FLAGS_watch_history), 0));
  watch_options.max_backlog = static_cast<size_t>(
      std::max<int64_t>(absl::GetFlag(FLAGS_watch_backlog), 1));
  engine.watches().set_options(watch_options);
  // With a data dir, a watch can resume from any revision since the start.
  if (durability != nullptr) engine.watches().Listen();

  statehub::ServerOptions options;
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.metrics = metrics.get();
  options.event_threads = std::clamp(absl::GetFlag(FLAGS_event_threads), 1, 16);
  options.tls = *std::move(tls);
  options.unix_socket_mode =
      absl::GetFlag(FLAGS_unix_socket_group_access) ? 0660 : 0600;
  options.allow_insecure_non_loopback =
      absl::GetFlag(FLAGS_allow_insecure_non_loopback);
  auto server = statehub::Server::Start(engine, listen, options);
  if (!server.ok()) {
    spdlog::critical("{}", std::string(server.status().message()));
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
  if (absl::GetFlag(FLAGS_watch_stdin)) WatchStdin();

  int signal = 0;
  sigwait(&stop_signals, &signal);
  if (stdin_closed) {
    spdlog::warn(
        "standard input closed: the process that started this server is "
        "gone; shutting down");
  } else {
    spdlog::info("{} received; shutting down", strsignal(signal));
  }
  // The log stops first: the sessions the shutdown ends (their connections
  // close) must come back with the server.
  if (durability != nullptr) {
    if (absl::Status s = durability->Close(); !s.ok()) {
      spdlog::error("closing the log: {}", std::string(s.message()));
    }
  }
  (*server)->Shutdown();
  spdlog::info("stopped");
  return 0;
}
