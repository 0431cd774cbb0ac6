// File: server/engine/limits.h
//
// The limits the engine enforces on every request. Each is a server flag
// (server/main.cc); exceeding one fails with LIMIT_EXCEEDED naming the flag,
// and leaves the object unchanged.

#ifndef STATEHUB_SERVER_ENGINE_LIMITS_H_
#define STATEHUB_SERVER_ENGINE_LIMITS_H_

#include <cstdint>

namespace statehub {

struct Limits {
  // max_value_bytes bounds the encoded size of one value in a request.
  int64_t max_value_bytes = 16 << 20;
  // max_depth bounds how deeply values nest (a scalar has depth 0).
  int max_depth = 32;
  // max_objects bounds how many objects (named and anonymous) exist at once.
  int64_t max_objects = 1'000'000;
  // max_elements bounds the entries of one dict or items of one list/array.
  int64_t max_elements = 10'000'000;
  // max_sessions bounds how many sessions are open at once.
  int64_t max_sessions = 10'000;
  // max_waiters_per_session bounds the blocking calls (acquire, wait, get,
  // ...) one session has in flight at once.
  int64_t max_waiters_per_session = 10'000;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_LIMITS_H_
