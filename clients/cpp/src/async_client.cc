#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "async_connection.h"
#include "core.h"
#include "statehub/async.h"
#include "statehub/internal/value_codec.h"
#include "statehub/v1/dict.pb.h"
#include "statehub/v1/list.pb.h"
#include "statehub/v1/objects.pb.h"

namespace statehub {

using client_internal::AsyncConnection;
using client_internal::AsyncLoopState;
using client_internal::Rpc;
using client_internal::RpcOf;
using internal::EncodeValue;

namespace {

// Issue sends `request` on `conn` and completes `done` with what
// `convert(response, conn)` makes of the reply.
template <typename Response, typename Request, typename T, typename Convert>
void Issue(AsyncConnection& conn, const Request& request, AsyncCallback<T> done,
           Convert convert) {
  // Looked up once per request type, so a call costs no lookup at all.
  static const Rpc& rpc = RpcOf(Request::descriptor());
  conn.Send(rpc, request,
            [&conn, done = std::move(done), convert](
                absl::Status status, absl::string_view body) mutable {
              if (!status.ok()) return done(std::move(status));
              Response response;
              if (!response.ParseFromArray(body.data(),
                                           static_cast<int>(body.size()))) {
                return done(absl::InternalError(
                    absl::StrCat("statehub: malformed lane reply for ",
                                 Response::descriptor()->full_name())));
              }
              done(convert(response, conn));
            });
}

// IssueDone is Issue for a call whose reply carries nothing to return.
template <typename Request>
void IssueDone(AsyncConnection& conn, const Request& request, AsyncDone done) {
  static const Rpc& rpc = RpcOf(Request::descriptor());
  conn.Send(
      rpc, request,
      [done = std::move(done)](absl::Status status, absl::string_view) mutable {
        done(std::move(status));
      });
}

// Field returns the converter of a reply whose result is one field of it.
template <typename Response, typename T>
auto Field(T (Response::*get)() const) {
  return [get](const Response& response, const AsyncConnection&) {
    return absl::StatusOr<T>((response.*get)());
  };
}

// DecodeValue converts the value of a reply.
struct DecodeValue {
  template <typename Response>
  absl::StatusOr<Value> operator()(const Response& response,
                                   const AsyncConnection& conn) const {
    return conn.Decode(response.value());
  }
};

// Open is Objects.Open of `name` as `type`, for OpenDict and OpenList.
template <typename Handle>
void Open(const std::shared_ptr<AsyncConnection>& conn, absl::string_view name,
          ObjectType type, AsyncCallback<Handle> done,
          Handle (*make)(client_internal::AsyncHandleState)) {
  v1::OpenRequest request;
  request.set_name(std::string(name));
  request.set_type(internal::ToWire(type));
  Issue<v1::OpenResponse>(
      *conn, request, std::move(done),
      [conn, make](const v1::OpenResponse& response,
                   const AsyncConnection&) -> absl::StatusOr<Handle> {
        // The server granted this session a hold on an anonymous object.
        std::shared_ptr<const void> hold;
        if (absl::StartsWith(response.name(),
                             client_internal::kAnonymousPrefix)) {
          hold = conn->MakeHold(response.name());
        }
        return make({conn, response.name(), std::move(hold)});
      });
}

}  // namespace

// --- AsyncLoop ------------------------------------------------------------

AsyncLoop::AsyncLoop() : state_(std::make_unique<AsyncLoopState>()) {}

AsyncLoop::~AsyncLoop() { state_->Shutdown(); }

void AsyncLoop::Run() {
  asio::io_context& io = state_->io();
  if (io.stopped()) io.restart();
  io.run();
}

bool AsyncLoop::RunUntil(absl::FunctionRef<bool()> done, absl::Time deadline) {
  asio::io_context& io = state_->io();
  if (done()) return true;
  if (io.stopped()) io.restart();
  while (true) {
    if (deadline == absl::InfiniteFuture()) {
      io.run_one();
    } else {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return done();
      io.run_one_for(absl::ToChronoNanoseconds(left));
    }
    if (done()) return true;
    if (io.stopped()) return false;
  }
}

size_t AsyncLoop::Poll() {
  asio::io_context& io = state_->io();
  if (io.stopped()) io.restart();
  return io.poll();
}

void AsyncLoop::Stop() { state_->io().stop(); }

// --- AsyncClient ----------------------------------------------------------

absl::StatusOr<std::unique_ptr<AsyncClient>> AsyncClient::Connect(
    AsyncLoop& loop, absl::string_view address, AsyncClientOptions options) {
  absl::StatusOr<std::shared_ptr<AsyncConnection>> conn =
      AsyncConnection::Open(*loop.state_, address, options);
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<AsyncClient>(new AsyncClient(*std::move(conn)));
}

AsyncClient::AsyncClient(std::shared_ptr<AsyncConnection> conn)
    : conn_(std::move(conn)) {}

AsyncClient::~AsyncClient() { Close(); }

const std::string& AsyncClient::session_id() const {
  return conn_->session_id();
}

size_t AsyncClient::in_flight() const { return conn_->in_flight(); }

void AsyncClient::Close() { conn_->Close(); }

AsyncDict AsyncClient::dict(std::string name) const {
  return AsyncDict({conn_, std::move(name), nullptr});
}

AsyncList AsyncClient::list(std::string name) const {
  return AsyncList({conn_, std::move(name), nullptr});
}

void AsyncClient::OpenDict(absl::string_view name,
                           AsyncCallback<AsyncDict> done) {
  Open<AsyncDict>(conn_, name, ObjectType::kDict, std::move(done),
                  [](client_internal::AsyncHandleState state) {
                    return AsyncDict(std::move(state));
                  });
}

void AsyncClient::OpenList(absl::string_view name,
                           AsyncCallback<AsyncList> done) {
  Open<AsyncList>(conn_, name, ObjectType::kList, std::move(done),
                  [](client_internal::AsyncHandleState state) {
                    return AsyncList(std::move(state));
                  });
}

void AsyncClient::CallRaw(
    const google::protobuf::Message& request,
    absl::AnyInvocable<void(absl::Status, absl::string_view)> done) {
  conn_->Send(RpcOf(request.GetDescriptor()), request, std::move(done));
}

// --- AsyncDict ------------------------------------------------------------

void AsyncDict::Get(const Value& key, AsyncCallback<Value> done) const {
  v1::DictGetRequest request;
  request.set_name(state_.name);
  EncodeValue(key, request.mutable_key());
  Issue<v1::DictGetResponse>(*state_.conn, request, std::move(done),
                             DecodeValue());
}

void AsyncDict::Set(const Value& key, const Value& value,
                    AsyncDone done) const {
  v1::DictSetRequest request;
  request.set_name(state_.name);
  EncodeValue(key, request.mutable_key());
  EncodeValue(value, request.mutable_value());
  IssueDone(*state_.conn, request, std::move(done));
}

void AsyncDict::Delete(const Value& key, AsyncDone done) const {
  v1::DictDeleteRequest request;
  request.set_name(state_.name);
  EncodeValue(key, request.mutable_key());
  IssueDone(*state_.conn, request, std::move(done));
}

void AsyncDict::Contains(const Value& key, AsyncCallback<bool> done) const {
  v1::DictContainsRequest request;
  request.set_name(state_.name);
  EncodeValue(key, request.mutable_key());
  Issue<v1::DictContainsResponse>(*state_.conn, request, std::move(done),
                                  Field(&v1::DictContainsResponse::contains));
}

void AsyncDict::Len(AsyncCallback<int64_t> done) const {
  v1::DictLenRequest request;
  request.set_name(state_.name);
  Issue<v1::DictLenResponse>(*state_.conn, request, std::move(done),
                             Field(&v1::DictLenResponse::length));
}

void AsyncDict::Increment(const Value& key, const Value& delta,
                          AsyncCallback<Value> done) const {
  v1::DictIncrementRequest request;
  request.set_name(state_.name);
  EncodeValue(key, request.mutable_key());
  EncodeValue(delta, request.mutable_delta());
  Issue<v1::DictIncrementResponse>(*state_.conn, request, std::move(done),
                                   DecodeValue());
}

// --- AsyncList ------------------------------------------------------------

void AsyncList::Len(AsyncCallback<int64_t> done) const {
  v1::ListLenRequest request;
  request.set_name(state_.name);
  Issue<v1::ListLenResponse>(*state_.conn, request, std::move(done),
                             Field(&v1::ListLenResponse::length));
}

void AsyncList::Get(int64_t index, AsyncCallback<Value> done) const {
  v1::ListGetRequest request;
  request.set_name(state_.name);
  request.mutable_at()->set_index(index);
  Issue<v1::ListGetResponse>(*state_.conn, request, std::move(done),
                             DecodeValue());
}

void AsyncList::Append(const Value& value, AsyncCallback<int64_t> done) const {
  v1::ListAppendRequest request;
  request.set_name(state_.name);
  EncodeValue(value, request.mutable_value());
  Issue<v1::ListAppendResponse>(*state_.conn, request, std::move(done),
                                Field(&v1::ListAppendResponse::length));
}

void AsyncList::Pop(AsyncCallback<Value> done) const {
  v1::ListPopRequest request;
  request.set_name(state_.name);
  Issue<v1::ListPopResponse>(*state_.conn, request, std::move(done),
                             DecodeValue());
}

}  // namespace statehub
