#include "server/engine/list.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

int64_t SizeOf(const Value::Items& items) {
  return static_cast<int64_t>(items.size());
}

// Splice replaces the `removed` items of `items` from `start` with `with`,
// moving each item at most once.
void Splice(Value::Items& items, int64_t start, int64_t removed,
            Value::Items with) {
  auto first = items.begin() + start;
  const int64_t n = SizeOf(with);
  const int64_t common = std::min(n, removed);
  std::move(with.begin(), with.begin() + common, first);
  if (n > removed) {
    items.insert(first + common, std::make_move_iterator(with.begin() + common),
                 std::make_move_iterator(with.end()));
  } else {
    items.erase(first + common, first + removed);
  }
}

}  // namespace

ListObject::ListObject(std::string name, Registry* registry)
    : Object(std::move(name), kType, registry) {}

absl::StatusOr<std::shared_ptr<ListObject>> ListObject::Make(
    std::string name, Value::Items items, Registry* registry) {
  std::shared_ptr<ListObject> list(new ListObject(std::move(name), registry));
  if (absl::Status s = list->CheckSize(SizeOf(items)); !s.ok()) return s;
  MutexLock lock(&list->mu_);
  list->items_ = std::move(items);
  return list;
}

int64_t ListObject::Size() const {
  MutexLock lock(&mu_);
  return SizeOf(items_);
}

std::vector<Value> ListObject::TakeContents() { return std::move(items_); }

absl::StatusOr<SliceRange> ListObject::Resolve(const SliceSpec& slice) const {
  absl::StatusOr<SliceRange> range = ResolveSlice(slice, SizeOf(items_));
  if (!range.ok()) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 range.status().message());
  }
  return range;
}

absl::Status ListObject::AcquireAll(const Value::Items& items,
                                    std::vector<Value>* undo) const {
  for (size_t i = 0; i < items.size(); ++i) {
    if (absl::Status s = AcquireRefs(items[i]); !s.ok()) {
      for (size_t j = 0; j < i; ++j) Keep(items[j], undo);
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ListObject::Len() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return SizeOf(items_);
}

absl::StatusOr<Value> ListObject::Get(const Caller& caller,
                                      int64_t index) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  std::optional<int64_t> i = NormalizeIndex(index, SizeOf(items_));
  if (!i) {
    return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                 "list index out of range");
  }
  Hold(caller, items_[*i]);
  return items_[*i];
}

absl::StatusOr<Value> ListObject::GetSlice(const Caller& caller,
                                           const SliceSpec& slice) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  absl::StatusOr<SliceRange> range = Resolve(slice);
  if (!range.ok()) return range.status();
  Value::Items out;
  out.reserve(range->count);
  for (int64_t i = 0; i < range->count; ++i) {
    out.push_back(items_[range->at(i)]);
  }
  Value result = Value::List(std::move(out));
  Hold(caller, result);
  return result;
}

absl::Status ListObject::Set(int64_t index, Value value) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    std::optional<int64_t> i = NormalizeIndex(index, SizeOf(items_));
    if (!i) {
      return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                   "list assignment index out of range");
    }
    if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
    if (recording()) {
      Emit(records::Spliced(*i, 1, absl::MakeConstSpan(&value, 1)));
    }
    Keep(std::exchange(items_[*i], std::move(value)), &dropped);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::Status ListObject::SetSlice(const SliceSpec& slice, Value::Items items) {
  std::vector<Value> dropped;
  absl::Status status;
  do {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    absl::StatusOr<SliceRange> range = Resolve(slice);
    if (!range.ok()) return range.status();
    const int64_t n = SizeOf(items);
    if (range->step != 1) {
      if (n != range->count) {
        return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrFormat("attempt to assign sequence of size %d "
                                     "to extended slice of size %d",
                                     n, range->count));
      }
    } else if (absl::Status s = CheckSize(SizeOf(items_) - range->count + n);
               !s.ok()) {
      return s;
    }
    if (status = AcquireAll(items, &dropped); !status.ok()) break;
    if (range->step != 1) {
      for (int64_t i = 0; i < n; ++i) {
        Keep(std::exchange(items_[range->at(i)], std::move(items[i])),
             &dropped);
      }
      // The items an extended slice selects are not contiguous: the record
      // replaces the whole list.
      if (recording() && n > 0) {
        Emit(records::Spliced(0, SizeOf(items_), items_));
      }
      break;
    }
    // A simple slice replaces [start, start + count) with the new items.
    if (recording() && (range->count > 0 || n > 0)) {
      Emit(records::Spliced(range->start, range->count, items));
    }
    auto first = items_.begin() + range->start;
    for (auto it = first; it != first + range->count; ++it) {
      Keep(std::move(*it), &dropped);
    }
    Splice(items_, range->start, range->count, std::move(items));
  } while (false);
  ReleaseDropped(dropped);
  return status;
}

absl::Status ListObject::Delete(int64_t index) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    std::optional<int64_t> i = NormalizeIndex(index, SizeOf(items_));
    if (!i) {
      return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                   "list assignment index out of range");
    }
    if (recording()) Emit(records::Spliced(*i, 1, {}));
    Keep(std::move(items_[*i]), &dropped);
    items_.erase(items_.begin() + *i);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::Status ListObject::DeleteSlice(const SliceSpec& slice) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    absl::StatusOr<SliceRange> range = Resolve(slice);
    if (!range.ok()) return range.status();
    if (range->count == 0) return absl::OkStatus();
    const int64_t old_size = SizeOf(items_);
    // Mark the selected positions, then compact in one pass.
    std::vector<bool> doomed(items_.size(), false);
    for (int64_t i = 0; i < range->count; ++i) doomed[range->at(i)] = true;
    size_t out = 0;
    for (size_t i = 0; i < items_.size(); ++i) {
      if (doomed[i]) {
        Keep(std::move(items_[i]), &dropped);
      } else {
        if (out != i) items_[out] = std::move(items_[i]);
        ++out;
      }
    }
    items_.resize(out);
    // An extended slice's items are not contiguous: the record replaces the
    // whole list.
    if (recording()) {
      Emit(range->step == 1 ? records::Spliced(range->start, range->count, {})
                            : records::Spliced(0, old_size, items_));
    }
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ListObject::Append(Value value) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (absl::Status s = CheckSize(SizeOf(items_) + 1); !s.ok()) return s;
  if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
  if (recording()) {
    Emit(records::Spliced(SizeOf(items_), 0, absl::MakeConstSpan(&value, 1)));
  }
  items_.push_back(std::move(value));
  return SizeOf(items_);
}

absl::StatusOr<int64_t> ListObject::Extend(Value::Items items) {
  std::vector<Value> undo;
  absl::Status status;
  int64_t length = 0;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (absl::Status s = CheckSize(SizeOf(items_) + SizeOf(items)); !s.ok()) {
      return s;
    }
    status = AcquireAll(items, &undo);
    if (status.ok()) {
      if (recording() && !items.empty()) {
        Emit(records::Spliced(SizeOf(items_), 0, items));
      }
      items_.insert(items_.end(), std::make_move_iterator(items.begin()),
                    std::make_move_iterator(items.end()));
    }
    length = SizeOf(items_);
  }
  ReleaseDropped(undo);
  if (!status.ok()) return status;
  return length;
}

absl::Status ListObject::Insert(int64_t index, Value value) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  const int64_t n = SizeOf(items_);
  if (absl::Status s = CheckSize(n + 1); !s.ok()) return s;
  if (index < 0) index = std::max<int64_t>(index + n, 0);
  index = std::min(index, n);
  if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
  if (recording()) {
    Emit(records::Spliced(index, 0, absl::MakeConstSpan(&value, 1)));
  }
  items_.insert(items_.begin() + index, std::move(value));
  return absl::OkStatus();
}

absl::StatusOr<Value> ListObject::Pop(const Caller& caller,
                                      std::optional<int64_t> index) {
  Value popped;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (items_.empty()) {
      return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                   "pop from empty list");
    }
    std::optional<int64_t> i =
        NormalizeIndex(index.value_or(-1), SizeOf(items_));
    if (!i) {
      return Error(absl::StatusCode::kOutOfRange, ErrorKind::kIndexError,
                   "pop index out of range");
    }
    if (recording()) Emit(records::Spliced(*i, 1, {}));
    popped = std::move(items_[*i]);
    items_.erase(items_.begin() + *i);
    Hold(caller, popped);
    Keep(popped, &dropped);
  }
  ReleaseDropped(dropped);
  return popped;
}

absl::Status ListObject::Remove(const Value& value) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    auto it = std::find(items_.begin(), items_.end(), value);
    if (it == items_.end()) {
      return Error(absl::StatusCode::kNotFound, ErrorKind::kValueError,
                   "list.remove(x): x not in list");
    }
    if (recording()) Emit(records::Spliced(it - items_.begin(), 1, {}));
    Keep(std::move(*it), &dropped);
    items_.erase(it);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ListObject::Index(const Value& value,
                                          std::optional<int64_t> start,
                                          std::optional<int64_t> stop) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  const int64_t n = SizeOf(items_);
  // list.index clamps negative bounds at 0 after adding the length.
  auto clamp = [n](int64_t i) {
    if (i < 0) i = std::max<int64_t>(i + n, 0);
    return std::min(i, n);
  };
  const int64_t from = clamp(start.value_or(0));
  const int64_t to = clamp(stop.value_or(n));
  for (int64_t i = from; i < to; ++i) {
    if (items_[i] == value) return i;
  }
  return Error(absl::StatusCode::kNotFound, ErrorKind::kValueError,
               absl::StrFormat("%s is not in list", value.Repr()));
}

absl::StatusOr<int64_t> ListObject::Count(const Value& value) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return std::count(items_.begin(), items_.end(), value);
}

absl::StatusOr<bool> ListObject::Contains(const Value& value) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return std::find(items_.begin(), items_.end(), value) != items_.end();
}

absl::Status ListObject::Reverse() {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  std::reverse(items_.begin(), items_.end());
  if (recording() && items_.size() > 1) {
    Emit(records::Spliced(0, SizeOf(items_), items_));
  }
  return absl::OkStatus();
}

absl::Status ListObject::Sort(bool reverse) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  // Sort an order of positions so a failed comparison leaves items_ as it
  // was (Python may leave a list half-sorted; we promise unchanged).
  std::vector<size_t> order(items_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  absl::Status failed;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (!failed.ok()) return false;
    // Python's reverse sort keeps equal items in their original order.
    absl::StatusOr<int> c =
        reverse ? Compare(items_[b], items_[a]) : Compare(items_[a], items_[b]);
    if (!c.ok()) {
      failed = c.status();
      return false;
    }
    return *c < 0;
  });
  if (!failed.ok()) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
                 failed.message());
  }
  // Only the items from the first that moved to the last that moved
  // changed; none moved in a sorted list, which records nothing.
  size_t first = 0;
  size_t last = order.size();
  while (first < last && order[first] == first) ++first;
  while (last > first && order[last - 1] == last - 1) --last;
  Value::Items sorted;
  sorted.reserve(items_.size());
  for (size_t i : order) sorted.push_back(std::move(items_[i]));
  items_ = std::move(sorted);
  if (recording() && first < last) {
    Emit(records::Spliced(
        static_cast<int64_t>(first), static_cast<int64_t>(last - first),
        absl::MakeConstSpan(items_).subspan(first, last - first)));
  }
  return absl::OkStatus();
}

absl::Status ListObject::Clear() {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (recording() && !items_.empty()) Emit(records::Cleared());
    for (Value& v : items_) Keep(std::move(v), &dropped);
    items_.clear();
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ListObject::Repeat(int64_t times) {
  std::vector<Value> undo;
  absl::Status status;
  int64_t length = 0;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    const int64_t n = SizeOf(items_);
    if (times <= 0 || n == 0) {
      if (recording() && n > 0) Emit(records::Cleared());
      for (Value& v : items_) Keep(std::move(v), &undo);
      items_.clear();
    } else {
      int64_t total;
      if (__builtin_mul_overflow(n, times, &total)) total = INT64_MAX;
      if (absl::Status s = CheckSize(total); !s.ok()) return s;
      // Each extra copy of a ref is one more referrer.
      const Value::Items original = items_;
      for (int64_t t = 1; t < times && status.ok(); ++t) {
        status = AcquireAll(original, &undo);
        if (!status.ok()) {
          // Undo the copies counted in earlier rounds as well.
          for (int64_t u = 1; u < t; ++u) {
            for (const Value& v : original) Keep(v, &undo);
          }
          break;
        }
      }
      if (status.ok()) {
        items_.reserve(total);
        for (int64_t t = 1; t < times; ++t) {
          items_.insert(items_.end(), original.begin(), original.end());
        }
        // The copies went to the end: one splice there.
        if (recording() && times > 1) {
          Emit(records::Spliced(n, 0, absl::MakeConstSpan(items_).subspan(n)));
        }
      }
    }
    length = SizeOf(items_);
  }
  ReleaseDropped(undo);
  if (!status.ok()) return status;
  return length;
}

absl::Status ListObject::Apply(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  switch (record.change_case()) {
    case v1::ChangeRecord::kItemsSpliced: {
      const v1::ItemsSpliced& splice = record.items_spliced();
      const int64_t size = SizeOf(items_);
      if (splice.start() < 0 || splice.start() > size || splice.removed() < 0 ||
          splice.removed() > size - splice.start()) {
        return CannotApply(record);
      }
      absl::StatusOr<Value::Items> items = records::DecodeItems(splice.items());
      if (!items.ok()) return items.status();
      Splice(items_, splice.start(), splice.removed(), *std::move(items));
      return absl::OkStatus();
    }
    case v1::ChangeRecord::kCleared:
      items_.clear();
      return absl::OkStatus();
    default:
      return CannotApply(record);
  }
}

uint64_t ListObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, items] = Copy([this] { return items_; });
  v1::ChangeRecord& record = out->emplace_back(Created());
  records::AddItems(items, record.mutable_created()->mutable_items());
  return revision;
}

}  // namespace statehub
