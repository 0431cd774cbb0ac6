// File: server/grpc/watch_service.h
//
// The statehub.v1.Watches service on gRPC: one server-streaming reactor
// per watch. The reactor writes one response at a time, taking the next
// from the engine's watch when the last write is done; so a client that
// reads slowly makes the watch's backlog in the hub grow (bounded: it ends
// the watch with WATCH_TOO_OLD), never gRPC's buffers.
#ifndef STATEHUB_SERVER_GRPC_WATCH_SERVICE_H_
#define STATEHUB_SERVER_GRPC_WATCH_SERVICE_H_

#include <functional>

#include "server/engine/engine.h"
#include "statehub/v1/watch.grpc.pb.h"

namespace statehub::grpc_transport {

class WatchService final : public v1::Watches::CallbackService {
 public:
  // Post runs a function soon on a server thread (a watch's wake runs with
  // the engine's locks held, so its work is posted).
  using Post = std::function<void(std::function<void()>)>;

  WatchService(Engine& engine, Post post)
      : engine_(engine), post_(std::move(post)) {}

  grpc::ServerWriteReactor<v1::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const v1::WatchRequest* request) override;

 private:
  Engine& engine_;
  const Post post_;
};

}  // namespace statehub::grpc_transport

#endif  // STATEHUB_SERVER_GRPC_WATCH_SERVICE_H_
