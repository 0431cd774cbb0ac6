#include "server/engine/engine.h"

#include "absl/strings/str_format.h"

namespace statehub {

Engine::Engine(const Limits& limits, absl::Duration lease_ttl)
    : registry_(limits),
      sessions_(
          lease_ttl, [this](SessionId id) { registry_.BeginSession(id); },
          [this](SessionId id) { registry_.EndSession(id); }) {}

Engine::~Engine() { sessions_.EndAll(); }

absl::StatusOr<Caller> Engine::ResolveCaller(absl::string_view session_id,
                                             absl::Time now) const {
  if (session_id.empty()) return Caller{};
  const SessionId id = SessionTable::ParseId(session_id);
  if (id == 0 || !sessions_.IsLive(id, now)) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     ErrorKind::kSessionError,
                     absl::StrFormat("session %s is not live (expired or "
                                     "closed); reconnect",
                                     session_id));
  }
  return Caller{id};
}

}  // namespace statehub
