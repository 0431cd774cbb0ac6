// File: server/engine/deadlines.h
//
// `DeadlineIndex` holds the ttl deadlines of a dict's entries: each key's
// deadline, and the keys in deadline order, so that the keys due by a time
// are found without a scan (docs/methods.md, "TTL").
//
// Deadlines are absolute: unix time in microseconds, as change records
// carry them (change.proto, EntriesSet.deadlines).
//
// Example:
//
//   DeadlineIndex deadlines;
//   deadlines.Set("job", now + 200'000);
//   for (Value& key : deadlines.PopDue(now + 300'000, 1000)) ...
//
// Not thread-safe: the owning dict's mutex guards it. An empty index holds
// no memory on the heap.

#ifndef STATEHUB_SERVER_ENGINE_DEADLINES_H_
#define STATEHUB_SERVER_ENGINE_DEADLINES_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "statehub/value.h"

namespace statehub {

class DeadlineIndex {
 public:
  // kNone is Earliest() of an empty index.
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

  DeadlineIndex() = default;
  DeadlineIndex(const DeadlineIndex&) = delete;
  DeadlineIndex& operator=(const DeadlineIndex&) = delete;

  bool empty() const { return of_key_.empty(); }
  int64_t size() const { return static_cast<int64_t>(of_key_.size()); }

  // Set gives `key` the deadline `micros`, replacing any it had.
  // REQUIRES: CheckKey(key).ok().
  void Set(const Value& key, int64_t micros);
  // Erase drops `key`'s deadline; false if it had none.
  bool Erase(const Value& key);
  // Get returns `key`'s deadline, or 0 if it has none.
  int64_t Get(const Value& key) const;
  // Earliest is the first deadline, or kNone.
  int64_t Earliest() const;
  // CountDue is how many deadlines are at or before `now`.
  int64_t CountDue(int64_t now) const;
  // PopDue removes the deadlines at or before `now`, at most `limit` of
  // them, earliest first (ties in the order they were set), and returns
  // their keys.
  std::vector<Value> PopDue(int64_t now, size_t limit);
  void Clear();

 private:
  // A deadline, then a sequence number that orders equal deadlines.
  using When = std::pair<int64_t, uint64_t>;

  absl::flat_hash_map<Value, When, KeyHash, KeyEq> of_key_;
  absl::btree_map<When, Value> by_time_;
  uint64_t next_ = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_DEADLINES_H_
