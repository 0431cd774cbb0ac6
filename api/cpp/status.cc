#include "statehub/status.h"

#include <optional>

#include "absl/strings/cord.h"
#include "statehub/v1/value.pb.h"

namespace statehub {
namespace {

constexpr char kDetailUrl[] = "type.googleapis.com/statehub.v1.ErrorDetail";

std::optional<v1::ErrorDetail> Detail(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kDetailUrl);
  if (!payload) return std::nullopt;
  v1::ErrorDetail detail;
  if (!detail.ParseFromString(std::string(*payload))) return std::nullopt;
  return detail;
}

}  // namespace

absl::string_view ErrorKindName(ErrorKind kind) {
  return v1::ErrorKind_Name(static_cast<v1::ErrorKind>(kind));
}

absl::Status MakeError(absl::StatusCode code, ErrorKind kind,
                       absl::string_view message, absl::string_view object,
                       absl::string_view limit) {
  absl::Status status(code, message);
  v1::ErrorDetail detail;
  detail.set_kind(static_cast<v1::ErrorKind>(kind));
  detail.set_object(std::string(object));
  detail.set_limit(std::string(limit));
  status.SetPayload(kDetailUrl, absl::Cord(detail.SerializeAsString()));
  return status;
}

ErrorKind GetErrorKind(const absl::Status& status) {
  std::optional<v1::ErrorDetail> detail = Detail(status);
  return detail ? static_cast<ErrorKind>(detail->kind())
                : ErrorKind::kUnspecified;
}

std::string GetErrorObject(const absl::Status& status) {
  std::optional<v1::ErrorDetail> detail = Detail(status);
  return detail ? detail->object() : "";
}

absl::Status WatchTooOld(absl::string_view message, absl::string_view object,
                         uint64_t revision, uint64_t oldest_revision) {
  absl::Status status(absl::StatusCode::kOutOfRange, message);
  v1::ErrorDetail detail;
  detail.set_kind(v1::WATCH_TOO_OLD);
  detail.set_object(std::string(object));
  detail.set_revision(revision);
  detail.set_oldest_revision(oldest_revision);
  status.SetPayload(kDetailUrl, absl::Cord(detail.SerializeAsString()));
  return status;
}

std::pair<uint64_t, uint64_t> GetWatchRevisions(const absl::Status& status) {
  std::optional<v1::ErrorDetail> detail = Detail(status);
  if (!detail) return {0, 0};
  return {detail->revision(), detail->oldest_revision()};
}

std::string GetErrorLimit(const absl::Status& status) {
  std::optional<v1::ErrorDetail> detail = Detail(status);
  return detail ? detail->limit() : "";
}

std::string SerializeErrorDetail(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kDetailUrl);
  return payload ? std::string(*payload) : "";
}

absl::Status StatusFromWire(absl::StatusCode code, absl::string_view message,
                            absl::string_view serialized_detail) {
  absl::Status status(code, message);
  if (!serialized_detail.empty() && code != absl::StatusCode::kOk) {
    status.SetPayload(kDetailUrl, absl::Cord(serialized_detail));
  }
  return status;
}

}  // namespace statehub
