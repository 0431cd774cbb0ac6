#include "server/grpc/grpc_adapter.h"

#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/impl/codegen/server_callback_handlers.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/impl/service_type.h"
#include "statehub/internal/wire.h"
#include "statehub/status.h"

namespace statehub::grpc_transport {
namespace {

using google::protobuf::Message;
using handlers::Method;
using Codec = grpc::SerializationTraits<Message>;

// Parses a request; the error names the message type.
absl::Status Parse(grpc::ByteBuffer* buffer, const Method& m, Message* out) {
  if (Codec::Deserialize(buffer, out).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrFormat("%s: the request is not a valid %s", m.full_name,
                      m.request->GetDescriptor()->full_name()));
}

// The reply of a finished call: the response if OK, else the status and
// its trailer.
grpc::Status Reply(grpc::ServerContextBase* ctx, const absl::Status& status,
                   const Message& response, grpc::ByteBuffer* out) {
  if (!status.ok()) return ToGrpc(ctx, status);
  bool own = false;
  return Codec::Serialize(response, out, &own);
}

// An rpc that answers before its handler returns: on the stack, finished
// through the default reactor.
class ImmediateCall final : public handlers::Call {
 public:
  ImmediateCall(grpc::CallbackServerContext* ctx,
                grpc::ServerUnaryReactor* reactor, grpc::ByteBuffer* out,
                const Method& m, Caller caller, handlers::Timers* timers,
                handlers::RpcObserver* observer)
      : Call(handlers::Transport::kGrpc, caller, timers, observer, m.index),
        ctx_(ctx),
        reactor_(reactor),
        out_(out),
        response_(m.response->New()) {}
  ~ImmediateCall() override = default;

  Message* response() { return response_.get(); }

 private:
  void Send(const absl::Status& status) override {
    reactor_->Finish(Reply(ctx_, status, *response_, out_));
  }

  grpc::CallbackServerContext* const ctx_;
  grpc::ServerUnaryReactor* const reactor_;
  grpc::ByteBuffer* const out_;
  const std::unique_ptr<Message> response_;
};

// An rpc that may park: its own reactor, so that a cancellation reaches the
// parked call; deletes itself when gRPC is done with it.
class ParkingCall final : public grpc::ServerUnaryReactor,
                          public handlers::Call {
 public:
  ParkingCall(grpc::CallbackServerContext* ctx, grpc::ByteBuffer* out,
              const Method& m, Caller caller, handlers::Timers* timers,
              handlers::RpcObserver* observer, ChangeStream* changes)
      : Call(handlers::Transport::kGrpc, caller, timers, observer, m.index,
             changes, m.read_only),
        ctx_(ctx),
        out_(out),
        request_(m.request->New()),
        response_(m.response->New()) {}

  Message* request() { return request_.get(); }
  Message* response() { return response_.get(); }

  void OnCancel() override { Cancel(); }
  void OnDone() override { delete this; }

 private:
  ~ParkingCall() override = default;
  void Send(const absl::Status& status) override {
    grpc::ServerUnaryReactor::Finish(Reply(ctx_, status, *response_, out_));
  }

  grpc::CallbackServerContext* const ctx_;
  grpc::ByteBuffer* const out_;
  const std::unique_ptr<Message> request_;
  const std::unique_ptr<Message> response_;
};

}  // namespace

grpc::Status ToGrpc(grpc::ServerContextBase* ctx, const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string detail = SerializeErrorDetail(status);
  if (!detail.empty()) {
    ctx->AddTrailingMetadata(internal::kErrorDetailKey, std::move(detail));
  }
  return internal::ToGrpcStatus(status);
}

absl::string_view BearerTokenOf(const grpc::ServerContextBase* ctx) {
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find(internal::kAuthorizationKey);
  if (it == metadata.end()) return {};
  absl::string_view value(it->second.data(), it->second.size());
  // The scheme is case-insensitive (RFC 9110, section 11.1).
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return {};
  }
  return value.substr(kScheme.size());
}

absl::StatusOr<Caller> CallerOf(Engine& engine,
                                const grpc::ServerContextBase* ctx) {
  if (engine.requires_token()) {
    if (absl::Status s = engine.CheckToken(BearerTokenOf(ctx)); !s.ok()) {
      return s;
    }
  }
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find(internal::kSessionKey);
  absl::string_view session;
  if (it != metadata.end()) {
    session = absl::string_view(it->second.data(), it->second.size());
  }
  return engine.ResolveCaller(session, absl::Now());
}

// NumberOf reads a numbered call's "statehub-call" metadata, "<number>
// <seen>": {0, 0} when there is none. Errors: INVALID_ARGUMENT for a value
// that is not two numbers, the first above 0.
absl::StatusOr<std::pair<uint64_t, uint64_t>> NumberOf(
    const grpc::ServerContextBase* ctx) {
  const auto& metadata = ctx->client_metadata();
  auto it = metadata.find(internal::kCallKey);
  if (it == metadata.end()) return std::pair<uint64_t, uint64_t>{0, 0};
  const absl::string_view value(it->second.data(), it->second.size());
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(value, absl::MaxSplits(' ', 1));
  uint64_t number = 0;
  uint64_t seen = 0;
  if (!absl::SimpleAtoi(parts.first, &number) ||
      !absl::SimpleAtoi(parts.second, &seen) || number == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s metadata \"%s\" is not \"<number> <seen>\" with a number above 0",
        internal::kCallKey, absl::CHexEscape(value)));
  }
  return std::pair<uint64_t, uint64_t>{number, seen};
}

// One proto service's methods, registered as callback methods over raw
// byte buffers: the table's handler does the typed work.
class GrpcAdapter::TableService final : public grpc::Service {
 public:
  TableService(Engine& engine, handlers::Timers& timers,
               handlers::RpcObserver* observer)
      : engine_(engine), timers_(timers), observer_(observer) {}

  void Add(const Method& m) {
    const int index = static_cast<int>(names_.size());
    names_.push_back(m.grpc_path);
    AddMethod(new grpc::internal::RpcServiceMethod(
        names_.back().c_str(), grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
    MarkMethodCallback(
        index, new grpc::internal::CallbackUnaryHandler<grpc::ByteBuffer,
                                                        grpc::ByteBuffer>(
                   [this, &m](grpc::CallbackServerContext* ctx,
                              const grpc::ByteBuffer* request,
                              grpc::ByteBuffer* response) {
                     return Serve(m, ctx,
                                  const_cast<grpc::ByteBuffer*>(request),
                                  response);
                   }));
  }

 private:
  grpc::ServerUnaryReactor* Serve(const Method& m,
                                  grpc::CallbackServerContext* ctx,
                                  grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) {
    absl::StatusOr<Caller> caller = CallerOf(engine_, ctx);
    ChangeAuthor author(caller.ok() ? caller->session : 0);
    // With a data dir a reply may wait for the log (Call::Finish), so the
    // call must outlive this function: it goes the parked calls' way.
    if (m.blocking || engine_.changes().durable()) {
      auto* call =
          new ParkingCall(ctx, response, m, caller.ok() ? *caller : Caller{},
                          &timers_, observer_, &engine_.changes());
      absl::StatusOr<std::pair<uint64_t, uint64_t>> number = NumberOf(ctx);
      absl::Status admitted = caller.status();
      if (admitted.ok()) admitted = number.status();
      if (admitted.ok()) admitted = Parse(request, m, call->request());
      if (!admitted.ok()) {
        call->handlers::Call::Finish(admitted);
      } else {
        handlers::Serve(engine_, m, call, number->first, number->second,
                        *call->request(), call->response());
      }
      return call;
    }
    // DefaultReactor constructs the reactor anew on every call: once only.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    ImmediateCall call(ctx, reactor, response, m,
                       caller.ok() ? *caller : Caller{}, &timers_, observer_);
    if (!caller.ok()) {
      call.Finish(caller.status());
      return reactor;
    }
    absl::StatusOr<std::pair<uint64_t, uint64_t>> number = NumberOf(ctx);
    if (!number.ok()) {
      call.Finish(number.status());
      return reactor;
    }
    std::unique_ptr<Message> req(m.request->New());
    if (absl::Status s = Parse(request, m, req.get()); !s.ok()) {
      call.Finish(s);
      return reactor;
    }
    handlers::Serve(engine_, m, &call, number->first, number->second, *req,
                    call.response());
    return reactor;
  }

  Engine& engine_;
  handlers::Timers& timers_;
  handlers::RpcObserver* const observer_;
  // RpcServiceMethod keeps the name's pointer: the strings must stay put.
  std::deque<std::string> names_;
};

GrpcAdapter::GrpcAdapter(Engine& engine, const handlers::MethodTable& table,
                         handlers::Timers& timers,
                         handlers::RpcObserver* observer) {
  std::string current;
  for (const Method& m : table.methods()) {
    const std::string& service = m.descriptor->service()->full_name();
    if (service != current) {
      services_.push_back(
          std::make_unique<TableService>(engine, timers, observer));
      current = service;
    }
    services_.back()->Add(m);
  }
}

GrpcAdapter::~GrpcAdapter() = default;

std::vector<grpc::Service*> GrpcAdapter::services() const {
  std::vector<grpc::Service*> out;
  for (const auto& s : services_) out.push_back(s.get());
  return out;
}

}  // namespace statehub::grpc_transport
