// File: statehub/namespace.h
//
// `statehub::Namespace` is a handle on a shared namespace: Manager's
// Namespace, a set of attributes read and written one at a time. Attribute
// names are identifiers not starting with an underscore; others fail with
// VALUE_ERROR.
//
// Example:
//
//   absl::StatusOr<statehub::Namespace> cfg = client->OpenNamespace("cfg");
//   if (!cfg.ok()) return cfg.status();
//   absl::Status s = cfg->Set("workers", 8);
//   absl::StatusOr<statehub::Value> workers = cfg->Get("workers");
//
// Blocking: every method makes one round trip to the server (a read a near
// cache serves, none) and blocks until the reply, at most
// ClientOptions::call_timeout (then DEADLINE_EXCEEDED).
//
// Thread safety: a Namespace may be used from several threads at once; each
// call is atomic on the server. Handles are movable, not copyable; a
// moved-from handle fails every call with FAILED_PRECONDITION.
//
// Near cache (opt-in): `Cached()` returns a handle on the same namespace
// whose Get is served from this process's memory after the first read of
// an attribute (an unset attribute's ATTRIBUTE_ERROR is remembered too),
// kept correct by a watch of the namespace: a set or delete by anyone drops
// the attribute it names, anything else (a deletion of the namespace)
// drops everything; this handle's own Set and Delete drop the attribute
// before they are sent and again when answered. Items still makes its
// round trip. The guarantees are Dict's (statehub/dict.h, "Near cache";
// docs/watches.md, "The near cache"). It costs a watch and a thread per
// cached handle; destroying the handle stops and joins the thread.
//
//   absl::StatusOr<statehub::Namespace> cached = cfg->Cached();
//   cached->Get("workers");  // to the server...
//   cached->Get("workers");  // ...then from memory until it changes
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the namespace was deleted, TYPE_ERROR if the name now holds another type,
// LIMIT_EXCEEDED past a server limit, and transport errors (UNAVAILABLE,
// DEADLINE_EXCEEDED) with ErrorKind kUnspecified.

#ifndef STATEHUB_NAMESPACE_H_
#define STATEHUB_NAMESPACE_H_

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "statehub/cache.h"
#include "statehub/internal/cache_slot.h"
#include "statehub/internal/handle.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

class Client;

class Namespace {
 public:
  Namespace(Namespace&&) noexcept = default;
  Namespace& operator=(Namespace&&) noexcept = default;
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;
  // ~Namespace stops the near cache, if any, as ~Dict does.
  ~Namespace() = default;

  // name returns the namespace's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this namespace, to store in another
  // object. The ref shares this handle's hold. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Cached returns a new handle on this namespace with a near cache (see
  // the file comment); this handle is left as it was. It starts the cache's
  // watch and its thread before it returns. Errors: VALUE_ERROR if
  // options.max_entries < 1; FAILED_PRECONDITION for a moved-from handle;
  // OBJECT_NOT_FOUND if the namespace does not exist; the transport's
  // errors. Blocks for one round trip (the watch's start). Thread-safe.
  absl::StatusOr<Namespace> Cached(CacheOptions options = {}) const;

  // cache_info returns the near cache's counters, or nullopt for a handle
  // without one. Makes no call. Thread-safe.
  std::optional<CacheInfo> cache_info() const { return cache_.Info(); }

  // ClearCache drops every attribute the near cache keeps (the next reads
  // go to the server); does nothing without one. Makes no call.
  // Thread-safe.
  void ClearCache() const { cache_.Clear(); }

  // Get returns ns.attribute. Errors: ATTRIBUTE_ERROR if it is not set;
  // VALUE_ERROR for a bad attribute name. Blocks for one round trip, or
  // none when the near cache has the attribute.
  absl::StatusOr<Value> Get(absl::string_view attribute) const;

  // Set does ns.attribute = value. Errors: VALUE_ERROR for a bad attribute
  // name. Blocks for one round trip.
  absl::Status Set(absl::string_view attribute, const Value& value);

  // Delete does del ns.attribute. Errors: ATTRIBUTE_ERROR if it is not set.
  // Blocks for one round trip.
  absl::Status Delete(absl::string_view attribute);

  // Items returns every attribute (string keys) in the order first set.
  // Blocks for one round trip.
  absl::StatusOr<Value::Entries> Items() const;

  // Watch follows this namespace's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the namespace does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Namespace(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
  // cache_ is the near cache; empty without one.
  client_internal::CacheSlot cache_;
};

}  // namespace statehub

#endif  // STATEHUB_NAMESPACE_H_
