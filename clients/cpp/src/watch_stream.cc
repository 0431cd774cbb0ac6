#include "watch_stream.h"

#include <atomic>
#include <deque>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "lane_connection.h"
#include "statehub/internal/lane.h"
#include "statehub/internal/wire.h"
#include "statehub/status.h"

namespace statehub::client_internal {
namespace {

// Responses a gRPC watch's reader thread keeps for Next before it stops
// reading (and the server's flow control holds the rest back).
constexpr size_t kMaxQueuedResponses = 16;

absl::Status BrokenError(absl::string_view address, absl::string_view why) {
  return absl::UnavailableError(absl::StrCat(
      "statehub: the watch's connection to ", address, " broke: ", why));
}

class LaneWatchStream final : public WatchStream {
 public:
  LaneWatchStream(LaneTransport::WatchConnection connection, uint32_t id,
                  std::string address)
      : conn_(std::move(connection.conn)),
        ping_every_(connection.ping_every),
        id_(id),
        address_(std::move(address)),
        last_sent_(absl::Now()) {}

  absl::StatusOr<std::optional<v1::WatchResponse>> Next(
      absl::Time deadline) override {
    while (true) {
      absl::Time until = deadline;
      if (ping_every_ != absl::InfiniteDuration()) {
        until = std::min(until, last_sent_ + ping_every_);
      }
      lane::Frame frame;
      absl::Status read = conn_->Read(&frame, until);
      if (absl::IsDeadlineExceeded(read)) {
        if (absl::Now() >= deadline) return std::nullopt;
        if (absl::Status s = conn_->SendPing(absl::Now() + ping_every_);
            !s.ok()) {
          return BrokenError(address_, s.message());
        }
        last_sent_ = absl::Now();
        continue;
      }
      if (!read.ok()) {
        if (closed_.load()) return absl::UnavailableError("watch closed");
        return BrokenError(address_, read.message());
      }
      const auto kind = static_cast<lane::Kind>(frame.header.kind);
      const uint32_t id = frame.header.request_id;
      if (id == id_ && kind == lane::Kind::kEvent) {
        v1::WatchResponse response;
        if (!response.ParseFromArray(frame.body.data(),
                                     static_cast<int>(frame.body.size()))) {
          return absl::InternalError(
              "statehub: the server sent a malformed watch EVENT");
        }
        return response;
      }
      // The ERROR that ends the watch, or one about the connection itself.
      if (kind == lane::Kind::kError && (id == id_ || id == 0)) {
        return LaneErrorStatus(frame.body);
      }
      // A PONG, or a frame kind this client does not know: not ours.
    }
  }

  void Close() override {
    if (closed_.exchange(true)) return;
    // Wakes a reader blocked on the socket; the server ends the watch when
    // the connection closes (in the destructor).
    conn_->Shutdown();
  }

 private:
  const std::unique_ptr<LaneConnection> conn_;
  const absl::Duration ping_every_;
  const uint32_t id_;
  const std::string address_;
  absl::Time last_sent_;
  std::atomic<bool> closed_{false};
};

class GrpcWatchStream final : public WatchStream {
 public:
  GrpcWatchStream(v1::Watches::Stub& stub,
                  std::unique_ptr<grpc::ClientContext> ctx,
                  const v1::WatchRequest& request, std::string address)
      : ctx_(std::move(ctx)),
        address_(std::move(address)),
        reader_(stub.Watch(ctx_.get(), request)) {
    thread_ = std::thread([this] { ReadLoop(); });
  }

  ~GrpcWatchStream() override {
    Close();
    thread_.join();
  }

  absl::StatusOr<std::optional<v1::WatchResponse>> Next(
      absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    while (queue_.empty() && !done_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    if (!queue_.empty()) {
      v1::WatchResponse response = std::move(queue_.front());
      queue_.pop_front();
      cv_.SignalAll();  // room for the reader
      return response;
    }
    if (done_) return end_;
    return std::nullopt;
  }

  void Close() override {
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return;
      closed_ = true;
      cv_.SignalAll();
    }
    ctx_->TryCancel();
  }

 private:
  void ReadLoop() {
    v1::WatchResponse response;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        while (queue_.size() >= kMaxQueuedResponses && !closed_) cv_.Wait(&mu_);
        if (closed_) break;
      }
      if (!reader_->Read(&response)) break;
      absl::MutexLock lock(&mu_);
      queue_.push_back(std::move(response));
      response = v1::WatchResponse();
      cv_.SignalAll();
    }
    // Read returned false: the stream ended (its status is there to take)
    // or Close cancelled it.
    const grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    end_ = EndStatus(status);
    done_ = true;
    cv_.SignalAll();
  }

  absl::Status EndStatus(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closed_) return absl::UnavailableError("watch closed");
    absl::string_view detail;
    const auto& trailers = ctx_->GetServerTrailingMetadata();
    if (auto it = trailers.find(internal::kErrorDetailKey);
        it != trailers.end()) {
      detail = absl::string_view(it->second.data(), it->second.size());
    }
    // A watch ends only with an error of the server's, which carries a
    // detail. A stream that ended otherwise, or was cancelled without our
    // asking (the server shutting down), or that gRPC itself found
    // unavailable, broke.
    if (detail.empty() &&
        (status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE ||
         status.error_code() == grpc::StatusCode::CANCELLED)) {
      return BrokenError(
          address_, status.ok() ? "the stream ended" : status.error_message());
    }
    return internal::FromGrpcStatus(status, detail);
  }

  const std::unique_ptr<grpc::ClientContext> ctx_;
  const std::string address_;
  const std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader_;
  std::thread thread_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  std::deque<v1::WatchResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

bool Broke(const absl::Status& status) {
  return absl::IsUnavailable(status) &&
         GetErrorKind(status) == ErrorKind::kUnspecified;
}

absl::StatusOr<std::unique_ptr<WatchStream>> StartLaneWatch(
    LaneTransport& lane, const v1::WatchRequest& request, bool resuming,
    absl::Time deadline) {
  static const uint16_t method =
      RpcOf(v1::WatchRequest::descriptor()).lane_method;
  absl::StatusOr<LaneTransport::WatchConnection> connection =
      lane.OpenWatchConnection(resuming, deadline);
  if (!connection.ok()) return connection.status();
  absl::StatusOr<uint32_t> id =
      connection->conn->StartCall(method, request, deadline);
  if (!id.ok()) return BrokenError(lane.target(), id.status().message());
  return std::make_unique<LaneWatchStream>(*std::move(connection), *id,
                                           lane.target());
}

std::unique_ptr<WatchStream> StartGrpcWatch(
    v1::Watches::Stub& stub, std::unique_ptr<grpc::ClientContext> ctx,
    const v1::WatchRequest& request, std::string address) {
  return std::make_unique<GrpcWatchStream>(stub, std::move(ctx), request,
                                           std::move(address));
}

}  // namespace statehub::client_internal
