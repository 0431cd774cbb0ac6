#include "server/handlers/call.h"

#include "absl/strings/str_format.h"
#include "server/engine/object.h"

namespace statehub::handlers {

absl::StatusOr<Value> Decoder::operator()(const v1::Value& wire) const {
  const auto bytes = static_cast<int64_t>(wire.ByteSizeLong());
  if (bytes > limits_.max_value_bytes) {
    return MakeError(absl::StatusCode::kResourceExhausted,
                     ErrorKind::kLimitExceeded,
                     absl::StrFormat("%s: a value of %d bytes exceeds "
                                     "--max_value_bytes=%d",
                                     ObjectLabel(type_, name_), bytes,
                                     limits_.max_value_bytes),
                     name_, "max_value_bytes");
  }
  absl::StatusOr<Value> value = internal::DecodeValue(wire, limits_.max_depth);
  if (value.ok()) return value;
  const absl::Status& s = value.status();
  std::string limit = GetErrorLimit(s);
  if (!limit.empty()) {
    return MakeError(s.code(), GetErrorKind(s),
                     absl::StrFormat("%s: %s (%d)", ObjectLabel(type_, name_),
                                     s.message(), limits_.max_depth),
                     name_, limit);
  }
  return MakeError(
      s.code(), GetErrorKind(s),
      absl::StrFormat("%s: %s", ObjectLabel(type_, name_), s.message()), name_);
}

absl::StatusOr<std::optional<Value>> Decoder::Optional(
    bool has, const v1::Value& wire) const {
  if (!has) return std::optional<Value>();
  STATEHUB_ASSIGN_OR_RETURN(Value value, (*this)(wire));
  return std::optional<Value>(std::move(value));
}

absl::StatusOr<Value::Items> Decoder::Items(
    const google::protobuf::RepeatedPtrField<v1::Value>& wire) const {
  Value::Items items;
  items.reserve(wire.size());
  for (const v1::Value& w : wire) {
    STATEHUB_ASSIGN_OR_RETURN(Value item, (*this)(w));
    items.push_back(std::move(item));
  }
  return items;
}

absl::StatusOr<Value::Entries> Decoder::Entries(
    const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire) const {
  Value::Entries entries;
  entries.reserve(wire.size());
  for (const v1::MapEntry& w : wire) {
    STATEHUB_ASSIGN_OR_RETURN(Value key, (*this)(w.key()));
    STATEHUB_ASSIGN_OR_RETURN(Value value, (*this)(w.value()));
    entries.emplace_back(std::move(key), std::move(value));
  }
  return entries;
}

SliceSpec SliceOf(const v1::Slice& wire) {
  SliceSpec spec;
  if (wire.has_start()) spec.start = wire.start();
  if (wire.has_stop()) spec.stop = wire.stop();
  if (wire.has_step()) spec.step = wire.step();
  return spec;
}

void EncodeItems(const Value::Items& items,
                 google::protobuf::RepeatedPtrField<v1::Value>* wire) {
  wire->Reserve(static_cast<int>(items.size()));
  for (const Value& item : items) internal::EncodeValue(item, wire->Add());
}

void EncodeEntries(const Value::Entries& entries,
                   google::protobuf::RepeatedPtrField<v1::MapEntry>* wire) {
  wire->Reserve(static_cast<int>(entries.size()));
  for (const auto& [key, value] : entries) {
    v1::MapEntry* entry = wire->Add();
    internal::EncodeValue(key, entry->mutable_key());
    internal::EncodeValue(value, entry->mutable_value());
  }
}

}  // namespace statehub::handlers
