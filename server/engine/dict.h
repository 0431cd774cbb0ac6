// File: server/engine/dict.h
//
// `DictObject` is a shared dict: every DictProxy method as one atomic
// operation, plus increment, compare-and-set and get-and-set, and entries
// with a ttl.
//
// TTL: an entry may carry a deadline (Set with a ttl, Expire). Every
// operation first reclaims the entries whose deadline has passed, under
// the dict's mutex, publishing their removal (EntriesRemoved.expired, as
// the server's own change): so no operation ever sees an expired entry.
// The registry's Expirer reclaims them in the background too, at their
// deadline. Which writes keep a ttl: Increment keeps it, every other write
// of a value clears it (docs/methods.md, "TTL"). A dict none of whose
// entries has a ttl pays one branch per operation for this.
//
// Thread safety: all methods are thread-safe and atomic with respect to each
// other. Errors name the dict: `dict "jobs": key 'x' not found`.

#ifndef STATEHUB_SERVER_ENGINE_DICT_H_
#define STATEHUB_SERVER_ENGINE_DICT_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine/deadlines.h"
#include "server/engine/object.h"
#include "server/engine/ordered_map.h"

namespace statehub {

class DictObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kDict;

  // Found is a looked-up value, whether the key was present (false when
  // a default was returned) and, from Get, the entry's ttl deadline (unix
  // µs; 0 for none).
  struct Found {
    Value value;
    bool found = false;
    int64_t deadline = 0;
  };
  struct ItemsPage {
    Value::Entries entries;
    int64_t next_cursor = 0;
    int64_t size_version = 0;
  };
  struct Swap {
    bool swapped = false;
    std::optional<Value> current;  // nullopt: the key is missing
  };

  // Creates a dict holding `entries` (refs already counted by the registry).
  // Errors: TYPE_ERROR for an unhashable key, LIMIT_EXCEEDED.
  static absl::StatusOr<std::shared_ptr<DictObject>> Make(
      std::string name, Value::Entries entries, Registry* registry);

  // kMaxTtlSeconds caps a ttl: 100 years of 365.25 days.
  static constexpr double kMaxTtlSeconds = 100 * 365.25 * 86400;
  // kExpireBatch caps the entries one hold of the mutex reclaims in the
  // background, so that a mass expiry does not stall the dict's callers.
  static constexpr size_t kExpireBatch = 4096;

  // Size counts the entries not expired.
  int64_t Size() const override;

  // d[key], or *default_value if given and the key is missing.
  // Errors: KEY_ERROR (missing, no default), TYPE_ERROR (unhashable key).
  absl::StatusOr<Found> Get(const Caller& caller, const Value& key,
                            const Value* default_value);
  // d[key] = value; with `ttl_seconds` the entry expires that long from
  // now, without it a ttl the key had is cleared.
  // Errors: VALUE_ERROR (a ttl that is not finite, > 0 and at most
  // kMaxTtlSeconds), LIMIT_EXCEEDED.
  absl::Status Set(const Value& key, Value value,
                   std::optional<double> ttl_seconds = std::nullopt);
  // del d[key]. Errors: KEY_ERROR.
  absl::Status Delete(const Value& key);
  absl::StatusOr<bool> Contains(const Value& key);
  absl::StatusOr<int64_t> Len();
  // A page of entries from `cursor`; `expected_version` (0: none) must match
  // the dict's size version (an expiry changes the size, as a delete
  // does). Errors: RUNTIME_ERROR (changed size).
  absl::StatusOr<ItemsPage> Items(const Caller& caller, int64_t cursor,
                                  int64_t limit, int64_t expected_version,
                                  bool keys_only);
  // d.pop(key[, default]). Errors: KEY_ERROR.
  absl::StatusOr<Found> Pop(const Caller& caller, const Value& key,
                            const Value* default_value);
  // d.popitem(): the last inserted entry. Errors: KEY_ERROR when empty.
  absl::StatusOr<std::pair<Value, Value>> PopItem(const Caller& caller);
  // d.setdefault(key, default).
  absl::StatusOr<Value> SetDefault(const Caller& caller, const Value& key,
                                   Value default_value);
  // d.update(entries), atomically; on error nothing changes.
  absl::Status Update(Value::Entries entries);
  absl::Status Clear();
  // d[key] = d.get(key, 0) + delta. Errors: TYPE_ERROR, VALUE_ERROR.
  absl::StatusOr<Value> Increment(const Value& key, const Value& delta);
  // Stores desired if d[key] == *expected (expected null: key missing).
  absl::StatusOr<Swap> CompareAndSet(const Caller& caller, const Value& key,
                                     const Value* expected, Value desired);
  // Stores value, returns the previous value (nullopt if missing).
  absl::StatusOr<std::optional<Value>> GetAndSet(const Caller& caller,
                                                 const Value& key, Value value);
  // Expire gives the entry under `key` a ttl of `seconds` from now (value
  // and position unchanged); returns false, changing nothing, if the key is
  // missing. Errors: VALUE_ERROR (a bad ttl, as Set).
  absl::StatusOr<bool> Expire(const Value& key, double seconds);
  // Ttl is the time left before the entry under `key` expires, or nullopt
  // if it has no ttl. Errors: KEY_ERROR (missing).
  absl::StatusOr<std::optional<absl::Duration>> Ttl(const Value& key);

  // ExpireDue reclaims the entries whose deadline has passed (a batch at a
  // time, dropping the mutex in between) and asks the expirer to call again
  // at the next deadline. The Expirer calls it; no mutex held.
  void ExpireDue() ABSL_LOCKS_EXCLUDED(mu_);

  absl::Status Apply(const v1::ChangeRecord& record) override;
  absl::Status RestoreContents(const v1::ObjectCreated& created) override;
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  DictObject(std::string name, Registry* registry);
  std::vector<Value> TakeContents() override;
  // Fails with TYPE_ERROR naming this dict unless `key` may be a key.
  absl::Status CheckKeyFor(const Value& key) const;
  absl::Status MissingKey(const Value& key) const;
  // DeadlineAfter is the deadline (unix µs) `seconds` from now, or
  // VALUE_ERROR naming this dict and `key` for a ttl out of range.
  absl::StatusOr<int64_t> DeadlineAfter(const Value& key, double seconds) const;

  // Reclaim removes every entry whose deadline has passed (at most `limit`)
  // and publishes their removal as the server's own change; their values
  // go to `dropped`. Returns whether more are due. Free when no entry has
  // a deadline.
  bool Reclaim(std::vector<Value>* dropped,
               size_t limit = static_cast<size_t>(-1))
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // SetDeadline records `key`'s deadline (unix µs; 0 clears it) and asks
  // the expirer to wake this dict for it.
  void SetDeadline(const Value& key, int64_t deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ClearDeadline drops `key`'s deadline if it has one (a write that clears
  // the ttl, a removal).
  void ClearDeadline(const Value& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!deadlines_.empty()) deadlines_.Erase(key);
  }
  // Wake asks the expirer to call ExpireDue at `deadline` unless it will
  // by then already.
  void Wake(int64_t deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  OrderedMap map_ ABSL_GUARDED_BY(mu_);
  // The deadlines of the entries that have one.
  DeadlineIndex deadlines_ ABSL_GUARDED_BY(mu_);
  // The wake-up asked of the expirer (unix µs); kNone when none.
  int64_t wake_at_ ABSL_GUARDED_BY(mu_) = DeadlineIndex::kNone;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_DICT_H_
