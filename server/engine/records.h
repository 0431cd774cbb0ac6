// File: server/engine/records.h
//
// Builders of the change records objects publish (api/statehub/v1/
// change.proto), and the decoding their Apply methods share. Objects build
// a record only while recording() is true.
//
// Example:
//
//   if (recording()) {
//     v1::ChangeRecord r = records::EntriesSet({{key, value}});
//     Emit(r);
//   }

#ifndef STATEHUB_SERVER_ENGINE_RECORDS_H_
#define STATEHUB_SERVER_ENGINE_RECORDS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/engine/ordered_map.h"
#include "statehub/v1/change.pb.h"
#include "statehub/value.h"

namespace statehub::records {

// Value records (the contents of dicts, namespaces, lists, arrays, cells).
// EntrySet: `deadline` is the entry's ttl deadline after the change (unix
// µs), 0 for none.
v1::ChangeRecord EntrySet(const Value& key, const Value& value,
                          int64_t deadline = 0);
v1::ChangeRecord EntriesSet(const Value::Entries& entries);
v1::ChangeRecord EntryRemoved(const Value& key);
v1::ChangeRecord Cleared();
// Spliced: `removed` items from `start` were replaced by `items`.
v1::ChangeRecord Spliced(int64_t start, int64_t removed,
                         absl::Span<const Value> items);
v1::ChangeRecord CellSet(const Value& value);

// Encoders into a record's repeated fields.
void AddEntries(const Value::Entries& entries,
                google::protobuf::RepeatedPtrField<v1::MapEntry>* out);
void AddItems(absl::Span<const Value> items,
              google::protobuf::RepeatedPtrField<v1::Value>* out);

// Decoders for Apply and recovery. Records were checked when they were
// made, so no limit but a generous nesting depth applies. Errors:
// DATA_LOSS.
absl::StatusOr<Value> Decode(const v1::Value& wire);
absl::StatusOr<Value::Entries> DecodeEntries(
    const google::protobuf::RepeatedPtrField<v1::MapEntry>& wire);
absl::StatusOr<Value::Items> DecodeItems(
    const google::protobuf::RepeatedPtrField<v1::Value>& wire);

// ApplyToMap applies an EntriesSet, EntriesRemoved or Cleared record to the
// contents of a dict or namespace. Returns false, changing nothing, for a
// record of another kind, and false for a removed key the map does not
// hold (the caller's CannotApply). Errors: DATA_LOSS (a value that does not
// decode).
absl::StatusOr<bool> ApplyToMap(const v1::ChangeRecord& record,
                                OrderedMap* map);

// Entries copies a map's entries in order (a Dump's copy, made under the
// object's mutex and encoded after it).
Value::Entries Entries(const OrderedMap& map);

}  // namespace statehub::records

#endif  // STATEHUB_SERVER_ENGINE_RECORDS_H_
