#include "server/handlers/call.h"

#include <utility>

#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "server/engine/object.h"

namespace statehub::handlers {

void Call::Remember(const absl::Status& status) {
  const uint64_t number = std::exchange(number_, 0);
  NumberedCall* scope = NumberedCall::Current();
  const bool here = scope != nullptr && scope->number() == number &&
                    scope->session() == caller_.session;
  v1::ChangeRecord record;
  v1::CallAnswered* answer = record.mutable_call_answered();
  answer->set_call(number);
  answer->set_method(lane_method_);
  const bool keep = status.ok() || (here && scope->changed());
  if (keep) {
    if (status.ok()) {
      numbered_response_->SerializeToString(answer->mutable_response());
    } else {
      answer->set_code(static_cast<int32_t>(status.code()));
      answer->set_message(std::string(status.message()));
      answer->set_detail(SerializeErrorDetail(status));
    }
    replies_->Remember(caller_.session, *answer);
  }
  if (here) {
    scope->Answer(record);
  } else if (keep && changes_ != nullptr && changes_->recording()) {
    // A parked call answered on another thread: what it changed was logged
    // by the call that granted it; its answer follows.
    record.set_session(caller_.session);
    changes_->Publish(record);
  }
}

absl::Status Decoder::CheckSize(int64_t bytes) const {
  if (bytes <= limits_.max_value_bytes) return absl::OkStatus();
  return MakeError(
      absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
      absl::StrFormat("%s: a value of %d bytes exceeds --max_value_bytes=%d",
                      ObjectLabel(type_, name_), bytes,
                      limits_.max_value_bytes),
      name_, "max_value_bytes");
}

absl::StatusOr<Value> Decoder::operator()(const v1::Value& wire) const {
  STATEHUB_RETURN_IF_ERROR(
      CheckSize(static_cast<int64_t>(wire.ByteSizeLong())));
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

absl::Status Decoder::CheckStringSize(size_t size) const {
  // A string Value: its tag, its length and its bytes.
  return CheckSize(static_cast<int64_t>(
      1 + google::protobuf::io::CodedOutputStream::VarintSize64(size) + size));
}

absl::Status Decoder::Columns(const v1::EntryColumns& wire,
                              Value::Entries* out) const {
  const int n = wire.keys_size();
  const int ints = wire.int_values_size();
  const int doubles = wire.double_values_size();
  const int strings = wire.string_values_size();
  // Exactly one value column, as long as the keys (none for no keys).
  const int columns = (ints > 0) + (doubles > 0) + (strings > 0);
  if (columns > 1 || (n > 0 && ints + doubles + strings != n) ||
      (n == 0 && columns > 0)) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: entry columns hold %d keys and %d int, %d "
                        "float and %d str values; one value column must be "
                        "as long as the keys",
                        ObjectLabel(type_, name_), n, ints, doubles, strings),
        name_);
  }
  out->reserve(out->size() + n);
  for (int i = 0; i < n; ++i) {
    const std::string& key = wire.keys(i);
    STATEHUB_RETURN_IF_ERROR(CheckStringSize(key.size()));
    Value value;
    if (ints > 0) {
      value = Value(static_cast<int64_t>(wire.int_values(i)));
    } else if (doubles > 0) {
      value = Value(wire.double_values(i));
    } else {
      STATEHUB_RETURN_IF_ERROR(CheckStringSize(wire.string_values(i).size()));
      value = Value(wire.string_values(i));
    }
    out->emplace_back(Value(key), std::move(value));
  }
  return absl::OkStatus();
}

absl::Status Decoder::Columns(const v1::ItemColumns& wire,
                              Value::Items* out) const {
  const int ints = wire.int_values_size();
  const int doubles = wire.double_values_size();
  const int strings = wire.string_values_size();
  if ((ints > 0) + (doubles > 0) + (strings > 0) > 1) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: item columns hold %d int, %d float and %d str "
                        "values; one column may be in use",
                        ObjectLabel(type_, name_), ints, doubles, strings),
        name_);
  }
  out->reserve(out->size() + ints + doubles + strings);
  for (const int64_t v : wire.int_values()) out->emplace_back(v);
  for (const double v : wire.double_values()) out->emplace_back(v);
  for (const std::string& v : wire.string_values()) {
    STATEHUB_RETURN_IF_ERROR(CheckStringSize(v.size()));
    out->emplace_back(v);
  }
  return absl::OkStatus();
}

namespace {

// IsColumnKind is whether values of `kind` may travel in a value column.
bool IsColumnKind(Value::Kind kind) {
  return kind == Value::Kind::kInt || kind == Value::Kind::kDouble ||
         kind == Value::Kind::kString;
}

// AppendColumn appends value_of(x) for every x of `range`, all values of
// `kind` (IsColumnKind), to the column of that kind of `wire`: an
// EntryColumns or an ItemColumns, whose value columns have the same names.
template <typename Wire, typename Range, typename ValueOf>
void AppendColumn(Value::Kind kind, const Range& range, ValueOf value_of,
                  Wire* wire) {
  const int n = static_cast<int>(range.size());
  switch (kind) {
    case Value::Kind::kInt:
      wire->mutable_int_values()->Reserve(n);
      for (const auto& x : range) wire->add_int_values(value_of(x).AsInt());
      break;
    case Value::Kind::kDouble:
      wire->mutable_double_values()->Reserve(n);
      for (const auto& x : range) {
        wire->add_double_values(value_of(x).AsDouble());
      }
      break;
    default:
      wire->mutable_string_values()->Reserve(n);
      for (const auto& x : range) {
        wire->add_string_values(value_of(x).AsString());
      }
  }
}

}  // namespace

bool EncodeColumns(const Value::Items& items, v1::ItemColumns* wire) {
  if (items.empty()) return false;
  const Value::Kind kind = items.front().kind();
  if (!IsColumnKind(kind)) return false;
  for (const Value& item : items) {
    if (item.kind() != kind) return false;
  }
  AppendColumn(
      kind, items, [](const Value& item) -> const Value& { return item; },
      wire);
  return true;
}

bool EncodeColumns(const Value::Entries& entries, bool keys_only,
                   v1::EntryColumns* wire) {
  if (entries.empty()) return false;
  const Value::Kind kind = entries.front().second.kind();
  if (!keys_only && !IsColumnKind(kind)) return false;
  for (const auto& [key, value] : entries) {
    if (!key.is_string() || (!keys_only && value.kind() != kind)) return false;
  }
  wire->mutable_keys()->Reserve(static_cast<int>(entries.size()));
  for (const auto& [key, value] : entries) wire->add_keys(key.AsString());
  if (keys_only) return true;
  AppendColumn(
      kind, entries,
      [](const auto& entry) -> const Value& { return entry.second; }, wire);
  return true;
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
