// File: server/engine/engine.h
//
// `Engine` is the state engine the handlers drive: the registry of
// objects, the session table, and the wiring between them (a session's end
// releases its holds). It includes no gRPC headers and is unit-tested alone.
//
// Example:
//
//   Engine engine(Limits{}, absl::Seconds(10));
//   absl::StatusOr<SessionTable::Opened> s =
//       engine.sessions().Open(0, "test", absl::Now());
//   auto opened = engine.registry().Open("jobs", ObjectType::kDict, {},
//                                        Caller{s->id});
//
// Thread safety: thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_ENGINE_H_
#define STATEHUB_SERVER_ENGINE_ENGINE_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/engine/changes.h"
#include "server/engine/limits.h"
#include "server/engine/registry.h"
#include "server/engine/replies.h"
#include "server/engine/sessions.h"
#include "server/engine/watches.h"

namespace statehub {

class Engine {
 public:
  Engine(const Limits& limits, absl::Duration lease_ttl);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine();

  Registry& registry() { return registry_; }
  const Registry& registry() const { return registry_; }
  SessionTable& sessions() { return sessions_; }
  const SessionTable& sessions() const { return sessions_; }
  // replies remembers numbered calls' answers for their retries.
  // watches serves watches on the change stream (watches.h).
  WatchHub& watches() { return watches_; }
  const WatchHub& watches() const { return watches_; }
  Replies& replies() { return replies_; }
  const Replies& replies() const { return replies_; }
  const Limits& limits() const { return registry_.limits(); }
  // changes is the stream of change records (changes.h): attach a sink to
  // record every mutation.
  ChangeStream& changes() { return registry_.changes(); }
  const ChangeStream& changes() const { return registry_.changes(); }

  // Recovery (replay.cc). Before serving, with no sink attached, the server
  // feeds Replay a snapshot's records and then the log's, in order, then
  // calls FinishRecovery once. Replay applies one record as it took effect.
  // Errors: DATA_LOSS naming the object and revision when a record does not
  // fit the state (a log that does not belong to its snapshot).
  absl::Status Replay(const v1::ChangeRecord& record);
  // ReplaySnapshot applies one record of a snapshot begun at
  // `snapshot_revision` (DumpTo's records: each object's stamped with the
  // object's own revision, which may be later). Feed the whole snapshot
  // before the log after `snapshot_revision`: Replay then skips the log's
  // records that the snapshot's objects already hold.
  absl::Status ReplaySnapshot(uint64_t snapshot_revision,
                              const v1::ChangeRecord& record);
  // FinishRecovery recounts the refs that keep anonymous objects alive,
  // frees those nobody holds or refers to, gives every session a fresh
  // lease from `now` and continues the revision after the last record.
  absl::Status FinishRecovery(absl::Time now);
  // DumpTo passes `fn` records that recreate the whole state (a snapshot),
  // without stopping the engine: the sessions and the answers they keep
  // for retries, then each object (conditions
  // after their locks) as its created record and state records, then the
  // holds on anonymous objects. Each object is read under its own mutex in
  // turn, and its records carry its revision as of what was read; the
  // sessions' and holds' carry the returned revision, the one the dump
  // began at. Replaying the log after that revision over these records
  // (ReplaySnapshot, then Replay) gives the state at the log's end.
  uint64_t DumpTo(absl::FunctionRef<void(v1::ChangeRecord& record)> fn) const;
  // Dump is DumpTo into a vector.
  std::vector<v1::ChangeRecord> Dump() const;

  // RequireToken makes CheckToken demand `token` from every call; empty
  // (the default) lets every call in. Call it before serving.
  void RequireToken(absl::string_view token);
  bool requires_token() const { return !token_digest_.empty(); }
  // CheckToken checks the bearer token a call presents ("" for none) in
  // time that does not depend on where it differs from the required one.
  // Errors: UNAUTHENTICATED.
  absl::Status CheckToken(absl::string_view presented) const;

  // ResolveCaller maps the session id a call carries ("" for none) to a
  // Caller. Errors: SESSION_ERROR for a malformed id or a session that is not
  // live (expired or closed): the client must reconnect.
  absl::StatusOr<Caller> ResolveCaller(absl::string_view session_id,
                                       absl::Time now) const;

 private:
  Registry registry_;
  Replies replies_;
  SessionTable sessions_;
  // Declared last: it stops listening to the registry's stream first.
  WatchHub watches_;
  // ApplyRecord applies one record, whatever its revision.
  absl::Status ApplyRecord(const v1::ChangeRecord& record);
  // CoveredBySnapshot: a log record the snapshot's state already holds.
  bool CoveredBySnapshot(const v1::ChangeRecord& record) const;

  // Recovery's bookkeeping. log_revision_: the last revision replayed from
  // the log (or the snapshot's). snapshot_revision_: where the snapshot
  // began (0: none). covered_: each snapshot object's revision.
  // dumped_revision_: the highest of those.
  uint64_t log_revision_ = 0;
  uint64_t snapshot_revision_ = 0;
  uint64_t dumped_revision_ = 0;
  absl::flat_hash_map<std::string, uint64_t> covered_;
  // SHA-256 of the required token; empty when none is required. Comparing
  // digests keeps the comparison's time independent of the token's length.
  std::string token_digest_;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_ENGINE_H_
