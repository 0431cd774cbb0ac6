// File: server/grpc/grpc_adapter.h
//
// The gRPC transport: one grpc::Service per statehub.v1 service, built from
// the method table (server/handlers/methods.h), so every rpc is served by
// its one transport-neutral handler. The adapter admits each call (bearer
// token, `statehub-session` metadata), parses the request, runs the
// handler, and turns its status into a gRPC status with the ErrorDetail in
// the `statehub-error-bin` trailer. A call that may park gets a reactor of
// its own, so gRPC's OnCancel reaches the parked call; the others use the
// default reactor.
//
// Example:
//
//   GrpcAdapter adapter(engine, table, timers, &metrics);
//   for (grpc::Service* s : adapter.services()) builder.RegisterService(s);
//
// Thread safety: build before serving; then immutable.

#ifndef STATEHUB_SERVER_GRPC_GRPC_ADAPTER_H_
#define STATEHUB_SERVER_GRPC_GRPC_ADAPTER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/engine.h"
#include "server/handlers/call.h"
#include "server/handlers/methods.h"

namespace statehub::grpc_transport {

// ToGrpc translates a status for `ctx`'s call, attaching the error detail
// as the `statehub-error-bin` trailer.
grpc::Status ToGrpc(grpc::ServerContextBase* ctx, const absl::Status& status);

// BearerTokenOf returns the token of a call's `authorization: Bearer
// <token>` metadata, or "".
absl::string_view BearerTokenOf(const grpc::ServerContextBase* ctx);

// CallerOf admits a call: it checks its token (when the server requires
// one) and resolves its `statehub-session`. Errors: UNAUTHENTICATED, and
// Engine::ResolveCaller's.
absl::StatusOr<Caller> CallerOf(Engine& engine,
                                const grpc::ServerContextBase* ctx);

class GrpcAdapter {
 public:
  // `observer` may be null; everything must outlive the adapter.
  GrpcAdapter(Engine& engine, const handlers::MethodTable& table,
              handlers::Timers& timers, handlers::RpcObserver* observer);
  GrpcAdapter(const GrpcAdapter&) = delete;
  GrpcAdapter& operator=(const GrpcAdapter&) = delete;
  ~GrpcAdapter();

  std::vector<grpc::Service*> services() const;

 private:
  class TableService;

  std::vector<std::unique_ptr<TableService>> services_;
};

}  // namespace statehub::grpc_transport

#endif  // STATEHUB_SERVER_GRPC_GRPC_ADAPTER_H_
