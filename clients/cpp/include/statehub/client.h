// File: statehub/client.h
//
// `statehub::Client` is one process's connection to a statehub server: a
// transport (the lane, statehub's own framed protocol, by default; or gRPC)
// plus a session that owns this process's holds on anonymous objects. Open
// shared objects through it and use the handles it returns (Dict, List,
// Namespace, ValueCell, Array, Lock, RLock, Condition, Semaphore, Event,
// Barrier, Queue); see statehub/dict.h and the other handle headers.
//
// Open is get-or-create: the initial contents apply only if the call created
// the object. An empty name creates an anonymous object (Manager's
// `m.dict()`), which lives while a handle or Ref in some process holds it or
// a live object refers to it.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<statehub::Client>> client =
//       statehub::Client::Connect("unix:///tmp/statehub.sock");
//   if (!client.ok()) return client.status();
//   absl::StatusOr<statehub::Dict> counters =
//       (*client)->OpenDict("example/counters");
//   if (!counters.ok()) return counters.status();
//   absl::StatusOr<statehub::Value> hits = counters->Increment("hits");
//
//   // A dict holding an anonymous list (Manager's nested proxies):
//   absl::StatusOr<statehub::List> items = (*client)->OpenList("");
//   absl::Status s = counters->Set("items", items->ref());
//   absl::StatusOr<statehub::Value> ref = counters->Get("items");
//   absl::StatusOr<statehub::List> same = (*client)->ListFromRef(*ref);
//
// Thread safety: a Client and the handles it returns may be used from many
// threads at once. Handles keep what they need of the client alive: they stay
// usable after the Client is destroyed, for calls that need no session.
//
// Transports (ClientOptions::transport). The lane (api/LANE.md) is the
// default: the same address as gRPC, no HTTP/2, a few microseconds a call.
// The client keeps one connection that owns the session and a pool of
// connections that join it, one per call in progress: threads never wait
// for each other's calls, and a parked call (an acquire, a wait) holds its
// connection until answered. gRPC stays one option away (kGrpc), and is
// what a client with TLS uses: the server serves no lane on TLS listeners.
//
// Sessions: Connect opens one. If the process dies, the session ends: on a
// Unix socket over the lane at once (the kernel closes the owning
// connection, so a lock held by a SIGKILLed process goes to the next
// acquirer with owner_died immediately); over TCP and over gRPC when its
// lease runs out. Over TCP and gRPC a background thread sends keepalives
// every lease_ttl/3 and, if the connection breaks, reconnects and resumes
// the session; on a Unix socket over the lane no thread runs at all. Holds
// on anonymous objects are released as handles and Refs die: queued, and
// sent by that thread or, without one, ahead of the client's next call (or
// ended by Close). If the server has ended the session meanwhile (a
// restart), the client logs to stderr that the session was lost and
// continues with a new one (holds of the old one are gone). Calls do not
// wait for any of this: while the server is unreachable they fail at once
// with UNAVAILABLE, and while a lost session is being replaced (about a
// second) they may fail with SESSION_ERROR; retrying after a moment
// succeeds. A gRPC channel pings every 30 s when idle (gRPC keepalive,
// permitted without calls), so the server must permit pings at that rate.

#ifndef STATEHUB_CLIENT_H_
#define STATEHUB_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "statehub/cell.h"
#include "statehub/dict.h"
#include "statehub/list.h"
#include "statehub/lock.h"
#include "statehub/namespace.h"
#include "statehub/observer.h"
#include "statehub/queue.h"
#include "statehub/status.h"
#include "statehub/sync.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

namespace client_internal {
class Core;
}  // namespace client_internal

// Transport is how a Client talks to the server.
enum class Transport {
  // kLane is statehub's own framed transport (api/LANE.md), served on the
  // same Unix-socket and plaintext TCP addresses as gRPC: the fast path.
  kLane,
  // kGrpc is gRPC, the public API: for TLS, and wherever the lane is not
  // wanted.
  kGrpc,
};

// ClientOptions configures Client::Connect.
struct ClientOptions {
  // transport is the lane by default. With `tls` set the client uses gRPC
  // whatever this says: the server serves no lane on a TLS listener.
  Transport transport = Transport::kLane;
  // label describes this client to the server (introspection); empty means
  // "<hostname>:<pid>:<program>".
  std::string label;
  // call_timeout is the deadline of each unary call; absl::InfiniteDuration()
  // means none.
  absl::Duration call_timeout = absl::Seconds(60);
  // connect_timeout bounds Connect: reaching the server and opening the
  // session.
  absl::Duration connect_timeout = absl::Seconds(10);
  // open_session opens a session at Connect. Without a session, anonymous
  // objects are unavailable (SESSION_ERROR) and refs to anonymous objects
  // carry no hold. (The lane has no sessionless connection: there each
  // connection of such a client runs under a session of its own, unnamed
  // to the caller, that ends with the connection on a Unix socket.)
  bool open_session = true;
  // observer, if set, sees every call's latency and every acquire's wait
  // (client-side metrics; see statehub/observer.h and
  // statehub/prometheus.h). Shared by the client and its handles.
  std::shared_ptr<CallObserver> observer;
  // token is the bearer token of a server started with --auth_token_file,
  // sent with every call (gRPC) or every connection's HELLO (the lane);
  // empty sends none.
  std::string token;
  // TlsOptions: connect with TLS, to a server started with --tls_cert.
  struct TlsOptions {
    // root_certs (PEM) is the CA the server's certificate must chain to;
    // empty trusts the system's CAs.
    std::string root_certs;
    // cert_chain and private_key (PEM) are this client's certificate, for a
    // server that requires one (--tls_client_ca); empty presents none.
    std::string cert_chain;
    std::string private_key;
  };
  // tls, if set, makes the connection TLS; unset, it is plaintext.
  std::optional<TlsOptions> tls;
};

// ObjectInfo summarizes one shared object (Objects.List and Describe).
struct ObjectInfo {
  std::string name;
  ObjectType type = ObjectType::kUnspecified;
  // anonymous is true for server-named ("_anon/...") reference-counted
  // objects.
  bool anonymous = false;
  // size is the number of entries (dict, namespace), items (list, array), 1
  // for a value, 0 for synchronization objects.
  int64_t size = 0;
  // typecode is the typecode of a value or array; empty otherwise.
  std::string typecode;
  // condition_lock names the lock a condition is bound to; empty otherwise.
  std::string condition_lock;
  // holders is the number of session holds on an anonymous object (0 if
  // named); referrers the number of refs to it stored in other objects.
  int64_t holders = 0;
  int64_t referrers = 0;
};

class Client {
 public:
  // Connect connects to `address` ("unix:///path/to.sock" or "host:port")
  // on options.transport (gRPC if options.tls), waiting up to
  // options.connect_timeout, and, if options.open_session, opens a session
  // (and, where one is needed, starts its background thread). Blocks for up
  // to about connect_timeout (twice that at most on gRPC: once connecting,
  // once opening the session).
  // Errors: UNAVAILABLE naming the address if the server cannot be reached;
  // DEADLINE_EXCEEDED if the server does not answer the session Hello in
  // time; the server's status (e.g. UNAUTHENTICATED, UNIMPLEMENTED) if it
  // refuses the session. Thread-safe.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      absl::string_view address, ClientOptions options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // ~Client calls Close(). Handles made by this client stay valid.
  ~Client();

  // session_id returns the current session's id, or "" without a session
  // (open_session false, or after Close). The id changes if the session was
  // lost and replaced, which is why it is returned by value. Thread-safe;
  // does not block on the network.
  std::string session_id() const;

  // lease_ttl returns the session lease granted by the server, or zero
  // without a session. Thread-safe; does not block on the network.
  absl::Duration lease_ttl() const;

  // OpenDict returns the dict called `name`, creating it with `initial` if
  // it does not exist (atomically; `initial` is ignored otherwise). An empty
  // name creates an anonymous dict held by the returned handle.
  // Errors: TYPE_ERROR if `name` exists with another type; VALUE_ERROR for a
  // bad name or initial contents; SESSION_ERROR for an anonymous open
  // without a session; OBJECT_NOT_FOUND for an "_anon/" name that does not
  // exist; LIMIT_EXCEEDED past the server's object limit. Blocks for one
  // round trip. Thread-safe.
  absl::StatusOr<Dict> OpenDict(absl::string_view name,
                                Value::Entries initial = {});

  // OpenList is OpenDict for a list with initial items. Same errors.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<List> OpenList(absl::string_view name,
                                Value::Items initial = {});

  // OpenNamespace is OpenDict for a namespace; initial keys must be strings
  // that are attribute names (VALUE_ERROR otherwise). Blocks for one round
  // trip. Thread-safe.
  absl::StatusOr<Namespace> OpenNamespace(absl::string_view name,
                                          Value::Entries initial = {});

  // OpenValue is OpenDict for a value cell holding `initial`; `typecode`
  // (e.g. "i") is informational, kept for repr; empty means none.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<ValueCell> OpenValue(absl::string_view name,
                                      Value initial = {},
                                      absl::string_view typecode = "");

  // OpenArray is OpenDict for an array of `typecode` ("b" "B" "h" "H" "i"
  // "I" "l" "L" "q" "Q" "f" "d" "u" "c") whose length and initial cells are
  // `items`. Errors also: VALUE_ERROR for a bad typecode, TYPE_ERROR or
  // VALUE_ERROR for an item the typecode does not allow. Blocks for one
  // round trip. Thread-safe.
  absl::StatusOr<Array> OpenArray(absl::string_view name,
                                  absl::string_view typecode,
                                  Value::Items items);

  // OpenLock is OpenDict for a lock (Manager's Lock). Blocks for one round
  // trip. Thread-safe.
  absl::StatusOr<Lock> OpenLock(absl::string_view name);

  // OpenRLock is OpenDict for a reentrant lock (Manager's RLock). Blocks for
  // one round trip. Thread-safe.
  absl::StatusOr<RLock> OpenRLock(absl::string_view name);

  // OpenCondition is OpenDict for a condition bound to `lock` (a Lock or
  // RLock handle) if this call creates it; a condition that exists stays
  // bound to the lock it was created with. Errors also: OBJECT_NOT_FOUND if
  // the lock does not exist; FAILED_PRECONDITION for a moved-from lock.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<Condition> OpenCondition(absl::string_view name,
                                          const BasicLock& lock);

  // OpenCondition without a lock is Python's Condition(): it creates an
  // anonymous RLock, binds a new condition to it and returns the RLock as
  // the handle's own_lock(). If `name` names an existing condition, its
  // own_lock() is the RLock the server reports it bound to. Errors also:
  // VALUE_ERROR if that lock is a Lock, not an RLock (open the condition
  // with it); SESSION_ERROR without a session. Blocks for two or three
  // round trips. Thread-safe.
  absl::StatusOr<Condition> OpenCondition(absl::string_view name);

  // OpenSemaphore is OpenDict for a semaphore (Manager's Semaphore) with
  // `value` free units if this call creates it. Errors also: VALUE_ERROR
  // for a negative value. Blocks for one round trip. Thread-safe.
  absl::StatusOr<Semaphore> OpenSemaphore(absl::string_view name,
                                          int64_t value = 1);

  // OpenBoundedSemaphore is OpenSemaphore for Manager's BoundedSemaphore:
  // releases past `value` fail with VALUE_ERROR.
  absl::StatusOr<Semaphore> OpenBoundedSemaphore(absl::string_view name,
                                                 int64_t value = 1);

  // OpenEvent is OpenDict for an event (Manager's Event), created clear.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<Event> OpenEvent(absl::string_view name);

  // OpenBarrier is OpenDict for a barrier of `parties` callers (Manager's
  // Barrier) if this call creates it. Errors also: VALUE_ERROR for
  // parties <= 0. Blocks for one round trip. Thread-safe.
  absl::StatusOr<Barrier> OpenBarrier(absl::string_view name, int64_t parties);

  // OpenQueue is OpenDict for a queue (Manager's Queue) holding at most
  // `maxsize` items if this call creates it (<= 0: unbounded). Blocks for
  // one round trip. Thread-safe.
  absl::StatusOr<Queue> OpenQueue(absl::string_view name, int64_t maxsize = 0);

  // OpenJoinableQueue is OpenQueue for Manager's JoinableQueue (the same
  // handle: both support TaskDone and Join).
  absl::StatusOr<Queue> OpenJoinableQueue(absl::string_view name,
                                          int64_t maxsize = 0);

  // DictFromRef returns a handle on the dict a ref value names (a ref read
  // from another object). The handle shares the ref's hold, if any. Makes no
  // call: a dangling ref fails at first use with OBJECT_NOT_FOUND.
  // Errors: VALUE_ERROR if `ref` is not a ref; TYPE_ERROR if it names
  // another type. Thread-safe.
  absl::StatusOr<Dict> DictFromRef(const Value& ref);
  // ListFromRef, NamespaceFromRef, ValueFromRef and ArrayFromRef are
  // DictFromRef for the other types.
  absl::StatusOr<List> ListFromRef(const Value& ref);
  absl::StatusOr<Namespace> NamespaceFromRef(const Value& ref);
  absl::StatusOr<ValueCell> ValueFromRef(const Value& ref);
  absl::StatusOr<Array> ArrayFromRef(const Value& ref);

  // Delete removes the named object; refs to it dangle (using them fails
  // with OBJECT_NOT_FOUND). Errors: OBJECT_NOT_FOUND. Blocks for one round
  // trip. Thread-safe.
  absl::Status Delete(absl::string_view name);

  // ListObjects returns the objects whose names start with `prefix` (all if
  // empty), in name order; anonymous objects only if `include_anonymous`.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<std::vector<ObjectInfo>> ListObjects(
      absl::string_view prefix = "", bool include_anonymous = false);

  // Describe returns one object's type and size. Errors: OBJECT_NOT_FOUND.
  // Blocks for one round trip. Thread-safe.
  absl::StatusOr<ObjectInfo> Describe(absl::string_view name);

  // WatchObject follows the changes of the object called `name`, whatever
  // its type, as the handles' Watch methods do (statehub/watch.h): a watch
  // follows the name, so it sees the object's deletion, and a new object
  // created under that name later. Errors: OBJECT_NOT_FOUND if nothing is
  // called `name` now; VALUE_ERROR for a bad name or `since`;
  // WATCH_TOO_OLD for a `since` the server no longer keeps. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<Watch> WatchObject(absl::string_view name,
                                    WatchOptions options = {});

  // WatchNames follows the names under `prefix` ("" for all): events
  // kCreated (value: the type name) and kDeleted, each naming its object
  // in WatchEvent::object; with `options.initial`, initial().objects lists
  // the objects there at the start. Anonymous objects ("_anon/...") are
  // seen only when `prefix` starts with "_anon/". Errors: VALUE_ERROR for
  // a bad prefix or `since`; WATCH_TOO_OLD. Blocks for one round trip.
  // Thread-safe.
  absl::StatusOr<Watch> WatchNames(absl::string_view prefix = "",
                                   WatchOptions options = {});

  // Close ends the session now (Goodbye: the server releases everything it
  // held) and stops the background thread; idempotent. Handles stay valid
  // for calls that need no session. Blocks until the server acknowledges
  // the end of the stream, at most a few seconds. Thread-safe.
  void Close();

 private:
  explicit Client(std::shared_ptr<client_internal::Core> core);

  std::shared_ptr<client_internal::Core> core_;
};

}  // namespace statehub

#endif  // STATEHUB_CLIENT_H_
