// File: server/grpc/session_service.h
//
// The statehub.v1.Sessions service: one bidi-stream reactor per connected
// client. Hello opens or resumes a session, Keepalive renews its lease,
// Release drops holds, Goodbye ends it. A stream that breaks leaves the
// session to expire on the server's timer, so a client may resume it.

#ifndef STATEHUB_SERVER_GRPC_SESSION_SERVICE_H_
#define STATEHUB_SERVER_GRPC_SESSION_SERVICE_H_

#include "server/engine/engine.h"
#include "statehub/v1/session.grpc.pb.h"

namespace statehub::grpc_transport {

class SessionService final : public v1::Sessions::CallbackService {
 public:
  explicit SessionService(Engine& engine) : engine_(engine) {}

  grpc::ServerBidiReactor<v1::SessionRequest, v1::SessionResponse>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  Engine& engine_;
};

}  // namespace statehub::grpc_transport

#endif  // STATEHUB_SERVER_GRPC_SESSION_SERVICE_H_
