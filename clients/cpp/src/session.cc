#include "session.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "statehub/internal/wire.h"
#include "statehub/status.h"

namespace statehub::client_internal {
namespace {

// Used when the server grants no lease (lease_ttl_ms 0); servers always send
// one, so this only keeps the arithmetic sane.
constexpr absl::Duration kDefaultLease = absl::Seconds(30);
// Reconnect backoff. The cap stays well under any sensible lease so that a
// server back within the lease finds us in time to resume.
constexpr absl::Duration kMinBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(1);
// How long a Goodbye waits for the server to end the stream.
constexpr absl::Duration kGoodbyeTimeout = absl::Seconds(2);
// How long Close waits for the session thread before cancelling the stream.
constexpr absl::Duration kCloseTimeout = absl::Seconds(5);
// Names per Release message, so a burst of releases never comes near the
// server's message size limit.
constexpr size_t kMaxReleaseBatch = 1000;

}  // namespace

// Connection is one attempt at the session stream.
struct Session::Connection {
  grpc::ClientContext ctx;
  std::unique_ptr<Stream> stream;
  std::thread reader;
};

Session::Session(std::shared_ptr<grpc::Channel> channel, std::string label,
                 std::string token)
    : stub_(v1::Sessions::NewStub(channel)),
      label_(std::move(label)),
      token_(std::move(token)) {}

Session::~Session() { Close(); }

absl::Status Session::Start(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
  }
  {
    absl::MutexLock lock(&join_mu_);
    thread_ = std::thread([this, timeout] { Run(timeout); });
  }
  absl::Status result;
  {
    absl::MutexLock lock(&mu_);
    // Run always sets start_result_: Welcome, a failed stream, or the
    // handshake's own timeout.
    while (!start_result_.has_value()) cv_.Wait(&mu_);
    result = *start_result_;
  }
  if (!result.ok()) Close();
  return result;
}

SessionTag Session::Current() const {
  absl::MutexLock lock(&mu_);
  return SessionTag{id_, generation_, streams_};
}

absl::Time Session::welcomed_at() const {
  absl::MutexLock lock(&mu_);
  return welcomed_at_;
}

absl::StatusOr<SessionTag> Session::AwaitStream(uint64_t after,
                                                absl::Time limit) {
  absl::MutexLock lock(&mu_);
  while (!closing_ && !(live_ && streams_ > after)) {
    if (cv_.WaitWithDeadline(&mu_, limit)) break;
  }
  if (closing_) return absl::CancelledError("statehub: client closed");
  if (!(live_ && streams_ > after)) {
    return absl::DeadlineExceededError(
        "statehub: the session stream did not come back in time");
  }
  return SessionTag{id_, generation_, streams_};
}

absl::Duration Session::lease_ttl() const {
  absl::MutexLock lock(&mu_);
  return id_.empty() ? absl::ZeroDuration() : lease_ttl_;
}

void Session::Release(uint64_t generation, std::string name) {
  absl::MutexLock lock(&mu_);
  // A hold of a lost session died with it; releasing its name now could drop
  // a hold the new session took on the same object.
  if (closing_ || id_.empty() || generation != generation_) return;
  pending_.push_back(std::move(name));
  cv_.SignalAll();
}

void Session::Kick(uint64_t generation) {
  absl::MutexLock lock(&mu_);
  if (generation != generation_) return;
  kicked_ = true;
  cv_.SignalAll();
}

void Session::Close() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    cv_.SignalAll();
    const absl::Time deadline = absl::Now() + kCloseTimeout;
    while (started_ && !thread_done_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    // A server that stopped reading leaves the thread blocked in a write;
    // cancelling the stream frees it.
    if (!thread_done_ && stream_ctx_ != nullptr) stream_ctx_->TryCancel();
  }
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

void Session::Run(absl::Duration first_timeout) {
  bool first = true;
  absl::Duration backoff = kMinBackoff;
  while (true) {
    Connection conn;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) break;
      stream_ctx_ = &conn.ctx;
      welcome_.reset();
      reader_done_ = false;
    }
    if (!token_.empty()) {
      conn.ctx.AddMetadata(internal::kAuthorizationKey, "Bearer " + token_);
    }
    conn.stream = stub_->Connect(&conn.ctx);
    conn.reader =
        std::thread([this, stream = conn.stream.get()] { ReadLoop(stream); });

    absl::Duration timeout = first_timeout;
    if (!first) {
      absl::MutexLock lock(&mu_);
      timeout = std::max(lease_ttl_, absl::Seconds(5));
    }
    absl::Status handshake = Handshake(conn.stream.get(), timeout);
    Outcome outcome = Outcome::kBroken;
    if (handshake.ok()) {
      first = false;
      backoff = kMinBackoff;
      outcome = Serve(conn.stream.get());
      absl::MutexLock lock(&mu_);
      live_ = false;
    }
    absl::Status final_status =
        Teardown(conn, /*goodbye=*/outcome == Outcome::kClosing);

    if (first) {
      // The first handshake failed: Start reports why and the thread ends.
      // A stream the server ended says more than "ended before Welcome".
      if (absl::IsUnavailable(handshake) && !final_status.ok()) {
        handshake = final_status;
      }
      if (handshake.message().empty()) {
        // E.g. UNIMPLEMENTED from a server without the Sessions service.
        handshake = StatusFromWire(
            handshake.code(),
            absl::StrCat("the server ended the session stream with ",
                         absl::StatusCodeToString(handshake.code())),
            SerializeErrorDetail(handshake));
      }
      absl::MutexLock lock(&mu_);
      start_result_ = handshake;
      cv_.SignalAll();
      break;
    }
    if (outcome == Outcome::kClosing) break;

    absl::MutexLock lock(&mu_);
    const absl::Time retry = absl::Now() + backoff;
    while (!closing_ && !kicked_) {
      if (cv_.WaitWithDeadline(&mu_, retry)) break;
    }
    if (closing_) break;
    kicked_ = false;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  absl::MutexLock lock(&mu_);
  id_.clear();
  pending_.clear();
  thread_done_ = true;
  cv_.SignalAll();
}

absl::Status Session::Handshake(Stream* stream, absl::Duration timeout) {
  v1::SessionRequest hello;
  {
    absl::MutexLock lock(&mu_);
    hello.mutable_hello()->set_resume_session_id(id_);
  }
  hello.mutable_hello()->set_label(label_);
  // A failed write means the server ended the stream (e.g. a wrong token):
  // wait for the reader to see the end too, so that Teardown reads the
  // server's status instead of cancelling the stream over it.
  const bool sent = stream->Write(hello);

  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  while (!welcome_.has_value() && !reader_done_ && !closing_) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (closing_) return absl::CancelledError("the client closed");
  if (!welcome_.has_value()) {
    if (!sent) {
      return absl::UnavailableError("the session stream closed before Hello");
    }
    if (reader_done_) {
      return absl::UnavailableError("the session stream ended before Welcome");
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "no session Welcome within ", absl::FormatDuration(timeout)));
  }
  const v1::Welcome& welcome = *welcome_;
  if (welcome.session_id().empty()) {
    return absl::InternalError("the server's Welcome has no session id");
  }
  // A session that was not resumed is new even if its id repeats the old one
  // (a restarted server may hand out the same ids again).
  if (!welcome.resumed() || welcome.session_id() != id_) {
    if (!id_.empty()) {
      std::fprintf(stderr,
                   "statehub: session %s was lost (the server no longer knows "
                   "it: its lease expired or the server restarted); its holds "
                   "on anonymous objects are gone; continuing with new "
                   "session %s\n",
                   id_.c_str(), welcome.session_id().c_str());
    }
    id_ = welcome.session_id();
    ++generation_;
    pending_.clear();
  }
  lease_ttl_ = welcome.lease_ttl_ms() > 0
                   ? absl::Milliseconds(welcome.lease_ttl_ms())
                   : kDefaultLease;
  last_received_ = absl::Now();
  number_calls_.store(welcome.number_calls(), std::memory_order_relaxed);
  ++streams_;
  live_ = true;
  welcomed_at_ = last_received_;
  cv_.SignalAll();  // AwaitStream
  if (!start_result_.has_value()) {
    start_result_ = absl::OkStatus();
    cv_.SignalAll();
  }
  return absl::OkStatus();
}

void Session::ReadLoop(Stream* stream) {
  v1::SessionResponse response;
  while (stream->Read(&response)) {
    absl::MutexLock lock(&mu_);
    last_received_ = absl::Now();
    if (response.has_welcome() && !welcome_.has_value()) {
      welcome_ = response.welcome();
      cv_.SignalAll();
    }
  }
  absl::MutexLock lock(&mu_);
  reader_done_ = true;
  cv_.SignalAll();
}

Session::Outcome Session::Serve(Stream* stream) {
  absl::Duration lease;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_ttl_;
  }
  const absl::Duration interval = lease / 3;
  absl::Time next_keepalive = absl::Now() + interval;
  while (true) {
    std::vector<std::string> releases;
    bool keepalive = false;
    {
      absl::MutexLock lock(&mu_);
      while (!closing_ && !reader_done_ && pending_.empty() && !kicked_) {
        if (cv_.WaitWithDeadline(&mu_, next_keepalive)) break;
      }
      if (closing_) return Outcome::kClosing;
      if (reader_done_) return Outcome::kBroken;
      const absl::Time now = absl::Now();
      // The server answers every keepalive; silence for a whole lease means
      // the stream is stuck even if the transport has not noticed yet.
      if (now - last_received_ > lease) {
        std::fprintf(stderr,
                     "statehub: session %s: no reply from the server for %s; "
                     "reconnecting\n",
                     id_.c_str(),
                     absl::FormatDuration(now - last_received_).c_str());
        return Outcome::kBroken;
      }
      releases.swap(pending_);
      keepalive = now >= next_keepalive || kicked_;
      kicked_ = false;
    }
    for (size_t i = 0; i < releases.size(); i += kMaxReleaseBatch) {
      v1::SessionRequest request;
      v1::Release* release = request.mutable_release();
      const size_t end = std::min(releases.size(), i + kMaxReleaseBatch);
      for (size_t j = i; j < end; ++j) {
        release->add_names(std::move(releases[j]));
      }
      if (!stream->Write(request)) return Outcome::kBroken;
    }
    if (keepalive) {
      v1::SessionRequest request;
      request.mutable_keepalive();
      if (!stream->Write(request)) return Outcome::kBroken;
      next_keepalive = absl::Now() + interval;
    }
  }
}

absl::Status Session::Teardown(Connection& conn, bool goodbye) {
  if (goodbye) {
    v1::SessionRequest request;
    request.mutable_goodbye();
    if (conn.stream->Write(request)) conn.stream->WritesDone();
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + kGoodbyeTimeout;
    while (!reader_done_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    // Wakes the reader if the server has not ended the stream.
    if (!reader_done_) conn.ctx.TryCancel();
    stream_ctx_ = nullptr;
  }
  conn.reader.join();
  const grpc::Status status = conn.stream->Finish();
  if (status.ok()) return absl::OkStatus();
  absl::string_view detail;
  const auto& trailers = conn.ctx.GetServerTrailingMetadata();
  if (auto it = trailers.find(internal::kErrorDetailKey);
      it != trailers.end()) {
    detail = absl::string_view(it->second.data(), it->second.size());
  }
  return internal::FromGrpcStatus(status, detail);
}

}  // namespace statehub::client_internal
