// File: tests/fuzz/fake_call.h
//
// Calls into the gRPC service handlers of server/service/ without a server,
// channel or thread: the handler runs on the caller's stack, exactly as the
// callback API would run it, and the harness plays gRPC's part.
//
//   - A unary handler finishes through the context's default reactor, which
//     gRPC's own test hook (DefaultReactorTestPeer) binds to a stub that
//     records the status.
//   - A blocking handler (acquire, wait, get, ...) returns its own reactor, a
//     service::ParkedCall. BlockingCall binds it to a FakeUnaryCall, as gRPC
//     binds the reactor a handler returned, and later runs OnCancel and
//     OnDone when the harness says so: a client cancelling, and gRPC
//     retiring a finished call.
//   - The caller's session travels as the `statehub-session` client
//     metadata, which only gRPC's befriended test class can set (below).
//
// Everything is deterministic and single-threaded, except a timeout's
// grpc::Alarm, which fires on a gRPC thread; the fuzz target never lets one
// fire (it sends only unset, zero or very long timeouts).
//
// Example:
//
//   v1::DictLenRequest req;
//   req.set_name("jobs");
//   v1::DictLenResponse resp;
//   Outcome out = Unary(dicts, &service::DictService::Len, session, req,
//                       &resp);
//
// Not thread-safe.

#ifndef STATEHUB_TESTS_FUZZ_FAKE_CALL_H_
#define STATEHUB_TESTS_FUZZ_FAKE_CALL_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/test/default_reactor_test_peer.h"
#include "server/engine/waiter.h"
#include "server/service/parked_call.h"
#include "tests/fuzz/check.h"

namespace grpc::testing {

// ServerContextBase befriends this test-only class so that tests can inject
// client metadata. gRPC's own definition
// (grpcpp/test/server_context_test_spouse.h) takes only a ServerContext, not
// the CallbackServerContext of the callback API, so the fuzz targets define
// the class themselves; nothing else in the program does.
class ServerContextTestSpouse {
 public:
  explicit ServerContextTestSpouse(ServerContextBase* ctx) : ctx_(ctx) {}

  // Adds a client metadata entry; the spouse keeps the bytes, so it must
  // outlive the context's use.
  void AddClientMetadata(const std::string& key, const std::string& value);
  // The trailing metadata the handler set.
  std::multimap<std::string, std::string> GetTrailingMetadata() const;

 private:
  ServerContextBase* const ctx_;
  std::multimap<std::string, std::string> client_metadata_storage_;
};

}  // namespace grpc::testing

namespace statehub::fuzz {

// Outcome is how a call finished: its status and the serialized ErrorDetail
// trailer (`statehub-error-bin`), "" if none.
struct Outcome {
  grpc::Status status;
  std::string detail;
};

// CallContext is one call's server context, carrying `session_id` as the
// statehub-session metadata ("" for none).
class CallContext {
 public:
  explicit CallContext(const std::string& session_id);
  CallContext(const CallContext&) = delete;
  CallContext& operator=(const CallContext&) = delete;

  grpc::CallbackServerContext* get() { return &ctx_; }
  // ErrorDetail is the statehub-error-bin trailer, or "".
  std::string ErrorDetail() const;

 private:
  grpc::CallbackServerContext ctx_;
  grpc::testing::ServerContextTestSpouse spouse_{&ctx_};
};

template <typename Service, typename Request, typename Response>
using Handler = grpc::ServerUnaryReactor* (
    Service::*)(grpc::CallbackServerContext*, const Request*, Response*);

// Unary runs a handler that finishes before it returns, with the default
// reactor (every non-blocking rpc).
template <typename Service, typename Request, typename Response>
Outcome Unary(Service& service, Handler<Service, Request, Response> method,
              const std::string& session_id, const Request& req,
              Response* resp) {
  CallContext ctx(session_id);
  grpc::testing::DefaultReactorTestPeer peer(ctx.get());
  grpc::ServerUnaryReactor* reactor = (service.*method)(ctx.get(), &req, resp);
  FUZZ_CHECK(reactor == peer.reactor(),
             "a unary handler returned a reactor of its own");
  FUZZ_CHECK(peer.test_status_set(), "a unary handler did not finish");
  return Outcome{peer.test_status(), ctx.ErrorDetail()};
}

// FakeUnaryCall is gRPC's side of a call whose handler returned its own
// reactor: it records the one Finish the reactor may make.
class FakeUnaryCall final : public grpc::ServerCallbackUnary {
 public:
  // Bind gives `reactor` this call, as gRPC does once the handler has
  // returned; a Finish the reactor asked for before comes through now.
  void Bind(grpc::ServerUnaryReactor* reactor);
  void Finish(grpc::Status status) override;
  void SendInitialMetadata() override {}

  bool finished() const { return finished_; }
  const grpc::Status& status() const { return status_; }

 private:
  void CallOnDone() override {}
  grpc::internal::ServerReactor* reactor() override { return reactor_; }

  grpc::ServerUnaryReactor* reactor_ = nullptr;
  bool finished_ = false;
  grpc::Status status_;
};

// BlockingCall is one call of a blocking handler, with the request, reply
// and context it needs until it is done (a parked call writes its reply
// when it is granted, long after the handler returned).
class BlockingCall {
 public:
  template <typename Service, typename Request, typename Response>
  static std::unique_ptr<BlockingCall> Start(
      Service& service, Handler<Service, Request, Response> method,
      const std::string& session_id, std::unique_ptr<Request> req) {
    std::unique_ptr<BlockingCall> call(new BlockingCall(session_id));
    auto resp = std::make_unique<Response>();
    Response* reply = resp.get();
    call->request_ = std::move(req);
    call->response_ = std::move(resp);
    call->peer_.emplace(call->ctx_.get());
    call->reactor_ = (service.*method)(
        call->ctx_.get(), static_cast<const Request*>(call->request_.get()),
        reply);
    call->Started();
    return call;
  }
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;
  // A parked call must be Done by then.
  ~BlockingCall();

  // parked is true when the handler returned a ParkedCall (it may have
  // finished at once all the same).
  bool parked() const { return parked_; }
  bool finished() const;
  bool done() const { return done_; }
  Outcome outcome() const;
  const google::protobuf::Message& response() const { return *response_; }
  // waiter is the parked call's Waiter (the engine's handle on it); null
  // if the call never parked or is done.
  const Waiter* waiter() const;

  // Cancel runs the reactor's OnCancel: the client went away. gRPC does it
  // at most once, before OnDone, possibly after Finish (the status did not
  // reach the client); returns false if that is no longer possible.
  bool Cancel();
  // Done runs OnDone, which deletes the ParkedCall. REQUIRES: finished().
  void Done();

 private:
  explicit BlockingCall(const std::string& session_id) : ctx_(session_id) {}
  void Started();

  CallContext ctx_;
  std::optional<grpc::testing::DefaultReactorTestPeer> peer_;
  std::unique_ptr<google::protobuf::Message> request_;
  std::unique_ptr<google::protobuf::Message> response_;
  grpc::ServerUnaryReactor* reactor_ = nullptr;
  bool parked_ = false;
  FakeUnaryCall call_;
  bool cancelled_ = false;
  bool done_ = false;
};

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_FAKE_CALL_H_
