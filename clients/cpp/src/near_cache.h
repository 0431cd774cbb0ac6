// The near cache of a cached handle (Dict, ValueCell, Namespace: their
// Cached(); docs/watches.md, "The near cache"): what this process has read
// of one shared object, kept correct by a watch of it. The C++ twin of the
// Python client's statehub/_cache.py, with the same guarantees:
//
// - A thread of the cache's own follows a watch of the object (resume_for
//   zero: a break is handled here); for a dict or a namespace each change
//   drops the keys it names (a set, a delete, an expiry), anything else (a
//   clear, a deletion) drops everything; for a value cell, whose one entry
//   has the key null, every event drops everything. Until the watch has
//   started, and while it is broken, nothing is kept: every read goes to
//   the server. A broken watch empties the cache and is started again,
//   from now, backing off.
// - A read that misses registers a placeholder for its key before it is
//   sent; an invalidation of the key while it is in flight spoils it, and
//   the reply is then returned but not kept (the race Redis's client-side
//   caching describes).
// - The handle's own writes drop what they change before they are sent and
//   again when answered (the handles' writes hold a Dropping).
// - At most max_entries keys, the oldest kept dropped first; an entry with
//   a ttl is kept until the read was sent plus the ttl, by a monotonic
//   clock.
//
// Thread safety: every method may be called from any thread; hits take the
// lock shared, everything else exclusively.

#ifndef STATEHUB_CLIENTS_CPP_SRC_NEAR_CACHE_H_
#define STATEHUB_CLIENTS_CPP_SRC_NEAR_CACHE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "statehub/cache.h"
#include "statehub/internal/cache_slot.h"
#include "statehub/observer.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub::client_internal {

class Core;

// CachedObject is what a near cache must know of the type it caches.
struct CachedObject {
  // missing is the error of a read of a key that is not there, kept as a
  // value is; nullopt for a type whose reads have none.
  std::optional<ErrorKind> missing;
  // keyed: a set, delete or expire event names the key it changes;
  // otherwise every event drops everything.
  bool keyed = true;
};

inline constexpr CachedObject kCachedDict{ErrorKind::kKeyError, true};
inline constexpr CachedObject kCachedNamespace{ErrorKind::kAttributeError,
                                               true};
// A value cell's one entry has the key null.
inline constexpr CachedObject kCachedValueCell{std::nullopt, false};

class NearCache {
 public:
  using Clock = std::chrono::steady_clock;
  // Fetch is a read from the server; it sets *ttl to the seconds the entry
  // has left, if it has a ttl.
  using Fetch =
      absl::FunctionRef<absl::StatusOr<Value>(std::optional<double>* ttl)>;

  // Start makes the cache of object `name`, a `type`, and starts its
  // watch, by the client's call_timeout, and its thread. Errors:
  // FAILED_PRECONDITION for a null `core` (a moved-from handle);
  // VALUE_ERROR if options.max_entries < 1; the watch's.
  static absl::StatusOr<std::unique_ptr<NearCache>> Start(
      std::shared_ptr<Core> core, std::string name, CachedObject type,
      const CacheOptions& options);

  NearCache(const NearCache&) = delete;
  NearCache& operator=(const NearCache&) = delete;

  // ~NearCache closes the watch and joins the thread.
  ~NearCache();

  // Read returns the reply of a read of `key` through `cache`: the one kept
  // (a hit), or fetch's (a miss), kept if it may be. With a null `cache`
  // (a handle without one), fetch's.
  static absl::StatusOr<Value> Read(NearCache* cache, const Value& key,
                                    Fetch fetch);

  // Invalidate drops `key` and spoils the reads of it in flight.
  void Invalidate(const Value& key);

  // Flush drops every entry and spoils every read in flight.
  void Flush();

  CacheInfo Info() const;

  // SetReplyHook makes every read that misses call `hook(key)` after its
  // reply came and before it is kept (tests: a deterministic race).
  void SetReplyHook(std::function<void(const Value&)> hook);

 private:
  // Placeholder is one read in flight (Begin to Finish), owned by the
  // reading thread; `valid` is false once an invalidation spoilt it.
  struct Placeholder {
    bool valid = true;
    // sent is when the read went out (before it did): an entry's ttl
    // counts from here.
    Clock::time_point sent;
  };

  // Entry is one key kept.
  struct Entry {
    absl::StatusOr<Value> reply;
    // deadline, for an entry with a ttl, is when it stops being served.
    std::optional<Clock::time_point> deadline;
    // order is the key's place in order_.
    std::list<Value>::iterator order;
  };

  // Lookup returns the kept reply of a read of `key` (the value, or the
  // error of a missing key), counted as a hit; nullopt for a miss.
  std::optional<absl::StatusOr<Value>> Lookup(const Value& key) const;

  // Begin counts a miss and, while the watch runs, registers `*read` for
  // `key` (setting read->sent) and returns true: Finish must follow.
  // Returns false, registering nothing, when the reply cannot be kept.
  bool Begin(const Value& key, Placeholder* read);

  // Finish unregisters `read` and keeps `reply` for `key` unless `read` was
  // spoilt, the watch stopped, or the reply is not worth keeping (an error
  // other than type_.missing; a value holding refs). `ttl` is the seconds
  // the entry had left, if it has a ttl.
  void Finish(const Value& key, Placeholder* read,
              const absl::StatusOr<Value>& reply, std::optional<double> ttl);

  // RunReplyHook calls the hook, if any.
  void RunReplyHook(const Value& key) const;

  NearCache(std::shared_ptr<Core> core, std::string name, CachedObject type,
            const CacheOptions& options);

  // Run is the thread: it follows `watch`, then, whenever a watch breaks,
  // goes dark and starts another, until closed.
  void Run(Watch watch);
  // Follow applies `watch`'s events until it fails (broken, closed).
  void Follow(Watch& watch);
  // Adopt makes `watch` the one the destructor closes and, with `go_live`
  // (a watch started after a break), empties the cache and goes live;
  // false (and nothing done) once closed.
  bool Adopt(Watch* watch, bool go_live);
  // GoDark forgets the watch and drops everything: a broken watch may have
  // missed changes.
  void GoDark();
  // Pause waits `pause` or until closed; false once closed.
  bool Pause(absl::Duration pause);

  void Erase(absl::flat_hash_map<Value, Entry, KeyHash, KeyEq>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SpoilLocked(const Value& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<Core> core_;
  const std::string name_;
  const CachedObject type_;
  const int64_t max_entries_;
  // observer_ counts for the client's CallObserver; null without one.
  const std::shared_ptr<CacheObserver> observer_;

  mutable std::atomic<int64_t> hits_{0};
  std::atomic<int64_t> misses_{0};
  std::atomic<int64_t> invalidations_{0};

  mutable absl::Mutex mu_;
  absl::flat_hash_map<Value, Entry, KeyHash, KeyEq> entries_
      ABSL_GUARDED_BY(mu_);
  // order_ is the kept keys, oldest first.
  std::list<Value> order_ ABSL_GUARDED_BY(mu_);
  // inflight_ is the reads in flight, by key.
  absl::flat_hash_map<Value, std::vector<Placeholder*>, KeyHash, KeyEq>
      inflight_ ABSL_GUARDED_BY(mu_);
  // live_: the watch runs, so what is kept stays right.
  bool live_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // watch_ is the running watch (the thread's own), for Close to close.
  Watch* watch_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::function<void(const Value&)> reply_hook_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;
};

// Dropping brackets a write of a handle with a near cache: it drops what
// the write changes (`key`, or with none everything) as the write is sent
// and again once it is answered, so that the writer's next read goes to
// the server (read-your-writes) even if a read in flight meanwhile kept the
// old value. Does nothing without a cache.
class Dropping {
 public:
  Dropping(NearCache* cache, const Value* key) : cache_(cache), key_(key) {
    Drop();
  }
  Dropping(const Dropping&) = delete;
  Dropping& operator=(const Dropping&) = delete;
  ~Dropping() { Drop(); }

 private:
  void Drop() {
    if (cache_ == nullptr) return;
    if (key_ != nullptr) {
      cache_->Invalidate(*key_);
    } else {
      cache_->Flush();
    }
  }

  NearCache* const cache_;
  const Value* const key_;
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_CLIENTS_CPP_SRC_NEAR_CACHE_H_
