// File: server/engine/caller.h
//
// Who makes a call: the session it belongs to.

#ifndef STATEHUB_SERVER_ENGINE_CALLER_H_
#define STATEHUB_SERVER_ENGINE_CALLER_H_

#include <cstdint>

namespace statehub {

// SessionId names a client session; 0 means "no session".
using SessionId = uint64_t;

// Caller describes who makes a call.
struct Caller {
  // session is the caller's live session, or 0.
  SessionId session = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_CALLER_H_
