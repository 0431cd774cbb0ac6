#include "server/engine/dict.h"

#include <algorithm>
#include <cmath>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "server/engine/numbers.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"
#include "statehub/internal/value_codec.h"

namespace statehub {
namespace {

int64_t NowMicros() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

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
  if (deadlines_.empty()) return map_.size();
  // Expired but not yet reclaimed entries do not count.
  return map_.size() - deadlines_.CountDue(NowMicros());
}

std::vector<Value> DictObject::TakeContents() {
  deadlines_.Clear();
  if (wake_at_ != DeadlineIndex::kNone && registry_ != nullptr) {
    registry_->expirer().Cancel(this);
  }
  wake_at_ = DeadlineIndex::kNone;
  return map_.TakeValues();
}

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

absl::StatusOr<int64_t> DictObject::DeadlineAfter(const Value& key,
                                                  double seconds) const {
  // Written so that NaN fails too.
  if (!(seconds > 0 && seconds <= kMaxTtlSeconds)) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 absl::StrFormat("key %s: a ttl must be a number of seconds "
                                 "> 0 and at most %.0f (100 years), not %g",
                                 key.Repr(), kMaxTtlSeconds, seconds));
  }
  const int64_t micros =
      std::max<int64_t>(1, std::llround(seconds * 1'000'000));
  return NowMicros() + micros;
}

bool DictObject::Reclaim(std::vector<Value>* dropped, size_t limit) {
  if (deadlines_.empty()) return false;
  const int64_t now = NowMicros();
  if (deadlines_.Earliest() > now) return false;
  v1::ChangeRecord record;
  v1::EntriesRemoved* removed =
      recording() ? record.mutable_entries_removed() : nullptr;
  for (Value& key : deadlines_.PopDue(now, limit)) {
    // A key with a deadline is always in the map; erased keys lose theirs.
    std::optional<Value> old = map_.Erase(key);
    if (!old) continue;
    if (removed != nullptr) internal::EncodeValue(key, removed->add_keys());
    Keep(*std::move(old), dropped);
  }
  if (removed != nullptr && removed->keys_size() > 0) {
    removed->set_expired(true);
    // The server's own change, whichever call came upon it.
    ChangeAuthor server(0);
    Emit(std::move(record));
  }
  return deadlines_.Earliest() <= now;
}

void DictObject::SetDeadline(const Value& key, int64_t deadline) {
  if (deadline == 0) {
    ClearDeadline(key);
    return;
  }
  deadlines_.Set(key, deadline);
  Wake(deadline);
}

void DictObject::Wake(int64_t deadline) {
  if (deadline >= wake_at_ || registry_ == nullptr) return;
  wake_at_ = deadline;
  registry_->expirer().Schedule(
      std::static_pointer_cast<DictObject>(shared_from_this()),
      absl::FromUnixMicros(deadline));
}

void DictObject::ExpireDue() {
  bool more = true;
  while (more) {
    std::vector<Value> dropped;
    {
      MutexLock lock(&mu_);
      if (!CheckLive().ok()) return;
      // The expirer took this dict's wake-up out to make this call.
      wake_at_ = DeadlineIndex::kNone;
      more = Reclaim(&dropped, kExpireBatch);
      if (!more && !deadlines_.empty()) Wake(deadlines_.Earliest());
    }
    ReleaseDropped(dropped);
  }
}

absl::StatusOr<DictObject::Found> DictObject::Get(const Caller& caller,
                                                  const Value& key,
                                                  const Value* default_value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  if (const Value* v = map_.Find(key)) {
    Hold(caller, *v);
    return Found{*v, true, deadlines_.empty() ? 0 : deadlines_.Get(key)};
  }
  if (default_value == nullptr) return MissingKey(key);
  // Every returned ref takes a hold, a default's too (the client releases
  // what it receives).
  Hold(caller, *default_value);
  return Found{*default_value, false};
}

absl::Status DictObject::Set(const Value& key, Value value,
                             std::optional<double> ttl_seconds) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  int64_t deadline = 0;
  if (ttl_seconds) {
    absl::StatusOr<int64_t> after = DeadlineAfter(key, *ttl_seconds);
    if (!after.ok()) return after.status();
    deadline = *after;
  }
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  if (map_.Find(key) == nullptr) {
    if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
  }
  if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
  if (recording()) Emit(records::EntrySet(key, value, deadline));
  if (std::optional<Value> old = map_.Set(key, std::move(value))) {
    Keep(*std::move(old), &dropped);
  }
  SetDeadline(key, deadline);
  return absl::OkStatus();
}

absl::Status DictObject::Delete(const Value& key) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  std::optional<Value> old = map_.Erase(key);
  if (!old) return MissingKey(key);
  ClearDeadline(key);
  if (recording()) Emit(records::EntryRemoved(key));
  Keep(*std::move(old), &dropped);
  return absl::OkStatus();
}

absl::StatusOr<bool> DictObject::Contains(const Value& key) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  return map_.Find(key) != nullptr;
}

absl::StatusOr<int64_t> DictObject::Len() {
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  return map_.size();
}

absl::StatusOr<DictObject::ItemsPage> DictObject::Items(
    const Caller& caller, int64_t cursor, int64_t limit,
    int64_t expected_version, bool keys_only) {
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
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
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  std::optional<Value> old = map_.Erase(key);
  if (!old) {
    if (default_value == nullptr) return MissingKey(key);
    Hold(caller, *default_value);
    return Found{*default_value, false};
  }
  ClearDeadline(key);
  if (recording()) Emit(records::EntryRemoved(key));
  // The caller's hold is taken before the dict's ref is released, so an
  // anonymous value survives the hand-over.
  Hold(caller, *old);
  Found found{*old, true};
  Keep(*std::move(old), &dropped);
  return found;
}

absl::StatusOr<std::pair<Value, Value>> DictObject::PopItem(
    const Caller& caller) {
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  if (map_.size() == 0) {
    return Error(absl::StatusCode::kNotFound, ErrorKind::kKeyError,
                 "popitem(): dictionary is empty");
  }
  std::pair<Value, Value> entry = map_.PopLast();
  ClearDeadline(entry.first);
  if (recording()) Emit(records::EntryRemoved(entry.first));
  Hold(caller, entry.second);
  Keep(entry.second, &dropped);
  return entry;
}

absl::StatusOr<Value> DictObject::SetDefault(const Caller& caller,
                                             const Value& key,
                                             Value default_value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  // A key present keeps its value and its ttl; one inserted has no ttl.
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
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  // Counted only when every key being new would not fit: a lookup per key
  // is a tenth of an update's cost. Over-counts repeated new keys, which
  // only makes the check stricter.
  const int64_t n = static_cast<int64_t>(entries.size());
  if (!CheckSize(map_.size() + n).ok()) {
    int64_t added = 0;
    for (const auto& [key, value] : entries) added += map_.Find(key) == nullptr;
    if (absl::Status s = CheckSize(map_.size() + added); !s.ok()) return s;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    if (absl::Status s = AcquireRefs(entries[i].second); !s.ok()) {
      // Undo the counts taken so far, once mu_ is dropped.
      for (size_t j = 0; j < i; ++j) Keep(entries[j].second, &dropped);
      return s;
    }
  }
  if (recording()) Emit(records::EntriesSet(entries));
  for (auto& [key, value] : entries) {
    // Written without a ttl: a ttl the key had is cleared.
    ClearDeadline(key);
    if (std::optional<Value> old = map_.Set(std::move(key), std::move(value))) {
      Keep(*std::move(old), &dropped);
    }
  }
  return absl::OkStatus();
}

absl::Status DictObject::Clear() {
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  // Expiries first, so that the records say which entries expired.
  Reclaim(&dropped);
  if (recording() && map_.size() > 0) Emit(records::Cleared());
  deadlines_.Clear();
  for (Value& v : map_.TakeValues()) Keep(std::move(v), &dropped);
  return absl::OkStatus();
}

absl::StatusOr<Value> DictObject::Increment(const Value& key,
                                            const Value& delta) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
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
  // An increment keeps the entry's ttl (a counter of a time window, as
  // Redis's INCR): the record carries it, so replay keeps it too.
  if (recording()) {
    const int64_t deadline = deadlines_.empty() ? 0 : deadlines_.Get(key);
    Emit(records::EntrySet(key, *sum, deadline));
  }
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
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  Swap swap;
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
    // A swap stores a new value, written without a ttl.
    ClearDeadline(key);
    swap.swapped = true;
    current = map_.Find(key);
  }
  if (current != nullptr) {
    Hold(caller, *current);
    swap.current = *current;
  }
  return swap;
}

absl::StatusOr<std::optional<Value>> DictObject::GetAndSet(const Caller& caller,
                                                           const Value& key,
                                                           Value value) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  if (map_.Find(key) == nullptr) {
    if (absl::Status s = CheckSize(map_.size() + 1); !s.ok()) return s;
  }
  if (absl::Status s = AcquireRefs(value); !s.ok()) return s;
  if (recording()) Emit(records::EntrySet(key, value));
  std::optional<Value> previous = map_.Set(key, std::move(value));
  ClearDeadline(key);
  if (previous) {
    Hold(caller, *previous);
    Keep(*previous, &dropped);
  }
  return previous;
}

absl::StatusOr<bool> DictObject::Expire(const Value& key, double seconds) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  absl::StatusOr<int64_t> deadline = DeadlineAfter(key, seconds);
  if (!deadline.ok()) return deadline.status();
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  const Value* value = map_.Find(key);
  if (value == nullptr) return false;
  // Recorded as the entry stored again with its deadline (change.proto).
  if (recording()) Emit(records::EntrySet(key, *value, *deadline));
  SetDeadline(key, *deadline);
  return true;
}

absl::StatusOr<std::optional<absl::Duration>> DictObject::Ttl(
    const Value& key) {
  if (absl::Status s = CheckKeyFor(key); !s.ok()) return s;
  std::vector<Value> dropped;
  absl::Cleanup release = [&] { ReleaseDropped(dropped); };
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Reclaim(&dropped);
  if (map_.Find(key) == nullptr) return MissingKey(key);
  const int64_t deadline = deadlines_.empty() ? 0 : deadlines_.Get(key);
  if (deadline == 0) return std::nullopt;
  return std::max(absl::ZeroDuration(),
                  absl::FromUnixMicros(deadline) - absl::Now());
}

absl::Status DictObject::Apply(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  if (record.has_entries_set()) {
    const v1::EntriesSet& set = record.entries_set();
    if (!set.deadlines().empty() &&
        set.deadlines_size() != set.entries_size()) {
      return CannotApply(record);
    }
  }
  absl::StatusOr<bool> applied = records::ApplyToMap(record, &map_);
  if (!applied.ok()) return applied.status();
  if (!*applied) return CannotApply(record);
  // The deadlines follow the entries: each stored entry has the one its
  // record gives (none if none), a removed entry none. Keys are decoded
  // again only where a deadline is involved.
  switch (record.change_case()) {
    case v1::ChangeRecord::kEntriesSet: {
      const v1::EntriesSet& set = record.entries_set();
      if (set.deadlines().empty() && deadlines_.empty()) break;
      for (int i = 0; i < set.entries_size(); ++i) {
        absl::StatusOr<Value> key = records::Decode(set.entries(i).key());
        if (!key.ok()) return key.status();
        SetDeadline(*key, set.deadlines().empty() ? 0 : set.deadlines(i));
      }
      break;
    }
    case v1::ChangeRecord::kEntriesRemoved:
      if (deadlines_.empty()) break;
      for (const v1::Value& wire : record.entries_removed().keys()) {
        absl::StatusOr<Value> key = records::Decode(wire);
        if (!key.ok()) return key.status();
        deadlines_.Erase(*key);
      }
      break;
    case v1::ChangeRecord::kCleared:
      deadlines_.Clear();
      break;
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status DictObject::RestoreContents(const v1::ObjectCreated& created) {
  if (created.entry_deadlines().empty()) return absl::OkStatus();
  if (created.entry_deadlines_size() != created.entries_size()) {
    return absl::DataLossError(absl::StrFormat(
        "%s: %d entry deadlines for %d entries", Label(),
        created.entry_deadlines_size(), created.entries_size()));
  }
  MutexLock lock(&mu_);
  for (int i = 0; i < created.entries_size(); ++i) {
    if (created.entry_deadlines(i) == 0) continue;
    absl::StatusOr<Value> key = records::Decode(created.entries(i).key());
    if (!key.ok()) return key.status();
    SetDeadline(*key, created.entry_deadlines(i));
  }
  return absl::OkStatus();
}

uint64_t DictObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  // Expired entries not yet reclaimed are dumped with their past
  // deadlines: a server restored from the dump expires them as it starts.
  auto [revision, copy] = Copy([this] {
    std::pair<Value::Entries, std::vector<int64_t>> copy;
    copy.first = records::Entries(map_);
    if (!deadlines_.empty()) {
      copy.second.reserve(copy.first.size());
      for (const auto& [key, value] : copy.first) {
        copy.second.push_back(deadlines_.Get(key));
      }
    }
    return copy;
  });
  v1::ChangeRecord& record = out->emplace_back(Created());
  v1::ObjectCreated* created = record.mutable_created();
  records::AddEntries(copy.first, created->mutable_entries());
  created->mutable_entry_deadlines()->Add(copy.second.begin(),
                                          copy.second.end());
  return revision;
}

}  // namespace statehub
