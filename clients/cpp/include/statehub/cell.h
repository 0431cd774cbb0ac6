// File: statehub/cell.h
//
// Handles on single shared cells:
//
// - `statehub::ValueCell` is Manager's Value: one cell holding any value,
//   with atomic Increment, CompareAndSet and GetAndSet.
// - `statehub::Array` is Manager's Array: a fixed-length sequence of cells of
//   one typecode ("i", "d", ...). A cell holds only what the typecode allows:
//   a wrong kind fails with TYPE_ERROR, an integer outside the C type's range
//   with VALUE_ERROR.
//
// Example:
//
//   absl::StatusOr<statehub::ValueCell> counter =
//       client->OpenValue("counter", 0, "i");
//   if (!counter.ok()) return counter.status();
//   absl::StatusOr<statehub::Value> now = counter->Increment();
//
//   absl::StatusOr<statehub::Array> weights =
//       client->OpenArray("weights", "d", {0.0, 0.0, 0.0});
//   absl::Status s = weights->Set(1, 0.5);
//
// Blocking: every method makes one round trip to the server (a read a near
// cache serves, none) and blocks until the reply, at most
// ClientOptions::call_timeout (then DEADLINE_EXCEEDED).
//
// Thread safety: handles may be used from several threads at once; each call
// is atomic on the server. Handles are movable, not copyable; a moved-from
// handle fails every call with FAILED_PRECONDITION.
//
// Near cache (opt-in, ValueCell only): `ValueCell::Cached()` returns a
// handle on the same cell whose Get is served from this process's memory
// after the first, kept correct by a watch of the cell: any change the
// server reports (a set by anyone, a deletion) drops the value, and this
// handle's own writes (Set, Increment, CompareAndSet, GetAndSet) drop it
// before they are sent and again when answered. The guarantees are
// Dict's (statehub/dict.h, "Near cache"; docs/watches.md, "The near
// cache"): nothing kept while the watch is not running, no stale reply
// kept by a read racing a change, another process's write seen once its
// invalidation arrives. It costs a watch and a thread per cached handle;
// destroying the handle stops and joins the thread.
//
//   absl::StatusOr<statehub::ValueCell> mode = client->OpenValue("mode");
//   absl::StatusOr<statehub::ValueCell> cached = mode->Cached();
//   cached->Get();  // to the server...
//   cached->Get();  // ...then from memory until the value changes
//
// Errors every method may return besides those listed: OBJECT_NOT_FOUND if
// the object was deleted, TYPE_ERROR if the name now holds another type,
// LIMIT_EXCEEDED past a server limit, and transport errors (UNAVAILABLE,
// DEADLINE_EXCEEDED) with ErrorKind kUnspecified.

#ifndef STATEHUB_CELL_H_
#define STATEHUB_CELL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "statehub/cache.h"
#include "statehub/internal/cache_slot.h"
#include "statehub/internal/handle.h"
#include "statehub/list.h"
#include "statehub/status.h"
#include "statehub/value.h"
#include "statehub/watch.h"

namespace statehub {

class Client;

class ValueCell {
 public:
  ValueCell(ValueCell&&) noexcept = default;
  ValueCell& operator=(ValueCell&&) noexcept = default;
  ValueCell(const ValueCell&) = delete;
  ValueCell& operator=(const ValueCell&) = delete;
  // ~ValueCell stops the near cache, if any, as ~Dict does.
  ~ValueCell() = default;

  // name returns the cell's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this cell, to store in another object.
  // The ref shares this handle's hold. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Cached returns a new handle on this cell with a near cache (see the
  // file comment); this handle is left as it was. It starts the cache's
  // watch and its thread before it returns. Errors: VALUE_ERROR if
  // options.max_entries < 1; FAILED_PRECONDITION for a moved-from handle;
  // OBJECT_NOT_FOUND if the cell does not exist; the transport's errors.
  // Blocks for one round trip (the watch's start). Thread-safe.
  absl::StatusOr<ValueCell> Cached(CacheOptions options = {}) const;

  // cache_info returns the near cache's counters (entries is 0 or 1), or
  // nullopt for a handle without one. Makes no call. Thread-safe.
  std::optional<CacheInfo> cache_info() const { return cache_.Info(); }

  // ClearCache drops the value the near cache keeps (the next Get goes to
  // the server); does nothing without one. Makes no call. Thread-safe.
  void ClearCache() const { cache_.Clear(); }

  // Get returns the value (v.value). Blocks for one round trip, or none
  // when the near cache has the value.
  absl::StatusOr<Value> Get() const;

  // Set replaces the value (v.value = value). Blocks for one round trip.
  absl::Status Set(const Value& value);

  // Increment atomically adds `delta` (int, double or bool) and returns the
  // sum; int + int stays int. Errors: TYPE_ERROR if the value or delta is
  // not a number; VALUE_ERROR on int64 overflow. Blocks for one round trip.
  absl::StatusOr<Value> Increment(const Value& delta = 1);

  // CompareAndSet atomically stores `desired` if the value equals `expected`
  // (Python equality) and returns whether it stored. If `current` is
  // non-null it receives the value after the call. Blocks for one round trip.
  absl::StatusOr<bool> CompareAndSet(const Value& expected,
                                     const Value& desired,
                                     Value* current = nullptr);

  // GetAndSet atomically stores `value` and returns the previous value.
  // Blocks for one round trip.
  absl::StatusOr<Value> GetAndSet(const Value& value);

  // Watch follows this value cell's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the value cell
  // does not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit ValueCell(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
  // cache_ is the near cache; empty without one.
  client_internal::CacheSlot cache_;
};

class Array {
 public:
  Array(Array&&) noexcept = default;
  Array& operator=(Array&&) noexcept = default;
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  ~Array() = default;

  // name returns the array's name ("_anon/..." if anonymous).
  const std::string& name() const { return state_.name; }

  // ref returns a ref value naming this array, to store in another object.
  // The ref shares this handle's hold. Makes no call.
  Value ref() const { return state_.MakeRef(); }

  // Len returns the fixed length. Blocks for one round trip.
  absl::StatusOr<int64_t> Len() const;

  // Get returns a[index]. Errors: INDEX_ERROR if out of range.
  // Blocks for one round trip.
  absl::StatusOr<Value> Get(int64_t index) const;

  // GetSlice returns a[start:stop:step]. Errors: VALUE_ERROR for step 0.
  // Blocks for one round trip.
  absl::StatusOr<Value::Items> GetSlice(const Slice& slice) const;

  // Set does a[index] = value. Errors: INDEX_ERROR if out of range;
  // TYPE_ERROR or VALUE_ERROR if the typecode does not allow `value`.
  // Blocks for one round trip.
  absl::Status Set(int64_t index, const Value& value);

  // SetSlice does a[start:stop:step] = items; the length must not change.
  // Errors: VALUE_ERROR for a length change or step 0; TYPE_ERROR or
  // VALUE_ERROR if the typecode does not allow an item.
  // Blocks for one round trip.
  absl::Status SetSlice(const Slice& slice, Value::Items items);

  // Watch follows this array's changes, in order, none twice and with no
  // gap (statehub/watch.h): `options.initial` fills the watch's initial()
  // with the contents as of its start, `options.since` resumes after a
  // previous watch's revision(). Errors: OBJECT_NOT_FOUND if the array does
  // not exist; WATCH_TOO_OLD for a `since` the server no longer keeps;
  // VALUE_ERROR for a `since` above the server's revision. Blocks for one
  // round trip (the watch's start). Thread-safe.
  absl::StatusOr<statehub::Watch> Watch(WatchOptions options = {}) const;

 private:
  friend class Client;
  explicit Array(client_internal::HandleState state)
      : state_(std::move(state)) {}

  client_internal::HandleState state_;
};

}  // namespace statehub

#endif  // STATEHUB_CELL_H_
