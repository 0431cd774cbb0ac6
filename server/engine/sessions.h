// File: server/engine/sessions.h
//
// `SessionTable` keeps the leases of client sessions. A session lives while
// messages keep arriving within the lease TTL; it ends on Goodbye or when the
// lease expires, as seen by the server's own clock (ExpireDue, called by a
// timer), never by waiting for a transport error. When a session ends, the
// `on_end` callback releases everything it held.
//
// Time is passed in, so tests drive the clock.
//
// Thread safety: all methods are thread-safe. `on_end` runs on the calling
// thread with no lock of the table held.

#ifndef STATEHUB_SERVER_ENGINE_SESSIONS_H_
#define STATEHUB_SERVER_ENGINE_SESSIONS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/limits.h"
#include "server/engine/mutex.h"
#include "server/engine/object.h"
#include "statehub/v1/session.pb.h"

namespace statehub {

class SessionTable {
 public:
  using OnEnd = std::function<void(SessionId, SessionEnd)>;
  using OnBegin = std::function<void(SessionId)>;

  // `limits` supplies max_sessions and max_waiters_per_session.
  SessionTable(absl::Duration ttl, OnBegin on_begin, OnEnd on_end,
               const Limits& limits = Limits{});
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  absl::Duration ttl() const { return ttl_; }

  struct Opened {
    SessionId id = 0;
    bool resumed = false;
  };
  // Open resumes `resume` if it is live (renewing its lease), or begins a new
  // session. Errors: LIMIT_EXCEEDED (max_sessions) when a new session would
  // be one too many.
  absl::StatusOr<Opened> Open(SessionId resume, std::string label,
                              absl::Time now);
  // BeginWaiter counts one more blocking call of session `id` in flight;
  // EndWaiter, once it has finished, one fewer (no-op for a session that has
  // ended). Errors: LIMIT_EXCEEDED (max_waiters_per_session) when the
  // session has that many already.
  absl::Status BeginWaiter(SessionId id);
  void EndWaiter(SessionId id);
  // Touch renews the lease; false if the session is not live.
  bool Touch(SessionId id, absl::Time now);
  // Pin keeps a live session from expiring until Unpin (one per Pin): a
  // lane connection on a Unix socket pins the session it owns, because its
  // close, not a lease, tells that the process is gone. False if the
  // session is not live.
  bool Pin(SessionId id);
  void Unpin(SessionId id, absl::Time now);
  // IsLive is true if the session exists and its lease has not run out.
  bool IsLive(SessionId id, absl::Time now) const;
  // End ends a session now (Goodbye; `how` says what becomes of its locks);
  // no-op if it is not live.
  void End(SessionId id, SessionEnd how = SessionEnd::kReleased);
  // End ends a session as the client's Goodbye asks (leave_locks:
  // SessionEnd::kLeaveLocks); both transports' Goodbye comes here.
  void End(SessionId id, const v1::Goodbye& goodbye);
  // ExpireDue ends every session whose lease ran out by `now`; returns them.
  std::vector<SessionId> ExpireDue(absl::Time now);
  // EndAll ends every session (server shutdown).
  void EndAll();
  int64_t Count() const;
  // Label returns a session's label ("" if none or not live).
  std::string Label(SessionId id) const;

  // Recovery (Engine::Replay). Restore puts back a session a change record
  // names, without on_begin; its lease starts at RenewAll. Forget drops one
  // without on_end (what it held was released by records of their own).
  void Restore(SessionId id, std::string label);
  void Forget(SessionId id);
  // RenewAll gives every session a fresh lease from `now`: a client that
  // comes back within it resumes its session.
  void RenewAll(absl::Time now);
  // Labels lists every session and its label, in no particular order.
  std::vector<std::pair<SessionId, std::string>> Labels() const;

  // Session ids travel as 16 hex digits.
  static std::string FormatId(SessionId id);
  // ParseId returns 0 for anything that is not a formatted id.
  static SessionId ParseId(absl::string_view text);

 private:
  struct Session {
    std::string label;
    absl::Time deadline;
    int64_t waiters = 0;
    int64_t pins = 0;
  };

  SessionId NewIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration ttl_;
  const int64_t max_sessions_;
  const int64_t max_waiters_;
  const OnBegin on_begin_;
  const OnEnd on_end_;
  mutable Mutex mu_;
  absl::flat_hash_map<SessionId, Session> sessions_ ABSL_GUARDED_BY(mu_);
  uint64_t rng_state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_SESSIONS_H_
