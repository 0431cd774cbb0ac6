#include "server/handlers/call.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
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

namespace {

// A value column of an EntryColumns or ItemColumns batch (value.proto):
// the kind of its values (kNull when no column is in use) and its bytes.
struct Column {
  Value::Kind kind = Value::Kind::kNull;
  absl::string_view data;
};

// ValueColumn is the value column in use of `wire`, an EntryColumns or an
// ItemColumns: both name theirs ints, doubles and strings.
template <typename Wire>
Column ValueColumn(const Wire& wire) {
  if (wire.has_ints()) return {Value::Kind::kInt, wire.ints()};
  if (wire.has_doubles()) return {Value::Kind::kDouble, wire.doubles()};
  if (wire.has_strings()) return {Value::Kind::kString, wire.strings()};
  return {};
}

constexpr char kTerminator = '\0';
constexpr size_t kNumberBytes = 8;

// Count is the number of values in `column`, or -1 when its bytes do not
// divide into values of its kind: strings each followed by U+0000, numbers
// of 8 bytes.
int64_t Count(const Column& column) {
  switch (column.kind) {
    case Value::Kind::kInt:
    case Value::Kind::kDouble:
      if (column.data.size() % kNumberBytes != 0) return -1;
      return static_cast<int64_t>(column.data.size() / kNumberBytes);
    case Value::Kind::kString:
      if (!column.data.empty() && column.data.back() != kTerminator) return -1;
      return std::count(column.data.begin(), column.data.end(), kTerminator);
    default:
      return 0;
  }
}

uint64_t LoadLittleEndian64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  return v;
}

void StoreLittleEndian64(uint64_t v, char* p) {
  if constexpr (std::endian::native == std::endian::big) {
    v = __builtin_bswap64(v);
  }
  std::memcpy(p, &v, sizeof v);
}

// ColumnReader reads the values of a column whose Count is not -1, in
// order, as many as Count says.
class ColumnReader {
 public:
  explicit ColumnReader(const Column& column)
      : kind_(column.kind), rest_(column.data) {}

  // NextString returns the next string of a column of strings.
  absl::string_view NextString() {
    const size_t end = rest_.find(kTerminator);
    const absl::string_view s = rest_.substr(0, end);
    rest_.remove_prefix(end + 1);
    return s;
  }

  Value Next() {
    if (kind_ == Value::Kind::kString) return Value(NextString());
    const uint64_t bits = LoadLittleEndian64(rest_.data());
    rest_.remove_prefix(kNumberBytes);
    if (kind_ == Value::Kind::kInt) return Value(static_cast<int64_t>(bits));
    return Value(std::bit_cast<double>(bits));
  }

 private:
  const Value::Kind kind_;
  absl::string_view rest_;
};

// CountText says how many values a column holds, for an error.
std::string CountText(int64_t count) {
  return count < 0 ? "malformed" : absl::StrCat(count);
}

}  // namespace

absl::Status Decoder::Columns(const v1::EntryColumns& wire,
                              Value::Entries* out) const {
  const Column keys{Value::Kind::kString, wire.keys()};
  const Column values = ValueColumn(wire);
  const int64_t n = Count(keys);
  const int64_t m = Count(values);
  // One value column as long as the keys (none counts 0 values).
  if (n < 0 || m != n) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: entry columns hold %s keys and %s values; one "
                        "value column must be as long as the keys (strings "
                        "each followed by U+0000, numbers 8 bytes each)",
                        ObjectLabel(type_, name_), CountText(n), CountText(m)),
        name_);
  }
  out->reserve(out->size() + n);
  ColumnReader key_reader(keys);
  ColumnReader value_reader(values);
  for (int64_t i = 0; i < n; ++i) {
    const absl::string_view key = key_reader.NextString();
    STATEHUB_RETURN_IF_ERROR(CheckStringSize(key.size()));
    const Value& value =
        out->emplace_back(std::piecewise_construct, std::forward_as_tuple(key),
                          std::forward_as_tuple(value_reader.Next()))
            .second;
    if (value.is_string()) {
      STATEHUB_RETURN_IF_ERROR(CheckStringSize(value.AsString().size()));
    }
  }
  return absl::OkStatus();
}

absl::Status Decoder::Columns(const v1::ItemColumns& wire,
                              Value::Items* out) const {
  const Column items = ValueColumn(wire);
  const int64_t n = Count(items);
  if (n < 0) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: an item column of %d bytes holds no whole "
                        "number of items (strings each followed by U+0000, "
                        "numbers 8 bytes each)",
                        ObjectLabel(type_, name_), items.data.size()),
        name_);
  }
  out->reserve(out->size() + n);
  ColumnReader reader(items);
  for (int64_t i = 0; i < n; ++i) {
    Value item = reader.Next();
    if (item.is_string()) {
      STATEHUB_RETURN_IF_ERROR(CheckStringSize(item.AsString().size()));
    }
    out->push_back(std::move(item));
  }
  return absl::OkStatus();
}

namespace {

// IsColumnKind is whether values of `kind` may travel in a value column.
bool IsColumnKind(Value::Kind kind) {
  return kind == Value::Kind::kInt || kind == Value::Kind::kDouble ||
         kind == Value::Kind::kString;
}

// Fits is whether `value` may travel in a column of `kind`: of that kind,
// and a string without U+0000.
bool Fits(const Value& value, Value::Kind kind) {
  if (value.kind() != kind) return false;
  return kind != Value::Kind::kString ||
         value.AsString().find(kTerminator) == std::string::npos;
}

// StoreValue writes `value`, which Fits a column of its kind, at `p` as
// that column holds it, and returns the end of what it wrote.
char* StoreValue(const Value& value, char* p) {
  switch (value.kind()) {
    case Value::Kind::kInt:
      StoreLittleEndian64(static_cast<uint64_t>(value.AsInt()), p);
      return p + kNumberBytes;
    case Value::Kind::kDouble:
      StoreLittleEndian64(std::bit_cast<uint64_t>(value.AsDouble()), p);
      return p + kNumberBytes;
    default: {
      const std::string& s = value.AsString();
      std::memcpy(p, s.data(), s.size());
      p[s.size()] = kTerminator;
      return p + s.size() + 1;
    }
  }
}

// MutableColumn is the value column of `kind` of `wire`.
template <typename Wire>
std::string* MutableColumn(Value::Kind kind, Wire* wire) {
  switch (kind) {
    case Value::Kind::kInt:
      return wire->mutable_ints();
    case Value::Kind::kDouble:
      return wire->mutable_doubles();
    default:
      return wire->mutable_strings();
  }
}

// WriteColumn writes value_of(x) for every x of `range`, values that Fit
// `kind`, to `column`, sized once and written in place.
template <typename Range, typename ValueOf>
void WriteColumn(Value::Kind kind, const Range& range, ValueOf value_of,
                 std::string* column) {
  size_t bytes = kNumberBytes * range.size();
  if (kind == Value::Kind::kString) {
    bytes = 0;
    for (const auto& x : range) bytes += value_of(x).AsString().size() + 1;
  }
  column->resize(bytes);
  char* p = column->data();
  for (const auto& x : range) p = StoreValue(value_of(x), p);
}

}  // namespace

bool EncodeColumns(const Value::Items& items, v1::ItemColumns* wire) {
  if (items.empty()) return false;
  const Value::Kind kind = items.front().kind();
  if (!IsColumnKind(kind)) return false;
  for (const Value& item : items) {
    if (!Fits(item, kind)) return false;
  }
  WriteColumn(
      kind, items, [](const Value& item) -> const Value& { return item; },
      MutableColumn(kind, wire));
  return true;
}

bool EncodeColumns(const Value::Entries& entries, bool keys_only,
                   v1::EntryColumns* wire) {
  if (entries.empty()) return false;
  const Value::Kind kind = entries.front().second.kind();
  if (!keys_only && !IsColumnKind(kind)) return false;
  for (const auto& [key, value] : entries) {
    if (!Fits(key, Value::Kind::kString) ||
        (!keys_only && !Fits(value, kind))) {
      return false;
    }
  }
  WriteColumn(
      Value::Kind::kString, entries,
      [](const auto& entry) -> const Value& { return entry.first; },
      wire->mutable_keys());
  if (keys_only) return true;
  WriteColumn(
      kind, entries,
      [](const auto& entry) -> const Value& { return entry.second; },
      MutableColumn(kind, wire));
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
