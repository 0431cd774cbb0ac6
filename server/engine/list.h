// File: server/engine/list.h
//
// `ListObject` is a shared list: every ListProxy method as one atomic
// operation, with Python's index, slice and equality rules.
//
// Durability (change.proto): each change is one ItemsSpliced, or a Cleared
// when the list is emptied. A contiguous change is spliced where it took
// place; one that is not (an extended slice, a reverse) rewrites the whole
// list, and a sort rewrites the items from the first to the last that moved.
// A call that changes nothing records nothing.
//
// Thread safety: all methods are thread-safe and atomic with respect to each
// other. Errors name the list: `list "queue": list index out of range`.

#ifndef STATEHUB_SERVER_ENGINE_LIST_H_
#define STATEHUB_SERVER_ENGINE_LIST_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/slice.h"

namespace statehub {

class ListObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kList;

  static absl::StatusOr<std::shared_ptr<ListObject>> Make(std::string name,
                                                          Value::Items items,
                                                          Registry* registry);

  int64_t Size() const override;

  absl::StatusOr<int64_t> Len() const;
  // l[index]. Errors: INDEX_ERROR.
  absl::StatusOr<Value> Get(const Caller& caller, int64_t index) const;
  // l[slice] as a list value. Errors: VALUE_ERROR (step 0).
  absl::StatusOr<Value> GetSlice(const Caller& caller,
                                 const SliceSpec& slice) const;
  // l[index] = value. Errors: INDEX_ERROR.
  absl::Status Set(int64_t index, Value value);
  // l[slice] = items; an extended slice (step != 1) needs as many items as it
  // selects. Errors: VALUE_ERROR.
  absl::Status SetSlice(const SliceSpec& slice, Value::Items items);
  // del l[index]. Errors: INDEX_ERROR.
  absl::Status Delete(int64_t index);
  // del l[slice].
  absl::Status DeleteSlice(const SliceSpec& slice);
  // l.append(value); returns the new length.
  absl::StatusOr<int64_t> Append(Value value);
  // l.extend(items); returns the new length.
  absl::StatusOr<int64_t> Extend(Value::Items items);
  // l.insert(index, value), index clamped as Python does.
  absl::Status Insert(int64_t index, Value value);
  // l.pop(index), default -1. Errors: INDEX_ERROR.
  absl::StatusOr<Value> Pop(const Caller& caller, std::optional<int64_t> index);
  // l.remove(value). Errors: VALUE_ERROR.
  absl::Status Remove(const Value& value);
  // l.index(value, start, stop). Errors: VALUE_ERROR.
  absl::StatusOr<int64_t> Index(const Value& value,
                                std::optional<int64_t> start,
                                std::optional<int64_t> stop) const;
  absl::StatusOr<int64_t> Count(const Value& value) const;
  absl::StatusOr<bool> Contains(const Value& value) const;
  absl::Status Reverse();
  // l.sort(reverse=...), stable; on TYPE_ERROR the list is unchanged.
  absl::Status Sort(bool reverse);
  absl::Status Clear();
  // l *= times; returns the new length.
  absl::StatusOr<int64_t> Repeat(int64_t times);

  // Apply replays an ItemsSpliced or Cleared record. Errors: DATA_LOSS (a
  // splice outside the list, another kind of record).
  absl::Status Apply(const v1::ChangeRecord& record) override;
  // Dump appends the list's created record, its items included.
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  ListObject(std::string name, Registry* registry);
  std::vector<Value> TakeContents() override;
  absl::StatusOr<SliceRange> Resolve(const SliceSpec& slice) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts refs of values about to be stored; on failure undoes the ones
  // counted. Errors name this list.
  absl::Status AcquireAll(const Value::Items& items,
                          std::vector<Value>* undo) const;

  Value::Items items_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_LIST_H_
