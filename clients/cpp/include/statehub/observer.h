// File: statehub/observer.h
//
// `statehub::CallObserver` sees every call a Client makes, for client-side
// metrics: the latency of each rpc as this process sees it (network and
// queueing included) and how long acquires waited. Install one with
// ClientOptions::observer; statehub/prometheus.h has one that records into
// a prometheus-cpp registry.
//
// A near cache (Cached() of a Dict, ValueCell or Namespace) asks the
// observer once, as it starts, for a CacheObserver that then counts its
// hits, misses, invalidations and entries.
//
// Thread safety: implementations are called from every thread that makes
// calls, concurrently, after each call returns; they must be thread-safe and
// quick. A CacheObserver's counts come from the threads that read the cached
// handle and from the cache's own thread, some under the cache's lock.

#ifndef STATEHUB_OBSERVER_H_
#define STATEHUB_OBSERVER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace statehub {

// CacheObserver counts the work of one near cache (a cached handle's).
class CacheObserver {
 public:
  virtual ~CacheObserver() = default;

  // Hit: a read served from memory.
  virtual void Hit() = 0;
  // Miss: a read that went to the server.
  virtual void Miss() = 0;
  // Invalidated: a key dropped because it changed, or everything dropped
  // at once (counted once).
  virtual void Invalidated() = 0;
  // EntriesChanged: the cache keeps `delta` more keys (fewer if negative).
  // What a cache keeps is taken back as it stops.
  virtual void EntriesChanged(int64_t delta) = 0;
};

class CallObserver {
 public:
  virtual ~CallObserver() = default;

  // CallDone: rpc `rpc` (e.g. "DictGet", "LockAcquire": the request
  // message's name without "Request") took `latency` and ended with `code`.
  virtual void CallDone(absl::string_view rpc, absl::Duration latency,
                        absl::StatusCode code) = 0;

  // AcquireDone: a lock or semaphore acquire ("LockAcquire",
  // "SemaphoreAcquire") that succeeded as a call waited `waited` and got
  // (`acquired`) or did not get the lock or unit. Called after CallDone.
  virtual void AcquireDone(absl::string_view rpc, absl::Duration waited,
                           bool acquired) = 0;

  // CacheOpened: a near cache of `object` (a dict, value cell or
  // namespace) starts; returns what counts its work, or null (the default)
  // to count nothing. Called once per cached handle, on the thread that
  // calls Cached().
  virtual std::shared_ptr<CacheObserver> CacheOpened(
      [[maybe_unused]] absl::string_view object) {
    return nullptr;
  }
};

}  // namespace statehub

#endif  // STATEHUB_OBSERVER_H_
