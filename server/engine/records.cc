#include "server/engine/records.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "statehub/internal/value_codec.h"

namespace statehub::records {
namespace {

// Deeper than any --max_depth a server accepts, so a record written under
// one setting replays under another.
constexpr int kReplayDepth = 1 << 16;

}  // namespace

void AddEntries(const Value::Entries& entries,
                google::protobuf::RepeatedPtrField<v1::MapEntry>* out) {
  out->Reserve(out->size() + static_cast<int>(entries.size()));
  for (const auto& [key, value] : entries) {
    v1::MapEntry* entry = out->Add();
    internal::EncodeValue(key, entry->mutable_key());
    internal::EncodeValue(value, entry->mutable_value());
  }
}

void AddItems(absl::Span<const Value> items,
              google::protobuf::RepeatedPtrField<v1::Value>* out) {
  out->Reserve(out->size() + static_cast<int>(items.size()));
  for (const Value& item : items) internal::EncodeValue(item, out->Add());
}

v1::ChangeRecord EntrySet(const Value& key, const Value& value,
                          int64_t deadline) {
  v1::ChangeRecord record;
  v1::MapEntry* entry = record.mutable_entries_set()->add_entries();
  internal::EncodeValue(key, entry->mutable_key());
  internal::EncodeValue(value, entry->mutable_value());
  if (deadline != 0) record.mutable_entries_set()->add_deadlines(deadline);
  return record;
}

v1::ChangeRecord EntriesSet(const Value::Entries& entries) {
  v1::ChangeRecord record;
  AddEntries(entries, record.mutable_entries_set()->mutable_entries());
  return record;
}

v1::ChangeRecord EntryRemoved(const Value& key) {
  v1::ChangeRecord record;
  internal::EncodeValue(key, record.mutable_entries_removed()->add_keys());
  return record;
}

v1::ChangeRecord Cleared() {
  v1::ChangeRecord record;
  record.mutable_cleared();
  return record;
}

v1::ChangeRecord Spliced(int64_t start, int64_t removed,
                         absl::Span<const Value> items) {
  v1::ChangeRecord record;
  v1::ItemsSpliced* splice = record.mutable_items_spliced();
  splice->set_start(start);
  splice->set_removed(removed);
  AddItems(items, splice->mutable_items());
  return record;
}

v1::ChangeRecord CellSet(const Value& value) {
  v1::ChangeRecord record;
  internal::EncodeValue(value, record.mutable_cell_set()->mutable_value());
  return record;
}

absl::StatusOr<Value> Decode(const v1::Value& wire) {
  absl::StatusOr<Value> value = internal::DecodeValue(wire, kReplayDepth);
  if (!value.ok()) {
    return absl::DataLossError(
        absl::StrCat("a value in a change record: ", value.status().message()));
  }
  return value;
}

absl::StatusOr<Value::Entries> DecodeEntries(
    const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire) {
  Value::Entries entries;
  entries.reserve(wire.size());
  for (const v1::MapEntry& entry : wire) {
    absl::StatusOr<Value> key = Decode(entry.key());
    if (!key.ok()) return key.status();
    absl::StatusOr<Value> value = Decode(entry.value());
    if (!value.ok()) return value.status();
    entries.emplace_back(*std::move(key), *std::move(value));
  }
  return entries;
}

absl::StatusOr<Value::Items> DecodeItems(
    const google::protobuf::RepeatedPtrField<v1::Value>& wire) {
  Value::Items items;
  items.reserve(wire.size());
  for (const v1::Value& w : wire) {
    absl::StatusOr<Value> item = Decode(w);
    if (!item.ok()) return item.status();
    items.push_back(*std::move(item));
  }
  return items;
}

absl::StatusOr<bool> ApplyToMap(const v1::ChangeRecord& record,
                                OrderedMap* map) {
  switch (record.change_case()) {
    case v1::ChangeRecord::kEntriesSet: {
      absl::StatusOr<Value::Entries> entries =
          DecodeEntries(record.entries_set().entries());
      if (!entries.ok()) return entries.status();
      for (auto& [key, value] : *entries) {
        map->Set(std::move(key), std::move(value));
      }
      return true;
    }
    case v1::ChangeRecord::kEntriesRemoved:
      for (const v1::Value& wire : record.entries_removed().keys()) {
        absl::StatusOr<Value> key = Decode(wire);
        if (!key.ok()) return key.status();
        if (!map->Erase(*key)) return false;
      }
      return true;
    case v1::ChangeRecord::kCleared:
      map->TakeValues();
      return true;
    default:
      return false;
  }
}

Value::Entries Entries(const OrderedMap& map) {
  Value::Entries entries;
  entries.reserve(map.size());
  map.Visit(0, 0, [&](const Value& key, const Value& value) {
    entries.emplace_back(key, value);
  });
  return entries;
}

}  // namespace statehub::records
