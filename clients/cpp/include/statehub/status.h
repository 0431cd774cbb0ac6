// File: statehub/status.h
//
// Error kinds: which exception a Manager proxy would raise for a failed call.
// statehub returns errors as `absl::Status`; a failed status from the server
// or the client library carries an `ErrorKind` and the name of the object
// concerned, so C++ callers can branch the way Python callers catch.
//
// Example:
//
//   absl::StatusOr<statehub::Value> v = jobs.Get("x");
//   if (statehub::GetErrorKind(v.status()) == statehub::ErrorKind::kKeyError) {
//     // v.status().message() == "dict \"jobs\": key 'x' not found"
//   }
//
// Methods that cannot return a status (the std::mutex-style lock(),
// unlock(), wait() of Lock, RLock and Condition) throw `statehub::Error`
// instead, carrying the same status, as std::mutex::lock throws
// std::system_error.

#ifndef STATEHUB_STATUS_H_
#define STATEHUB_STATUS_H_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace statehub {

// ErrorKind mirrors statehub.v1.ErrorKind; see shared/DESIGN.md, Errors.
enum class ErrorKind {
  kUnspecified = 0,
  kKeyError = 1,        // NOT_FOUND: missing dict key
  kIndexError = 2,      // OUT_OF_RANGE: index out of range
  kValueError = 3,      // bad argument value, value not in list, bad name
  kTypeError = 4,       // type mismatch, unhashable or incomparable value
  kAttributeError = 5,  // NOT_FOUND: missing namespace attribute
  kRuntimeError = 6,    // FAILED_PRECONDITION: invalid in the object's state
  kObjectNotFound = 7,  // NOT_FOUND: no object of that name
  kLimitExceeded = 8,   // RESOURCE_EXHAUSTED: a server limit; see GetErrorLimit
  kSessionError = 9,    // FAILED_PRECONDITION: the call needs a live session
  kBrokenBarrier = 10,  // ABORTED
  kUnauthenticated = 11,
  kDeadlock = 12,     // ABORTED: the acquire would close a cycle of waits
  kWatchTooOld = 13,  // OUT_OF_RANGE: a watch cannot go on without a gap
};

// ErrorKindName returns the wire name, e.g. "KEY_ERROR".
absl::string_view ErrorKindName(ErrorKind kind);

// MakeError returns a non-OK status with `code` and `message` that carries
// `kind`, the `object` name (may be empty) and, for kLimitExceeded, the flag
// name `limit`. REQUIRES: code != kOk.
absl::Status MakeError(absl::StatusCode code, ErrorKind kind,
                       absl::string_view message, absl::string_view object = {},
                       absl::string_view limit = {});

// GetErrorKind returns the kind carried by `status`, or kUnspecified for OK
// and for statuses made without MakeError (transport errors, internal ones).
ErrorKind GetErrorKind(const absl::Status& status);
// GetErrorObject returns the object name carried by `status`, or "".
std::string GetErrorObject(const absl::Status& status);

// WatchTooOld is the WATCH_TOO_OLD error of a watch that cannot go on
// without a gap: the server is at `revision`, and can resume a watch from
// `oldest_revision` on.
absl::Status WatchTooOld(absl::string_view message, absl::string_view object,
                         uint64_t revision, uint64_t oldest_revision);
// GetWatchRevisions returns what a WATCH_TOO_OLD error carries: the
// server's revision and the oldest it can resume from ({0, 0} otherwise).
std::pair<uint64_t, uint64_t> GetWatchRevisions(const absl::Status& status);
// GetErrorLimit returns the limit flag named by `status`, or "".
std::string GetErrorLimit(const absl::Status& status);

// The serialized statehub.v1.ErrorDetail of `status` ("" if none), and a
// status rebuilt from a code, message and serialized detail: the two halves of
// carrying the kind across gRPC (binary trailer `statehub-error-bin`).
std::string SerializeErrorDetail(const absl::Status& status);
absl::Status StatusFromWire(absl::StatusCode code, absl::string_view message,
                            absl::string_view serialized_detail);

// Error is what the std-style methods of the synchronization handles
// (Lock::lock(), Condition::wait(), ...) throw when a call fails. what() is
// status().ToString(); read the kind with GetErrorKind(e.status()).
class Error : public std::runtime_error {
 public:
  // REQUIRES: !status.ok().
  explicit Error(absl::Status status)
      : std::runtime_error(status.ToString()), status_(std::move(status)) {}

  const absl::Status& status() const noexcept { return status_; }

 private:
  absl::Status status_;
};

}  // namespace statehub

#endif  // STATEHUB_STATUS_H_
