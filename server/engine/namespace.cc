#include "server/engine/namespace.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "server/engine/records.h"
#include "server/engine/registry.h"

namespace statehub {

NamespaceObject::NamespaceObject(std::string name, Registry* registry)
    : Object(std::move(name), kType, registry) {}

absl::StatusOr<std::shared_ptr<NamespaceObject>> NamespaceObject::Make(
    std::string name, Value::Entries entries, Registry* registry) {
  std::shared_ptr<NamespaceObject> ns(
      new NamespaceObject(std::move(name), registry));
  if (absl::Status s = ns->CheckSize(static_cast<int64_t>(entries.size()));
      !s.ok()) {
    return s;
  }
  MutexLock lock(&ns->mu_);
  for (auto& [key, value] : entries) {
    if (!key.is_string()) {
      return ns->Error(absl::StatusCode::kInvalidArgument,
                       ErrorKind::kTypeError,
                       absl::StrFormat("attribute name must be a string, not "
                                       "'%s'",
                                       key.TypeName()));
    }
    if (absl::Status s = ns->CheckAttribute(key.AsString()); !s.ok()) return s;
    ns->map_.Set(std::move(key), std::move(value));
  }
  return ns;
}

int64_t NamespaceObject::Size() const {
  MutexLock lock(&mu_);
  return map_.size();
}

std::vector<Value> NamespaceObject::TakeContents() { return map_.TakeValues(); }

absl::Status NamespaceObject::CheckAttribute(
    absl::string_view attribute) const {
  bool ok = !attribute.empty() && attribute.size() <= 256 &&
            attribute[0] != '_' && !absl::ascii_isdigit(attribute[0]);
  for (char c : attribute) {
    // Non-ASCII bytes are allowed: Python identifiers may be Unicode.
    ok = ok && (absl::ascii_isalnum(c) || c == '_' ||
                static_cast<unsigned char>(c) >= 0x80);
  }
  if (ok) return absl::OkStatus();
  return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
               absl::StrFormat("'%s' is not a valid attribute name (an "
                               "identifier not starting with '_')",
                               absl::CHexEscape(attribute)));
}

absl::StatusOr<Value> NamespaceObject::Get(const Caller& caller,
                                           absl::string_view attribute) const {
  if (absl::Status s = CheckAttribute(attribute); !s.ok()) return s;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  const Value* v = map_.Find(Value(attribute));
  if (v == nullptr) {
    return Error(absl::StatusCode::kNotFound, ErrorKind::kAttributeError,
                 absl::StrFormat("no attribute '%s'", attribute));
  }
  Hold(caller, *v);
  return *v;
}

absl::Status NamespaceObject::Set(absl::string_view attribute, Value value) {
  if (absl::Status s = CheckAttribute(attribute); !s.ok()) return s;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    const Value key(attribute);
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

absl::Status NamespaceObject::Delete(absl::string_view attribute) {
  if (absl::Status s = CheckAttribute(attribute); !s.ok()) return s;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    const Value key(attribute);
    std::optional<Value> old = map_.Erase(key);
    if (!old) {
      return Error(absl::StatusCode::kNotFound, ErrorKind::kAttributeError,
                   absl::StrFormat("no attribute '%s'", attribute));
    }
    if (recording()) Emit(records::EntryRemoved(key));
    Keep(*std::move(old), &dropped);
  }
  ReleaseDropped(dropped);
  return absl::OkStatus();
}

absl::StatusOr<Value::Entries> NamespaceObject::Items(
    const Caller& caller) const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  Value::Entries entries;
  entries.reserve(map_.size());
  map_.Visit(0, 0, [&](const Value& key, const Value& value) {
    Hold(caller, value);
    entries.emplace_back(key, value);
  });
  return entries;
}

absl::Status NamespaceObject::Apply(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  absl::StatusOr<bool> applied = records::ApplyToMap(record, &map_);
  if (!applied.ok()) return applied.status();
  return *applied ? absl::OkStatus() : CannotApply(record);
}

uint64_t NamespaceObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, entries] = Copy([this] { return records::Entries(map_); });
  v1::ChangeRecord& record = out->emplace_back(Created());
  records::AddEntries(entries, record.mutable_created()->mutable_entries());
  return revision;
}

}  // namespace statehub
