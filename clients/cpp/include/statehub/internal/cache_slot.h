// File: statehub/internal/cache_slot.h
//
// The near cache a handle may carry (Dict, ValueCell, Namespace: their
// Cached()), held by value. Not part of the public API; included by the
// public handle headers only so that handles can hold it.

#ifndef STATEHUB_INTERNAL_CACHE_SLOT_H_
#define STATEHUB_INTERNAL_CACHE_SLOT_H_

#include <memory>
#include <optional>

#include "absl/status/status.h"
#include "statehub/cache.h"
#include "statehub/internal/handle.h"

namespace statehub::client_internal {

class NearCache;
struct CachedObject;

// CacheSlot is a handle's near cache, empty without one: what the cached
// handles share of Cached(), cache_info() and ClearCache(). Movable, not
// copyable; destroying (or assigning over) a full slot stops its cache.
class CacheSlot {
 public:
  CacheSlot();
  CacheSlot(CacheSlot&&) noexcept;
  CacheSlot& operator=(CacheSlot&&) noexcept;
  ~CacheSlot();

  // Start fills the slot with a cache of `state`'s object, a `type`
  // (NearCache::Start, whose errors it returns).
  absl::Status Start(const HandleState& state, const CachedObject& type,
                     const CacheOptions& options);

  // Info returns the cache's counters; nullopt when empty.
  std::optional<CacheInfo> Info() const;

  // Clear drops every entry of the cache; does nothing when empty.
  void Clear() const;

  // get returns the cache; null when empty.
  NearCache* get() const { return cache_.get(); }

 private:
  std::unique_ptr<NearCache> cache_;
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_INTERNAL_CACHE_SLOT_H_
