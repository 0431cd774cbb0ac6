#include "bench/bench_util.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace statehub::bench {

absl::StatusOr<Target> Target::Resolve(const std::string& address,
                                       bool unix_socket) {
  Target target;
  if (!address.empty()) {
    target.address_ = address;
    return target;
  }
  // A 10 s lease (not the helper's 2 s) so a keepalive delayed by a loaded
  // machine does not end a session mid-run.
  absl::StatusOr<std::unique_ptr<testing::ServerProcess>> server =
      testing::ServerProcess::Start({"--lease_ttl=10s", "--log_level=warn"});
  if (!server.ok()) return server.status();
  target.server_ = std::move(*server);
  target.address_ = unix_socket ? target.server_->unix_address()
                                : target.server_->tcp_address();
  return target;
}

std::optional<pid_t> Target::server_pid() const {
  if (server_ == nullptr) return std::nullopt;
  return server_->pid();
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("statehub.bench.connection", index);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   args);
}

Session::Session(const std::shared_ptr<grpc::Channel>& channel)
    : stub_(v1::Sessions::NewStub(channel)) {}

absl::StatusOr<std::unique_ptr<Session>> Session::Open(
    const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
    absl::Duration timeout) {
  std::unique_ptr<Session> session(new Session(channel));
  session->stub_->async()->Connect(&session->ctx_, session.get());
  {
    absl::MutexLock lock(&session->mu_);
    v1::SessionRequest hello;
    hello.mutable_hello()->set_label(std::string(label));
    session->Write(std::move(hello));
  }
  session->StartRead(&session->response_);
  // The hold lets the keepalive thread and Close start writes outside a
  // reaction (OnDone cannot run under it); Close removes it.
  session->AddHold();
  session->StartCall();

  std::optional<v1::Welcome> welcome;
  bool ended = false;
  {
    absl::MutexLock lock(&session->mu_);
    auto ready = [s = session.get()]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
      return s->welcome_.has_value() || s->read_done_;
    };
    session->mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    welcome = session->welcome_;
    ended = session->read_done_;
  }
  if (!welcome.has_value()) {
    session->Close();
    absl::MutexLock lock(&session->mu_);
    std::string why = ended ? "the session stream ended before Welcome"
                            : "no session Welcome in time";
    if (session->done_.has_value() && !session->done_->ok()) {
      absl::StrAppend(&why, ": ", session->done_->error_message());
    }
    return ended ? absl::UnavailableError(why)
                 : absl::DeadlineExceededError(why);
  }
  session->id_ = welcome->session_id();
  const int64_t lease_ms =
      welcome->lease_ttl_ms() > 0 ? welcome->lease_ttl_ms() : 10'000;
  const absl::Duration interval = absl::Milliseconds(lease_ms) / 3;
  session->keepalive_ = std::thread(
      [s = session.get(), interval] { s->KeepaliveLoop(interval); });
  return session;
}

Session::~Session() { Close(); }

void Session::KeepaliveLoop(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  auto closing = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&closing), interval)) {
    if (read_done_) return;
    v1::SessionRequest keepalive;
    keepalive.mutable_keepalive();
    Write(std::move(keepalive));
  }
}

void Session::Close() {
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    first = !closing_;
    closing_ = true;
  }
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return done_.has_value();
  };
  if (first) {
    if (keepalive_.joinable()) keepalive_.join();
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      if (read_done_) {
        // The stream already ended; nothing to say.
      } else if (welcome_.has_value()) {
        v1::SessionRequest goodbye;
        goodbye.mutable_goodbye();
        Write(std::move(goodbye));
      } else {
        cancel = true;
      }
    }
    // TryCancel outside mu_: it may run gRPC work on this thread.
    if (cancel) ctx_.TryCancel();
    RemoveHold();
  }
  bool ended = false;
  {
    absl::MutexLock lock(&mu_);
    ended = mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(5));
  }
  if (!ended) {
    ctx_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done));
  }
}

void Session::Write(v1::SessionRequest message) {
  if (writing_) {
    // Only keepalives and the final Goodbye queue; the latest one suffices.
    queued_ = std::move(message);
    return;
  }
  writing_ = true;
  in_flight_ = std::move(message);
  StartWrite(&in_flight_);
}

void Session::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (ok && queued_.has_value()) {
    v1::SessionRequest next = std::move(*queued_);
    queued_.reset();
    Write(std::move(next));
  }
}

void Session::OnReadDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (!ok) {
    read_done_ = true;
    return;
  }
  if (response_.has_welcome() && !welcome_.has_value()) {
    welcome_ = response_.welcome();
  }
  StartRead(&response_);
}

void Session::OnDone(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  read_done_ = true;
  done_ = status;
}

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t Percentile(std::vector<int64_t>& samples, double q) {
  if (samples.empty()) return 0;
  const size_t rank = std::min(
      samples.size() - 1, static_cast<size_t>(q * (samples.size() - 1) + 0.5));
  std::nth_element(samples.begin(), samples.begin() + rank, samples.end());
  return samples[rank];
}

absl::StatusOr<int64_t> RssBytes(pid_t pid) {
  const std::string path = absl::StrCat("/proc/", pid, "/status");
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    int64_t kib = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kib)) {
      return kib * 1024;
    }
  }
  return absl::NotFoundError(absl::StrCat("no VmRSS in ", path));
}

void DieIfError(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(what.size()), what.data(),
               status.ToString().c_str());
  std::exit(1);
}

void DieIfError(const grpc::Status& status, absl::string_view what) {
  if (status.ok()) return;
  std::fprintf(stderr, "%.*s: gRPC %d: %s\n", static_cast<int>(what.size()),
               what.data(), static_cast<int>(status.error_code()),
               status.error_message().c_str());
  std::exit(1);
}

}  // namespace statehub::bench
