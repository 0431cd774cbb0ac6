// statehub-cli: what an engineer types during a stall. Lists the server's
// objects, shows who holds each lock and who waits for it, since when, and
// lists the deadlocks among them.
//
//   statehub-cli [--address=unix:///tmp/statehub.sock] ls [PREFIX]
//   statehub-cli [--address=...] locks [PREFIX]
//   statehub-cli [--address=...] deadlocks
//   statehub-cli inspect --data_dir=DIR
//
// A server with --auth_token_file takes the token from --token_file or
// $STATEHUB_TOKEN; one with TLS takes --tls_ca (and --tls_cert/--tls_key
// for mutual TLS).
//
// `ls` prints one line per object (name, type, size; anonymous objects with
// --anonymous). `locks` prints every lock and rlock whose name starts with
// PREFIX: free or held, by whom (session, label, thread) for how long, with
// its fencing token, then its waiters in the order they will be served,
// then "in deadlock N" for each cycle of waits through it. `deadlocks`
// prints each cycle of waits among locks and rlocks present now (id, how
// long ago it closed, then one line per wait: who waits for which lock held
// by whom), or "no deadlocks". Both exit 0 whatever they find; 1 when a
// call fails, 2 for bad usage.
//
// `inspect` needs no server: it reads a data dir (--data_dir of a server
// that runs or ran) without taking its lock and without changing a byte,
// and prints its revision, snapshot and log segments (a torn tail, if
// any), then the objects and sessions a restart would recover, found by
// replaying the snapshot and the log into an engine in memory, as the
// server does at start. It exits 1, naming the file and the byte offset,
// on a record the server would refuse. On a running server's directory the
// newest segment may show a write in progress as a torn tail, and a
// snapshot taken meanwhile may remove a segment from under it (run it
// again).
//
// C++ rather than Python so that it ships beside statehub-server (in the
// same build and container image) with nothing else to install. It uses
// only the public rpcs Objects.List, Locks.State and Locks.Deadlocks, and
// for `inspect` the server's own storage and engine libraries.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/durability/durability.h"
#include "server/engine/engine.h"
#include "server/engine/lock.h"
#include "server/engine/registry.h"
#include "server/storage/data_dir.h"
#include "server/storage/record_file.h"
#include "statehub/internal/wire.h"
#include "statehub/v1/change.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"

ABSL_FLAG(std::string, address, "unix:///tmp/statehub.sock",
          "The server: unix:///path or host:port.");
ABSL_FLAG(bool, anonymous, false, "ls: list anonymous objects too.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, token_file, "",
          "File holding the server's bearer token (default: "
          "$STATEHUB_TOKEN, if set).");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA of the server's certificate: connect with TLS.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate, for a server that requires one (with "
          "--tls_key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, data_dir, "",
          "inspect: the data dir to read (a server's --data_dir).");

namespace {

using statehub::v1::ListObjectsRequest;
using statehub::v1::ListObjectsResponse;

// The bearer token every call sends; empty for none.
std::string token;

std::unique_ptr<grpc::ClientContext> Context() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(
      absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_timeout)));
  if (!token.empty()) {
    ctx->AddMetadata(statehub::internal::kAuthorizationKey, "Bearer " + token);
  }
  return ctx;
}

// Reads a whole file, or exits with a message naming the flag.
std::string ReadOrDie(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "statehub-cli: --%s=%s: cannot read the file\n", flag,
                 path.c_str());
    std::exit(2);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::shared_ptr<grpc::ChannelCredentials> Credentials() {
  const std::string ca = absl::GetFlag(FLAGS_tls_ca);
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  if (ca.empty() && cert.empty() && key.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions tls;
  if (!ca.empty()) tls.pem_root_certs = ReadOrDie(ca, "tls_ca");
  if (!cert.empty()) tls.pem_cert_chain = ReadOrDie(cert, "tls_cert");
  if (!key.empty()) tls.pem_private_key = ReadOrDie(key, "tls_key");
  return grpc::SslCredentials(tls);
}

std::string Who(const statehub::v1::Holder& holder) {
  return absl::StrFormat("session %s %s thread %x", holder.session_id(),
                         holder.label().empty() ? "-" : holder.label(),
                         holder.thread_id());
}

int Fail(const std::string& what, const grpc::Status& status) {
  std::fprintf(stderr, "statehub-cli: %s: %s (%d)\n", what.c_str(),
               status.error_message().c_str(),
               static_cast<int>(status.error_code()));
  return 1;
}

bool ListObjects(statehub::v1::Objects::Stub& objects,
                 const std::string& prefix, bool anonymous,
                 ListObjectsResponse* out, grpc::Status* status) {
  ListObjectsRequest req;
  req.set_prefix(prefix);
  req.set_include_anonymous(anonymous);
  *status = objects.List(Context().get(), req, out);
  return status->ok();
}

int Ls(statehub::v1::Objects::Stub& objects, const std::string& prefix) {
  ListObjectsResponse listed;
  grpc::Status status;
  if (!ListObjects(objects, prefix, absl::GetFlag(FLAGS_anonymous), &listed,
                   &status)) {
    return Fail("Objects.List", status);
  }
  for (const auto& info : listed.objects()) {
    std::printf("%-40s %-18s %lld\n", info.name().c_str(),
                std::string(statehub::ObjectTypeName(
                                statehub::internal::FromWire(info.type())))
                    .c_str(),
                static_cast<long long>(info.size()));
  }
  return 0;
}

int Locks(const std::shared_ptr<grpc::Channel>& channel,
          const std::string& prefix) {
  auto objects = statehub::v1::Objects::NewStub(channel);
  auto locks = statehub::v1::Locks::NewStub(channel);
  ListObjectsResponse listed;
  grpc::Status status;
  if (!ListObjects(*objects, prefix, /*anonymous=*/true, &listed, &status)) {
    return Fail("Objects.List", status);
  }
  for (const auto& info : listed.objects()) {
    if (info.type() != statehub::v1::LOCK &&
        info.type() != statehub::v1::RLOCK) {
      continue;
    }
    statehub::v1::LockStateRequest req;
    req.set_name(info.name());
    statehub::v1::LockStateResponse state;
    status = locks->State(Context().get(), req, &state);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // gone
    if (!status.ok()) return Fail("Locks.State " + info.name(), status);
    const char* type = info.type() == statehub::v1::RLOCK ? "rlock" : "lock";
    if (!state.locked()) {
      std::printf("%s %s: free (last fencing token %llu)\n", type,
                  info.name().c_str(),
                  static_cast<unsigned long long>(state.fencing_token()));
    } else {
      const std::string recursion =
          state.recursion() > 1
              ? absl::StrFormat(", recursion %d", state.recursion())
              : "";
      // A holder that exited normally leaves a Lock held, as Manager's
      // clients do (Goodbye.leave_locks); anyone may release it.
      const std::string who =
          state.holder_left()
              ? Who(state.holder()) + " (exited, leaving it held)"
              : Who(state.holder());
      std::printf("%s %s: held by %s for %s (fencing token %llu%s)\n", type,
                  info.name().c_str(), who.c_str(),
                  absl::FormatDuration(
                      statehub::internal::DurationFromWire(state.held_for()))
                      .c_str(),
                  static_cast<unsigned long long>(state.fencing_token()),
                  recursion.c_str());
    }
    int position = 0;
    for (const auto& waiter : state.waiters()) {
      std::printf("  waiter %d: %s, waiting %s\n", ++position,
                  Who(waiter.holder()).c_str(),
                  absl::FormatDuration(statehub::internal::DurationFromWire(
                                           waiter.waiting_for()))
                      .c_str());
    }
    for (const auto& deadlock : state.deadlocks()) {
      std::printf("  in deadlock %llu\n",
                  static_cast<unsigned long long>(deadlock.id()));
    }
  }
  return 0;
}

int Deadlocks(statehub::v1::Locks::Stub& locks) {
  statehub::v1::LockDeadlocksResponse listed;
  const grpc::Status status = locks.Deadlocks(
      Context().get(), statehub::v1::LockDeadlocksRequest(), &listed);
  if (!status.ok()) return Fail("Locks.Deadlocks", status);
  if (listed.deadlocks().empty()) {
    std::printf("no deadlocks\n");
    return 0;
  }
  for (const auto& deadlock : listed.deadlocks()) {
    absl::Duration age = statehub::internal::DurationFromWire(deadlock.age());
    // Milliseconds are enough for people, once there are any.
    if (age >= absl::Milliseconds(1)) {
      age = absl::Trunc(age, absl::Milliseconds(1));
    }
    std::printf("deadlock %llu (for %s):\n",
                static_cast<unsigned long long>(deadlock.id()),
                absl::FormatDuration(age).c_str());
    for (const auto& edge : deadlock.edges()) {
      std::printf("  %s %s %s \"%s\" held by %s\n", Who(edge.waiter()).c_str(),
                  edge.condition() ? "waits to reacquire" : "waits for",
                  edge.reentrant() ? "rlock" : "lock", edge.lock().c_str(),
                  Who(edge.holder()).c_str());
    }
  }
  return 0;
}

// --- inspect: a data dir, read without a server ---------------------------

// Base is the file name of `path`, for the tables.
std::string Base(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

void PrintFile(const statehub::storage::FileStats& file, bool snapshot) {
  std::printf("  %s: %s %llu, %lld %s, %llu bytes", Base(file.path).c_str(),
              snapshot ? "revision" : "first revision",
              static_cast<unsigned long long>(file.header_revision),
              static_cast<long long>(file.frames),
              snapshot ? "records" : "frames",
              static_cast<unsigned long long>(file.bytes));
  if (!snapshot && file.frames > 0) {
    std::printf(", last revision %llu",
                static_cast<unsigned long long>(file.last_revision));
  }
  if (file.torn_tail) {
    std::printf(", torn tail at byte offset %llu (%llu bytes: %s)",
                static_cast<unsigned long long>(file.torn_tail->offset),
                static_cast<unsigned long long>(file.torn_tail->bytes),
                file.torn_tail->reason.c_str());
  }
  if (!file.status.ok()) std::printf(", UNREADABLE");
  std::printf("\n");
}

int Inspect(const std::string& dir) {
  absl::StatusOr<statehub::storage::DirStats> stats =
      statehub::storage::InspectDataDir(dir);
  if (!stats.ok()) {
    std::fprintf(stderr, "statehub-cli: inspect: %s\n",
                 std::string(stats.status().message()).c_str());
    return 1;
  }
  std::printf("data dir %s\n", dir.c_str());
  std::printf("revision %llu\n",
              static_cast<unsigned long long>(stats->last_revision));
  if (stats->snapshot) {
    std::printf("snapshot:\n");
    PrintFile(*stats->snapshot, /*snapshot=*/true);
  } else {
    std::printf("snapshot: none (the log is replayed from its start)\n");
  }
  std::printf("log segments: %zu\n", stats->segments.size());
  for (const statehub::storage::FileStats& segment : stats->segments) {
    PrintFile(segment, /*snapshot=*/false);
  }
  std::printf("total %llu bytes, %lld records\n",
              static_cast<unsigned long long>(stats->total_bytes),
              static_cast<long long>(stats->frames));
  if (!stats->status.ok()) {
    std::fprintf(stderr, "statehub-cli: inspect: %s\n",
                 std::string(stats->status.message()).c_str());
    return 1;
  }

  // Limits as high as they go: the records were accepted under the
  // server's flags, which this process does not know, and replay must not
  // refuse them for a limit.
  statehub::Limits limits;
  limits.max_value_bytes = std::numeric_limits<int64_t>::max();
  limits.max_objects = std::numeric_limits<int64_t>::max();
  limits.max_elements = std::numeric_limits<int64_t>::max();
  limits.max_sessions = std::numeric_limits<int64_t>::max();
  limits.max_waiters_per_session = std::numeric_limits<int64_t>::max();
  statehub::Engine engine(limits, absl::Hours(1));
  // The server's own recovery, on the files listed without the lock.
  absl::StatusOr<statehub::storage::RecoveryFiles> files =
      statehub::storage::ReadRecoveryFiles(dir);
  absl::StatusOr<statehub::RecoveryStats> replayed =
      files.ok() ? statehub::RecoverEngine(engine, *files, absl::Now())
                 : absl::StatusOr<statehub::RecoveryStats>(files.status());
  if (!replayed.ok()) {
    std::fprintf(stderr, "statehub-cli: inspect: %s\n",
                 std::string(replayed.status().message()).c_str());
    return 1;
  }
  if (const auto& cut = replayed->unfinished) {
    std::printf(
        "unfinished write group: %lld record(s) from revision %llu, not "
        "recovered (a server cuts them off at its start)\n",
        static_cast<long long>(cut->records),
        static_cast<unsigned long long>(cut->first_revision));
  }

  const std::vector<statehub::ObjectInfo> objects =
      engine.registry().List("", /*include_anonymous=*/true);
  std::printf("objects: %zu\n", objects.size());
  for (const statehub::ObjectInfo& info : objects) {
    std::string detail;
    if (statehub::LockObject::Accepts(info.type)) {
      absl::StatusOr<std::shared_ptr<statehub::LockObject>> lock =
          engine.registry().Find<statehub::LockObject>(info.name);
      if (lock.ok()) {
        const statehub::LockState state = (*lock)->State();
        detail =
            state.locked
                ? absl::StrFormat(
                      "held by session %s (fencing token %d)",
                      statehub::SessionTable::FormatId(state.holder.session),
                      state.fencing_token)
                : absl::StrFormat("free (fencing token %d)",
                                  state.fencing_token);
      }
    }
    const std::string line =
        absl::StrFormat("  %-40s %-18s %-8d %s", info.name,
                        statehub::ObjectTypeName(info.type), info.size, detail);
    std::printf("%s\n",
                std::string(absl::StripTrailingAsciiWhitespace(line)).c_str());
  }
  std::vector<std::pair<statehub::SessionId, std::string>> sessions =
      engine.sessions().Labels();
  std::sort(sessions.begin(), sessions.end());
  std::printf("sessions: %zu\n", sessions.size());
  for (const auto& [id, label] : sessions) {
    std::printf("  %s %s\n", statehub::SessionTable::FormatId(id).c_str(),
                label.empty() ? "-" : label.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "statehub-cli [--address=ADDR] ls [PREFIX] | locks [PREFIX] | "
      "deadlocks\n"
      "statehub-cli inspect --data_dir=DIR\n"
      "  ls         list objects (name, type, size)\n"
      "  locks      show each lock's holder and waiters, since when\n"
      "  deadlocks  show the cycles of waits among locks present now\n"
      "  inspect    read a data dir without a server: revision, snapshot,\n"
      "             log segments, and the objects and sessions it holds");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2 || args.size() > 3) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string command = args[1];
  const std::string prefix = args.size() == 3 ? args[2] : "";
  if (command == "inspect") {
    const std::string dir = absl::GetFlag(FLAGS_data_dir);
    if (args.size() == 3 || dir.empty()) {
      std::fprintf(stderr, "statehub-cli: inspect takes --data_dir=DIR\n%s\n",
                   absl::ProgramUsageMessage().data());
      return 2;
    }
    return Inspect(dir);
  }
  if (const std::string file = absl::GetFlag(FLAGS_token_file); !file.empty()) {
    token =
        std::string(absl::StripAsciiWhitespace(ReadOrDie(file, "token_file")));
  } else if (const char* env = std::getenv("STATEHUB_TOKEN")) {
    token = env;
  }
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_address), Credentials());
  if (command == "ls") {
    return Ls(*statehub::v1::Objects::NewStub(channel), prefix);
  }
  if (command == "locks") return Locks(channel, prefix);
  if (command == "deadlocks") {
    if (args.size() == 3) {
      std::fprintf(stderr, "statehub-cli: deadlocks takes no PREFIX\n%s\n",
                   absl::ProgramUsageMessage().data());
      return 2;
    }
    return Deadlocks(*statehub::v1::Locks::NewStub(channel));
  }
  std::fprintf(stderr, "statehub-cli: unknown command '%s'\n%s\n",
               command.c_str(), absl::ProgramUsageMessage().data());
  return 2;
}
