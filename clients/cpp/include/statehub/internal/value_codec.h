// File: statehub/internal/value_codec.h
//
// Conversions between the wire's Value and ObjectType (statehub.v1 protos)
// and the C++ types (statehub::Value, ObjectType), without gRPC: the
// server's engine encodes change records with them. Not part of the public
// API; statehub/internal/wire.h adds the gRPC status conversions.

#ifndef STATEHUB_INTERNAL_VALUE_CODEC_H_
#define STATEHUB_INTERNAL_VALUE_CODEC_H_

#include "absl/status/statusor.h"
#include "statehub/v1/value.pb.h"
#include "statehub/value.h"

namespace statehub::internal {

// DecodeValue converts a wire value. Fails with VALUE_ERROR for a malformed
// ref or blob, TYPE_ERROR for an unhashable map key, and LIMIT_EXCEEDED
// (limit "max_depth") when nesting goes deeper than `max_depth` levels.
absl::StatusOr<Value> DecodeValue(const v1::Value& wire, int max_depth);

// EncodeValue converts a value to the wire; never fails.
void EncodeValue(const Value& value, v1::Value* wire);

inline ObjectType FromWire(v1::ObjectType type) {
  return static_cast<ObjectType>(type);
}
inline v1::ObjectType ToWire(ObjectType type) {
  return static_cast<v1::ObjectType>(type);
}

}  // namespace statehub::internal

#endif  // STATEHUB_INTERNAL_VALUE_CODEC_H_
