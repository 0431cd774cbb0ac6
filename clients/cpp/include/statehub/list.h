// File: statehub/list.h
//
// `statehub::List` is a handle on a shared list: Manager's ListProxy, with
// every operation one atomic server call. Indices and slices follow Python:
// negative indices count from the end, slices clamp, steps may be negative.
// Equality (Count, Index, Remove, Contains) is Python's: 1 == 1.0 == true,
// and a list never equals a tuple.
//
// Example:
//
//   absl::StatusOr<statehub::List> log = client->OpenList("log");
//   if (!log.ok()) return log.status();
//   absl::StatusOr<int64_t> n = log->Append("started");
//   // The last two items, l[-2:]:
//   absl::StatusOr<statehub::Value::Items> tail =
//       log->GetSlice(statehub::Slice{.start = -2});
//
// Blocking: every method makes one round trip to the server and blocks until
// the reply, at most ClientOptions::call_timeout (then DEADLINE_EXCEEDED).
//
// Thread safety: a List may be used from several threads at once; each call
// is atomic on the server. Handles are movable, not copyable; a moved-from
// handle fails every call with FAILED_PRECONDITION.
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the list was deleted, TYPE_ERROR if the name now holds another type,
// VALUE_ERROR or TYPE_ERROR for a value the server refuses, LIMIT_EXCEEDED
// past a server limit, and transport errors (UNAVAILABLE, DEADLINE_EXCEEDED)
// with ErrorKind kUnspecified. Read the kind with statehub::GetErrorKind().

#ifndef STATEHUB_LIST_H_
#define STATEHUB_LIST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "statehub/internal/handle.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

class Client;

// Slice is Python's slice(start, stop, step); nullopt is None. Slice{} is
// the full slice l[:]. A step of 0 fails with VALUE_ERROR.
struct Slice {
  std::optional<int64_t> start;
  std::optional<int64_t> stop;
  std::optional<int64_t> step;
};

class List {
 public:
  List(List&&) noexcept = default;
  List& operator=(List&&) noexcept = default;
  List(const List&) = delete;
  List& operator=(const List&) = delete;
  ~List() = default;

  // name returns the list's name (server-made, "_anon/...", if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this list, to store in another object.
  // The ref shares this handle's hold. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Len returns len(l). Blocks for one round trip.
  absl::StatusOr<int64_t> Len() const;

  // Get returns l[index]. Errors: INDEX_ERROR if out of range.
  // Blocks for one round trip.
  absl::StatusOr<Value> Get(int64_t index) const;

  // GetSlice returns l[start:stop:step]. Errors: VALUE_ERROR for step 0.
  // Blocks for one round trip.
  absl::StatusOr<Value::Items> GetSlice(const Slice& slice) const;

  // Snapshot returns a copy of every item, l[:]. Blocks for one round trip.
  absl::StatusOr<Value::Items> Snapshot() const;

  // Set does l[index] = value. Errors: INDEX_ERROR if out of range.
  // Blocks for one round trip.
  absl::Status Set(int64_t index, const Value& value);

  // SetSlice does l[start:stop:step] = items. An extended slice (step other
  // than 1) needs exactly as many items as it selects.
  // Errors: VALUE_ERROR for a length mismatch or step 0.
  // Blocks for one round trip.
  absl::Status SetSlice(const Slice& slice, Value::Items items);

  // Delete does del l[index]. Errors: INDEX_ERROR if out of range.
  // Blocks for one round trip.
  absl::Status Delete(int64_t index);

  // DeleteSlice does del l[start:stop:step]. Errors: VALUE_ERROR for step 0.
  // Blocks for one round trip.
  absl::Status DeleteSlice(const Slice& slice);

  // Append does l.append(value) and returns the new length.
  // Blocks for one round trip.
  absl::StatusOr<int64_t> Append(const Value& value);

  // Extend does l.extend(items), atomically, and returns the new length.
  // Blocks for one round trip.
  absl::StatusOr<int64_t> Extend(Value::Items items);

  // Insert does l.insert(index, value); the index clamps as in Python.
  // Blocks for one round trip.
  absl::Status Insert(int64_t index, const Value& value);

  // Pop removes and returns l[index], by default the last item.
  // Errors: INDEX_ERROR if the list is empty or the index out of range.
  // Blocks for one round trip.
  absl::StatusOr<Value> Pop(std::optional<int64_t> index = std::nullopt);

  // Remove removes the first item equal to `value`.
  // Errors: VALUE_ERROR if no item equals it. Blocks for one round trip.
  absl::Status Remove(const Value& value);

  // Index returns the first position of `value` within l[start:stop].
  // Errors: VALUE_ERROR if absent. Blocks for one round trip.
  absl::StatusOr<int64_t> Index(
      const Value& value, std::optional<int64_t> start = std::nullopt,
      std::optional<int64_t> stop = std::nullopt) const;

  // Count returns how many items equal `value`. Blocks for one round trip.
  absl::StatusOr<int64_t> Count(const Value& value) const;

  // Contains returns value in l. Blocks for one round trip.
  absl::StatusOr<bool> Contains(const Value& value) const;

  // Reverse reverses the list in place. Blocks for one round trip.
  absl::Status Reverse();

  // Sort sorts in place, stably, in natural order (descending if
  // `reverse`). Errors: TYPE_ERROR if two items cannot be compared (e.g. a
  // string and an int); the list is then unchanged.
  // Blocks for one round trip.
  absl::Status Sort(bool reverse = false);

  // Clear removes every item. Blocks for one round trip.
  absl::Status Clear();

  // Repeat does l *= times (times <= 0 empties the list) and returns the new
  // length. Blocks for one round trip.
  absl::StatusOr<int64_t> Repeat(int64_t times);

  // Watch follows this list's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the list does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit List(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
};

}  // namespace statehub

#endif  // STATEHUB_LIST_H_
