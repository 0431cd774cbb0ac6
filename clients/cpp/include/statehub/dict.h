// File: statehub/dict.h
//
// `statehub::Dict` is a handle on a shared dict: Manager's DictProxy, with
// every operation one atomic server call, plus the atomic compound operations
// that `d[k] += 1` needs (Increment, CompareAndSet, SetDefault, GetAndSet),
// and entries that expire (Set with a ttl, Expire, Ttl).
//
// Keys are scalars (null, bool, int, double, string, bytes) or tuples of
// them, compared as Python compares them: 1, 1.0 and true are one key (the
// spelling stored first is kept). A list or map key, or NaN, fails with
// TYPE_ERROR.
//
// Example:
//
//   absl::StatusOr<statehub::Dict> jobs = client->OpenDict("jobs");
//   if (!jobs.ok()) return jobs.status();
//   absl::Status s = jobs->Set("x", statehub::Value::List({1, 2}));
//   absl::StatusOr<statehub::Value> hits = jobs->Increment("hits");
//   s = jobs->Set("lease", "worker-3", absl::Seconds(30));  // expires
//   absl::StatusOr<statehub::Value> v = jobs->Get("missing");
//   // statehub::GetErrorKind(v.status()) == statehub::ErrorKind::kKeyError
//
// Blocking: every method makes one round trip to the server (ForEach one per
// page; a read a near cache serves, none) and blocks until the reply, at
// most ClientOptions::call_timeout per call (then DEADLINE_EXCEEDED).
//
// Thread safety: a Dict may be used from several threads at once; each call
// is atomic on the server. Handles are movable, not copyable; a moved-from
// handle fails every call with FAILED_PRECONDITION.
//
// Near cache (opt-in): `Cached()` returns a handle on the same dict whose
// Get and Contains are served from this process's memory after the first
// read of a key (a missing key is remembered too), kept correct by a watch
// of the dict that drops each key the server says changed (docs/watches.md,
// "The near cache"). Every other method still makes its round trip; a
// handle made without Cached() keeps nothing.
//
//   absl::StatusOr<statehub::Dict> config = client->OpenDict("config");
//   absl::StatusOr<statehub::Dict> cached = config->Cached();
//   cached->Get("mode");   // the first read goes to the server...
//   cached->Get("mode");   // ...the next ones are served from memory
//   cached->cache_info();  // hits, misses, invalidations, entries
//
// What it guarantees:
// - Nothing is kept before the cache's watch has started or while it is
//   broken; a broken watch empties the cache, which refills as it is read
//   once the watch runs again (it retries, backing off up to a second).
// - No stale reply is kept: a read that misses leaves a placeholder for its
//   key before it is sent; an invalidation of that key (or of everything)
//   arriving while the read is in flight spoils it, and the reply is then
//   returned but not kept.
// - Read-your-writes: this handle's own writes drop the key (Update, Clear
//   and PopItem: everything) before they are sent and again when answered.
// - At most CacheOptions::max_entries keys are kept; the oldest kept goes
//   first.
// - An entry with a ttl is kept only until the time its read was sent plus
//   the ttl the server said it had left (by a monotonic clock): never
//   served after the server's deadline.
// - Values holding refs are not kept (their holds belong to the reply).
// Another process's write is seen here once its invalidation arrives, not
// the moment the writer's call returns. The cache costs a watch (a
// connection on the lane, a stream on gRPC) and a thread per cached handle;
// destroying the handle stops and joins the thread.
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the dict was deleted, TYPE_ERROR if the name now holds another type,
// VALUE_ERROR or TYPE_ERROR for a value the server refuses, LIMIT_EXCEEDED
// past a server limit, and transport errors (UNAVAILABLE, DEADLINE_EXCEEDED)
// with ErrorKind kUnspecified. Read the kind with statehub::GetErrorKind().

#ifndef STATEHUB_DICT_H_
#define STATEHUB_DICT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "statehub/cache.h"
#include "statehub/internal/cache_slot.h"
#include "statehub/internal/handle.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

class Client;
class Dict;

namespace client_internal {
struct CacheTesting;
}  // namespace client_internal

class Dict {
 public:
  Dict(Dict&&) noexcept = default;
  Dict& operator=(Dict&&) noexcept = default;
  Dict(const Dict&) = delete;
  Dict& operator=(const Dict&) = delete;
  // ~Dict stops the near cache, if any: closes its watch and joins its
  // thread (which may take up to about a second if the cache is between
  // attempts to start a watch).
  ~Dict() = default;

  // name returns the dict's name (server-made, "_anon/...", if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this dict, to store in another object
  // (Manager's nested proxies). The ref shares this handle's hold, so it
  // keeps an anonymous dict alive while it lives. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Cached returns a new handle on this dict with a near cache (see the
  // file comment); this handle is left as it was. It starts the cache's
  // watch and its thread before it returns, so the second read of a key
  // through the new handle is already served from memory. Errors:
  // VALUE_ERROR if options.max_entries < 1; FAILED_PRECONDITION for a
  // moved-from handle; OBJECT_NOT_FOUND if the dict does not exist; the
  // transport's errors. Blocks for one round trip (the watch's start).
  // Thread-safe.
  absl::StatusOr<Dict> Cached(CacheOptions options = {}) const;

  // cache_info returns the near cache's counters, or nullopt for a handle
  // without one. Makes no call. Thread-safe.
  std::optional<CacheInfo> cache_info() const { return cache_.Info(); }

  // ClearCache drops every entry of the near cache (the next reads go to
  // the server); does nothing without one. Makes no call. Thread-safe.
  void ClearCache() const { cache_.Clear(); }

  // Get returns d[key]. Errors: KEY_ERROR if the key is missing.
  // Blocks for one round trip, or none when the near cache has the key.
  absl::StatusOr<Value> Get(const Value& key) const;

  // Get returns d[key], or `default_value` if the key is missing
  // (d.get(key, default)). Blocks for one round trip, or none when the
  // near cache has the key.
  absl::StatusOr<Value> Get(const Value& key, const Value& default_value) const;

  // Set does d[key] = value; a ttl the key had is cleared. Blocks for one
  // round trip.
  absl::Status Set(const Value& key, const Value& value);
  // Set does d[key] = value with a ttl: the entry expires `ttl` from now and
  // is never returned after (docs/methods.md, "TTL": which other writes
  // keep a ttl). Errors: VALUE_ERROR (nothing stored) unless `ttl` is > 0,
  // finite and at most 100 years. Blocks for one round trip.
  absl::Status Set(const Value& key, const Value& value, absl::Duration ttl);
  // Expire makes the entry under `key` expire `ttl` from now, its value and
  // place unchanged; returns false, changing nothing, if the key is missing.
  // Errors: VALUE_ERROR for a bad `ttl`, as Set. Blocks for one round trip.
  absl::StatusOr<bool> Expire(const Value& key, absl::Duration ttl);
  // Ttl returns the time left before the entry under `key` expires, or
  // nullopt if it has no ttl. Errors: KEY_ERROR if the key is missing.
  // Blocks for one round trip.
  absl::StatusOr<std::optional<absl::Duration>> Ttl(const Value& key) const;

  // Delete does del d[key]. Errors: KEY_ERROR if the key is missing.
  // Blocks for one round trip.
  absl::Status Delete(const Value& key);

  // Contains returns key in d. Blocks for one round trip, or none when the
  // near cache has the key. (With a near cache a miss reads the entry, as
  // Get does, and keeps it.)
  absl::StatusOr<bool> Contains(const Value& key) const;

  // Len returns len(d). Blocks for one round trip.
  absl::StatusOr<int64_t> Len() const;

  // Items returns every entry in insertion order, in one reply.
  // Blocks for one round trip.
  absl::StatusOr<Value::Entries> Items() const;

  // Keys returns every key in insertion order, in one reply.
  // Blocks for one round trip.
  absl::StatusOr<Value::Items> Keys() const;

  // Values returns every value in insertion order, in one reply.
  // Blocks for one round trip.
  absl::StatusOr<Value::Items> Values() const;

  // ForEach calls fn(key, value) for every entry in insertion order, fetching
  // `page_size` entries per call (0 or less: all in one call). fn returns
  // false to stop early; ForEach then returns OK. fn runs on the calling
  // thread with no lock held, so it may call this dict.
  // Errors: RUNTIME_ERROR if the dict changed size between pages (Python's
  // "dictionary changed size during iteration"); entries already passed to fn
  // stay passed. Blocks for one round trip per page.
  absl::Status ForEach(
      const std::function<bool(const Value& key, const Value& value)>& fn,
      int64_t page_size = 1000) const;

  // Pop removes d[key] and returns it. Errors: KEY_ERROR if the key is
  // missing. Blocks for one round trip.
  absl::StatusOr<Value> Pop(const Value& key);

  // Pop removes and returns d[key], or returns `default_value` if the key is
  // missing. Blocks for one round trip.
  absl::StatusOr<Value> Pop(const Value& key, const Value& default_value);

  // PopItem removes and returns the last inserted entry.
  // Errors: KEY_ERROR if the dict is empty. Blocks for one round trip.
  absl::StatusOr<std::pair<Value, Value>> PopItem();

  // SetDefault returns d[key], first storing `default_value` if the key is
  // missing (atomically). Blocks for one round trip.
  absl::StatusOr<Value> SetDefault(const Value& key,
                                   const Value& default_value = Value());

  // Update sets every entry in order, atomically (d.update(entries)); a
  // later duplicate key wins. Blocks for one round trip.
  absl::Status Update(const Value::Entries& entries);

  // Clear removes every entry. Blocks for one round trip.
  absl::Status Clear();

  // Increment atomically adds `delta` (int, double or bool) to d[key] and
  // returns the sum; a missing key counts as 0. int + int stays int.
  // Errors: TYPE_ERROR if d[key] or delta is not a number; VALUE_ERROR on
  // int64 overflow. Blocks for one round trip.
  absl::StatusOr<Value> Increment(const Value& key, const Value& delta = 1);

  // CompareAndSet atomically stores `desired` under `key` if the stored value
  // equals `expected` (Python equality), or, with expected == nullopt, if
  // the key is missing. Returns whether it stored. If `current` is non-null
  // it receives the value stored after the call (null if the key is
  // missing). Blocks for one round trip.
  absl::StatusOr<bool> CompareAndSet(const Value& key,
                                     const std::optional<Value>& expected,
                                     const Value& desired,
                                     Value* current = nullptr);

  // GetAndSet atomically stores `value` under `key` and returns the previous
  // value, or nullopt if the key was missing. Blocks for one round trip.
  absl::StatusOr<std::optional<Value>> GetAndSet(const Value& key,
                                                 const Value& value);

  // Watch follows this dict's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the dict does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  friend struct client_internal::CacheTesting;
  explicit Dict(client_internal::HandleState state);

  // Fetch is Get(key) from the server; *ttl receives the seconds the entry
  // has left, if it has a ttl.
  absl::StatusOr<Value> Fetch(const Value& key,
                              std::optional<double>* ttl) const;

  client_internal::HandleState state_;
  // cache_ is the near cache; empty without one.
  client_internal::CacheSlot cache_;
};

}  // namespace statehub

#endif  // STATEHUB_DICT_H_
