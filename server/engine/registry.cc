#include "server/engine/registry.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace statehub {
namespace {

bool NameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
         c == '/' || c == '-';
}

absl::Status NotFound(absl::string_view name) {
  return MakeError(absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
                   absl::StrFormat("object \"%s\" not found", name), name);
}

}  // namespace

absl::Status CheckName(absl::string_view name) {
  if (name.empty() || name.size() > 256) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrFormat("object name must be 1-256 bytes, got %d",
                                     name.size()));
  }
  for (char c : name) {
    if (!NameChar(c)) {
      return MakeError(
          absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
          absl::StrFormat("object name \"%s\" has a character outside "
                          "[A-Za-z0-9._:/-]",
                          absl::CHexEscape(name)));
    }
  }
  return absl::OkStatus();
}

Registry::Registry(const Limits& limits) : limits_(limits) {}

uint64_t Registry::PublishLocked(absl::string_view name,
                                 v1::ChangeRecord record) const {
  if (!changes_.recording()) return 0;
  record.set_object(std::string(name));
  return changes_.Publish(record);
}

void Registry::PublishHoldsLocked(SessionId holder, absl::string_view name,
                                  int64_t count) const {
  if (!changes_.recording()) return;
  v1::ChangeRecord record;
  v1::HoldsChanged* holds = record.mutable_holds_changed();
  holds->set_holder(holder);
  holds->set_count(count);
  PublishLocked(name, std::move(record));
}

Registry::~Registry() {
  expirer_.Stop();
  // Objects die with the registry; no refs need releasing any more.
  MutexLock lock(&mu_);
  objects_.clear();
}

absl::StatusOr<Registry::Opened> Registry::Open(absl::string_view name,
                                                ObjectType type,
                                                InitialContents init,
                                                const Caller& caller) {
  const bool anonymous =
      name.empty() || absl::StartsWith(name, kAnonymousPrefix);
  std::string full_name;
  if (name.empty()) {
    if (caller.session == 0) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       ErrorKind::kSessionError,
                       absl::StrFormat("creating an anonymous %s needs a "
                                       "session",
                                       ObjectTypeName(type)));
    }
    full_name = absl::StrFormat("%s%s/%d", kAnonymousPrefix,
                                ObjectTypeName(type), next_anonymous_++);
  } else {
    if (absl::Status s = CheckName(name); !s.ok()) return s;
    full_name = std::string(name);
  }

  // Fast path: the object exists.
  {
    MutexLock lock(&mu_);
    auto it = objects_.find(full_name);
    if (it != objects_.end()) {
      Entry& entry = it->second;
      if (entry.object->type() != type) {
        return MakeError(
            absl::StatusCode::kFailedPrecondition, ErrorKind::kTypeError,
            absl::StrFormat("%s: cannot open as a %s", entry.object->Label(),
                            ObjectTypeName(type)),
            full_name);
      }
      if (anonymous) {
        auto session = holds_.find(caller.session);
        if (session == holds_.end()) {
          return MakeError(absl::StatusCode::kFailedPrecondition,
                           ErrorKind::kSessionError,
                           absl::StrFormat("%s: opening an anonymous object "
                                           "needs a live session",
                                           entry.object->Label()),
                           full_name);
        }
        const int64_t count = ++session->second[full_name];
        ++entry.holders;
        PublishHoldsLocked(caller.session, full_name, count);
      }
      return Opened{entry.object, false};
    }
    if (anonymous && !name.empty()) return NotFound(full_name);
  }

  // A condition refers to its lock: the ref is counted like any stored ref,
  // so an anonymous lock lives as long as its conditions.
  if (type == ObjectType::kCondition) {
    if (init.condition_lock.empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       ErrorKind::kValueError,
                       absl::StrFormat("%s: a condition needs the name of its "
                                       "lock (condition_lock)",
                                       ObjectLabel(type, full_name)),
                       full_name);
    }
    absl::StatusOr<std::shared_ptr<Object>> lock = Lookup(init.condition_lock);
    if (!lock.ok()) return lock.status();
    init.value = Ref{(*lock)->name(), (*lock)->type(), nullptr};
  }

  // Refs among the initial values are counted under the same lock as the
  // insertion, so a failed open leaves no counts behind.
  std::vector<Value> init_refs;
  auto note_refs = [&init_refs](const Value& v) {
    if (v.HasRefs()) init_refs.push_back(v);
  };
  for (const auto& [key, value] : init.entries) note_refs(value);
  for (const Value& item : init.items) note_refs(item);
  note_refs(init.value);

  // The created record carries the initial contents, so it is built before
  // they move into the object.
  v1::ChangeRecord created;
  if (changes_.recording()) created = CreatedRecord(type, init);

  // Build outside the lock: initial contents may be large.
  absl::StatusOr<std::shared_ptr<Object>> made =
      MakeObject(full_name, type, std::move(init), this);
  if (!made.ok()) return made.status();

  MutexLock lock(&mu_);
  auto it = objects_.find(full_name);
  if (it != objects_.end()) {
    // Lost a race with another creator: theirs wins, as get-or-create must.
    if (it->second.object->type() != type) {
      return MakeError(
          absl::StatusCode::kFailedPrecondition, ErrorKind::kTypeError,
          absl::StrFormat("%s: cannot open as a %s", it->second.object->Label(),
                          ObjectTypeName(type)),
          full_name);
    }
    return Opened{it->second.object, false};
  }
  if (static_cast<int64_t>(objects_.size()) >= limits_.max_objects) {
    return MakeError(
        absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
        absl::StrFormat("cannot create %s: --max_objects=%d "
                        "objects exist",
                        ObjectLabel(type, full_name), limits_.max_objects),
        full_name, "max_objects");
  }
  auto session = holds_.find(caller.session);
  if (anonymous && session == holds_.end()) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorKind::kSessionError,
                     absl::StrFormat("creating an anonymous %s needs a live "
                                     "session",
                                     ObjectTypeName(type)));
  }
  for (size_t i = 0; i < init_refs.size(); ++i) {
    if (absl::Status s = AcquireRefsLocked(init_refs[i]); !s.ok()) {
      std::vector<std::shared_ptr<Object>> dead;
      for (size_t j = 0; j < i; ++j) {
        init_refs[j].ForEachRef(
            [&](const Ref& ref) { UnrefLocked(ref.name, false, &dead); });
      }
      // Only anonymous objects die here, and none can reach zero: their
      // counts were positive before this call's increments.
      return MakeError(s.code(), GetErrorKind(s),
                       absl::StrCat(ObjectLabel(type, full_name),
                                    ": initial contents: ", s.message()),
                       full_name);
    }
  }
  Entry entry{*made, 0, 0};
  (*made)->set_revision(PublishLocked(full_name, std::move(created)));
  if (anonymous) {
    ++session->second[full_name];
    entry.holders = 1;
    PublishHoldsLocked(caller.session, full_name, 1);
  }
  objects_.emplace(full_name, std::move(entry));
  return Opened{*std::move(made), true};
}

absl::StatusOr<std::shared_ptr<Object>> Registry::Lookup(
    absl::string_view name) const {
  ReaderMutexLock lock(&mu_);
  auto it = objects_.find(name);
  if (it == objects_.end()) {
    if (absl::Status s = CheckName(name); !s.ok()) return s;
    return NotFound(name);
  }
  return it->second.object;
}

absl::Status Registry::Delete(absl::string_view name) {
  std::vector<std::shared_ptr<Object>> dead;
  {
    MutexLock lock(&mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return NotFound(name);
    dead.push_back(std::move(it->second.object));
    objects_.erase(it);
    v1::ChangeRecord deleted;
    deleted.mutable_deleted();
    PublishLocked(name, std::move(deleted));
    // Holds on a deleted anonymous object are dropped with it.
    for (auto& [session, held] : holds_) held.erase(name);
  }
  Bury(std::move(dead));
  return absl::OkStatus();
}

// Size and typecode lock the object, so they are read after mu_ is dropped
// (lock order: object before registry).
std::pair<ObjectInfo, std::shared_ptr<Object>> Registry::InfoLocked(
    const Entry& entry) const {
  const Object& object = *entry.object;
  ObjectInfo info;
  info.name = object.name();
  info.type = object.type();
  info.anonymous = object.anonymous();
  info.holders = entry.holders;
  info.referrers = entry.referrers;
  return {std::move(info), entry.object};
}

namespace {
ObjectInfo Complete(std::pair<ObjectInfo, std::shared_ptr<Object>> partial) {
  partial.first.size = partial.second->Size();
  partial.first.typecode = partial.second->Typecode();
  partial.first.condition_lock = partial.second->BoundLock();
  return std::move(partial.first);
}
}  // namespace

void Registry::WithNames(
    absl::string_view prefix, bool include_anonymous,
    absl::FunctionRef<
        void(const std::vector<std::pair<std::string, ObjectType>>& names)>
        fn) const {
  ReaderMutexLock lock(&mu_);
  std::vector<std::pair<std::string, ObjectType>> names;
  for (auto it = objects_.lower_bound(prefix);
       it != objects_.end() && absl::StartsWith(it->first, prefix); ++it) {
    if (!include_anonymous && it->second.object->anonymous()) continue;
    names.emplace_back(it->first, it->second.object->type());
  }
  fn(names);
}

std::vector<ObjectInfo> Registry::List(absl::string_view prefix,
                                       bool include_anonymous) const {
  std::vector<std::pair<ObjectInfo, std::shared_ptr<Object>>> partial;
  {
    ReaderMutexLock lock(&mu_);
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && absl::StartsWith(it->first, prefix); ++it) {
      if (!include_anonymous && it->second.object->anonymous()) continue;
      partial.push_back(InfoLocked(it->second));
    }
  }
  std::vector<ObjectInfo> out;
  out.reserve(partial.size());
  for (auto& p : partial) out.push_back(Complete(std::move(p)));
  return out;
}

absl::StatusOr<ObjectInfo> Registry::Describe(absl::string_view name) const {
  std::pair<ObjectInfo, std::shared_ptr<Object>> partial;
  {
    ReaderMutexLock lock(&mu_);
    auto it = objects_.find(name);
    if (it == objects_.end()) return NotFound(name);
    partial = InfoLocked(it->second);
  }
  return Complete(std::move(partial));
}

int64_t Registry::Count() const {
  ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(objects_.size());
}

std::vector<std::shared_ptr<Object>> Registry::Snapshot() const {
  ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<Object>> out;
  out.reserve(objects_.size());
  for (const auto& [name, entry] : objects_) out.push_back(entry.object);
  return out;
}

absl::Status Registry::AcquireRefsLocked(const Value& value) {
  absl::Status status;
  std::vector<absl::string_view> counted;
  value.ForEachRef([&](const Ref& ref) {
    if (!status.ok()) return;
    auto it = objects_.find(ref.name);
    if (it == objects_.end()) {
      status = MakeError(
          absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
          absl::StrFormat("ref to missing object \"%s\"", ref.name), ref.name);
      return;
    }
    if (it->second.object->type() != ref.type) {
      status = MakeError(
          absl::StatusCode::kInvalidArgument, ErrorKind::kTypeError,
          absl::StrFormat("ref names %s as a %s", it->second.object->Label(),
                          ObjectTypeName(ref.type)),
          ref.name);
      return;
    }
    if (it->second.object->anonymous()) {
      ++it->second.referrers;
      counted.push_back(ref.name);
    }
  });
  if (!status.ok()) {
    // Undo: these counts were positive before, so nothing dies.
    for (absl::string_view name : counted)
      --objects_.find(name)->second.referrers;
  }
  return status;
}

absl::Status Registry::AcquireRefs(const Value& value) {
  if (!value.HasRefs()) return absl::OkStatus();
  MutexLock lock(&mu_);
  return AcquireRefsLocked(value);
}

void Registry::UnrefLocked(absl::string_view name, bool hold,
                           std::vector<std::shared_ptr<Object>>* dead) {
  auto it = objects_.find(name);
  if (it == objects_.end() || !it->second.object->anonymous()) return;
  Entry& entry = it->second;
  (hold ? entry.holders : entry.referrers) -= 1;
  if (entry.holders > 0 || entry.referrers > 0) return;
  dead->push_back(std::move(entry.object));
  objects_.erase(it);
  v1::ChangeRecord deleted;
  deleted.mutable_deleted();
  PublishLocked(name, std::move(deleted));
}

void Registry::Bury(std::vector<std::shared_ptr<Object>> dead) {
  // Iterative, not recursive: a long chain of anonymous objects must not
  // overflow the stack.
  while (!dead.empty()) {
    std::shared_ptr<Object> object = std::move(dead.back());
    dead.pop_back();
    Object::Retired retired = object->Retire();
    DeliverCompletions(std::move(retired.completions));
    MutexLock lock(&mu_);
    for (const Value& v : retired.values) {
      v.ForEachRef(
          [&](const Ref& ref) { UnrefLocked(ref.name, false, &dead); });
    }
  }
}

void Registry::ReleaseRefs(const std::vector<Value>& values) {
  std::vector<std::shared_ptr<Object>> dead;
  {
    MutexLock lock(&mu_);
    for (const Value& v : values) {
      v.ForEachRef(
          [&](const Ref& ref) { UnrefLocked(ref.name, false, &dead); });
    }
  }
  Bury(std::move(dead));
}

void Registry::ReleaseRefs(const Value& value) {
  if (!value.HasRefs()) return;
  ReleaseRefs(std::vector<Value>{value});
}

void Registry::HoldRefs(SessionId session, const Value& value) {
  if (session == 0 || !value.HasRefs()) return;
  MutexLock lock(&mu_);
  auto held = holds_.find(session);
  if (held == holds_.end()) return;
  value.ForEachRef([&](const Ref& ref) {
    auto it = objects_.find(ref.name);
    if (it == objects_.end() || !it->second.object->anonymous()) return;
    ++it->second.holders;
    PublishHoldsLocked(session, ref.name, ++held->second[ref.name]);
  });
}

void Registry::ReleaseHolds(SessionId session,
                            const std::vector<std::string>& names) {
  std::vector<std::shared_ptr<Object>> dead;
  {
    MutexLock lock(&mu_);
    auto held = holds_.find(session);
    if (held == holds_.end()) return;
    for (const std::string& name : names) {
      auto it = held->second.find(name);
      if (it == held->second.end()) continue;
      const int64_t count = --it->second;
      if (count == 0) held->second.erase(it);
      PublishHoldsLocked(session, name, count);
      UnrefLocked(name, true, &dead);
    }
  }
  Bury(std::move(dead));
}

void Registry::BeginSession(SessionId session) {
  MutexLock lock(&mu_);
  holds_.try_emplace(session);
}

bool Registry::Track(SessionId session, std::shared_ptr<Object> object) {
  MutexLock lock(&mu_);
  // An ended session can take nothing new: the caller refuses the call.
  if (!holds_.contains(session)) return false;
  tracked_[session].insert(std::move(object));
  return true;
}

void Registry::EndSession(SessionId session, SessionEnd how) {
  absl::flat_hash_map<std::string, int64_t> held;
  absl::flat_hash_set<std::shared_ptr<Object>> tracked;
  {
    // One step ends the session for the registry: after it, Track and
    // HoldRefs refuse it, so nothing can be granted to it any more.
    MutexLock lock(&mu_);
    auto h = holds_.find(session);
    if (h == holds_.end()) return;
    held = std::move(h->second);
    holds_.erase(h);
    if (auto t = tracked_.find(session); t != tracked_.end()) {
      tracked = std::move(t->second);
      tracked_.erase(t);
    }
  }
  for (const std::shared_ptr<Object>& object : tracked) {
    DeliverCompletions(object->OnSessionEnd(session, how));
  }
  std::vector<std::shared_ptr<Object>> dead;
  {
    MutexLock lock(&mu_);
    for (const auto& [name, count] : held) {
      for (int64_t i = 0; i < count; ++i) UnrefLocked(name, true, &dead);
    }
  }
  Bury(std::move(dead));
}

}  // namespace statehub
