#include "server/grpc/watch_service.h"

#include <memory>
#include <optional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "server/engine/mutex.h"
#include "server/grpc/grpc_adapter.h"
#include "server/handlers/watch_handlers.h"

namespace statehub::grpc_transport {
namespace {

// One watch on one stream. Its state lives in a Shared that the watch's
// wake reaches through a weak pointer, so a wake posted after the stream
// ended finds nothing to do. Deletes itself in OnDone.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchResponse> {
 public:
  WatchReactor(Engine& engine, const WatchService::Post& post,
               grpc::CallbackServerContext* ctx,
               const v1::WatchRequest& request)
      : ctx_(ctx), shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    absl::StatusOr<Caller> caller = CallerOf(engine, ctx);
    if (!caller.ok()) {
      Finish(ToGrpc(ctx, caller.status()));
      return;
    }
    std::weak_ptr<Shared> weak = shared_;
    absl::StatusOr<std::shared_ptr<statehub::Watch>> watch =
        engine.watches().Start(handlers::WatchSpecOf(request), [weak, post] {
          post([weak] {
            if (std::shared_ptr<Shared> shared = weak.lock()) shared->Pump();
          });
        });
    if (!watch.ok()) {
      Finish(ToGrpc(ctx, watch.status()));
      return;
    }
    MutexLock lock(&shared_->mu);
    watch_ = *std::move(watch);
    handlers::FillStarted(*watch_, &in_flight_);
    writing_ = true;
    StartWrite(&in_flight_);
  }

  void OnWriteDone(bool ok) override {
    MutexLock lock(&shared_->mu);
    writing_ = false;
    if (!ok) {
      // The stream broke: nothing more can be written.
      EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream broken"));
      return;
    }
    if (finishing_after_write_) return EndLocked(*end_);
    PumpLocked();
  }

  void OnCancel() override {
    MutexLock lock(&shared_->mu);
    EndLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }

  void OnDone() override {
    {
      MutexLock lock(&shared_->mu);
      shared_->reactor = nullptr;
    }
    if (watch_ != nullptr) watch_->Cancel();
    delete this;
  }

 private:
  struct Shared {
    Mutex mu;
    WatchReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
    void Pump() {
      MutexLock lock(&mu);
      if (reactor != nullptr) reactor->PumpLocked();
    }
  };

  // PumpLocked writes the next response, if the last write is done.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    if (writing_ || finishing_ || watch_ == nullptr) return;
    Watch::Batch batch =
        watch_->Take(handlers::kWatchBatchChanges, handlers::kWatchBatchBytes);
    in_flight_.Clear();
    const bool send = handlers::FillBatch(batch, &in_flight_);
    if (!batch.end.ok()) {
      end_ = ToGrpc(ctx_, batch.end);
      if (!send) return EndLocked(*end_);
    }
    if (!send) return;
    writing_ = true;
    StartWrite(&in_flight_);
    // A batch cut short is taken again when this write is done
    // (OnWriteDone); an ended one finishes then.
    if (end_.has_value()) finishing_after_write_ = true;
  }

  void EndLocked(grpc::Status status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared_->mu) {
    if (finishing_) return;
    if (writing_) {
      // Finish waits for the write in flight.
      if (!end_.has_value()) end_ = std::move(status);
      finishing_after_write_ = true;
      return;
    }
    finishing_ = true;
    if (watch_ != nullptr) watch_->Cancel();
    Finish(status);
  }

  grpc::CallbackServerContext* const ctx_;
  const std::shared_ptr<Shared> shared_;
  std::shared_ptr<statehub::Watch> watch_;
  v1::WatchResponse in_flight_;
  bool writing_ = false;
  bool finishing_ = false;
  bool finishing_after_write_ = false;
  std::optional<grpc::Status> end_;
};

}  // namespace

grpc::ServerWriteReactor<v1::WatchResponse>* WatchService::Watch(
    grpc::CallbackServerContext* ctx, const v1::WatchRequest* request) {
  return new WatchReactor(engine_, post_, ctx, *request);
}

}  // namespace statehub::grpc_transport
