// File: statehub/internal/cache_testing.h
//
// A test hook into a Dict's near cache (statehub/dict.h, "Near cache"), for
// tests that make its races deterministic. Not part of the public API.

#ifndef STATEHUB_INTERNAL_CACHE_TESTING_H_
#define STATEHUB_INTERNAL_CACHE_TESTING_H_

#include <functional>

#include "statehub/dict.h"
#include "statehub/value.h"

namespace statehub::client_internal {

struct CacheTesting {
  // SetReplyHook makes every read of `dict` that misses while its cache's
  // watch runs call hook(key) on the reading thread after the reply came
  // and before the cache decides whether to keep it; an empty hook removes
  // it. REQUIRES: `dict` has a near cache. Thread-safe.
  static void SetReplyHook(Dict& dict, std::function<void(const Value&)> hook);
};

}  // namespace statehub::client_internal

#endif  // STATEHUB_INTERNAL_CACHE_TESTING_H_
