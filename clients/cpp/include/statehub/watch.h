// File: statehub/watch.h
//
// `statehub::Watch` follows the changes of one shared object (every change
// to it: `handle.Watch()`) or of the names under a prefix (objects created
// and deleted there: `Client::WatchNames`), as the server makes them, in
// revision order, none twice and with no gap (docs/watches.md).
//
// Example:
//
//   absl::StatusOr<statehub::Dict> jobs = client->OpenDict("jobs");
//   absl::StatusOr<statehub::Watch> watch =
//       jobs->Watch({.initial = true});
//   if (!watch.ok()) return watch.status();
//   // The contents as of the start, then every change after them.
//   std::map<std::string, statehub::Value> state;  // say, string keys
//   for (const auto& [key, value] : watch->initial().entries) {
//     state[key.AsString()] = value;
//   }
//   while (true) {
//     absl::StatusOr<std::optional<statehub::WatchEvent>> event =
//         watch->Next(absl::Seconds(1));
//     if (!event.ok()) return event.status();  // e.g. WATCH_TOO_OLD
//     if (!event->has_value()) continue;       // nothing within a second
//     switch ((*event)->op) {
//       case statehub::WatchOp::kSet:
//         state[(*event)->key.AsString()] = (*event)->value;
//         break;
//       case statehub::WatchOp::kDelete:
//       case statehub::WatchOp::kExpire:
//         state.erase((*event)->key.AsString());
//         break;
//       case statehub::WatchOp::kClear:
//         state.clear();
//         break;
//       default:
//         break;
//     }
//   }
//
// Resuming: revision() is the revision up to which every change has been
// returned by Next; a later watch with `since = revision()` goes on from
// there, while the server still keeps those changes. A Watch whose
// connection breaks (the server restarted, the network blinked) does this
// by itself for up to WatchOptions::resume_for, so the reader sees a pause
// and then what it missed. When the server can no longer deliver every
// change (the changes after `since` are no longer kept, or this watcher
// fell more than the server's --watch_backlog behind), Next fails with
// WATCH_TOO_OLD (ErrorKind::kWatchTooOld, OUT_OF_RANGE; GetWatchRevisions
// gives the server's revision and the oldest it can resume from): read the
// state again (`initial`) and watch from there. Nothing is ever skipped
// silently.
//
// Transports: on the lane a watch has a connection of its own that joins
// the client's session; on gRPC a server stream (and a thread that reads
// it). Either way a watch costs the server a bounded amount of memory.
//
// Thread safety: one thread at a time calls Next; Close, revision() and
// start_revision() may be called from any thread, Close also while another
// thread is blocked in Next. A Watch is movable, not copyable; a moved-from
// Watch fails Next with FAILED_PRECONDITION.

#ifndef STATEHUB_WATCH_H_
#define STATEHUB_WATCH_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "statehub/value.h"

namespace statehub {

// WatchOp is what happened, by the type of the object watched (the same
// names as Python's WatchEvent.op: WatchOpName).
enum class WatchOp {
  // dict, namespace: key and value set. list, array: the item at index
  // `key` replaced by `value`. value cell: `value` set. event: set.
  kSet,
  // dict, namespace: `key` deleted.
  kDelete,
  // dict: `key` removed because its time to live ran out.
  kExpire,
  // dict, namespace, list, queue: emptied. event: cleared.
  kClear,
  // list: the items `value` (a list) inserted at index `key` (an append
  // inserts at the end).
  kInsert,
  // list: `removed` items removed from index `key`.
  kRemove,
  // list, array: `removed` items from index `key` replaced by the items
  // `value` (a list): a sort, a reverse, a slice assignment.
  kSplice,
  // queue: `value` put.
  kPut,
  // queue: the front item taken.
  kGet,
  // joinable queue: `value` is the count of unfinished tasks now.
  kTasks,
  // lock, rlock: acquired; `value` is the holder's label.
  kAcquire,
  // lock, rlock: released.
  kRelease,
  // semaphore: `value` is the number of units free now.
  kSemaphore,
  // barrier: tripped, broke or was reset; `value` is its generation.
  kBarrier,
  // any object: created; `value` is its type name ("dict"). With a name
  // watch, a new object of that name; with a prefix watch, `object` names
  // it.
  kCreated,
  // any object: deleted.
  kDeleted,
  // A change this client does not know (from a newer server).
  kUnknown,
};

// WatchOpName returns the op's name: "set", "delete", ..., "unknown".
absl::string_view WatchOpName(WatchOp op);

// WatchEvent is one change, as a watch delivers it.
struct WatchEvent {
  // revision is the server-wide revision of the change; the events of one
  // change (an Update of several keys) share it.
  uint64_t revision = 0;
  WatchOp op = WatchOp::kUnknown;
  // key is the dict key or namespace attribute, or the list index (an
  // int); null where the op has none.
  Value key;
  // value is the new value, items or count, as WatchOp says; null where
  // the op has none.
  Value value;
  // session is the label of the session that made the change
  // ("host:pid:program"); empty for changes the server made on its own
  // (an expiry, a lease that ran out).
  std::string session;
  // object is the name of the object changed.
  std::string object;
  // removed is how many items a kRemove or kSplice removed; 0 otherwise.
  int64_t removed = 0;
};

// WatchContents is what a watch started with `initial` holds as of its
// start revision: a change is either in it or in an event, never both,
// never neither.
struct WatchContents {
  // type is the watched object's type (kUnspecified for a prefix watch).
  ObjectType type = ObjectType::kUnspecified;
  // entries are a dict's or namespace's, in insertion order.
  Value::Entries entries;
  // items are a list's, an array's or a queue's (front first).
  Value::Items items;
  // value is a value cell's.
  Value value;
  // objects are a prefix watch's: each object under the prefix and its
  // type, in name order.
  std::vector<std::pair<std::string, ObjectType>> objects;
};

// WatchOptions configures a watch.
struct WatchOptions {
  // since resumes a watch: deliver the changes with a revision above it (a
  // previous watch's revision()). Unset: from now. A revision the server
  // no longer keeps fails with WATCH_TOO_OLD; one above the server's,
  // with VALUE_ERROR.
  std::optional<uint64_t> since;
  // initial fills Watch::initial() with the contents as of the start
  // revision. Not with `since` (VALUE_ERROR).
  bool initial = false;
  // resume_for is how long a watch whose connection broke tries to watch
  // again from its revision before Next gives up with UNAVAILABLE; zero
  // does not try.
  absl::Duration resume_for = absl::Seconds(30);
};

class Watch;

namespace client_internal {
class Core;
class WatchState;
// StartWatch starts a watch of the object `name`, or with `by_prefix` of
// the names under that prefix: what the handles' Watch methods and
// Client's watch methods call.
absl::StatusOr<Watch> StartWatch(const std::shared_ptr<Core>& core,
                                 absl::string_view name, bool by_prefix,
                                 const WatchOptions& options);
// StartWatch with a deadline for the start of its own, not call_timeout:
// for a watch started where a long wait would hold up a Close (a near
// cache's thread).
absl::StatusOr<Watch> StartWatch(const std::shared_ptr<Core>& core,
                                 absl::string_view name, bool by_prefix,
                                 const WatchOptions& options,
                                 absl::Time deadline);
}  // namespace client_internal

class Watch {
 public:
  Watch(Watch&& other) noexcept;
  // operator= closes the watch this was, then takes `other`'s.
  Watch& operator=(Watch&& other) noexcept;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  // ~Watch closes the watch.
  ~Watch();

  // Next returns the next event, or nullopt if none came within `timeout`
  // (zero: only what has arrived already; InfiniteDuration: wait for one).
  // While the connection is broken, it tries to watch again for up to
  // WatchOptions::resume_for (beyond `timeout`).
  // Errors: WATCH_TOO_OLD (see the file comment); OBJECT_NOT_FOUND,
  // TYPE_ERROR or VALUE_ERROR the server's refusal when it resumes;
  // UNAVAILABLE if the server stayed away past resume_for; CANCELLED once
  // closed (events that arrived before Close are returned first). An error
  // ends the watch: later calls return it again. Blocks up to `timeout`.
  // Call from one thread at a time.
  absl::StatusOr<std::optional<WatchEvent>> Next(
      absl::Duration timeout = absl::InfiniteDuration());

  // Close ends the watch (the server forgets it) and wakes a thread
  // blocked in Next, which then returns CANCELLED. Idempotent; thread-safe;
  // does not block on the network.
  void Close();

  // revision returns the revision up to which every change has been
  // returned by Next (a change's events count once all are returned):
  // `since` for a later watch. Starts at start_revision(); a progress
  // notice from the server on a quiet watch moves it on. Thread-safe.
  uint64_t revision() const;

  // start_revision returns the revision the watch started at: the server's
  // revision then, or `since`. Thread-safe.
  uint64_t start_revision() const;

  // initial returns the contents as of start_revision() for a watch started
  // with WatchOptions::initial; empty otherwise. The reference is valid as
  // long as this Watch.
  const WatchContents& initial() const;

 private:
  friend absl::StatusOr<Watch> client_internal::StartWatch(
      const std::shared_ptr<client_internal::Core>& core,
      absl::string_view name, bool by_prefix, const WatchOptions& options,
      absl::Time deadline);
  explicit Watch(std::unique_ptr<client_internal::WatchState> state);

  std::unique_ptr<client_internal::WatchState> state_;
};

}  // namespace statehub

#endif  // STATEHUB_WATCH_H_
