#include "server/engine/sessions.h"

#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace statehub {

SessionTable::SessionTable(absl::Duration ttl, OnBegin on_begin, OnEnd on_end,
                           const Limits& limits)
    : ttl_(ttl),
      max_sessions_(limits.max_sessions),
      max_waiters_(limits.max_waiters_per_session),
      on_begin_(std::move(on_begin)),
      on_end_(std::move(on_end)),
      rng_state_(std::random_device{}() |
                 (uint64_t{std::random_device{}()} << 32)) {}

SessionId SessionTable::NewIdLocked() {
  // splitmix64: ids are unguessable enough not to collide across restarts
  // and cheap; they are not secrets (tokens guard access).
  for (;;) {
    uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    if (z != 0 && !sessions_.contains(z)) return z;
  }
}

absl::StatusOr<SessionTable::Opened> SessionTable::Open(SessionId resume,
                                                        std::string label,
                                                        absl::Time now) {
  Opened opened;
  {
    MutexLock lock(&mu_);
    auto it = sessions_.find(resume);
    if (it != sessions_.end() &&
        (it->second.pins > 0 || it->second.deadline > now)) {
      it->second.deadline = now + ttl_;
      if (!label.empty()) it->second.label = std::move(label);
      return Opened{resume, true};
    }
    // Sessions past their lease but not yet expired by the timer still
    // count: they end within one expiry interval.
    if (static_cast<int64_t>(sessions_.size()) >= max_sessions_) {
      return MakeError(
          absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
          absl::StrFormat("cannot open a session for %s: --max_sessions=%d "
                          "sessions are open",
                          label.empty() ? "a client" : label, max_sessions_),
          {}, "max_sessions");
    }
    opened.id = NewIdLocked();
    sessions_.emplace(opened.id, Session{std::move(label), now + ttl_});
  }
  on_begin_(opened.id);
  return opened;
}

absl::Status SessionTable::BeginWaiter(SessionId id) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return absl::OkStatus();  // refused later
  if (it->second.waiters >= max_waiters_) {
    return MakeError(
        absl::StatusCode::kResourceExhausted, ErrorKind::kLimitExceeded,
        absl::StrFormat("session %s (%s) already has "
                        "--max_waiters_per_session=%d blocking calls in "
                        "flight",
                        FormatId(id), it->second.label, max_waiters_),
        {}, "max_waiters_per_session");
  }
  ++it->second.waiters;
  return absl::OkStatus();
}

void SessionTable::EndWaiter(SessionId id) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it != sessions_.end() && it->second.waiters > 0) --it->second.waiters;
}

bool SessionTable::Touch(SessionId id, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() ||
      (it->second.pins == 0 && it->second.deadline <= now)) {
    return false;
  }
  it->second.deadline = now + ttl_;
  return true;
}

bool SessionTable::IsLive(SessionId id, absl::Time now) const {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  return it != sessions_.end() &&
         (it->second.pins > 0 || it->second.deadline > now);
}

void SessionTable::End(SessionId id, SessionEnd how) {
  {
    MutexLock lock(&mu_);
    if (sessions_.erase(id) == 0) return;
  }
  on_end_(id, how);
}

void SessionTable::End(SessionId id, const v1::Goodbye& goodbye) {
  End(id,
      goodbye.leave_locks() ? SessionEnd::kLeaveLocks : SessionEnd::kReleased);
}

std::vector<SessionId> SessionTable::ExpireDue(absl::Time now) {
  std::vector<SessionId> expired;
  {
    MutexLock lock(&mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.pins == 0 && it->second.deadline <= now) {
        expired.push_back(it->first);
        sessions_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  for (SessionId id : expired) on_end_(id, SessionEnd::kReleased);
  return expired;
}

bool SessionTable::Pin(SessionId id) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  ++it->second.pins;
  return true;
}

void SessionTable::Unpin(SessionId id, absl::Time now) {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.pins == 0) return;
  // The lease starts again from the moment the pin is dropped.
  if (--it->second.pins == 0) it->second.deadline = now + ttl_;
}

void SessionTable::EndAll() {
  std::vector<SessionId> all;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) all.push_back(id);
    sessions_.clear();
  }
  for (SessionId id : all) on_end_(id, SessionEnd::kReleased);
}

int64_t SessionTable::Count() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(sessions_.size());
}

std::string SessionTable::Label(SessionId id) const {
  MutexLock lock(&mu_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? "" : it->second.label;
}

void SessionTable::Restore(SessionId id, std::string label) {
  MutexLock lock(&mu_);
  sessions_.insert_or_assign(id,
                             Session{std::move(label), absl::InfiniteFuture()});
}

void SessionTable::Forget(SessionId id) {
  MutexLock lock(&mu_);
  sessions_.erase(id);
}

void SessionTable::RenewAll(absl::Time now) {
  MutexLock lock(&mu_);
  for (auto& [id, session] : sessions_) session.deadline = now + ttl_;
}

std::vector<std::pair<SessionId, std::string>> SessionTable::Labels() const {
  MutexLock lock(&mu_);
  std::vector<std::pair<SessionId, std::string>> out;
  out.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_)
    out.emplace_back(id, session.label);
  return out;
}

std::string SessionTable::FormatId(SessionId id) {
  return absl::StrFormat("%016x", id);
}

SessionId SessionTable::ParseId(absl::string_view text) {
  uint64_t id = 0;
  if (text.size() != 16 || !absl::SimpleHexAtoi(text, &id)) return 0;
  return id;
}

}  // namespace statehub
