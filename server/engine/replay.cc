// Recovery and snapshots: replaying change records into an engine, and
// dumping an engine's state as records. The records' meaning is
// api/statehub/v1/change.proto; each object type applies and dumps its own
// (Object::Apply, Object::Dump), this file does the registry's and the
// sessions' part.

#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "server/engine/engine.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"
#include "statehub/internal/value_codec.h"

namespace statehub {
namespace {

absl::Status DataLoss(const v1::ChangeRecord& record, absl::string_view what) {
  return absl::DataLossError(
      absl::StrFormat("change record of revision %d about \"%s\": %s",
                      record.revision(), record.object(), what));
}

// ForEachRefIn calls fn(name) for every ref inside a wire value.
template <typename Fn>
void ForEachRefIn(const v1::Value& value, Fn& fn) {
  switch (value.kind_case()) {
    case v1::Value::kRefValue:
      fn(value.ref_value().name());
      break;
    case v1::Value::kListValue:
      for (const v1::Value& item : value.list_value().items()) {
        ForEachRefIn(item, fn);
      }
      break;
    case v1::Value::kTupleValue:
      for (const v1::Value& item : value.tuple_value().items()) {
        ForEachRefIn(item, fn);
      }
      break;
    case v1::Value::kMapValue:
      for (const v1::MapEntry& entry : value.map_value().entries()) {
        ForEachRefIn(entry.key(), fn);
        ForEachRefIn(entry.value(), fn);
      }
      break;
    default:
      break;
  }
}

// ForEachStoredRef calls fn(name) for every ref an object's dump stores:
// in its contents, and a condition's lock.
template <typename Fn>
void ForEachStoredRef(const std::vector<v1::ChangeRecord>& dump, Fn fn) {
  for (const v1::ChangeRecord& record : dump) {
    if (!record.has_created()) continue;
    const v1::ObjectCreated& created = record.created();
    for (const v1::MapEntry& entry : created.entries()) {
      ForEachRefIn(entry.key(), fn);
      ForEachRefIn(entry.value(), fn);
    }
    for (const v1::Value& item : created.items()) ForEachRefIn(item, fn);
    ForEachRefIn(created.value(), fn);
    if (!created.condition_lock().empty()) fn(created.condition_lock());
  }
}

// AnonymousNumber is N of "_anon/<type>/N", or 0.
uint64_t AnonymousNumber(absl::string_view name) {
  if (!absl::StartsWith(name, kAnonymousPrefix)) return 0;
  const size_t slash = name.rfind('/');
  uint64_t n = 0;
  if (!absl::SimpleAtoi(name.substr(slash + 1), &n)) return 0;
  return n;
}

}  // namespace

v1::ChangeRecord CreatedRecord(ObjectType type, const InitialContents& init) {
  v1::ChangeRecord record;
  v1::ObjectCreated* created = record.mutable_created();
  created->set_type(internal::ToWire(type));
  created->set_typecode(init.typecode);
  created->set_condition_lock(init.condition_lock);
  switch (type) {
    case ObjectType::kSemaphore:
    case ObjectType::kBoundedSemaphore:
      created->set_semaphore_value(init.semaphore_value);
      break;
    case ObjectType::kBarrier:
      created->set_parties(init.parties);
      break;
    case ObjectType::kQueue:
    case ObjectType::kJoinableQueue:
      created->set_maxsize(init.maxsize);
      break;
    case ObjectType::kDict:
    case ObjectType::kNamespace:
      records::AddEntries(init.entries, created->mutable_entries());
      break;
    case ObjectType::kList:
    case ObjectType::kArray:
      records::AddItems(init.items, created->mutable_items());
      break;
    case ObjectType::kValue:
      internal::EncodeValue(init.value, created->mutable_value());
      break;
    default:
      break;
  }
  return record;
}

absl::StatusOr<InitialContents> InitFromCreated(
    const v1::ObjectCreated& created) {
  InitialContents init;
  absl::StatusOr<Value::Entries> entries =
      records::DecodeEntries(created.entries());
  if (!entries.ok()) return entries.status();
  init.entries = *std::move(entries);
  const ObjectType type = internal::FromWire(created.type());
  // A queue's items are loaded by QueueObject::RestoreContents.
  if (type != ObjectType::kQueue && type != ObjectType::kJoinableQueue) {
    absl::StatusOr<Value::Items> items = records::DecodeItems(created.items());
    if (!items.ok()) return items.status();
    init.items = *std::move(items);
  }
  absl::StatusOr<Value> value = records::Decode(created.value());
  if (!value.ok()) return value.status();
  init.value = *std::move(value);
  init.typecode = created.typecode();
  init.condition_lock = created.condition_lock();
  init.semaphore_value = created.semaphore_value();
  init.parties = created.parties();
  init.maxsize = created.maxsize();
  return init;
}

absl::Status Registry::Restore(const v1::ChangeRecord& record) {
  const std::string& name = record.object();
  const ObjectType type = internal::FromWire(record.created().type());
  {
    ReaderMutexLock lock(&mu_);
    if (objects_.contains(name)) return DataLoss(record, "created twice");
  }
  absl::StatusOr<InitialContents> init = InitFromCreated(record.created());
  if (!init.ok()) return DataLoss(record, init.status().message());
  if (type == ObjectType::kCondition) {
    absl::StatusOr<std::shared_ptr<Object>> lock = Lookup(init->condition_lock);
    if (!lock.ok()) return DataLoss(record, lock.status().message());
    init->value = Ref{(*lock)->name(), (*lock)->type(), nullptr};
  }
  absl::StatusOr<std::shared_ptr<Object>> made =
      MakeObject(name, type, *std::move(init), this);
  if (!made.ok()) return DataLoss(record, made.status().message());
  if (absl::Status s = (*made)->RestoreContents(record.created()); !s.ok()) {
    return DataLoss(record, s.message());
  }
  (*made)->set_revision(record.revision());
  if (const uint64_t n = AnonymousNumber(name); n >= next_anonymous_) {
    next_anonymous_ = n + 1;
  }
  MutexLock lock(&mu_);
  objects_.emplace(name, Entry{*std::move(made), 0, 0});
  return absl::OkStatus();
}

absl::Status Registry::Remove(absl::string_view name) {
  std::shared_ptr<Object> object;
  {
    MutexLock lock(&mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) {
      return absl::DataLossError(
          absl::StrFormat("object \"%s\" deleted but never created", name));
    }
    object = std::move(it->second.object);
    objects_.erase(it);
    for (auto& [session, held] : holds_) held.erase(name);
    for (auto& [session, tracked] : tracked_) tracked.erase(object);
  }
  // Its contents' refs are recounted at the end (Recount), not released.
  object->Retire();
  return absl::OkStatus();
}

void Registry::RestoreHolds(SessionId holder, absl::string_view name,
                            int64_t count) {
  MutexLock lock(&mu_);
  auto held = holds_.find(holder);
  if (held == holds_.end()) return;
  if (count > 0) {
    held->second[name] = count;
  } else {
    held->second.erase(std::string(name));
  }
}

void Registry::ForgetSession(SessionId session) {
  MutexLock lock(&mu_);
  holds_.erase(session);
  tracked_.erase(session);
}

int64_t Registry::Recount(
    const absl::flat_hash_map<std::string, int64_t>& referrers) {
  std::vector<std::shared_ptr<Object>> dead;
  {
    MutexLock lock(&mu_);
    for (auto& [name, entry] : objects_) {
      entry.holders = 0;
      entry.referrers = 0;
      if (auto it = referrers.find(name); it != referrers.end()) {
        entry.referrers = it->second;
      }
    }
    for (const auto& [session, held] : holds_) {
      for (const auto& [name, count] : held) {
        if (auto it = objects_.find(name); it != objects_.end()) {
          it->second.holders += count;
        }
      }
    }
    for (auto it = objects_.begin(); it != objects_.end();) {
      const Entry& entry = it->second;
      if (entry.object->anonymous() && entry.holders == 0 &&
          entry.referrers == 0) {
        dead.push_back(entry.object);
        objects_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  const int64_t freed = static_cast<int64_t>(dead.size());
  // Bury releases the refs inside them, which may free more.
  Bury(std::move(dead));
  return freed;
}

void Registry::DumpHolds(std::vector<v1::ChangeRecord>* out) const {
  std::vector<std::pair<std::pair<SessionId, std::string>, int64_t>> all;
  {
    ReaderMutexLock lock(&mu_);
    for (const auto& [session, held] : holds_) {
      for (const auto& [name, count] : held) {
        all.push_back({{session, name}, count});
      }
    }
  }
  // In a stable order, so that two dumps of one state are equal.
  std::sort(all.begin(), all.end());
  for (const auto& [key, count] : all) {
    v1::ChangeRecord& record = out->emplace_back();
    record.set_object(key.second);
    v1::HoldsChanged* holds = record.mutable_holds_changed();
    holds->set_holder(key.first);
    holds->set_count(count);
  }
}

absl::Status Engine::Replay(const v1::ChangeRecord& record) {
  // The log holds the expiries that happened; the expirer makes none until
  // the server serves (Expirer::Pause).
  registry_.expirer().Pause();
  if (record.revision() <= log_revision_) {
    return DataLoss(
        record, absl::StrFormat("revision does not follow %d", log_revision_));
  }
  absl::Status status =
      CoveredBySnapshot(record) ? absl::OkStatus() : ApplyRecord(record);
  if (!status.ok()) return status;
  log_revision_ = record.revision();
  // The log's tail, kept for watches that resume across the restart.
  if (record.revision() > snapshot_revision_) watches_.Recovered(record);
  return status;
}

bool Engine::CoveredBySnapshot(const v1::ChangeRecord& record) const {
  if (snapshot_revision_ == 0) return false;
  switch (record.change_case()) {
    // Absolute and idempotent: replayed over the snapshot's as they come.
    case v1::ChangeRecord::kSessionOpened:
    case v1::ChangeRecord::kSessionEnded:
    case v1::ChangeRecord::kHoldsChanged:
    case v1::ChangeRecord::kCallAnswered:
      return false;
    default:
      break;
  }
  // The snapshot dumped each object at its own revision, after the
  // snapshot's: the log's records up to it are in the dump already.
  if (auto it = covered_.find(record.object());
      it != covered_.end() && record.revision() <= it->second) {
    return true;
  }
  // An object deleted after the snapshot began but before the dump reached
  // it is in neither: its records up to its deletion change nothing.
  return !record.has_created() && !registry_.FindObject(record.object()).ok();
}

absl::Status Engine::ReplaySnapshot(uint64_t snapshot_revision,
                                    const v1::ChangeRecord& record) {
  registry_.expirer().Pause();
  snapshot_revision_ = snapshot_revision;
  log_revision_ = std::max(log_revision_, snapshot_revision);
  if (absl::Status s = ApplyRecord(record); !s.ok()) return s;
  if (!record.object().empty() && !record.has_holds_changed()) {
    uint64_t& covered = covered_[record.object()];
    covered = std::max(covered, record.revision());
    dumped_revision_ = std::max(dumped_revision_, record.revision());
  }
  return absl::OkStatus();
}

absl::Status Engine::ApplyRecord(const v1::ChangeRecord& record) {
  absl::Status status;
  switch (record.change_case()) {
    case v1::ChangeRecord::kSessionOpened:
      sessions_.Restore(record.session_opened().id(),
                        record.session_opened().label());
      registry_.BeginSession(record.session_opened().id());
      break;
    case v1::ChangeRecord::kSessionEnded:
      sessions_.Forget(record.session_ended().id());
      registry_.ForgetSession(record.session_ended().id());
      replies_.Forget(record.session_ended().id());
      break;
    case v1::ChangeRecord::kCallAnswered:
      replies_.Remember(record.session(), record.call_answered());
      break;
    case v1::ChangeRecord::kCreated:
      status = registry_.Restore(record);
      break;
    case v1::ChangeRecord::kDeleted:
      status = registry_.Remove(record.object());
      break;
    case v1::ChangeRecord::kHoldsChanged:
      registry_.RestoreHolds(record.holds_changed().holder(), record.object(),
                             record.holds_changed().count());
      break;
    case v1::ChangeRecord::CHANGE_NOT_SET:
      status = DataLoss(record, "no change set (written by a newer server?)");
      break;
    default: {
      absl::StatusOr<std::shared_ptr<Object>> object =
          registry_.FindObject(record.object());
      if (!object.ok()) {
        status = DataLoss(record, "the object does not exist");
      } else {
        status = (*object)->Apply(record);
        if (status.ok()) (*object)->set_revision(record.revision());
      }
    }
  }
  return status;
}

absl::Status Engine::FinishRecovery(absl::Time now) {
  // A session's end is recorded before the releases it causes: a log cut
  // between them leaves locks or units held by a session that is gone.
  // They are released now, as that session's end would have.
  // One pass over every object also counts the refs to anonymous objects
  // stored in them, for Recount.
  absl::flat_hash_set<SessionId> live;
  for (const auto& [id, label] : sessions_.Labels()) live.insert(id);
  absl::flat_hash_map<std::string, int64_t> referrers;
  std::vector<v1::ChangeRecord> dump;
  for (const std::shared_ptr<Object>& object : registry_.Snapshot()) {
    dump.clear();
    object->Dump(&dump);
    ForEachStoredRef(dump, [&](const std::string& name) {
      if (absl::StartsWith(name, kAnonymousPrefix)) ++referrers[name];
    });
    absl::flat_hash_set<SessionId> gone;
    for (const v1::ChangeRecord& record : dump) {
      // Holdings a session left taken (Goodbye.leave_locks) stay.
      if (record.has_lock_changed() && record.lock_changed().held() &&
          !record.lock_changed().holder_left()) {
        gone.insert(record.lock_changed().holder_session());
      }
      for (const v1::SemaphoreUnits& units :
           record.semaphore_changed().holdings()) {
        if (!units.left()) gone.insert(units.session());
      }
    }
    for (SessionId session : gone) {
      if (!live.contains(session)) {
        object->OnSessionEnd(session, SessionEnd::kReleased);
      }
    }
  }
  registry_.Recount(referrers);
  replies_.KeepOnly(live);
  sessions_.RenewAll(now);
  // Objects in a snapshot may be dumped past the log's end (a power cut
  // lost the log's tail): the revision goes on after both, never reusing
  // one.
  changes().set_revision(std::max(log_revision_, dumped_revision_));
  covered_.clear();
  return absl::OkStatus();
}

std::vector<v1::ChangeRecord> Engine::Dump() const {
  std::vector<v1::ChangeRecord> out;
  DumpTo(
      [&out](v1::ChangeRecord& record) { out.push_back(std::move(record)); });
  return out;
}

uint64_t Engine::DumpTo(
    absl::FunctionRef<void(v1::ChangeRecord& record)> fn) const {
  const uint64_t start = changes().revision();
  std::vector<std::pair<SessionId, std::string>> sessions = sessions_.Labels();
  std::sort(sessions.begin(), sessions.end());
  for (const auto& [id, label] : sessions) {
    v1::ChangeRecord record;
    record.set_revision(start);
    record.mutable_session_opened()->set_id(id);
    record.mutable_session_opened()->set_label(label);
    fn(record);
  }
  std::vector<v1::ChangeRecord> answers;
  replies_.Dump(&answers);
  for (v1::ChangeRecord& record : answers) {
    record.set_revision(start);
    fn(record);
  }
  std::vector<std::shared_ptr<Object>> objects = registry_.Snapshot();
  // Conditions are made after the locks they are bound to.
  std::stable_partition(objects.begin(), objects.end(),
                        [](const std::shared_ptr<Object>& o) {
                          return o->type() != ObjectType::kCondition;
                        });
  std::vector<v1::ChangeRecord> dump;
  for (const std::shared_ptr<Object>& object : objects) {
    dump.clear();
    const uint64_t revision = object->Dump(&dump);
    for (v1::ChangeRecord& record : dump) {
      record.set_revision(revision);
      fn(record);
    }
  }
  std::vector<v1::ChangeRecord> holds;
  registry_.DumpHolds(&holds);
  for (v1::ChangeRecord& record : holds) {
    record.set_revision(start);
    fn(record);
  }
  return start;
}

}  // namespace statehub
