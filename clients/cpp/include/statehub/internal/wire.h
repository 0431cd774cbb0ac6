// File: statehub/internal/wire.h
//
// Conversions between the wire types (statehub.v1 protos, grpc::Status) and
// the C++ types (statehub::Value, absl::Status). Shared by the server and the
// client library; not part of the public API.

#ifndef STATEHUB_INTERNAL_WIRE_H_
#define STATEHUB_INTERNAL_WIRE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "grpcpp/support/status.h"
#include "statehub/internal/value_codec.h"
#include "statehub/v1/value.pb.h"
#include "statehub/value.h"

namespace statehub::internal {

// The binary trailing-metadata key that carries a serialized ErrorDetail.
inline constexpr char kErrorDetailKey[] = "statehub-error-bin";
// The request-metadata key that names the caller's session.
inline constexpr char kSessionKey[] = "statehub-session";
// The request-metadata key of the bearer token: "Bearer <token>".
inline constexpr char kAuthorizationKey[] = "authorization";
// The request-metadata key of a numbered call (the lane's NUMBERED flag):
// "<number> <seen>", in decimal (docs/durability.md, "Exactly once").
inline constexpr char kCallKey[] = "statehub-call";

// DurationFromWire and DurationToWire convert google.protobuf.Duration (the
// wire form of every timeout and waited-for time).
inline absl::Duration DurationFromWire(const google::protobuf::Duration& wire) {
  return absl::Seconds(wire.seconds()) + absl::Nanoseconds(wire.nanos());
}
inline void DurationToWire(absl::Duration d, google::protobuf::Duration* wire) {
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  wire->set_seconds(nanos / 1'000'000'000);
  wire->set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
}

// ToGrpcStatus and FromGrpcStatus carry a status and its error detail across
// gRPC; the detail travels in `trailers` under kErrorDetailKey.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status,
                            absl::string_view serialized_detail);

}  // namespace statehub::internal

#endif  // STATEHUB_INTERNAL_WIRE_H_
