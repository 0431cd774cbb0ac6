// File: statehub/sync.h
//
// Handles on the other shared synchronization objects, Python's threading
// primitives as Manager serves them, across processes:
//
// - `statehub::Semaphore` is Manager's Semaphore or BoundedSemaphore
//   (Client::OpenSemaphore / OpenBoundedSemaphore).
// - `statehub::Event` is Manager's Event.
// - `statehub::Barrier` is Manager's Barrier, without `action` (run it
//   yourself in the caller that gets index 0).
//
// Example:
//
//   absl::StatusOr<statehub::Semaphore> slots =
//       client->OpenBoundedSemaphore("gpu/slots", 4);
//   absl::StatusOr<bool> got = slots->Acquire(true, absl::Seconds(30));
//   if (got.ok() && *got) { ...; absl::Status s = slots->Release(); }
//
//   absl::StatusOr<statehub::Event> go = client->OpenEvent("start");
//   absl::StatusOr<bool> set = go->Wait(absl::Seconds(10));
//
//   absl::StatusOr<statehub::Barrier> round = client->OpenBarrier("round", 5);
//   absl::StatusOr<int64_t> index = round->Wait();
//   // GetErrorKind(index.status()) == ErrorKind::kBrokenBarrier if broken
//
// Semaphore units belong to the acquiring session: if the process dies
// holding some, the server gives them back when its lease runs out (unlike
// Python, whose semaphores have no owners).
//
// Blocking: Semaphore::Acquire, Event::Wait and Barrier::Wait park on the
// server (no server thread each) and are served in FIFO order. They are not
// cut short by ClientOptions::call_timeout: untimed, they have no deadline;
// timed, the server answers when the timeout passes, and the client's
// deadline is timeout + call_timeout as a safety net. Timeouts are
// nullopt or absl::InfiniteDuration() (wait until served), zero (never
// wait) or positive; negative fails with VALUE_ERROR. Other calls make one
// round trip, at most call_timeout.
//
// Thread safety: handles may be used from several threads at once; each
// call is atomic on the server. Handles are movable, not copyable; a
// moved-from handle fails every call with FAILED_PRECONDITION.
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the object was deleted, TYPE_ERROR if the name now holds another type,
// SESSION_ERROR for a blocking call without a live session (or whose
// session ended while it waited), and transport errors (UNAVAILABLE,
// DEADLINE_EXCEEDED) with ErrorKind kUnspecified.

#ifndef STATEHUB_SYNC_H_
#define STATEHUB_SYNC_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "statehub/internal/handle.h"
#include "statehub/lock.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

class Client;

// SemaphoreState is what Semaphore::State returns.
struct SemaphoreState {
  // value is the number of free units.
  int64_t value = 0;
  // initial_value is the value given at creation (a bounded semaphore's
  // maximum).
  int64_t initial_value = 0;
  bool bounded = false;
  // Holding is how many units one session holds.
  struct Holding {
    std::string session_id;
    int64_t units = 0;
  };
  std::vector<Holding> holders;
  // waiters are the parked acquirers in the order they will be served.
  std::vector<Waiter> waiters;
};

class Semaphore {
 public:
  Semaphore(Semaphore&&) noexcept = default;
  Semaphore& operator=(Semaphore&&) noexcept = default;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;
  ~Semaphore() = default;

  // name returns the semaphore's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this semaphore. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Acquire takes one unit, as Python's acquire(blocking, timeout): returns
  // false if none was free (blocking = false) or none became free within
  // `timeout`. Errors: VALUE_ERROR for a negative timeout or a timeout with
  // blocking = false. Blocks until acquired or timed out.
  absl::StatusOr<bool> Acquire(
      bool blocking = true,
      std::optional<absl::Duration> timeout = std::nullopt);

  // Release adds `n` units and serves parked acquirers; any caller may
  // release. Errors: VALUE_ERROR "n must be one or more"; VALUE_ERROR
  // "Semaphore released too many times" if a bounded semaphore would pass
  // its initial value (nothing changes then). Blocks for one round trip.
  absl::Status Release(int64_t n = 1);

  // State returns the value, the holdings and the waiters. Blocks for one
  // round trip.
  absl::StatusOr<SemaphoreState> State() const;

  // Watch follows this semaphore's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the semaphore does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Semaphore(client_internal::HandleState state)
      : state_(std::move(state)),
        units_(std::make_shared<std::atomic<int64_t>>(0)) {}

  client_internal::HandleState state_;
  // units_ counts the units acquired through this handle and not released
  // through it: what tells an acquire that the server granted just before
  // it went away (its reply lost) from units the session held already.
  // Behind a pointer so the handle stays movable.
  std::shared_ptr<std::atomic<int64_t>> units_;
};

class Event {
 public:
  Event(Event&&) noexcept = default;
  Event& operator=(Event&&) noexcept = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() = default;

  // name returns the event's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this event. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Set sets the flag and wakes every waiter. Blocks for one round trip.
  absl::Status Set();

  // Clear clears the flag. Blocks for one round trip.
  absl::Status Clear();

  // IsSet returns the flag. Blocks for one round trip.
  absl::StatusOr<bool> IsSet() const;

  // Wait returns true at once if the flag is set, else waits until it is
  // set (true) or `timeout` passes (false). Errors: VALUE_ERROR for a
  // negative timeout. Blocks until then.
  absl::StatusOr<bool> Wait(
      std::optional<absl::Duration> timeout = std::nullopt);

  // Watch follows this event's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the event does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Event(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
};

// BarrierState is what Barrier::State returns.
struct BarrierState {
  int64_t parties = 0;
  // n_waiting is the number of callers waiting now.
  int64_t n_waiting = 0;
  bool broken = false;
  // generation counts how many times the barrier has passed.
  uint64_t generation = 0;
  // waiters are the parked callers in arrival order.
  std::vector<Waiter> waiters;
};

class Barrier {
 public:
  Barrier(Barrier&&) noexcept = default;
  Barrier& operator=(Barrier&&) noexcept = default;
  Barrier(const Barrier&) = delete;
  Barrier& operator=(const Barrier&) = delete;
  ~Barrier() = default;

  // name returns the barrier's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this barrier. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Wait waits until `parties` callers have arrived, then all pass; returns
  // this caller's arrival index (0 first, parties - 1 last). A timeout
  // breaks the barrier, as in Python. Errors: BROKEN_BARRIER (ABORTED) if
  // the barrier is or becomes broken (Abort, Reset, another party's timeout
  // or ended session, or this call's own timeout); VALUE_ERROR for a
  // negative timeout. Blocks until all arrive or it breaks.
  absl::StatusOr<int64_t> Wait(
      std::optional<absl::Duration> timeout = std::nullopt);

  // Abort breaks the barrier: waiters and later callers get BROKEN_BARRIER
  // until Reset. Blocks for one round trip.
  absl::Status Abort();

  // Reset fails the current waiters with BROKEN_BARRIER and makes the
  // barrier usable again. Blocks for one round trip.
  absl::Status Reset();

  // State returns parties, n_waiting, broken and the waiters. Blocks for
  // one round trip.
  absl::StatusOr<BarrierState> State() const;

  // Watch follows this barrier's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the barrier does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Barrier(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
};

}  // namespace statehub

#endif  // STATEHUB_SYNC_H_
