#include "server/engine/value_cell.h"

#include "server/engine/numbers.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"
#include "statehub/internal/value_codec.h"

namespace statehub {

ValueCell::ValueCell(std::string name, std::string typecode, Registry* registry)
    : Object(std::move(name), kType, registry),
      typecode_(std::move(typecode)) {}

std::shared_ptr<ValueCell> ValueCell::Make(std::string name, Value value,
                                           std::string typecode,
                                           Registry* registry) {
  std::shared_ptr<ValueCell> cell(
      new ValueCell(std::move(name), std::move(typecode), registry));
  MutexLock lock(&cell->mu_);
  cell->value_ = std::move(value);
  return cell;
}

std::vector<Value> ValueCell::TakeContents() {
  std::vector<Value> out;
  out.push_back(std::move(value_));
  return out;
}

absl::StatusOr<Value> ValueCell::Get(const Caller& caller) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Hold(caller, value_);
  return value_;
}

absl::Status ValueCell::Set(Value value) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
    if (recording()) Emit(records::CellSet(value));
    Keep(std::exchange(value_, std::move(value)), &dropped);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<Value> ValueCell::Increment(const Value& delta) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<Value> sum = Add(value_, delta);
  if (!sum.ok()) {
    const bool overflow = sum.status().code() == absl::StatusCode::kOutOfRange;
    return Error(absl::StatusCode::kInvalidArgument,
                 overflow ? ErrorKind::kValueError : ErrorKind::kTypeError,
                 sum.status().message());
  }
  if (recording()) Emit(records::CellSet(*sum));
  value_ = *sum;
  return sum;
}

absl::StatusOr<ValueCell::Swap> ValueCell::CompareAndSet(const Caller& caller,
                                                         const Value& expected,
                                                         Value desired) {
  std::vector<Value> dropped;
  Swap swap;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (value_ == expected) {
      if (absl::Status s = AcquireRefs(desired); !s.ok()) return s;
      if (recording()) Emit(records::CellSet(desired));
      Keep(std::exchange(value_, std::move(desired)), &dropped);
      swap.swapped = true;
    }
    Hold(caller, value_);
    swap.current = value_;
  }
  ReleaseDropped(dropped);
  return swap;
}

absl::StatusOr<Value> ValueCell::GetAndSet(const Caller& caller, Value value) {
  Value previous;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
    if (recording()) Emit(records::CellSet(value));
    previous = std::exchange(value_, std::move(value));
    Hold(caller, previous);
    Keep(previous, &dropped);
  }
  ReleaseDropped(dropped);
  return previous;
}

absl::Status ValueCell::Apply(const v1::ChangeRecord& record) {
  if (record.change_case() != v1::ChangeRecord::kCellSet) {
    return CannotApply(record);
  }
  absl::StatusOr<Value> value = records::Decode(record.cell_set().value());
  if (!value.ok()) return value.status();
  MutexLock lock(&mu_);
  value_ = *std::move(value);
  return absl::OkStatus();
}

uint64_t ValueCell::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, value] = Copy([this] { return value_; });
  v1::ChangeRecord& record = out->emplace_back(Created());
  record.mutable_created()->set_typecode(typecode_);
  internal::EncodeValue(value, record.mutable_created()->mutable_value());
  return revision;
}

}  // namespace statehub
