#include "server/engine/engine.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/str_format.h"

namespace statehub {

Engine::Engine(const Limits& limits, absl::Duration lease_ttl)
    : registry_(limits),
      sessions_(
          lease_ttl,
          [this](SessionId id) {
            if (changes().recording()) {
              v1::ChangeRecord record;
              v1::SessionOpened* opened = record.mutable_session_opened();
              opened->set_id(id);
              opened->set_label(sessions_.Label(id));
              record.set_session(id);
              changes().Publish(record);
            }
            registry_.BeginSession(id);
          },
          [this](SessionId id, SessionEnd how) {
            // Published before the releases it causes, which follow as
            // records of their own.
            if (changes().recording()) {
              v1::ChangeRecord record;
              record.mutable_session_ended()->set_id(id);
              changes().Publish(record);
            }
            replies_.Forget(id);
            registry_.EndSession(id, how);
          },
          limits),
      watches_(registry_.changes(), registry_, sessions_) {}

Engine::~Engine() { sessions_.EndAll(); }

namespace {

std::string Sha256(absl::string_view text) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

}  // namespace

void Engine::RequireToken(absl::string_view token) {
  token_digest_ = token.empty() ? std::string() : Sha256(token);
}

absl::Status Engine::CheckToken(absl::string_view presented) const {
  if (token_digest_.empty()) return absl::OkStatus();
  if (presented.empty()) {
    return MakeError(absl::StatusCode::kUnauthenticated,
                     ErrorKind::kUnauthenticated,
                     "this server requires a token: send `authorization: "
                     "Bearer <token>` metadata (clients: the token option, "
                     "or STATEHUB_TOKEN for Python)");
  }
  const std::string digest = Sha256(presented);
  if (CRYPTO_memcmp(digest.data(), token_digest_.data(), digest.size()) != 0) {
    return MakeError(absl::StatusCode::kUnauthenticated,
                     ErrorKind::kUnauthenticated,
                     "wrong token: it does not match the server's "
                     "--auth_token_file");
  }
  return absl::OkStatus();
}

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
