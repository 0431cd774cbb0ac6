#include "server/engine/dict.h"

#include "absl/strings/str_format.h"
#include "server/engine/numbers.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"

namespace statehub {

DictObject::DictObject(std::string name, Registry* registry)
    : Object(std::move(name), kType, registry) {}

absl::StatusOr<std::shared_ptr<DictObject>> DictObject::Make(
    std::string name, Value::Entries entries, Registry* registry) {
  std::shared_ptr<DictObject> dict(new DictObject(std::move(name), registry));
  if (absl::Status s = dict->CheckSize(static_cast<int64_t>(entries.size()));
      !s.ok()) {
    return s;
  }
  MutexLock lock(&dict->mu_);
  for (auto& [key, value] : entries) {
    if (absl::Status s = dict->CheckKeyFor(key); !s.ok()) return s;
    dict->map_.Set(std::move(key), std::move(value));
  }
  return dict;
}

int64_t DictObject::Size() const {
  MutexLock lock(&mu_);
  return map_.size();
}

std::vector<Value> DictObject::TakeContents() { return map_.TakeValues(); }

absl::Status DictObject::CheckKeyFor(const Value& key) const {
  absl::Status s = CheckKey(key);
  if (s.ok()) return s;
  return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
               s.message());
}

absl::Status DictObject::MissingKey(const Value& key) const {
  return Error(absl::StatusCode::kNotFound, ErrorKind::kKeyError,
               absl::StrFormat("key %s not found", key.Repr()));
}

absl::StatusOr<DictObject::Found> DictObject::Get(
    const Caller& caller, const Value& key, const Value* default_value) const {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (const Value* v = map_.Find(key)) {
    Hold(caller, *v);
    return Found{*v, true};
  }
  if (default_value == nullptr) return MissingKey(key);
  // Every returned ref takes a hold, a default's too (the client releases
  // what it receives).
  Hold(caller, *default_value);
  return Found{*default_value, false};
}

absl::Status DictObject::Set(const Value& key, Value value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (map_.Find(key) == nullptr) {
      if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
    }
    if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
    if (recording()) Emit(records::EntrySet(key, value));
    if (std::optional<Value> old = map_.Set(key, std::move(value))) {
      Keep(*std::move(old), &dropped);
    }
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::Status DictObject::Delete(const Value& key) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    std::optional<Value> old = map_.Erase(key);
    if (!old) return MissingKey(key);
    if (recording()) Emit(records::EntryRemoved(key));
    Keep(*std::move(old), &dropped);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<bool> DictObject::Contains(const Value& key) const {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return map_.Find(key) != nullptr;
}

absl::StatusOr<int64_t> DictObject::Len() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return map_.size();
}

absl::StatusOr<DictObject::ItemsPage> DictObject::Items(
    const Caller& caller, int64_t cursor, int64_t limit,
    int64_t expected_version, bool keys_only) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (expected_version != 0 && expected_version != map_.size_version()) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kRuntimeError,
                 "dictionary changed size during iteration");
  }
  ItemsPage page;
  page.size_version = map_.size_version();
  page.entries.reserve(limit > 0 ? std::min(limit, map_.size()) : map_.size());
  page.next_cursor =
      map_.Visit(cursor, limit, [&](const Value& key, const Value& value) {
        if (keys_only) {
          page.entries.emplace_back(key, Value());
        } else {
          Hold(caller, value);
          page.entries.emplace_back(key, value);
        }
      });
  return page;
}

absl::StatusOr<DictObject::Found> DictObject::Pop(const Caller& caller,
                                                  const Value& key,
                                                  const Value* default_value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  Found found;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    std::optional<Value> old = map_.Erase(key);
    if (!old) {
      if (default_value == nullptr) return MissingKey(key);
      Hold(caller, *default_value);
      return Found{*default_value, false};
    }
    if (recording()) Emit(records::EntryRemoved(key));
    // The caller's hold is taken before the dict's ref is released, so an
    // anonymous value survives the hand-over.
    Hold(caller, *old);
    found = Found{*old, true};
    Keep(*std::move(old), &dropped);
  }
  ReleaseDropped(dropped);
  return found;
}

absl::StatusOr<std::pair<Value, Value>> DictObject::PopItem(
    const Caller& caller) {
  std::pair<Value, Value> entry;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (map_.size() == 0) {
      return Error(absl::StatusCode::kNotFound, ErrorKind::kKeyError,
                   "popitem(): dictionary is empty");
    }
    entry = map_.PopLast();
    if (recording()) Emit(records::EntryRemoved(entry.first));
    Hold(caller, entry.second);
  }
  std::vector<Value> dropped;
  Keep(entry.second, &dropped);
  ReleaseDropped(dropped);
  return entry;
}

absl::StatusOr<Value> DictObject::SetDefault(const Caller& caller,
                                             const Value& key,
                                             Value default_value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (const Value* v = map_.Find(key)) {
    Hold(caller, *v);
    return *v;
  }
  if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
  if (absl::Status s = AcquireRefs(default_value); !s.ok()) return s;
  Hold(caller, default_value);
  if (recording()) Emit(records::EntrySet(key, default_value));
  map_.Set(key, default_value);
  return default_value;
}

absl::Status DictObject::Update(Value::Entries entries) {
  for (const auto& [key, value] : entries) {
    if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  }
  std::vector<Value> dropped;
  absl::Status failed;
  do {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    int64_t added = 0;
    for (const auto& [key, value] : entries) added += map_.Find(key) == nullptr;
    // Over-counts repeated new keys, which only makes the check stricter.
    if (absl::Status s = CheckSize(map_.size() + added); !s.ok()) return s;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (absl::Status s = AcquireRefs(entries[i].second); !s.ok()) {
        // Undo the counts taken so far, once mu_ is dropped.
        for (size_t j = 0; j < i; ++j) Keep(entries[j].second, &dropped);
        failed = s;
        break;
      }
    }
    if (!failed.ok()) break;
    if (recording()) Emit(records::EntriesSet(entries));
    for (auto& [key, value] : entries) {
      if (std::optional<Value> old =
              map_.Set(std::move(key), std::move(value))) {
        Keep(*std::move(old), &dropped);
      }
    }
  } while (false);
  ReleaseDropped(dropped);
  return failed;
}

absl::Status DictObject::Clear() {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (recording() && map_.size() > 0) Emit(records::Cleared());
    for (Value& v : map_.TakeValues()) Keep(std::move(v), &dropped);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<Value> DictObject::Increment(const Value& key,
                                            const Value& delta) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Value* current = map_.Find(key);
  if (current == nullptr) {
    if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
  }
  absl::StatusOr<Value> sum = Add(current ? *current : Value(0), delta);
  if (!sum.ok()) {
    const bool overflow = sum.status().code() == absl::StatusCode::kOutOfRange;
    return Error(
        absl::StatusCode::kInvalidArgument,
        overflow ? ErrorKind::kValueError : ErrorKind::kTypeError,
        absl::StrFormat("key %s: %s", key.Repr(), sum.status().message()));
  }
  if (recording()) Emit(records::EntrySet(key, *sum));
  if (current != nullptr) {
    *current = *sum;
  } else {
    map_.Set(key, *sum);
  }
  return sum;
}

absl::StatusOr<DictObject::Swap> DictObject::CompareAndSet(
    const Caller& caller, const Value& key, const Value* expected,
    Value desired) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  Swap swap;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    Value* current = map_.Find(key);
    const bool matches = expected == nullptr
                             ? current == nullptr
                             : current != nullptr && *current == *expected;
    if (matches) {
      if (current == nullptr) {
        if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
      }
      if (absl::Status s = AcquireRefs(desired); !s.ok()) return s;
      if (recording()) Emit(records::EntrySet(key, desired));
      if (std::optional<Value> old = map_.Set(key, desired)) {
        Keep(*std::move(old), &dropped);
      }
      swap.swapped = true;
      current = map_.Find(key);
    }
    if (current != nullptr) {
      Hold(caller, *current);
      swap.current = *current;
    }
  }
  ReleaseDropped(dropped);
  return swap;
}

absl::StatusOr<std::optional<Value>> DictObject::GetAndSet(const Caller& caller,
                                                           const Value& key,
                                                           Value value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::optional<Value> previous;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (map_.Find(key) == nullptr) {
      if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
    }
    if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
    if (recording()) Emit(records::EntrySet(key, value));
    previous = map_.Set(key, std::move(value));
    if (previous) Hold(caller, *previous);
  }
  std::vector<Value> dropped;
  if (previous) Keep(*previous, &dropped);
  ReleaseDropped(dropped);
  return previous;
}

absl::Status DictObject::Apply(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  absl::StatusOr<bool> applied = records::ApplyToMap(record, &map_);
  if (!applied.ok()) return applied.status();
  return *applied ? absl::OkStatus() : CannotApply(record);
}

uint64_t DictObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, entries] = Copy([this] { return records::Entries(map_); });
  v1::ChangeRecord& record = out->emplace_back(Created());
  records::AddEntries(entries, record.mutable_created()->mutable_entries());
  return revision;
}

}  // namespace statehub
