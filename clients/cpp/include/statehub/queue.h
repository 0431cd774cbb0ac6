// File: statehub/queue.h
//
// `statehub::Queue` is a handle on a shared FIFO queue: Manager's Queue and
// JoinableQueue (Client::OpenQueue / OpenJoinableQueue), both queue.Queue
// on the server, so both support TaskDone and Join.
//
// Example:
//
//   absl::StatusOr<statehub::Queue> jobs = client->OpenJoinableQueue("jobs",
//                                                                    100);
//   absl::StatusOr<bool> stored = jobs->Put("job-1");   // waits while full
//   absl::StatusOr<std::optional<statehub::Value>> job =
//       jobs->Get(true, absl::Seconds(5));
//   if (job.ok() && job->has_value()) { ...; absl::Status s = jobs->TaskDone();
//   } absl::StatusOr<bool> done = jobs->Join();           // all tasks done
//
// Items are statehub::Values and may hold refs to other objects; a ref to
// an anonymous object keeps it alive while queued, and a Get gives the
// caller's session a hold on it (as reads from a Dict do).
//
// A full or empty queue is a result, not an error: Put returns false
// (Python's queue.Full), Get returns nullopt (queue.Empty).
//
// Blocking: Put on a full queue, Get on an empty one, and Join park on the
// server (no server thread each) and are served in FIFO order. They are not
// cut short by ClientOptions::call_timeout: untimed, they have no deadline;
// timed, the server answers when the timeout passes, and the client's
// deadline is timeout + call_timeout as a safety net. Timeouts are nullopt
// or absl::InfiniteDuration() (until served), zero (never wait) or
// positive; negative fails with VALUE_ERROR. Other calls make one round
// trip, at most call_timeout.
//
// Thread safety: a Queue may be used from several threads at once; each
// call is atomic on the server. Handles are movable, not copyable; a
// moved-from handle fails every call with FAILED_PRECONDITION.
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the queue was deleted, TYPE_ERROR if the name now holds another type,
// SESSION_ERROR for a blocking call without a live session (or whose
// session ended while it waited: a parked Put's item is then dropped), and
// transport errors (UNAVAILABLE, DEADLINE_EXCEEDED) with ErrorKind
// kUnspecified.

#ifndef STATEHUB_QUEUE_H_
#define STATEHUB_QUEUE_H_

#include <cstdint>
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

// QueueSize is what Queue::Size returns.
struct QueueSize {
  // size is qsize(): the number of stored items.
  int64_t size = 0;
  // maxsize as given at creation; <= 0 means unbounded.
  int64_t maxsize = 0;
  // unfinished counts items put and not yet marked done.
  int64_t unfinished = 0;
};

// QueueState is what Queue::State returns: the size and the parked calls,
// each in the order they will be served.
struct QueueState : QueueSize {
  std::vector<Waiter> getters;
  std::vector<Waiter> putters;
  std::vector<Waiter> joiners;
};

class Queue {
 public:
  Queue(Queue&&) noexcept = default;
  Queue& operator=(Queue&&) noexcept = default;
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;
  ~Queue() = default;

  // name returns the queue's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this queue. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Put stores `item` at the tail, as Python's put(item, block, timeout):
  // returns false (queue.Full) if the queue stayed full (block = false, or
  // for `timeout`). Errors: VALUE_ERROR for a negative timeout or a timeout
  // with block = false; LIMIT_EXCEEDED past a server limit; OBJECT_NOT_FOUND
  // or TYPE_ERROR for a bad ref in the item. Blocks while the queue is full.
  absl::StatusOr<bool> Put(
      const Value& item, bool block = true,
      std::optional<absl::Duration> timeout = std::nullopt);

  // Get takes the item at the head, as Python's get(block, timeout):
  // returns nullopt (queue.Empty) if the queue stayed empty. Errors:
  // VALUE_ERROR as Put. Blocks while the queue is empty.
  absl::StatusOr<std::optional<Value>> Get(
      bool block = true, std::optional<absl::Duration> timeout = std::nullopt);

  // TaskDone marks one item taken as done. Errors: VALUE_ERROR
  // "task_done() called too many times". Blocks for one round trip.
  absl::Status TaskDone();

  // Join waits until every item put has been marked done; returns false if
  // `timeout` passed first (Python's join has no timeout). Errors:
  // VALUE_ERROR for a negative timeout. Blocks until then.
  absl::StatusOr<bool> Join(
      std::optional<absl::Duration> timeout = std::nullopt);

  // Size returns qsize, maxsize and the unfinished task count. Blocks for
  // one round trip.
  absl::StatusOr<QueueSize> Size() const;

  // Qsize, Empty and Full are Python's qsize(), empty() and full(): one
  // Size call each, true only at the moment of the answer. Block for one
  // round trip.
  absl::StatusOr<int64_t> Qsize() const;
  absl::StatusOr<bool> Empty() const;
  absl::StatusOr<bool> Full() const;

  // State returns Size plus the parked getters, putters and joiners. Blocks
  // for one round trip.
  absl::StatusOr<QueueState> State() const;

  // Watch follows this queue's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the queue does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Queue(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
};

}  // namespace statehub

#endif  // STATEHUB_QUEUE_H_
