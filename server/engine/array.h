// File: server/engine/array.h
//
// `ArrayObject` is Manager's Array: a fixed-length sequence whose cells all
// hold what one typecode allows (Python's array module codes, plus 'c' for
// one byte as in multiprocessing.sharedctypes). Values are converted as
// array.array converts them: bools to ints, ints to doubles for 'f'/'d'
// ('f' rounds through a 32-bit float).
//
// Durability (change.proto): a set is an ItemsSpliced that rewrites cells
// in place (removed equals the number of items), holding the values as
// stored; an extended slice rewrites every cell.
//
// Thread safety: all methods are thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_ARRAY_H_
#define STATEHUB_SERVER_ENGINE_ARRAY_H_

#include "absl/status/statusor.h"
#include "server/engine/object.h"
#include "server/engine/slice.h"

namespace statehub {

class ArrayObject final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kArray;

  // Errors: VALUE_ERROR (unknown typecode, out-of-range item), TYPE_ERROR
  // (item of the wrong kind), LIMIT_EXCEEDED.
  static absl::StatusOr<std::shared_ptr<ArrayObject>> Make(std::string name,
                                                           std::string typecode,
                                                           Value::Items items,
                                                           Registry* registry);

  int64_t Size() const override;
  std::string Typecode() const override { return typecode_; }

  absl::StatusOr<int64_t> Len() const;
  // a[index]. Errors: INDEX_ERROR.
  absl::StatusOr<Value> Get(int64_t index) const;
  // a[slice] as a list value. Errors: VALUE_ERROR (step 0).
  absl::StatusOr<Value> GetSlice(const SliceSpec& slice) const;
  // a[index] = value. Errors: INDEX_ERROR, TYPE_ERROR, VALUE_ERROR.
  absl::Status Set(int64_t index, const Value& value);
  // a[slice] = items; the length may not change. Errors: VALUE_ERROR,
  // TYPE_ERROR.
  absl::Status SetSlice(const SliceSpec& slice, const Value::Items& items);

  // Apply replays an ItemsSpliced record (one that rewrites cells: removed
  // equals the number of items). Errors: DATA_LOSS (a splice that would
  // change the length or lies outside the array, another kind of record).
  absl::Status Apply(const v1::ChangeRecord& record) override;
  // Dump appends the array's created record: its typecode and cells.
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  ArrayObject(std::string name, std::string typecode, Registry* registry);
  std::vector<Value> TakeContents() override;
  // Converts a value for storage under typecode_, or fails naming this array.
  absl::StatusOr<Value> Coerce(const Value& value) const;

  const std::string typecode_;
  Value::Items items_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_ARRAY_H_
