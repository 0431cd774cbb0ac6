// File: server/engine/observer.h
//
// Observers let the server record what the engine does (metrics) without the
// engine depending on a metrics library. The engine calls them with an
// object's mutex held: implementations must be quick and must not call back
// into the engine.
//
// The registry holds an optional `Observers`; with none (metrics off) the
// engine skips every call.

#ifndef STATEHUB_SERVER_ENGINE_OBSERVER_H_
#define STATEHUB_SERVER_ENGINE_OBSERVER_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "statehub/value.h"

namespace statehub {

// AcquireObserver sees the acquisitions and releases of one lock, rlock or
// semaphore. Many objects may share one observer (metrics fold names past a
// cap).
class AcquireObserver {
 public:
  virtual ~AcquireObserver() = default;

  // Acquired: an acquire call got the lock after waiting `waited` (zero
  // when it did not park: uncontended). owner_died: the previous holder's
  // session ended holding it. RLock re-entry is not an acquisition.
  virtual void Acquired(absl::Duration waited, bool contended,
                        bool owner_died) = 0;
  // NotAcquired: an acquire call ended without the lock: timed out (a
  // failed non-blocking try counts as a zero timeout) or cancelled (call
  // cancelled, session ended, lock deleted).
  virtual void NotAcquired(bool timed_out) = 0;
  // Released: a lock holder let go (release, condition wait, session end)
  // after holding the lock for `held`. Semaphores do not report releases:
  // their units are not held by anyone in particular.
  virtual void Released(absl::Duration held) = 0;
};

// Observers hands out observers to objects as they are created.
class Observers {
 public:
  virtual ~Observers() = default;
  // ForLock returns the observer for the lock called `name`, or null.
  virtual std::shared_ptr<AcquireObserver> ForLock(const std::string& name) = 0;
  // ForSemaphore returns the observer for the semaphore (bounded or not)
  // called `name`, or null.
  virtual std::shared_ptr<AcquireObserver> ForSemaphore(
      const std::string& name) = 0;
  // Parked counts blocking calls parked on objects of `type` (+1 when one
  // parks, -1 when it finishes). Called by the handlers, no mutex held.
  virtual void Parked(ObjectType type, int delta) = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_OBSERVER_H_
