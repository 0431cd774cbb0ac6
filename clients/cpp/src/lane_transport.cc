#include "lane_transport.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "statehub/internal/lane.h"
#include "statehub/status.h"
#include "statehub/v1/lane.pb.h"

namespace statehub::client_internal {
namespace {

// Used when the server grants no lease (lease_ttl_ms 0).
constexpr absl::Duration kDefaultLease = absl::Seconds(30);
// How long a call whose deadline passed waits for the server to answer its
// CANCEL before giving the connection up.
constexpr absl::Duration kCancelGrace = absl::Seconds(2);
// How long the keepalive thread waits for a PONG before it takes the
// primary connection for dead and reconnects.
constexpr absl::Duration kMinPongTimeout = absl::Seconds(2);
// How long Close waits for the server to end the session after GOODBYE.
constexpr absl::Duration kGoodbyeTimeout = absl::Seconds(2);
// Reconnect backoff of the primary connection; well under any sensible
// lease, so a server back within the lease finds the session resumed.
constexpr absl::Duration kMinBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
// Names per RELEASE frame, so a burst of releases stays far below the
// server's message size limit.
constexpr size_t kMaxReleaseBatch = 1000;

// The services whose rpcs have lane method ids (all but Sessions).
constexpr const char* kServices[] = {
    "statehub.v1.Objects",    "statehub.v1.Dicts",
    "statehub.v1.Lists",      "statehub.v1.Namespaces",
    "statehub.v1.Values",     "statehub.v1.Arrays",
    "statehub.v1.Locks",      "statehub.v1.Conditions",
    "statehub.v1.Semaphores", "statehub.v1.Events",
    "statehub.v1.Barriers",   "statehub.v1.Queues",
    "statehub.v1.Watches",
};

// Parked calls made again after a reconnect (CallParked): waits that
// change nothing (an event's, a join), a condition wait (which ends as a
// spurious wakeup would), acquires (which check first whether the server
// had granted them) and a get (an item served in the instant before the
// server died is lost either way: failing would not give it back). A
// barrier arrival is not: it may have been counted. As the Python
// client's REPARKABLE.
constexpr absl::string_view kReparkable[] = {
    "Events.Wait",   "Queues.Join",        "Conditions.Wait",
    "Locks.Acquire", "Semaphores.Acquire", "Queues.Get",
};
// Parked calls numbered all the same: a put is answered at once unless its
// queue is full, and a retry must not put the item twice.
constexpr absl::string_view kNumberedWhenParked[] = {"Queues.Put"};

// Contextualize prefixes a status message, keeping its error kind and
// object.
absl::Status Contextualize(const absl::Status& status, absl::string_view what) {
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, "statehub: ");
  return StatusFromWire(status.code(), absl::StrCat(what, ": ", message),
                        SerializeErrorDetail(status));
}

}  // namespace

const Rpc& RpcOf(const google::protobuf::Descriptor* request) {
  using Table = absl::flat_hash_map<const google::protobuf::Descriptor*, Rpc>;
  static const Table* const table = [] {
    auto* t = new Table;
    const google::protobuf::DescriptorPool* pool =
        google::protobuf::DescriptorPool::generated_pool();
    for (const char* name : kServices) {
      const google::protobuf::ServiceDescriptor* service =
          pool->FindServiceByName(name);
      if (service == nullptr) continue;
      for (int i = 0; i < service->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* method = service->method(i);
        Rpc rpc;
        rpc.name = absl::StrCat(service->name(), ".", method->name());
        const uint32_t id = method->options().GetExtension(v1::lane_method);
        if (id <= 0xffff) rpc.lane_method = static_cast<uint16_t>(id);
        rpc.read_only = method->options().GetExtension(v1::read_only);
        rpc.reparkable = absl::c_linear_search(kReparkable, rpc.name);
        rpc.numbered_when_parked =
            absl::c_linear_search(kNumberedWhenParked, rpc.name);
        t->emplace(method->input_type(), std::move(rpc));
      }
    }
    return t;
  }();
  static const Rpc* const unknown = new Rpc{"an unknown rpc"};
  auto it = table->find(request);
  return it == table->end() ? *unknown : it->second;
}

std::string ReleaseFrames(std::vector<std::string> names) {
  std::string frames;
  for (size_t i = 0; i < names.size(); i += kMaxReleaseBatch) {
    v1::Release release;
    const size_t end = std::min(names.size(), i + kMaxReleaseBatch);
    for (size_t j = i; j < end; ++j) release.add_names(std::move(names[j]));
    lane::AppendFrame(&frames, lane::Kind::kRelease, 0, 0, &release);
  }
  return frames;
}

absl::Status HelloRefused(const absl::Status& status,
                          absl::string_view address) {
  if (absl::IsUnavailable(status) &&
      GetErrorKind(status) == ErrorKind::kUnspecified) {
    return status;  // no server there: the message names the address
  }
  return Contextualize(
      status, absl::StrCat("statehub: opening a session on ", address));
}

LaneTransport::LaneTransport(LaneAddress address, const ClientOptions& options)
    : address_(std::move(address)),
      label_(options.label),
      token_(options.token),
      call_timeout_(options.call_timeout),
      connect_timeout_(options.connect_timeout) {}

LaneTransport::~LaneTransport() { Close(); }

absl::StatusOr<std::unique_ptr<LaneTransport>> LaneTransport::Connect(
    absl::string_view address, const ClientOptions& options) {
  absl::StatusOr<LaneAddress> parsed = ParseLaneAddress(address);
  if (!parsed.ok()) return parsed.status();
  std::unique_ptr<LaneTransport> lane(
      new LaneTransport(*std::move(parsed), options));
  const absl::Time deadline = absl::Now() + options.connect_timeout;
  if (!options.open_session) {
    // Only see that something listens: a HELLO here would start a session
    // (and a wrong token would fail Connect, where gRPC fails the calls).
    if (absl::Status s = LaneConnection::Probe(lane->address_, deadline);
        !s.ok()) {
      return s;
    }
    return lane;
  }
  {
    absl::MutexLock lock(&lane->primary_mu_);
    if (absl::Status s = lane->OpenPrimary(deadline); !s.ok()) {
      return HelloRefused(s, address);
    }
  }
  // Over TCP the lease runs and needs keepalives. On a Unix socket the
  // open primary connection holds the session, but the thread is still
  // what notices a server that went away and reconnects at once: a server
  // restarted on its data dir gives the session a fresh lease, which only
  // a client that comes back within it keeps (docs/durability.md).
  {
    absl::MutexLock lock(&lane->join_mu_);
    lane->keepalive_ = std::thread([l = lane.get()] { l->KeepaliveLoop(); });
  }
  return lane;
}

SessionTag LaneTransport::Current() const {
  absl::MutexLock lock(&mu_);
  return SessionTag{id_, generation_};
}

absl::Duration LaneTransport::lease_ttl() const {
  absl::MutexLock lock(&mu_);
  return id_.empty() ? absl::ZeroDuration() : lease_ttl_;
}

void LaneTransport::Release(uint64_t generation, std::string name) {
  absl::MutexLock lock(&mu_);
  // A hold of a lost session died with it; releasing its name now could drop
  // a hold the new session took on the same object.
  if (closing_ || id_.empty() || generation != generation_) return;
  pending_.push_back(std::move(name));
  // The keepalive thread sends them now; else the next call does.
  cv_.SignalAll();
}

std::string LaneTransport::TakeReleases(uint64_t generation) {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty() || generation != generation_) return {};
    names.swap(pending_);
  }
  return ReleaseFrames(std::move(names));
}

absl::StatusOr<LaneTransport::Pooled> LaneTransport::Take(SessionTag* tag) {
  while (true) {
    Pooled pooled;
    {
      absl::MutexLock lock(&mu_);
      *tag = SessionTag{id_, generation_};
      if (pool_.empty()) break;
      pooled = std::move(pool_.back());
      pool_.pop_back();
    }
    // An idle connection the server closed (it restarted, the session
    // ended) must not take a request it would never answer.
    if (pooled.session == tag->id && pooled.generation == tag->generation &&
        !pooled.conn->PeerClosed()) {
      return pooled;
    }
  }
  v1::LaneHello hello;
  hello.set_protocol_version(lane::kProtocolVersion);
  hello.set_token(token_);
  hello.set_label(label_);
  if (!tag->id.empty()) hello.set_join_session_id(tag->id);
  v1::Welcome welcome;
  absl::StatusOr<std::unique_ptr<LaneConnection>> conn = LaneConnection::Open(
      address_, hello, absl::Now() + connect_timeout_, &welcome);
  if (!conn.ok()) {
    // The session may be gone with a restarted server: have a new one ready
    // for the next call (this one fails, as on gRPC while a lost session is
    // replaced).
    if (!tag->id.empty() &&
        (absl::IsUnavailable(conn.status()) ||
         GetErrorKind(conn.status()) == ErrorKind::kSessionError)) {
      Recover(tag->generation);
    }
    return conn.status();
  }
  return Pooled{*std::move(conn), tag->id, tag->generation};
}

absl::StatusOr<LaneTransport::WatchConnection>
LaneTransport::OpenWatchConnection(bool resuming, absl::Time deadline) {
  SessionTag tag = Current();
  if (resuming && !tag.id.empty()) {
    absl::StatusOr<SessionTag> back = AwaitSession(deadline);
    if (!back.ok()) return back.status();
    tag = *std::move(back);
  }
  v1::LaneHello hello;
  hello.set_protocol_version(lane::kProtocolVersion);
  hello.set_token(token_);
  hello.set_label(label_);
  if (!tag.id.empty()) hello.set_join_session_id(tag.id);
  v1::Welcome welcome;
  absl::StatusOr<std::unique_ptr<LaneConnection>> conn =
      LaneConnection::Open(address_, hello, deadline, &welcome);
  if (!conn.ok()) {
    if (!tag.id.empty() &&
        (absl::IsUnavailable(conn.status()) ||
         GetErrorKind(conn.status()) == ErrorKind::kSessionError)) {
      Recover(tag.generation);
    }
    return conn.status();
  }
  WatchConnection out;
  // A connection under a session of its own holds that session's lease
  // by itself over TCP: its watch must not end with the lease.
  if (tag.id.empty() && !(*conn)->is_unix()) {
    const absl::Duration lease =
        welcome.lease_ttl_ms() > 0 ? absl::Milliseconds(welcome.lease_ttl_ms())
                                   : kDefaultLease;
    out.ping_every = lease / 3;
  }
  out.conn = *std::move(conn);
  return out;
}

void LaneTransport::Put(Pooled pooled) {
  if (pooled.conn->broken()) return;
  absl::MutexLock lock(&mu_);
  if (pooled.session != id_ || pooled.generation != generation_) return;
  pool_.push_back(std::move(pooled));
}

absl::StatusOr<SessionTag> LaneTransport::Call(
    const CallPlan& plan, const google::protobuf::MessageLite& request,
    google::protobuf::MessageLite* response, absl::Duration wait,
    bool* remake) {
  // The server enforces `wait`; call_timeout is the margin for the reply.
  // A negative timeout is the server's to refuse: it must get the call.
  const absl::Duration budget =
      std::max(wait, absl::ZeroDuration()) + call_timeout_;
  const absl::Time deadline = budget == absl::InfiniteDuration()
                                  ? absl::InfiniteFuture()
                                  : absl::Now() + budget;
  // The session a numbered call went out in (0: any, until it went out):
  // only that session answers its number.
  uint64_t numbered_in = 0;
  // A server that is dying closes its connections one by one, so the
  // primary may still look alive when a call's connection has broken: the
  // call is made again at once, and after a pause if it breaks again.
  absl::Duration pause = absl::ZeroDuration();
  for (int attempt = 1;; ++attempt) {
    SessionTag tag;
    Delivery delivery;
    absl::Status status = Attempt(plan, request, response, deadline,
                                  numbered_in, &tag, &delivery);
    if (delivery == Delivery::kAnswered) {
      if (!status.ok()) return status;
      return tag;
    }
    // A request that never went out is made again whatever it is.
    if (delivery == Delivery::kLost) {
      if (plan.after_break == AfterBreak::kFail) {
        return BrokenCallError(address_.target, plan, status);
      }
      if (plan.after_break == AfterBreak::kResend && numbered_in == 0) {
        numbered_in = tag.generation;
      }
    }
    if (attempt == kMaxAttempts) return status;
    const absl::Time limit = ReconnectLimit(deadline);
    if (pause > absl::ZeroDuration() &&
        !PauseUntil(std::min(limit, absl::Now() + pause))) {
      return absl::CancelledError("statehub: client closed");
    }
    pause = std::min(std::max(pause * 2, kMinBackoff), kMaxBackoff);
    absl::StatusOr<SessionTag> back = AwaitSession(limit);
    if (!back.ok()) return NotBackError(address_.target, plan, status);
    if (numbered_in != 0 && back->generation != numbered_in) {
      return SessionEndedError(address_.target, plan, status);
    }
    if (delivery == Delivery::kLost &&
        plan.after_break == AfterBreak::kRepark) {
      *remake = true;
      return status;
    }
  }
}

bool LaneTransport::PauseUntil(absl::Time until) {
  absl::MutexLock lock(&mu_);
  while (!closing_) {
    if (cv_.WaitWithDeadline(&mu_, until)) break;
  }
  return !closing_;
}

absl::Status LaneTransport::Attempt(
    const CallPlan& plan, const google::protobuf::MessageLite& request,
    google::protobuf::MessageLite* response, absl::Time deadline,
    uint64_t generation, SessionTag* tag, Delivery* delivery) {
  *delivery = Delivery::kAnswered;
  absl::StatusOr<Pooled> pooled = Take(tag);
  if (!pooled.ok()) {
    // A session that no longer lets a connection join has been replaced
    // (Take recovers): the call is made in the new one, unless it is a
    // numbered call sent before, which only the old session may answer.
    const ErrorKind kind = GetErrorKind(pooled.status());
    if ((absl::IsUnavailable(pooled.status()) &&
         kind == ErrorKind::kUnspecified) ||
        (kind == ErrorKind::kSessionError && !tag->id.empty())) {
      *delivery = Delivery::kNotSent;
    }
    return pooled.status();
  }
  if (generation != 0 && tag->generation != generation) {
    Put(*std::move(pooled));
    return SessionEndedError(
        address_.target, plan,
        absl::UnavailableError("the session was replaced"));
  }
  const std::string releases =
      tag->id.empty() ? std::string() : TakeReleases(tag->generation);
  bool sent = false;
  absl::Status status =
      pooled->conn->Call(plan.rpc->lane_method, plan.number, request, response,
                         releases, deadline, kCancelGrace, &sent);
  if (!status.ok() && pooled->conn->broken() && absl::IsUnavailable(status) &&
      GetErrorKind(status) == ErrorKind::kUnspecified) {
    *delivery = sent ? Delivery::kLost : Delivery::kNotSent;
  }
  const bool session_error = GetErrorKind(status) == ErrorKind::kSessionError;
  // A connection of its own session that lost it is no use any more.
  if (!(session_error && tag->id.empty())) Put(*std::move(pooled));
  if (session_error && !tag->id.empty()) Recover(tag->generation);
  return status;
}

absl::Time LaneTransport::ReconnectLimit(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  if (lost_since_ == absl::InfiniteFuture()) lost_since_ = absl::Now();
  return std::min(deadline, lost_since_ + kReconnectWait);
}

absl::StatusOr<SessionTag> LaneTransport::AwaitSession(absl::Time limit) {
  absl::Duration backoff = kMinBackoff;
  while (true) {
    absl::Status last;
    {
      absl::MutexLock primary(&primary_mu_);
      // The keepalive thread reads the primary only under primary_mu_, so
      // anything readable on it now means the server closed it.
      bool up = primary_ != nullptr && !primary_->PeerClosed();
      if (!up) {
        absl::MutexLock lock(&mu_);
        if (closing_) return absl::CancelledError("statehub: client closed");
        // Without a session there is no primary: any connection will do.
        up = id_.empty();
      }
      if (!up) {
        primary_.reset();
        last = OpenPrimary(std::min(limit, absl::Now() + connect_timeout_));
        up = last.ok();
      }
      if (up) {
        absl::MutexLock lock(&mu_);
        lost_since_ = absl::InfiniteFuture();
        return SessionTag{id_, generation_};
      }
    }
    const absl::Time now = absl::Now();
    if (now >= limit) return last;
    if (!PauseUntil(std::min(limit, now + backoff))) {
      return absl::CancelledError("statehub: client closed");
    }
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

absl::Status LaneTransport::OpenPrimary(absl::Time deadline) {
  v1::LaneHello hello;
  hello.set_protocol_version(lane::kProtocolVersion);
  hello.set_token(token_);
  hello.set_label(label_);
  {
    absl::MutexLock lock(&mu_);
    hello.set_resume_session_id(id_);
  }
  v1::Welcome welcome;
  absl::StatusOr<std::unique_ptr<LaneConnection>> conn =
      LaneConnection::Open(address_, hello, deadline, &welcome);
  if (!conn.ok()) return conn.status();
  std::vector<Pooled> dropped;
  {
    absl::MutexLock lock(&mu_);
    // A session that was not resumed is new even if its id repeats the old
    // one (a restarted server may hand out the same ids again).
    if (!welcome.resumed() || welcome.session_id() != id_) {
      if (!id_.empty()) {
        std::fprintf(stderr,
                     "statehub: session %s was lost (the server no longer "
                     "knows it: its lease expired or the server restarted); "
                     "its holds on anonymous objects are gone; continuing "
                     "with new session %s\n",
                     id_.c_str(), welcome.session_id().c_str());
      }
      id_ = welcome.session_id();
      ++generation_;
      pending_.clear();
      dropped.swap(pool_);
    }
    number_calls_.store(welcome.number_calls(), std::memory_order_relaxed);
    lost_since_ = absl::InfiniteFuture();
    lease_ttl_ = welcome.lease_ttl_ms() > 0
                     ? absl::Milliseconds(welcome.lease_ttl_ms())
                     : kDefaultLease;
  }
  primary_ = *std::move(conn);
  return absl::OkStatus();
}

void LaneTransport::Recover(uint64_t generation) {
  absl::MutexLock primary(&primary_mu_);
  {
    absl::MutexLock lock(&mu_);
    // Closed, or another thread has replaced the session already.
    if (closing_ || id_.empty() || generation != generation_) return;
  }
  primary_.reset();
  if (absl::Status s = OpenPrimary(absl::Now() + connect_timeout_); !s.ok()) {
    std::fprintf(stderr,
                 "statehub: cannot reopen the session on %s: %s; the next "
                 "call tries again\n",
                 address_.target.c_str(), s.ToString().c_str());
  }
}

void LaneTransport::KeepaliveLoop() {
  absl::Duration backoff = kMinBackoff;
  bool now = false;  // skip the wait: reconnect or send at once
  while (true) {
    uint64_t generation;
    absl::Duration lease;
    {
      absl::MutexLock lock(&mu_);
      const absl::Time next =
          absl::Now() + (now ? absl::ZeroDuration() : lease_ttl_ / 3);
      while (!closing_ && pending_.empty()) {
        if (cv_.WaitWithDeadline(&mu_, next)) break;
      }
      if (closing_) return;
      generation = generation_;
      lease = lease_ttl_;
    }
    now = false;
    absl::MutexLock primary(&primary_mu_);
    if (primary_ == nullptr || primary_->broken()) {
      primary_.reset();
      if (!OpenPrimary(absl::Now() + connect_timeout_).ok()) {
        absl::MutexLock lock(&mu_);
        const absl::Time retry = absl::Now() + backoff;
        while (!closing_) {
          if (cv_.WaitWithDeadline(&mu_, retry)) break;
        }
        backoff = std::min(backoff * 2, kMaxBackoff);
        now = true;
        continue;
      }
      backoff = kMinBackoff;
      absl::MutexLock lock(&mu_);
      generation = generation_;
    }
    const std::string releases = TakeReleases(generation);
    const absl::Status pinged = primary_->Ping(
        releases, absl::Now() + std::max(lease / 2, kMinPongTimeout));
    if (!pinged.ok()) {
      std::fprintf(stderr,
                   "statehub: session keepalive on %s failed (%s); "
                   "reconnecting\n",
                   address_.target.c_str(), pinged.ToString().c_str());
      now = true;
    }
  }
}

void LaneTransport::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    closing_ = true;
    cv_.SignalAll();
  }
  {
    absl::MutexLock lock(&join_mu_);
    if (keepalive_.joinable()) keepalive_.join();
  }
  {
    absl::MutexLock primary(&primary_mu_);
    if (primary_ != nullptr) {
      primary_->Goodbye(absl::Now() + kGoodbyeTimeout);
      primary_.reset();
    }
  }
  std::vector<Pooled> dropped;
  absl::MutexLock lock(&mu_);
  id_.clear();
  pending_.clear();
  dropped.swap(pool_);
}

}  // namespace statehub::client_internal
