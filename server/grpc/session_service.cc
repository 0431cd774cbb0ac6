#include "server/grpc/session_service.h"

#include <deque>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "server/engine/mutex.h"
#include "server/grpc/grpc_adapter.h"
#include "spdlog/spdlog.h"

namespace statehub::grpc_transport {
namespace {

// One reactor per stream. Reads run one at a time; writes are queued and
// sent one at a time; Finish waits for the last write. Deletes itself in
// OnDone.
class SessionReactor final
    : public grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse> {
 public:
  SessionReactor(Engine& engine, grpc::CallbackServerContext* ctx)
      : engine_(engine), ctx_(ctx) {
    if (engine_.requires_token()) {
      if (absl::Status s = engine_.CheckToken(BearerTokenOf(ctx)); !s.ok()) {
        FinishWhenIdle(ToGrpc(ctx_, s));
        return;
      }
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client closed its side or the stream broke. The session stays
      // until its lease runs out, so the client can resume it.
      FinishWhenIdle(grpc::Status::OK);
      return;
    }
    const absl::Time now = absl::Now();
    switch (request_.message_case()) {
      case v1::SessionRequest::kHello: {
        if (session_ != 0) return Fail("Hello sent twice on one stream");
        const absl::StatusOr<SessionTable::Opened> opened =
            engine_.sessions().Open(
                SessionTable::ParseId(request_.hello().resume_session_id()),
                request_.hello().label(), now);
        if (!opened.ok()) {
          SPDLOG_WARN("{}", opened.status().ToString());
          FinishWhenIdle(ToGrpc(ctx_, opened.status()));
          return;
        }
        session_ = opened->id;
        SPDLOG_DEBUG("session {} {} ({})", SessionTable::FormatId(session_),
                     opened->resumed ? "resumed" : "opened",
                     request_.hello().label());
        v1::SessionResponse welcome;
        welcome.mutable_welcome()->set_session_id(
            SessionTable::FormatId(opened->id));
        welcome.mutable_welcome()->set_resumed(opened->resumed);
        welcome.mutable_welcome()->set_lease_ttl_ms(
            absl::ToInt64Milliseconds(engine_.sessions().ttl()));
        // A gRPC session lives by its lease, so it outlives a lost
        // connection: a retry may meet a call that ran.
        welcome.mutable_welcome()->set_number_calls(true);
        Write(std::move(welcome));
        break;
      }
      case v1::SessionRequest::kKeepalive: {
        if (!Renew(now)) return;
        v1::SessionResponse ack;
        ack.mutable_keepalive_ack();
        Write(std::move(ack));
        break;
      }
      case v1::SessionRequest::kRelease: {
        if (!Renew(now)) return;
        engine_.registry().ReleaseHolds(session_,
                                        {request_.release().names().begin(),
                                         request_.release().names().end()});
        break;
      }
      case v1::SessionRequest::kGoodbye: {
        if (session_ != 0) {
          engine_.sessions().End(session_, request_.goodbye());
        }
        FinishWhenIdle(grpc::Status::OK);
        return;
      }
      case v1::SessionRequest::MESSAGE_NOT_SET:
        return Fail("empty session message");
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&mu_);
    writing_ = false;
    if (ok && !pending_.empty()) {
      WriteLocked();
      return;
    }
    if (!ok) pending_.clear();
    if (finish_) FinishLocked();
  }

  void OnDone() override { delete this; }

 private:
  // Renews the lease; a stream whose session ended is finished.
  bool Renew(absl::Time now) {
    if (session_ == 0) {
      Fail("the first session message must be Hello");
      return false;
    }
    if (!engine_.sessions().Touch(session_, now)) {
      FinishWhenIdle(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          "session " + SessionTable::FormatId(session_) +
              " has ended (lease expired or closed); open a new one"));
      return false;
    }
    return true;
  }

  void Fail(const std::string& message) {
    FinishWhenIdle(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message));
  }

  void Write(v1::SessionResponse response) {
    MutexLock lock(&mu_);
    pending_.push_back(std::move(response));
    if (!writing_) WriteLocked();
  }

  void WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    in_flight_ = std::move(pending_.front());
    pending_.pop_front();
    StartWrite(&in_flight_);
  }

  void FinishWhenIdle(grpc::Status status) {
    MutexLock lock(&mu_);
    if (finish_) return;
    finish_ = std::move(status);
    if (!writing_) FinishLocked();
  }

  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    finished_ = true;
    Finish(*finish_);
  }

  Engine& engine_;
  grpc::CallbackServerContext* const ctx_;
  // Touched only by OnReadDone, which gRPC never runs concurrently with
  // itself.
  v1::SessionRequest request_;
  SessionId session_ = 0;

  Mutex mu_;
  std::deque<v1::SessionResponse> pending_ ABSL_GUARDED_BY(mu_);
  v1::SessionResponse in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>*
SessionService::Connect(grpc::CallbackServerContext* ctx) {
  return new SessionReactor(engine_, ctx);
}

}  // namespace statehub::grpc_transport
