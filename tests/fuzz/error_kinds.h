// File: tests/fuzz/error_kinds.h
//
// KindAgrees: the status codes shared/DESIGN.md's Errors table allows for
// each error kind, as the fuzz targets check every error a transport would
// send.
//
// Example:
//
//   FUZZ_CHECK(KindAgrees(detail.kind(), status.code()), "...");

#ifndef STATEHUB_TESTS_FUZZ_ERROR_KINDS_H_
#define STATEHUB_TESTS_FUZZ_ERROR_KINDS_H_

#include "absl/status/status.h"
#include "statehub/v1/value.pb.h"

namespace statehub::fuzz {

inline bool KindAgrees(v1::ErrorKind kind, absl::StatusCode code) {
  using C = absl::StatusCode;
  switch (kind) {
    case v1::KEY_ERROR:
    case v1::ATTRIBUTE_ERROR:
    case v1::OBJECT_NOT_FOUND:
      return code == C::kNotFound;
    case v1::INDEX_ERROR:
    case v1::WATCH_TOO_OLD:
      return code == C::kOutOfRange;
    case v1::VALUE_ERROR:
      return code == C::kNotFound || code == C::kInvalidArgument;
    case v1::TYPE_ERROR:
      return code == C::kFailedPrecondition || code == C::kInvalidArgument;
    case v1::RUNTIME_ERROR:
    case v1::SESSION_ERROR:
      return code == C::kFailedPrecondition;
    case v1::LIMIT_EXCEEDED:
      return code == C::kResourceExhausted;
    case v1::BROKEN_BARRIER:
    case v1::DEADLOCK:
      return code == C::kAborted;
    case v1::UNAUTHENTICATED:
      return code == C::kUnauthenticated;
    default:
      return false;
  }
}

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_ERROR_KINDS_H_
