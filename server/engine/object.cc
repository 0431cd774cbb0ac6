#include "server/engine/object.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "server/engine/registry.h"
#include "statehub/internal/value_codec.h"

namespace statehub {

Object::Object(std::string name, ObjectType type, Registry* registry)
    : registry_(registry),
      name_(std::move(name)),
      type_(type),
      anonymous_(absl::StartsWith(name_, kAnonymousPrefix)) {}

std::string ObjectLabel(ObjectType type, absl::string_view name) {
  return absl::StrFormat("%s \"%s\"", ObjectTypeName(type), name);
}

std::string Object::Label() const { return ObjectLabel(type_, name_); }

absl::Status Object::Error(absl::StatusCode code, ErrorKind kind,
                           absl::string_view what) const {
  return MakeError(code, kind, absl::StrFormat("%s: %s", Label(), what), name_);
}

absl::Status Object::CheckLive() const {
  if (!retired_) return absl::OkStatus();
  return Error(absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
               "object was deleted");
}

absl::Status Object::CheckSize(int64_t new_size) const {
  const int64_t limit = registry_->limits().max_elements;
  if (new_size <= limit) return absl::OkStatus();
  return MakeError(absl::StatusCode::kResourceExhausted,
                   ErrorKind::kLimitExceeded,
                   absl::StrFormat("%s: %d elements would exceed "
                                   "--max_elements=%d",
                                   Label(), new_size, limit),
                   name_, "max_elements");
}

void Object::Hold(const Caller& caller, const Value& value) const {
  registry_->HoldRefs(caller.session, value);
}

void Object::Keep(Value value, std::vector<Value>* dropped) {
  if (value.HasRefs()) dropped->push_back(std::move(value));
}

void Object::ReleaseDropped(const std::vector<Value>& dropped) const {
  if (!dropped.empty()) registry_->ReleaseRefs(dropped);
}

absl::Status Object::AcquireRefs(const Value& value) const {
  absl::Status s = registry_->AcquireRefs(value);
  if (s.ok()) return s;
  return MakeError(s.code(), GetErrorKind(s),
                   absl::StrFormat("%s: %s", Label(), s.message()), name_);
}

bool Object::recording() const {
  return registry_ != nullptr && registry_->changes().recording();
}

void Object::Emit(v1::ChangeRecord record) const {
  record.set_object(name_);
  revision_.store(registry_->changes().Publish(record),
                  std::memory_order_release);
}

absl::Status Object::CannotApply(const v1::ChangeRecord& record) const {
  return absl::DataLossError(
      absl::StrFormat("%s: record of revision %d (%s) does not apply to it",
                      Label(), record.revision(), record.ShortDebugString()));
}

v1::ChangeRecord Object::Created() const {
  v1::ChangeRecord record;
  record.set_object(name_);
  record.mutable_created()->set_type(internal::ToWire(type_));
  return record;
}

Object::Retired Object::Retire() {
  MutexLock lock(&mu_);
  retired_ = true;
  Retired retired;
  retired.values = TakeContents();
  retired.completions =
      TakeWaiters(Error(absl::StatusCode::kNotFound, ErrorKind::kObjectNotFound,
                        "object was deleted while the call waited"));
  return retired;
}

}  // namespace statehub
