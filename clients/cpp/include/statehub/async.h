// File: statehub/async.h
//
// The asynchronous C++ API: calls that return at once and complete by
// callback, many in flight on one lane connection (api/LANE.md), written
// back to back (pipelined) and matched to their replies by request id. The
// blocking handles (statehub/client.h) stay the API for most programs; this
// one is for a program that drives many calls from one event loop, as
// redis-benchmark or an Asio server does.
//
// An AsyncLoop is an event loop (a standalone Asio io_context inside): run
// it from one thread with Run, RunUntil or Poll, and every callback runs
// there, one at a time. An AsyncClient is one lane connection on a loop and
// the session it opens; many clients can share one loop. Handles (AsyncDict,
// AsyncList) name an object and issue its calls.
//
// Example:
//
//   statehub::AsyncLoop loop;
//   absl::StatusOr<std::unique_ptr<statehub::AsyncClient>> client =
//       statehub::AsyncClient::Connect(loop, "unix:///tmp/statehub.sock");
//   if (!client.ok()) return client.status();
//   statehub::AsyncDict jobs = (*client)->dict("jobs");  // must exist
//   int done = 0;
//   for (int i = 0; i < 100; ++i) {
//     jobs.Set(i, i * i, [&](absl::Status s) { ++done; });
//   }
//   jobs.Get(7, [&](absl::StatusOr<statehub::Value> v) { ++done; });
//   loop.RunUntil([&] { return done == 101; });
//
// Replies: the server answers the calls of one connection in order except
// calls that park (an acquire, a wait), which are answered when served; a
// callback belongs to its request id, so either order is right.
//
// Errors are those of the blocking API, with the same codes, kinds and
// messages (statehub/status.h; the handle headers list each call's). A call
// that cannot be sent, or whose connection closes before its reply (the
// server went away, Close, a framing error), fails with UNAVAILABLE, kind
// kUnspecified, naming the rpc: a call that changes state may or may not
// have run then. Nothing is retried and the connection is not reopened:
// the client is done, and a new one must be connected (its session is a
// new one; on a Unix socket the old one ended with the connection, so
// locks it held went to their next acquirers).
//
// Callbacks: each is called exactly once, on the thread running the loop,
// never from inside the call that issued it (a call that fails at once
// completes on the loop's next turn). A callback may issue further calls,
// on any client, and may destroy the client. Callbacks of calls in flight
// when the AsyncLoop is destroyed are called then, with UNAVAILABLE (and
// calls issued after that fail inside the call: there is no loop left).
//
// Flow: nothing bounds the calls in flight but the caller. Requests wait in
// the client's output buffer while the socket is busy, so a caller that
// issues faster than the server answers grows it: keep a bound, as a
// pipeline depth does (in_flight() counts them).
//
// Thread safety: an AsyncLoop is run by one thread at a time; Stop is
// thread-safe. AsyncClient and handle methods may be called from any
// thread: from the loop's own thread a request is queued at once, from
// another it is handed to the loop (a post) first. Requests issued from one
// thread go out in the order issued.
//
// Sessions: Connect says HELLO and waits for WELCOME, as the blocking
// client's connections do. The connection owns a new session, or, with
// AsyncClientOptions::join_session_id, joins the live session of another
// client (a blocking Client's session_id()) without owning it. Close
// (GOODBYE) ends an owned session at once, never a joined one. Otherwise, on a
// Unix socket the session ends when the connection closes (the process died);
// over TCP the client PINGs every lease/3 while idle, and the lease ends the
// session of a connection that broke.

#ifndef STATEHUB_ASYNC_H_
#define STATEHUB_ASYNC_H_

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "statehub/status.h"
#include "statehub/value.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace statehub {

namespace client_internal {
class AsyncConnection;
class AsyncLoopState;

// AsyncHandleState is what an async handle holds: its connection, the
// object's name and, for an anonymous object, the hold that keeps it alive
// (shared by the handle's copies).
struct AsyncHandleState {
  std::shared_ptr<AsyncConnection> conn;
  std::string name;
  std::shared_ptr<const void> hold;
};
}  // namespace client_internal

// AsyncCallback receives a call's result; AsyncDone the status of a call
// without one.
template <typename T>
using AsyncCallback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
using AsyncDone = absl::AnyInvocable<void(absl::Status)>;

// Fulfill adapts a promise into a callback: the future adaptor. Wait on the
// future from a thread other than the loop's, while some thread runs the
// loop (waiting on it from the loop's thread would wait for ever).
//
//   std::promise<absl::StatusOr<statehub::Value>> got;
//   std::future<absl::StatusOr<statehub::Value>> v = got.get_future();
//   jobs.Get("x", statehub::Fulfill(std::move(got)));
template <typename T>
AsyncCallback<T> Fulfill(std::promise<absl::StatusOr<T>> promise) {
  return [promise = std::move(promise)](absl::StatusOr<T> result) mutable {
    promise.set_value(std::move(result));
  };
}
inline AsyncDone Fulfill(std::promise<absl::Status> promise) {
  return [promise = std::move(promise)](absl::Status status) mutable {
    promise.set_value(std::move(status));
  };
}

class AsyncLoop {
 public:
  AsyncLoop();
  AsyncLoop(const AsyncLoop&) = delete;
  AsyncLoop& operator=(const AsyncLoop&) = delete;
  // ~AsyncLoop closes the connections of its clients and calls the
  // callbacks of their calls still in flight, with UNAVAILABLE. Clients and
  // handles may outlive it: their calls then fail at once, with
  // UNAVAILABLE, inside the call. REQUIRES: no thread runs the loop or
  // uses its clients meanwhile.
  ~AsyncLoop();

  // Run runs the loop on the calling thread until Stop: reads, writes,
  // callbacks. Blocks.
  void Run();

  // RunUntil runs the loop until `done()` is true (checked after each
  // handler the loop runs, and first) or `deadline` passes. Returns
  // whether `done()` became true. Blocks.
  bool RunUntil(absl::FunctionRef<bool()> done,
                absl::Time deadline = absl::InfiniteFuture());

  // Poll runs what is ready to run now, without blocking; returns the
  // number of handlers run.
  size_t Poll();

  // Stop makes Run return soon (RunUntil returns false); a later Run
  // starts again. Thread-safe.
  void Stop();

 private:
  friend class AsyncClient;
  std::unique_ptr<client_internal::AsyncLoopState> state_;
};

// AsyncClientOptions configures AsyncClient::Connect.
struct AsyncClientOptions {
  // label describes this client to the server (introspection); empty means
  // "<hostname>:<pid>:<program>".
  std::string label;
  // token is the bearer token of a server started with --auth_token_file;
  // empty sends none.
  std::string token;
  // connect_timeout bounds Connect: reaching the server and its WELCOME.
  absl::Duration connect_timeout = absl::Seconds(10);
  // join_session_id, if set, joins that live session (another client's,
  // e.g. a blocking Client's session_id()) instead of opening one: calls
  // run under it and see its anonymous objects, and closing this client
  // ends nothing but its connection.
  std::string join_session_id;
};

class AsyncDict;
class AsyncList;

class AsyncClient {
 public:
  // Connect opens one lane connection to `address` ("unix:///path" or
  // "host:port" without TLS: the lane is not served on TLS listeners) and
  // the session it says HELLO for, and puts it on `loop`. Blocks up to
  // options.connect_timeout (it does not need the loop to run). Errors:
  // INVALID_ARGUMENT for an address it cannot read; UNAVAILABLE naming the
  // address if the server cannot be reached; DEADLINE_EXCEEDED; the
  // server's refusal of HELLO (UNAUTHENTICATED, SESSION_ERROR for a
  // join_session_id that is not live, LIMIT_EXCEEDED). Thread-safe.
  // REQUIRES: `loop` outlives the client.
  static absl::StatusOr<std::unique_ptr<AsyncClient>> Connect(
      AsyncLoop& loop, absl::string_view address,
      AsyncClientOptions options = {});

  AsyncClient(const AsyncClient&) = delete;
  AsyncClient& operator=(const AsyncClient&) = delete;
  // ~AsyncClient calls Close(). Calls in flight still complete (by reply,
  // or with UNAVAILABLE) as the loop runs; handles stay valid and fail
  // their calls with UNAVAILABLE.
  ~AsyncClient();

  // session_id is the session the connection runs under. Thread-safe.
  const std::string& session_id() const;

  // dict returns a handle on the dict called `name`, making no call: the
  // dict must exist (calls fail with OBJECT_NOT_FOUND if it does not, and
  // TYPE_ERROR if `name` is another type). Thread-safe.
  AsyncDict dict(std::string name) const;
  // list is dict for a list.
  AsyncList list(std::string name) const;

  // OpenDict opens the dict called `name`, creating it empty if it does not
  // exist (Client::OpenDict, get-or-create), and passes a handle on it to
  // `done`. An empty name creates an anonymous dict held by the handle (and
  // its copies). Errors as Client::OpenDict's. Thread-safe.
  void OpenDict(absl::string_view name, AsyncCallback<AsyncDict> done);
  // OpenList is OpenDict for a list.
  void OpenList(absl::string_view name, AsyncCallback<AsyncList> done);

  // Call makes any rpc of api/statehub/v1 by its messages (the generated
  // statehub/v1/*.pb.h, target statehub_proto): `request` is copied into
  // the request frame at once; `done` gets the parsed response. The
  // request's object name is the caller's to set. Errors: the rpc's own,
  // as above; INTERNAL if `Request` is not the request of a lane method or
  // the reply does not parse. Thread-safe.
  template <typename Response, typename Request>
  void Call(const Request& request, AsyncCallback<Response> done);

  // CallRaw is Call without the types: `done` gets the status and, if OK,
  // the serialized response, valid only during the callback. Thread-safe.
  void CallRaw(const google::protobuf::Message& request,
               absl::AnyInvocable<void(absl::Status, absl::string_view)> done);

  // in_flight is the number of calls sent or queued and not yet completed.
  // Thread-safe; exact on the loop's thread.
  size_t in_flight() const;

  // Close sends GOODBYE after the requests already issued: the server
  // answers them, ends the session and closes the connection. A client
  // that joined another's session does not end it: its connection closes
  // once the calls already issued are answered (a parked call keeps it
  // open until served). Calls issued later, and calls left unanswered when
  // the connection closes, fail with UNAVAILABLE. Idempotent; never
  // blocks. Thread-safe.
  void Close();

 private:
  explicit AsyncClient(std::shared_ptr<client_internal::AsyncConnection> conn);

  std::shared_ptr<client_internal::AsyncConnection> conn_;
};

// AsyncDict is a handle on a shared dict, with Dict's semantics (dict.h):
// every method issues one call and returns at once; `done` gets the result
// on the loop's thread. Handles are cheap to copy (a name and a pointer),
// so that callbacks can capture them; a copy of an anonymous dict's handle
// shares its hold. A handle keeps its connection's state alive, not its
// AsyncClient: once the client is destroyed, calls fail with UNAVAILABLE.
// Thread-safe.
class AsyncDict {
 public:
  // name returns the dict's name (server-made, "_anon/...", if anonymous).
  const std::string& name() const { return state_.name; }

  // Get gets d[key]. Errors: KEY_ERROR if the key is missing.
  void Get(const Value& key, AsyncCallback<Value> done) const;
  // Set does d[key] = value.
  void Set(const Value& key, const Value& value, AsyncDone done) const;
  // Delete does del d[key]. Errors: KEY_ERROR if the key is missing.
  void Delete(const Value& key, AsyncDone done) const;
  // Contains gets key in d.
  void Contains(const Value& key, AsyncCallback<bool> done) const;
  // Len gets len(d).
  void Len(AsyncCallback<int64_t> done) const;
  // Increment atomically adds `delta` to d[key] (a missing key counts as 0)
  // and gets the sum. Errors: TYPE_ERROR if d[key] or delta is not a
  // number; VALUE_ERROR on int64 overflow.
  void Increment(const Value& key, const Value& delta,
                 AsyncCallback<Value> done) const;

 private:
  friend class AsyncClient;
  explicit AsyncDict(client_internal::AsyncHandleState state)
      : state_(std::move(state)) {}

  client_internal::AsyncHandleState state_;
};

// AsyncList is AsyncDict for a shared list, with List's semantics (list.h).
class AsyncList {
 public:
  // name returns the list's name (server-made, "_anon/...", if anonymous).
  const std::string& name() const { return state_.name; }

  // Len gets len(l).
  void Len(AsyncCallback<int64_t> done) const;
  // Get gets l[index]. Errors: INDEX_ERROR if out of range.
  void Get(int64_t index, AsyncCallback<Value> done) const;
  // Append does l.append(value) and gets the new length.
  void Append(const Value& value, AsyncCallback<int64_t> done) const;
  // Pop removes and gets the last item. Errors: INDEX_ERROR if the list is
  // empty.
  void Pop(AsyncCallback<Value> done) const;

 private:
  friend class AsyncClient;
  explicit AsyncList(client_internal::AsyncHandleState state)
      : state_(std::move(state)) {}

  client_internal::AsyncHandleState state_;
};

template <typename Response, typename Request>
void AsyncClient::Call(const Request& request, AsyncCallback<Response> done) {
  CallRaw(request, [done = std::move(done)](absl::Status status,
                                            absl::string_view body) mutable {
    if (!status.ok()) return done(std::move(status));
    Response response;
    if (!response.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return done(absl::InternalError(absl::StrCat(
          "statehub: malformed lane reply for ", response.GetTypeName())));
    }
    done(std::move(response));
  });
}

}  // namespace statehub

#endif  // STATEHUB_ASYNC_H_
