#include "server/engine/array.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

struct IntRange {
  int64_t min;
  int64_t max;
};

// Ranges of the integer typecodes on LP64 Linux ('l' and 'q' are 64-bit; the
// unsigned 64-bit codes are limited to int64's positive half, the wire's).
std::optional<IntRange> IntTypecode(char code) {
  switch (code) {
    case 'b':
      return IntRange{-128, 127};
    case 'B':
      return IntRange{0, 255};
    case 'h':
      return IntRange{-32768, 32767};
    case 'H':
      return IntRange{0, 65535};
    case 'i':
      return IntRange{INT32_MIN, INT32_MAX};
    case 'I':
      return IntRange{0, UINT32_MAX};
    case 'l':
    case 'q':
      return IntRange{INT64_MIN, INT64_MAX};
    case 'L':
    case 'Q':
      return IntRange{0, INT64_MAX};
    default:
      return std::nullopt;
  }
}

bool KnownTypecode(absl::string_view code) {
  return code.size() == 1 && (IntTypecode(code[0]) || code == "f" ||
                              code == "d" || code == "u" || code == "c");
}

int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

ArrayObject::ArrayObject(std::string name, std::string typecode,
                         Registry* registry)
    : Object(std::move(name), kType, registry),
      typecode_(std::move(typecode)) {}

absl::StatusOr<std::shared_ptr<ArrayObject>> ArrayObject::Make(
    std::string name, std::string typecode, Value::Items items,
    Registry* registry) {
  std::shared_ptr<ArrayObject> array(
      new ArrayObject(std::move(name), std::move(typecode), registry));
  if (!KnownTypecode(array->typecode_)) {
    return array->Error(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("bad typecode '%s' (must be b, B, h, H, i, I, l, L, "
                        "q, Q, f, d, u or c)",
                        absl::CHexEscape(array->typecode_)));
  }
  if (absl::Status s = array->CheckSize(static_cast<int64_t>(items.size()));
      !s.ok()) {
    return s;
  }
  for (Value& item : items) {
    absl::StatusOr<Value> v = array->Coerce(item);
    if (!v.ok()) return v.status();
    item = *std::move(v);
  }
  MutexLock lock(&array->mu_);
  array->items_ = std::move(items);
  return array;
}

int64_t ArrayObject::Size() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(items_.size());
}

std::vector<Value> ArrayObject::TakeContents() {
  // Cells hold only numbers and strings: no refs to release.
  items_.clear();
  return {};
}

absl::StatusOr<Value> ArrayObject::Coerce(const Value& value) const {
  const char code = typecode_[0];
  if (std::optional<IntRange> range = IntTypecode(code)) {
    if (!value.is_int() && !value.is_bool()) {
      return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                   absl::StrFormat("typecode '%c' needs an integer, not '%s'",
                                   code, value.TypeName()));
    }
    const int64_t i = value.is_bool() ? value.AsBool() : value.AsInt();
    if (i < range->min || i > range->max) {
      return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                   absl::StrFormat("%d is out of range for typecode '%c' "
                                   "[%d, %d]",
                                   i, code, range->min, range->max));
    }
    return Value(i);
  }
  switch (code) {
    case 'f':
    case 'd':
      if (!value.is_number()) {
        return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                     absl::StrFormat("typecode '%c' needs a real number, not "
                                     "'%s'",
                                     code, value.TypeName()));
      }
      return Value(code == 'f' ? static_cast<double>(
                                     static_cast<float>(value.ToDouble()))
                               : value.ToDouble());
    case 'u':
      if (!value.is_string() || CodePoints(value.AsString()) != 1) {
        return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                     "typecode 'u' needs a one-character str");
      }
      return value;
    default:  // 'c'
      if (!value.is_bytes() || value.AsBytes().size() != 1) {
        return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                     "typecode 'c' needs a bytes of length 1");
      }
      return value;
  }
}

absl::StatusOr<int64_t> ArrayObject::Len() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return static_cast<int64_t>(items_.size());
}

absl::StatusOr<Value> ArrayObject::Get(int64_t index) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  std::optional<int64_t> i =
      NormalizeIndex(index, static_cast<int64_t>(items_.size()));
  if (!i) {
    return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                 "array index out of range");
  }
  return items_[*i];
}

absl::StatusOr<Value> ArrayObject::GetSlice(const SliceSpec& slice) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<SliceRange> range =
      ResolveSlice(slice, static_cast<int64_t>(items_.size()));
  if (!range.ok()) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 range.status().message());
  }
  Value::Items out;
  out.reserve(range->count);
  for (int64_t i = 0; i < range->count; ++i)
    out.push_back(items_[range->at(i)]);
  return Value::List(std::move(out));
}

absl::Status ArrayObject::Set(int64_t index, const Value& value) {
  absl::StatusOr<Value> v = Coerce(value);
  if (!v.ok()) return v.status();
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  std::optional<int64_t> i =
      NormalizeIndex(index, static_cast<int64_t>(items_.size()));
  if (!i) {
    return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                 "array assignment index out of range");
  }
  if (recording()) Emit(records::Spliced(*i, 1, absl::MakeConstSpan(&*v, 1)));
  items_[*i] = *std::move(v);
  return absl::OkStatus();
}

absl::Status ArrayObject::SetSlice(const SliceSpec& slice,
                                   const Value::Items& items) {
  Value::Items converted;
  converted.reserve(items.size());
  for (const Value& item : items) {
    absl::StatusOr<Value> v = Coerce(item);
    if (!v.ok()) return v.status();
    converted.push_back(*std::move(v));
  }
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<SliceRange> range =
      ResolveSlice(slice, static_cast<int64_t>(items_.size()));
  if (!range.ok()) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 range.status().message());
  }
  if (range->count != static_cast<int64_t>(converted.size())) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 absl::StrFormat("cannot assign %d items to a slice of %d: "
                                 "an array's length is fixed",
                                 converted.size(), range->count));
  }
  for (int64_t i = 0; i < range->count; ++i) {
    items_[range->at(i)] = std::move(converted[i]);
  }
  if (recording() && range->count > 0) {
    // The cells an extended slice selects are not contiguous: its record
    // rewrites every cell.
    Emit(
        range->step == 1
            ? records::Spliced(range->start, range->count,
                               absl::MakeConstSpan(items_).subspan(
                                   range->start, range->count))
            : records::Spliced(0, static_cast<int64_t>(items_.size()), items_));
  }
  return absl::OkStatus();
}

absl::Status ArrayObject::Apply(const v1::ChangeRecord& record) {
  if (record.change_case() != v1::ChangeRecord::kItemsSpliced) {
    return CannotApply(record);
  }
  const v1::ItemsSpliced& splice = record.items_spliced();
  MutexLock lock(&mu_);
  const int64_t size = static_cast<int64_t>(items_.size());
  // An array's length never changes: a splice rewrites cells in place.
  if (splice.start() < 0 || splice.start() > size ||
      splice.removed() != splice.items_size() ||
      splice.removed() > size - splice.start()) {
    return CannotApply(record);
  }
  absl::StatusOr<Value::Items> items = records::DecodeItems(splice.items());
  if (!items.ok()) return items.status();
  std::move(items->begin(), items->end(), items_.begin() + splice.start());
  return absl::OkStatus();
}

uint64_t ArrayObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, items] = Copy([this] { return items_; });
  v1::ChangeRecord& record = out->emplace_back(Created());
  record.mutable_created()->set_typecode(typecode_);
  records::AddItems(items, record.mutable_created()->mutable_items());
  return revision;
}

}  // namespace statehub
