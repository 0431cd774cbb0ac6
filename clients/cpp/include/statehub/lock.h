// File: statehub/lock.h
//
// Handles on shared locks, Python's threading primitives as Manager serves
// them, held across processes:
//
// - `statehub::Lock` is Manager's Lock (threading.Lock): one holder at a
//   time; any caller may release it.
// - `statehub::RLock` is Manager's RLock: reentrant, owned by one
//   (session, thread) pair, released once per acquire by its owner only.
// - `statehub::Condition` is Manager's Condition, bound to a Lock or RLock
//   when created.
//
// Lock and RLock meet the standard Lockable and TimedLockable requirements,
// so std::lock_guard, std::unique_lock and std::scoped_lock work; Condition
// can be used like std::condition_variable_any with a
// std::unique_lock<Lock> or std::unique_lock<RLock>.
//
// Example:
//
//   absl::StatusOr<statehub::Lock> mu = client->OpenLock("jobs/lock");
//   absl::StatusOr<statehub::Condition> ready =
//       client->OpenCondition("jobs/ready", *mu);
//   {
//     std::unique_lock<statehub::Lock> hold(*mu);  // throws statehub::Error
//     ready->wait(hold, [&] { return QueueHasWork(); });
//     uint64_t token = mu->held().fencing_token;   // fence writes with it
//   }
//
//   // Or with statuses instead of exceptions:
//   absl::StatusOr<statehub::Acquisition> a = mu->Acquire(absl::Seconds(5));
//   if (a.ok() && a->acquired) { ...; absl::Status s = mu->Release(); }
//
// Ownership is robust: what a process holds belongs to its session. If the
// process dies, the server releases its locks when the session's lease runs
// out, and the next acquirer is told `owner_died`. Every acquisition gets a
// fencing token that only grows per lock.
//
// Blocking: acquires and waits park on the server (no server thread each)
// and are served in FIFO order. They are not cut short by
// ClientOptions::call_timeout: an untimed acquire or wait has no deadline; a
// timed one ends when the server answers "not acquired" / "not notified",
// with a client deadline of timeout + call_timeout as a safety net. Other
// calls make one round trip, at most call_timeout.
//
// Thread safety: handles may be used from several threads at once. Every
// request carries CurrentThreadId(); an RLock is owned by its (session,
// thread). Handles are movable, not copyable; a moved-from handle fails
// every call with FAILED_PRECONDITION (the std-style methods throw).
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the object was deleted, TYPE_ERROR if the name now holds another type,
// SESSION_ERROR if the client has no live session (and for a parked call
// whose session ended), and transport errors (UNAVAILABLE, DEADLINE_EXCEEDED)
// with ErrorKind kUnspecified. The std-style methods throw statehub::Error
// carrying the same status.

#ifndef STATEHUB_LOCK_H_
#define STATEHUB_LOCK_H_

#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "statehub/internal/handle.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

namespace v1 {
class LockAcquireResponse;
class ConditionWaitResponse;
}  // namespace v1

class Client;
class Condition;

namespace client_internal {

// ThrowIfError and ValueOrThrow turn a failed call into the statehub::Error
// that the std-style methods throw.
inline void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) throw Error(status);
}
template <typename T>
T ValueOrThrow(absl::StatusOr<T> result) {
  ThrowIfError(result.status());
  return *std::move(result);
}

}  // namespace client_internal

// CurrentThreadId returns the calling thread's id as sent to the server: a
// hash of std::this_thread::get_id(), stable for the thread's life.
// Thread-safe; makes no call.
uint64_t CurrentThreadId();

// Holder identifies who holds or waits on a synchronization object.
struct Holder {
  // session_id is the holder's session (Client::session_id()).
  std::string session_id;
  // thread_id is the holder's CurrentThreadId().
  uint64_t thread_id = 0;
  // label describes the holder, by default "<host>:<pid>:<program>".
  std::string label;
};

// Waiter is one call parked on a synchronization object.
struct Waiter {
  Holder holder;
  // waiting_for is how long it had waited when the server answered.
  absl::Duration waiting_for;
  // since is when it started waiting, by this client's clock (the reply's
  // arrival minus waiting_for).
  absl::Time since;
};

// Acquisition is the outcome of one acquire.
struct Acquisition {
  // acquired is false when the acquire timed out or would have blocked.
  bool acquired = false;
  // fencing_token is this acquisition's token (0 when not acquired): it
  // only grows per lock, so a resource guarded by the lock can refuse
  // writes from an older holder. An RLock re-entry has the outer one's.
  uint64_t fencing_token = 0;
  // owner_died is true when the previous holder's session ended while it
  // held the lock: the state the lock guards may be half-updated.
  bool owner_died = false;
};

// LockState is what Lock::State and RLock::State return.
struct LockState {
  // locked is true while someone holds the lock.
  bool locked = false;
  // holder and held_for describe the holder; empty when not locked.
  Holder holder;
  absl::Duration held_for;
  // recursion is an RLock's recursion depth (1 for a held Lock).
  int64_t recursion = 0;
  // fencing_token is the current (or last) holder's token.
  uint64_t fencing_token = 0;
  // waiters are the parked acquirers in the order they will be served.
  std::vector<Waiter> waiters;
};

// BasicLock is what Lock and RLock share; use those.
class BasicLock {
 public:
  BasicLock(BasicLock&&) noexcept = default;
  BasicLock& operator=(BasicLock&&) noexcept = default;
  BasicLock(const BasicLock&) = delete;
  BasicLock& operator=(const BasicLock&) = delete;
  ~BasicLock() = default;

  // name returns the lock's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this lock, to store in another object.
  // The ref shares this handle's hold. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Acquire takes the lock for this session and thread, waiting at most
  // `timeout` (nullopt or absl::InfiniteDuration(): until served; zero:
  // never waits). A timeout is a result: acquired = false. Errors:
  // VALUE_ERROR for a negative timeout. Blocks until acquired or timed out.
  absl::StatusOr<Acquisition> Acquire(
      std::optional<absl::Duration> timeout = std::nullopt);

  // Release releases the lock. Errors: RUNTIME_ERROR "release unlocked
  // lock" for a Lock nobody holds; RUNTIME_ERROR "cannot release
  // un-acquired lock" for an RLock this thread does not own. Blocks for one
  // round trip.
  absl::Status Release();

  // State returns whether the lock is held, by whom, and who waits.
  // Needs no session. Blocks for one round trip.
  absl::StatusOr<LockState> State() const;

  // held returns the acquisition by which the calling thread holds the
  // lock, as recorded by the last successful acquire through this handle
  // (lock(), try_lock*(), Acquire, or a Condition wait's reacquire).
  // REQUIRES: the calling thread holds the lock, acquired through this
  // handle; while it does, no other acquire through this handle can
  // succeed, so the record is its own. Otherwise the result is the last
  // acquisition through this handle, by whichever thread. Thread-safe;
  // makes no call.
  Acquisition held() const;

  // lock, unlock, try_lock, try_lock_for and try_lock_until make the handle
  // a TimedLockable: they are Acquire and Release for std::lock_guard,
  // std::unique_lock and std::scoped_lock. A failed call throws
  // statehub::Error. As for std::timed_mutex, a duration or time point
  // already passed means one attempt that never waits.
  void lock();
  void unlock();
  bool try_lock();
  template <typename Rep, typename Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return TryLockFor(ToAbsl(timeout));
  }
  template <typename Clock, typename Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& until) {
    return TryLockFor(ToAbsl(until - Clock::now()));
  }

  // Watch follows this lock's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the lock does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 protected:
  explicit BasicLock(client_internal::HandleState state);

 private:
  friend class Condition;
  // HeldRecord is behind a pointer so the handle stays movable.
  struct HeldRecord;

  // ToAbsl converts a std timeout: past means zero (one attempt), beyond
  // what int64 nanoseconds hold (~292 years) means forever.
  template <typename Rep, typename Period>
  static absl::Duration ToAbsl(const std::chrono::duration<Rep, Period>& d) {
    if (d <= d.zero()) return absl::ZeroDuration();
    if (std::chrono::duration<double>(d).count() >= 9e9) {
      return absl::InfiniteDuration();
    }
    // Rounded up, so a wait never ends before the time asked for.
    return absl::FromChrono(std::chrono::ceil<std::chrono::nanoseconds>(d));
  }
  bool TryLockFor(absl::Duration timeout);
  // Record notes a successful acquisition through this handle; `new_level`
  // unless it gives back levels the thread held (a Condition wait).
  void Record(const Acquisition& acquisition, bool new_level);
  // GrantedBeforeBreak is whether an acquire cut by the server going away
  // had been granted already (then it fills *response).
  absl::StatusOr<bool> GrantedBeforeBreak(
      v1::LockAcquireResponse* response) const;

  client_internal::HandleState state_;
  std::shared_ptr<HeldRecord> held_;
};

// Lock is Manager's Lock. Any caller may Release a held Lock (as
// threading.Lock allows); the server still records the holder, for cleanup
// when its session ends and for State. Acquiring a Lock the caller already
// holds waits (deadlocks without a timeout), as in Python.
class Lock final : public BasicLock {
 private:
  friend class Client;
  using BasicLock::BasicLock;
};

// RLock is Manager's RLock: the owning (session, thread) may acquire it
// again, and must release it as many times; other callers' Release fails
// with RUNTIME_ERROR.
class RLock final : public BasicLock {
 private:
  friend class Client;
  using BasicLock::BasicLock;
};

// LockHandle is satisfied by Lock and RLock, the locks a Condition binds to.
template <typename L>
concept LockHandle = std::derived_from<L, BasicLock>;

// Condition is Manager's Condition. Its lock is fixed when the condition is
// created (Client::OpenCondition); every wait and notify requires the
// caller to hold that lock (RUNTIME_ERROR otherwise, checked by the
// server). A wait releases the lock (all RLock levels), parks, and
// reacquires it before returning, all on the server, so no notify is lost
// in between; the std::unique_lock passed in owns the lock throughout.
class Condition {
 public:
  Condition(Condition&&) noexcept = default;
  Condition& operator=(Condition&&) noexcept = default;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;
  ~Condition() = default;

  // name returns the condition's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this condition. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // own_lock returns the anonymous RLock that Client::OpenCondition(name)
  // created for this condition, or null if it was opened with a caller's
  // lock. Valid as long as this handle.
  RLock* own_lock() const { return own_lock_.get(); }

  // Wait waits until notified. `lock` must own the condition's lock.
  // Errors: RUNTIME_ERROR "cannot wait on un-acquired lock". Blocks until
  // notified and the lock is reacquired.
  template <LockHandle L>
  absl::Status Wait(std::unique_lock<L>& lock) {
    return WaitOn(lock.mutex(), std::nullopt).status();
  }

  // Wait with a predicate waits until `predicate()` (called with the lock
  // held, in this process) is true. Same errors.
  template <LockHandle L, typename Predicate>
  absl::Status Wait(std::unique_lock<L>& lock, Predicate predicate) {
    while (!predicate()) {
      if (absl::Status s = Wait(lock); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // WaitFor waits until notified or `timeout` passes; returns whether it
  // was notified. The lock is reacquired either way. Errors: VALUE_ERROR
  // for a negative timeout; RUNTIME_ERROR as Wait. Blocks until then.
  template <LockHandle L>
  absl::StatusOr<bool> WaitFor(std::unique_lock<L>& lock,
                               absl::Duration timeout) {
    return WaitOn(lock.mutex(), timeout);
  }

  // WaitFor with a predicate is Python's wait_for(predicate, timeout):
  // it waits until `predicate()` is true or the total `timeout` has passed
  // across notifications, and returns the last value of the predicate.
  template <LockHandle L, typename Predicate>
  absl::StatusOr<bool> WaitFor(std::unique_lock<L>& lock,
                               absl::Duration timeout, Predicate predicate) {
    const absl::Time deadline = absl::Now() + timeout;
    absl::Duration left = timeout;
    bool result = predicate();
    while (!result) {
      absl::StatusOr<bool> notified = WaitFor(lock, left);
      if (!notified.ok()) return notified.status();
      result = predicate();
      left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) break;
    }
    return result;
  }

  // Notify wakes up to `n` waiters (none for n <= 0) and returns how many
  // it woke; they reacquire the lock, in FIFO order, once the caller
  // releases it. Errors: RUNTIME_ERROR "cannot notify on un-acquired lock".
  // Blocks for one round trip.
  absl::StatusOr<int64_t> Notify(int64_t n = 1);
  // NotifyAll wakes every waiter and returns how many it woke.
  absl::StatusOr<int64_t> NotifyAll();

  // wait, wait_for, wait_until, notify_one and notify_all are the methods
  // of std::condition_variable_any over Wait, WaitFor and Notify; a failed
  // call throws statehub::Error. As there, a time already passed means no
  // wait (the server is still asked, to release and reacquire the lock).
  template <LockHandle L>
  void wait(std::unique_lock<L>& lock) {
    client_internal::ThrowIfError(Wait(lock));
  }
  template <LockHandle L, typename Predicate>
  void wait(std::unique_lock<L>& lock, Predicate predicate) {
    client_internal::ThrowIfError(Wait(lock, std::move(predicate)));
  }
  template <LockHandle L, typename Rep, typename Period>
  std::cv_status wait_for(std::unique_lock<L>& lock,
                          const std::chrono::duration<Rep, Period>& timeout) {
    return client_internal::ValueOrThrow(
               WaitFor(lock, BasicLock::ToAbsl(timeout)))
               ? std::cv_status::no_timeout
               : std::cv_status::timeout;
  }
  template <LockHandle L, typename Rep, typename Period, typename Predicate>
  bool wait_for(std::unique_lock<L>& lock,
                const std::chrono::duration<Rep, Period>& timeout,
                Predicate predicate) {
    return client_internal::ValueOrThrow(
        WaitFor(lock, BasicLock::ToAbsl(timeout), std::move(predicate)));
  }
  template <LockHandle L, typename Clock, typename Duration>
  std::cv_status wait_until(
      std::unique_lock<L>& lock,
      const std::chrono::time_point<Clock, Duration>& until) {
    return wait_for(lock, until - Clock::now());
  }
  template <LockHandle L, typename Clock, typename Duration, typename Predicate>
  bool wait_until(std::unique_lock<L>& lock,
                  const std::chrono::time_point<Clock, Duration>& until,
                  Predicate predicate) {
    return wait_for(lock, until - Clock::now(), std::move(predicate));
  }
  void notify_one() { client_internal::ValueOrThrow(Notify(1)); }
  void notify_all() { client_internal::ValueOrThrow(NotifyAll()); }

 private:
  friend class Client;
  Condition(client_internal::HandleState state, std::unique_ptr<RLock> own)
      : state_(std::move(state)), own_lock_(std::move(own)) {}

  // WaitOn is one Conditions.Wait on behalf of `lock` (whose held() record
  // it updates); returns whether notified.
  absl::StatusOr<bool> WaitOn(BasicLock* lock,
                              std::optional<absl::Duration> timeout);
  // ReacquireAfterBreak ends a wait cut by the server going away: it takes
  // `lock` again unless this thread holds it, and fills *response as a
  // notified wait's.
  static absl::StatusOr<bool> ReacquireAfterBreak(
      BasicLock* lock, v1::ConditionWaitResponse* response);

  client_internal::HandleState state_;
  std::unique_ptr<RLock> own_lock_;
};

}  // namespace statehub

#endif  // STATEHUB_LOCK_H_
