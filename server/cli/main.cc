// statehub-cli: what an engineer types during a stall. Lists the server's
// objects, shows who holds each lock and who waits for it, since when, and
// lists the deadlocks among them.
//
//   statehub-cli [--address=unix:///tmp/statehub.sock] ls [PREFIX]
//   statehub-cli [--address=...] locks [PREFIX]
//   statehub-cli [--address=...] deadlocks
//   statehub-cli [--address=...] watch [--initial] [--since=N] NAME
//   statehub-cli [--address=...] watch --prefix [--initial] [PREFIX]
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
// `watch` follows one object's changes (with --prefix, the objects created
// and deleted under PREFIX; every name without one) until Ctrl-C, one line
// per event: revision, op (as docs/watches.md names them), key (a prefix
// watch: the object's name), value, and the label of the session that made
// the change; "-" where there is none; a list's remove and splice add
// "removed=N". With --initial it first prints the contents as of the
// start, op "initial"; --since=N goes on after revision N. When its stream
// breaks (the server restarted) it watches again from the last revision
// for up to 30 s. It exits 0 on Ctrl-C (SIGINT, SIGTERM), 1 on an error,
// such as WATCH_TOO_OLD when the server can no longer deliver every change
// (the message gives the revisions).
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
// only the public rpcs Objects.List, Locks.State, Locks.Deadlocks and
// Watches.Watch, and for `inspect` the server's own storage and engine
// libraries. (Not the C++ client library: its statehub::ObjectInfo and
// statehub::Watch are other classes than the engine's of the same names.)

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
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
#include "statehub/internal/value_codec.h"
#include "statehub/internal/wire.h"
#include "statehub/status.h"
#include "statehub/v1/change.pb.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"
#include "statehub/v1/watch.grpc.pb.h"

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
ABSL_FLAG(bool, prefix, false,
          "watch: follow the objects created and deleted under the "
          "argument, a name prefix (none: every name).");
ABSL_FLAG(bool, initial, false,
          "watch: print the contents as of the start first.");
ABSL_FLAG(int64_t, since, -1,
          "watch: go on after this revision (a previous watch's last); "
          "negative: from now.");
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

// --- watch: changes as they happen ----------------------------------------

// How long a broken watch tries to watch again, as the clients do.
constexpr absl::Duration kResumeFor = absl::Seconds(30);

// Shown is how a watch line shows a wire value: Python's repr.
std::string Shown(const statehub::v1::Value& wire) {
  absl::StatusOr<statehub::Value> value =
      statehub::internal::DecodeValue(wire, 1000);
  return value.ok() ? value->Repr() : "<undecodable>";
}

std::string ShownItems(
    const google::protobuf::RepeatedPtrField<statehub::v1::Value>& items) {
  std::string out = "[";
  for (const auto& item : items) {
    if (out.size() > 1) out += ", ";
    out += Shown(item);
  }
  return out + "]";
}

std::string TypeName(statehub::v1::ObjectType type) {
  return std::string(
      statehub::ObjectTypeName(statehub::internal::FromWire(type)));
}

// PrintEvents prints the lines of one change record: the ops and their
// keys and values as the C++ and Python clients decode them
// (docs/watches.md, "What a watch sees").
void PrintEvents(const statehub::v1::WatchEvent& event, bool by_prefix) {
  const statehub::v1::ChangeRecord& r = event.change();
  const std::string session =
      event.session_label().empty() ? "-" : event.session_label();
  auto line = [&](absl::string_view op, const std::string& key,
                  const std::string& value, const std::string& more = "") {
    std::printf(
        "%llu %s %s %s %s%s\n", static_cast<unsigned long long>(r.revision()),
        std::string(op).c_str(), by_prefix ? r.object().c_str() : key.c_str(),
        value.c_str(), session.c_str(), more.c_str());
  };
  using Change = statehub::v1::ChangeRecord;
  switch (r.change_case()) {
    case Change::kEntriesSet:
      for (const auto& e : r.entries_set().entries()) {
        line("set", Shown(e.key()), Shown(e.value()));
      }
      return;
    case Change::kEntriesRemoved: {
      // "expired" comes with entry TTLs: read by name until then.
      const auto* expired =
          r.entries_removed().GetDescriptor()->FindFieldByName("expired");
      const bool expire =
          expired != nullptr &&
          expired->type() == google::protobuf::FieldDescriptor::TYPE_BOOL &&
          !expired->is_repeated() &&
          r.entries_removed().GetReflection()->GetBool(r.entries_removed(),
                                                       expired);
      for (const auto& key : r.entries_removed().keys()) {
        line(expire ? "expire" : "delete", Shown(key), "-");
      }
      return;
    }
    case Change::kItemsSpliced: {
      const auto& s = r.items_spliced();
      const std::string start = absl::StrCat(s.start());
      if (s.removed() == 1 && s.items_size() == 1) {
        line("set", start, Shown(s.items(0)));
      } else if (s.removed() == 0) {
        line("insert", start, ShownItems(s.items()));
      } else if (s.items_size() == 0) {
        line("remove", start, "-", absl::StrCat(" removed=", s.removed()));
      } else {
        line("splice", start, ShownItems(s.items()),
             absl::StrCat(" removed=", s.removed()));
      }
      return;
    }
    case Change::kCellSet:
      return line("set", "-", Shown(r.cell_set().value()));
    case Change::kCleared:
      return line("clear", "-", "-");
    case Change::kCreated:
      return line("created", "-", "'" + TypeName(r.created().type()) + "'");
    case Change::kDeleted:
      return line("deleted", "-", "-");
    case Change::kQueuePut:
      return line("put", "-", Shown(r.queue_put().item()));
    case Change::kQueueTaken:
      return line("get", "-", "-");
    case Change::kTasksChanged:
      return line("tasks", "-", absl::StrCat(r.tasks_changed().unfinished()));
    case Change::kLockChanged:
      if (r.lock_changed().held()) {
        return line("acquire", "-",
                    statehub::Value(r.lock_changed().holder_label()).Repr());
      }
      return line("release", "-", "-");
    case Change::kSemaphoreChanged:
      return line("semaphore", "-",
                  absl::StrCat(r.semaphore_changed().value()));
    case Change::kEventChanged:
      return line(r.event_changed().set() ? "set" : "clear", "-", "-");
    case Change::kBarrierChanged:
      return line("barrier", "-",
                  absl::StrCat(r.barrier_changed().generation()));
    default:
      return line("unknown", "-", "-");
  }
}

// PrintInitial prints a started response's contents (WatchResponse.initial).
void PrintInitial(const statehub::v1::WatchResponse& started, bool by_prefix) {
  const unsigned long long at = started.revision();
  for (const statehub::v1::ChangeRecord& r : started.initial()) {
    if (!r.has_created()) continue;
    const statehub::v1::ObjectCreated& c = r.created();
    if (by_prefix) {
      std::printf("%llu initial %s '%s'\n", at, r.object().c_str(),
                  TypeName(c.type()).c_str());
      continue;
    }
    for (const auto& e : c.entries()) {
      std::printf("%llu initial %s %s\n", at, Shown(e.key()).c_str(),
                  Shown(e.value()).c_str());
    }
    for (int i = 0; i < c.items_size(); ++i) {
      std::printf("%llu initial %d %s\n", at, i, Shown(c.items(i)).c_str());
    }
    if (c.has_value()) {
      std::printf("%llu initial - %s\n", at, Shown(c.value()).c_str());
    }
    return;  // the records after it are the object's state
  }
}

// WatchStream is the gRPC stream of one Watches.Watch call; Cancel may be
// called from another thread.
class WatchStream {
 public:
  WatchStream(statehub::v1::Watches::Stub& stub,
              const statehub::v1::WatchRequest& request) {
    if (!token.empty()) {
      ctx_.AddMetadata(statehub::internal::kAuthorizationKey,
                       "Bearer " + token);
    }
    reader_ = stub.Watch(&ctx_, request);
  }
  bool Read(statehub::v1::WatchResponse* response) {
    return reader_->Read(response);
  }
  // Finish returns how the stream ended; *broke is whether it broke (the
  // server went away), rather than the server ending the watch.
  absl::Status Finish(bool* broke) {
    const grpc::Status status = reader_->Finish();
    absl::string_view detail;
    const auto& trailers = ctx_.GetServerTrailingMetadata();
    if (auto it = trailers.find(statehub::internal::kErrorDetailKey);
        it != trailers.end()) {
      detail = absl::string_view(it->second.data(), it->second.size());
    }
    *broke =
        detail.empty() &&
        (status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::CANCELLED);
    if (status.ok()) return absl::UnavailableError("the stream ended");
    return statehub::internal::FromGrpcStatus(status, detail);
  }
  void Cancel() { ctx_.TryCancel(); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<statehub::v1::WatchResponse>> reader_;
};

int WatchFailed(const absl::Status& status) {
  std::fprintf(stderr, "statehub-cli: watch: %s\n",
               std::string(status.message()).c_str());
  if (statehub::GetErrorKind(status) == statehub::ErrorKind::kWatchTooOld) {
    const auto [revision, oldest] = statehub::GetWatchRevisions(status);
    std::fprintf(stderr,
                 "statehub-cli: the server is at revision %llu and can "
                 "resume a watch from revision %llu on; watch again with "
                 "--initial\n",
                 static_cast<unsigned long long>(revision),
                 static_cast<unsigned long long>(oldest));
  }
  return 1;
}

// WatchLoop runs the watch `request` until it fails or *stop is set,
// printing as it goes; watches again from the last revision when the
// stream breaks. `current` is the stream being read, for the signal
// thread to cancel.
int WatchLoop(statehub::v1::Watches::Stub& stub,
              statehub::v1::WatchRequest request, const std::atomic<bool>& stop,
              std::mutex& mu, WatchStream*& current) {
  const bool by_prefix = request.has_prefix();
  const std::string what = by_prefix ? "names under" : "object";
  const std::string target = by_prefix ? request.prefix() : request.name();
  bool started_once = false;
  uint64_t revision = 0;
  absl::Time broke_at = absl::InfiniteFuture();
  absl::Duration pause = absl::Milliseconds(50);
  while (!stop.load()) {
    WatchStream stream(stub, request);
    {
      std::lock_guard<std::mutex> lock(mu);
      current = &stream;
    }
    statehub::v1::WatchResponse response;
    bool started = false;
    while (!stop.load() && stream.Read(&response)) {
      if (response.started() && !started) {
        started = true;
        broke_at = absl::InfiniteFuture();
        pause = absl::Milliseconds(50);
        if (!started_once) {
          started_once = true;
          std::fprintf(stderr,
                       "statehub-cli: watching %s \"%s\" from revision %llu "
                       "(Ctrl-C stops)\n",
                       what.c_str(), target.c_str(),
                       static_cast<unsigned long long>(response.revision()));
          if (request.initial()) PrintInitial(response, by_prefix);
        }
      }
      for (const auto& event : response.events()) {
        PrintEvents(event, by_prefix);
      }
      revision = std::max(revision, response.revision());
      // Line by line, for a reader at the other end of a pipe.
      std::fflush(stdout);
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      current = nullptr;
    }
    // A stream is finished, whatever ended it: cancelled first if it goes
    // on, so that Finish does not wait for the server.
    if (stop.load()) stream.Cancel();
    bool broke = false;
    const absl::Status end = stream.Finish(&broke);
    if (stop.load()) break;
    // A watch the server never started (a missing object) is not resumed.
    if (!broke || !started_once) return WatchFailed(end);
    const absl::Time now = absl::Now();
    if (broke_at == absl::InfiniteFuture()) {
      broke_at = now;
      std::fprintf(stderr,
                   "statehub-cli: the watch's stream broke (%s); watching "
                   "again from revision %llu\n",
                   std::string(end.message()).c_str(),
                   static_cast<unsigned long long>(revision));
    }
    if (now - broke_at > kResumeFor) return WatchFailed(end);
    request.set_initial(false);
    request.set_since(revision);
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Seconds(1));
  }
  return 0;
}

int Watch(const std::shared_ptr<grpc::Channel>& channel,
          const std::string& target, bool by_prefix) {
  statehub::v1::WatchRequest request;
  if (by_prefix) {
    request.set_prefix(target);
  } else {
    request.set_name(target);
  }
  request.set_initial(absl::GetFlag(FLAGS_initial));
  if (const int64_t since = absl::GetFlag(FLAGS_since); since >= 0) {
    request.set_since(static_cast<uint64_t>(since));
  }
  // The signals go to sigtimedwait below, not to a handler: the thread
  // that reads the stream is cancelled from here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  auto stub = statehub::v1::Watches::NewStub(channel);
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::mutex mu;
  WatchStream* current = nullptr;
  int result = 0;
  std::thread reader([&] {
    result = WatchLoop(*stub, request, stop, mu, current);
    done.store(true);
  });
  const timespec tick = {0, 100 * 1000 * 1000};
  while (!done.load()) {
    if (sigtimedwait(&signals, nullptr, &tick) > 0) stop.store(true);
    // Again at every tick: a stream may have started just as the signal
    // came.
    if (stop.load()) {
      std::lock_guard<std::mutex> lock(mu);
      if (current != nullptr) current->Cancel();
    }
  }
  reader.join();
  return result;
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
      "statehub-cli [--address=ADDR] watch [--initial] [--since=N] NAME\n"
      "statehub-cli [--address=ADDR] watch --prefix [--initial] [PREFIX]\n"
      "statehub-cli inspect --data_dir=DIR\n"
      "  ls         list objects (name, type, size)\n"
      "  locks      show each lock's holder and waiters, since when\n"
      "  deadlocks  show the cycles of waits among locks present now\n"
      "  watch      print an object's changes (--prefix: the objects\n"
      "             created and deleted under PREFIX) until Ctrl-C\n"
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
  if (command == "watch") {
    // Before gRPC starts its threads, which must not take the signals that
    // end a watch (Watch waits for them).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  }
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_address), Credentials());
  if (command == "watch") {
    const bool by_prefix = absl::GetFlag(FLAGS_prefix);
    if (args.size() != 3 && !by_prefix) {
      std::fprintf(stderr, "statehub-cli: watch takes a NAME\n%s\n",
                   absl::ProgramUsageMessage().data());
      return 2;
    }
    return Watch(channel, prefix, by_prefix);
  }
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
