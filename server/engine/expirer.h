// File: server/engine/expirer.h
//
// `Expirer` is the server's one background thread that reclaims dict
// entries whose ttl ran out (docs/methods.md, "TTL"). Each dict with
// deadlines asks to be woken at its earliest one (Schedule); the expirer
// sleeps until the earliest wake-up across all dicts, then calls the dict's
// ExpireDue, which removes the due entries and publishes their removal, and
// asks again for its next deadline. One entry per dict, in a btree: memory
// and work follow the number of dicts with deadlines, not of entries.
//
// Reads never wait for it: every dict operation reclaims what is due first,
// under the dict's mutex, so an expired entry is never returned.
//
// The expirer holds dicts weakly: a deleted dict is not kept alive, and its
// wake-up is dropped (Cancel, or when it fires). Lock order: a dict's mutex,
// then the expirer's; the expirer never holds its own while it calls a dict.
//
// Example:
//
//   Expirer expirer;
//   expirer.Schedule(dict, absl::Now() + absl::Seconds(1));  // from a dict
//   expirer.Stop();                                          // at shutdown
//
// Thread safety: thread-safe. The thread starts with the first Schedule.

#ifndef STATEHUB_SERVER_ENGINE_EXPIRER_H_
#define STATEHUB_SERVER_ENGINE_EXPIRER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace statehub {

class DictObject;

class Expirer {
 public:
  // kRound is the least time between two rounds of expiries: the most an
  // expiry waits beyond its deadline for the round, when deadlines are
  // dense, besides the round's own work.
  static constexpr absl::Duration kRound = absl::Milliseconds(1);

  Expirer() = default;
  Expirer(const Expirer&) = delete;
  Expirer& operator=(const Expirer&) = delete;
  // Stops the thread.
  ~Expirer();

  // Schedule asks that `dict`'s ExpireDue run at or soon after `when`,
  // replacing the dict's earlier request. Called with the dict's mutex held.
  void Schedule(const std::shared_ptr<DictObject>& dict, absl::Time when);
  // Cancel drops `dict`'s request (a dict being retired).
  void Cancel(const DictObject* dict);

  // Pause stops expiring until Resume: recovery replays recorded expiries
  // and must not see the expirer make its own meanwhile; the server resumes
  // once new records reach the log, so that an expiry right after a start
  // is recorded like any other. Requests made meanwhile are kept.
  void Pause();
  void Resume();
  // Stop ends the thread (waiting for a call in progress); later requests
  // are ignored. Idempotent.
  void Stop();

 private:
  // Run is the thread: wake at the earliest request, call the dicts due.
  void Run();

  using Request = std::pair<absl::Time, const DictObject*>;

  // A std::mutex, not the engine's Mutex: the expirer waits on a condition
  // (mutex.h), and TSan sees std::mutex. It guards every field below.
  std::mutex mu_;
  std::condition_variable wake_;
  // Requests by time, and each dict's request with the dict, held weakly.
  absl::btree_set<Request> queue_;
  absl::flat_hash_map<const DictObject*,
                      std::pair<absl::Time, std::weak_ptr<DictObject>>>
      requests_;
  bool paused_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_EXPIRER_H_
