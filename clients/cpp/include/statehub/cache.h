// File: statehub/cache.h
//
// The options and counters of a near cache: the opt-in cache of what this
// process has read of one shared object, kept correct by a watch of it
// (Dict::Cached, ValueCell::Cached, Namespace::Cached; docs/watches.md,
// "The near cache").

#ifndef STATEHUB_CACHE_H_
#define STATEHUB_CACHE_H_

#include <cstdint>

namespace statehub {

// CacheOptions configures a near cache (Dict::Cached, ValueCell::Cached,
// Namespace::Cached).
struct CacheOptions {
  // max_entries is how many keys (a namespace's attributes; a value cell
  // has one) the cache keeps at most (>= 1); past it, the key kept first is
  // dropped.
  int64_t max_entries = 100000;
};

// CacheInfo is a near cache's counters (cache_info() of a cached handle),
// as Python's cache_info() has them.
struct CacheInfo {
  // hits is the reads served from memory.
  int64_t hits = 0;
  // misses is the reads that went to the server.
  int64_t misses = 0;
  // invalidations is the drops: a key changed (by anyone, this handle's
  // writes included: twice each, when sent and when answered), or
  // everything at once (a clear, a deletion, a broken or restarted watch).
  int64_t invalidations = 0;
  // entries is the keys kept now.
  int64_t entries = 0;
  // max_entries is CacheOptions::max_entries.
  int64_t max_entries = 0;
};

}  // namespace statehub

#endif  // STATEHUB_CACHE_H_
