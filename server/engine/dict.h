// File: server/engine/dict.h
//
// `DictObject` is a shared dict: every DictProxy method as one atomic
// operation, plus increment, compare-and-set and get-and-set.
//
// Thread safety: all methods are thread-safe and atomic with respect to each
// other. Errors name the dict: `dict "jobs": key 'x' not found`.

#ifndef STATEHUB_SERVER_ENGINE_DICT_H_
#define STATEHUB_SERVER_ENGINE_DICT_H_

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/ordered_map.h"

namespace statehub {

class DictObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kDict;

  // Found is a looked-up value and whether the key was present (false when
  // a default was returned).
  struct Found {
    Value value;
    bool found = false;
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

  int64_t Size() const override;

  // d[key], or *default_value if given and the key is missing.
  // Errors: KEY_ERROR (missing, no default), TYPE_ERROR (unhashable key).
  absl::StatusOr<Found> Get(const Caller& caller, const Value& key,
                            const Value* default_value) const;
  // d[key] = value.
  absl::Status Set(const Value& key, Value value);
  // del d[key]. Errors: KEY_ERROR.
  absl::Status Delete(const Value& key);
  absl::StatusOr<bool> Contains(const Value& key) const;
  absl::StatusOr<int64_t> Len() const;
  // A page of entries from `cursor`; `expected_version` (0: none) must match
  // the dict's size version. Errors: RUNTIME_ERROR (changed size).
  absl::StatusOr<ItemsPage> Items(const Caller& caller, int64_t cursor,
                                  int64_t limit, int64_t expected_version,
                                  bool keys_only) const;
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

  absl::Status Apply(const v1::ChangeRecord& record) override;
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  DictObject(std::string name, Registry* registry);
  std::vector<Value> TakeContents() override;
  // Fails with TYPE_ERROR naming this dict unless `key` may be a key.
  absl::Status CheckKeyFor(const Value& key) const;
  absl::Status MissingKey(const Value& key) const;

  OrderedMap map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_DICT_H_
