// File: server/engine/caller.h
//
// Who makes a call: the session it belongs to.

#ifndef STATEHUB_SERVER_ENGINE_CALLER_H_
#define STATEHUB_SERVER_ENGINE_CALLER_H_

#include <cstdint>

namespace statehub {

// SessionId names a client session; 0 means "no session".
using SessionId = uint64_t;

// SessionEnd says how a session ended, which decides what becomes of the
// locks it held.
enum class SessionEnd {
  // The client is gone or gave everything back (its lease ran out, its Unix
  // socket closed without GOODBYE, a plain Goodbye): what it held is
  // released, and the next acquirer of a lock it held is told owner_died.
  kReleased,
  // The client said Goodbye with leave_locks, as a Python process that exits
  // normally does: like multiprocessing.Manager, its Lock holdings and
  // semaphore units stay taken, for any session to release. Everything else
  // (RLock ownership, parked calls, holds on anonymous objects) is released.
  kLeaveLocks,
};

// Caller describes who makes a call.
struct Caller {
  // session is the caller's live session, or 0.
  SessionId session = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_CALLER_H_
