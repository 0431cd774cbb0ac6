// File: server/service/call.h
//
// The thin part every unary handler shares: find the caller's session, run
// the engine operation, translate its absl::Status into a gRPC status (the
// one translation point) with the ErrorDetail trailer, and finish the call.
// Also the request-side conversions that apply the value limits.

#ifndef STATEHUB_SERVER_SERVICE_CALL_H_
#define STATEHUB_SERVER_SERVICE_CALL_H_

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/engine.h"
#include "server/engine/slice.h"
#include "statehub/internal/wire.h"
#include "statehub/v1/list.pb.h"
#include "statehub/v1/value.pb.h"

// STATEHUB_ASSIGN_OR_RETURN(lhs, expr): evaluates expr (a StatusOr); returns
// its status on error, otherwise moves its value into lhs.
#define STATEHUB_CONCAT_INNER(a, b) a##b
#define STATEHUB_CONCAT(a, b) STATEHUB_CONCAT_INNER(a, b)
#define STATEHUB_ASSIGN_OR_RETURN(lhs, expr)              \
  auto STATEHUB_CONCAT(statusor_, __LINE__) = (expr);     \
  if (!STATEHUB_CONCAT(statusor_, __LINE__).ok())         \
    return STATEHUB_CONCAT(statusor_, __LINE__).status(); \
  lhs = *std::move(STATEHUB_CONCAT(statusor_, __LINE__))
#define STATEHUB_RETURN_IF_ERROR(expr)                 \
  do {                                                 \
    if (absl::Status s_ = (expr); !s_.ok()) return s_; \
  } while (false)

namespace statehub::service {

// ToGrpc translates an engine status for `ctx`'s call, attaching the error
// detail as the `statehub-error-bin` trailer.
grpc::Status ToGrpc(grpc::CallbackServerContext* ctx,
                    const absl::Status& status);

// SessionIdOf returns the `statehub-session` metadata of a call, or "".
absl::string_view SessionIdOf(const grpc::CallbackServerContext* ctx);

// BearerTokenOf returns the token of a call's `authorization: Bearer <token>`
// metadata, or "".
absl::string_view BearerTokenOf(const grpc::CallbackServerContext* ctx);

// CallerOf admits a call: it checks its token (when the server requires one)
// and resolves its session. Every statehub rpc starts here. Errors:
// UNAUTHENTICATED, and ResolveCaller's.
absl::StatusOr<Caller> CallerOf(Engine& engine,
                                const grpc::CallbackServerContext* ctx);

// Serve runs `op(caller)` for a unary call and finishes it. `op` returns an
// absl::Status; it runs on a gRPC callback thread and must not block.
template <typename Op>
grpc::ServerUnaryReactor* Serve(Engine& engine,
                                grpc::CallbackServerContext* ctx, Op&& op) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::StatusOr<Caller> caller = CallerOf(engine, ctx);
  const absl::Status status = caller.ok() ? op(*caller) : caller.status();
  reactor->Finish(ToGrpc(ctx, status));
  return reactor;
}

// Decoder turns request values into engine values, enforcing
// --max_value_bytes and --max_depth; errors name the object the request is
// for.
class Decoder {
 public:
  Decoder(const Limits& limits, ObjectType type, absl::string_view name)
      : limits_(limits), type_(type), name_(name) {}

  absl::StatusOr<Value> operator()(const v1::Value& wire) const;
  // An optional field: nullopt when unset.
  absl::StatusOr<std::optional<Value>> Optional(bool has,
                                                const v1::Value& wire) const;
  absl::StatusOr<Value::Items> Items(
      const google::protobuf::RepeatedPtrField<v1::Value>& wire) const;
  absl::StatusOr<Value::Entries> Entries(
      const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire) const;

 private:
  const Limits& limits_;
  const ObjectType type_;
  const absl::string_view name_;
};

// SliceOf converts a wire slice; an unset subscript means the full slice.
SliceSpec SliceOf(const v1::Slice& wire);

// Encode helpers for replies.
void EncodeItems(const Value::Items& items,
                 google::protobuf::RepeatedPtrField<v1::Value>* wire);
void EncodeEntries(const Value::Entries& entries,
                   google::protobuf::RepeatedPtrField<v1::MapEntry>* wire);

}  // namespace statehub::service

#endif  // STATEHUB_SERVER_SERVICE_CALL_H_
