// File: server/engine/replies.h
//
// `Replies` remembers the answers of numbered calls (NumberedCall,
// changes.h), per session, so that a call the client sends again after a
// reconnect (it could not tell whether the first one ran) gets the first
// answer instead of running twice. An answer is kept until the client says
// it has seen it (`seen`: every call numbered below it was answered to the
// client), the session ends, or the session has kMaxPerSession newer ones.
// With a data dir the answers of calls that changed something are in the
// log too (CallAnswered records), so they outlive a restart like the
// changes they answer.
//
// Example:
//
//   if (std::optional<v1::CallAnswered> first =
//           replies.Begin(session, number, seen)) {
//     ... answer with *first: the call ran already ...
//   }
//   ... run the call, then:
//   replies.Remember(session, answer);
//
// Thread safety: thread-safe.

#ifndef STATEHUB_SERVER_ENGINE_REPLIES_H_
#define STATEHUB_SERVER_ENGINE_REPLIES_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "server/engine/mutex.h"
#include "server/engine/object.h"
#include "statehub/v1/change.pb.h"

namespace statehub {

class Replies {
 public:
  // How many answers one session keeps at most (the oldest go first): more
  // than a client has calls in flight.
  static constexpr size_t kMaxPerSession = 1024;

  Replies() = default;
  Replies(const Replies&) = delete;
  Replies& operator=(const Replies&) = delete;

  // Begin starts numbered call `number` of `session`, whose client has
  // seen every answer numbered below `seen` (those are forgotten). Returns
  // the remembered answer if the call was answered before.
  std::optional<v1::CallAnswered> Begin(SessionId session, uint64_t number,
                                        uint64_t seen) ABSL_LOCKS_EXCLUDED(mu_);
  // Remember keeps `answer` (its `call` set) for `session`.
  void Remember(SessionId session, v1::CallAnswered answer)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Forget drops a session's answers (it ended).
  void Forget(SessionId session) ABSL_LOCKS_EXCLUDED(mu_);
  // KeepOnly drops the answers of every session not in `live` (recovery:
  // an answer logged just after its session's end).
  void KeepOnly(const absl::flat_hash_set<SessionId>& live)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Dump appends a CallAnswered record for every answer kept, session by
  // session, oldest first (a snapshot's).
  void Dump(std::vector<v1::ChangeRecord>* out) const ABSL_LOCKS_EXCLUDED(mu_);
  // Count is the number of answers kept.
  size_t Count() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable Mutex mu_;
  absl::flat_hash_map<SessionId, absl::btree_map<uint64_t, v1::CallAnswered>>
      by_session_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_REPLIES_H_
