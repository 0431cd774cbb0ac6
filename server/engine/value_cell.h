// File: server/engine/value_cell.h
//
// `ValueCell` is Manager's Value: one cell holding any Value, plus atomic
// increment, compare-and-set and get-and-set. The typecode is kept only for
// repr (Manager's Value does not enforce it either).
//
// Thread safety: all methods are thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_VALUE_CELL_H_
#define STATEHUB_SERVER_ENGINE_VALUE_CELL_H_

#include "absl/status/statusor.h"
#include "server/engine/object.h"

namespace statehub {

class ValueCell final : public Object {
 public:
  static constexpr ObjectType kType = ObjectType::kValue;

  struct Swap {
    bool swapped = false;
    Value current;
  };

  static std::shared_ptr<ValueCell> Make(std::string name, Value value,
                                         std::string typecode,
                                         Registry* registry);

  int64_t Size() const override { return 1; }
  std::string Typecode() const override { return typecode_; }

  absl::StatusOr<Value> Get(const Caller& caller) const;
  absl::Status Set(Value value);
  // value += delta. Errors: TYPE_ERROR (not numbers), VALUE_ERROR (overflow).
  absl::StatusOr<Value> Increment(const Value& delta);
  absl::StatusOr<Swap> CompareAndSet(const Caller& caller,
                                     const Value& expected, Value desired);
  absl::StatusOr<Value> GetAndSet(const Caller& caller, Value value);

  // Apply replays a CellSet record. Errors: DATA_LOSS (another kind of
  // record).
  absl::Status Apply(const v1::ChangeRecord& record) override;
  // Dump appends the cell's created record: its typecode and value.
  uint64_t Dump(std::vector<v1::ChangeRecord>* out) const override;

 private:
  ValueCell(std::string name, std::string typecode, Registry* registry);
  std::vector<Value> TakeContents() override;

  const std::string typecode_;
  Value value_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_VALUE_CELL_H_
