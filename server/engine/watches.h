// File: server/engine/watches.h
//
// `WatchHub` serves watches (api/statehub/v1/watch.proto): it listens to
// the change stream (changes.h) beside the log, keeps a bounded history of
// recent records so that a watch can resume after a revision, and hands
// each record to the watches that follow its object (by name) or, for
// creations and deletions, its name (by prefix). A `Watch` is one watcher's
// queue: the transport takes what is pending when the watch wakes it, and
// ends the watch when the hub says it is over.
//
// Guarantees (docs/watches.md): a watch gets the records above its start
// revision in revision order, none twice, no gap; when it cannot (its
// `since` is older than the history, or its backlog passed the bound
// because its client reads too slowly) it ends with WATCH_TOO_OLD rather
// than skip anything.
//
// The hub listens only once it is needed (the first watch, or a data dir):
// until then the change stream builds no records for it.
//
// Example:
//
//   WatchHub& hub = engine.watches();
//   WatchSpec spec{.name = "jobs", .initial = true};
//   absl::StatusOr<std::shared_ptr<Watch>> watch =
//       hub.Start(spec, [] { /* post a flush to the connection */ });
//   Watch::Batch batch = (*watch)->Take(1000);
//   ...
//   (*watch)->Cancel();
//
// Thread safety: everything is thread-safe. Lock order: the registry, an
// object, the change stream, the hub, a watch. `wake` runs with the hub's
// and the stream's locks held: it must only schedule work.

#ifndef STATEHUB_SERVER_ENGINE_WATCHES_H_
#define STATEHUB_SERVER_ENGINE_WATCHES_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine/changes.h"
#include "server/engine/mutex.h"
#include "statehub/v1/change.pb.h"

namespace statehub {

class Registry;
class SessionTable;
class WatchHub;

// WatchSpec is what a watch follows (statehub.v1.WatchRequest).
struct WatchSpec {
  // name: one object; or, with by_prefix, the names starting with it.
  std::string name;
  bool by_prefix = false;
  // since: deliver records above it; unset: from the start revision.
  std::optional<uint64_t> since;
  // initial: the watch starts with the contents as of its start revision.
  bool initial = false;
};

// WatchedChange is one record as the hub keeps and delivers it.
struct WatchedChange {
  v1::ChangeRecord record;
  // label is the label of the session that made the change ("" for the
  // server's own).
  std::string label;
  size_t bytes = 0;
};

class Watch {
 public:
  // Batch is what to send next.
  struct Batch {
    std::vector<std::shared_ptr<const WatchedChange>> changes;
    // revision: every record of this watch up to it is in `changes` or
    // was taken before.
    uint64_t revision = 0;
    // progress: send a response even without changes (a progress notice).
    bool progress = false;
    // more: Take stopped at its bounds; take again.
    bool more = false;
    // end, if not OK, ends the watch after `changes`.
    absl::Status end;
  };

  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Take moves out what is pending, up to `max_changes` records or about
  // `max_bytes`; when it leaves nothing, the next record wakes the watch
  // again.
  Batch Take(size_t max_changes, size_t max_bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancel stops the watch: the hub forgets it and `wake` never runs
  // again. Idempotent.
  void Cancel();

  // start_revision: the watch delivers records above it; the initial
  // contents are as of it.
  uint64_t start_revision() const { return start_; }
  // oldest_revision: the oldest `since` the hub could resume from when the
  // watch started.
  uint64_t oldest_revision() const { return oldest_; }
  // initial holds the contents a watch with `initial` starts with
  // (WatchResponse.initial); the transport moves them out once.
  std::vector<v1::ChangeRecord>& initial() { return initial_; }

 private:
  friend class WatchHub;

  Watch(WatchHub* hub, WatchSpec spec, std::function<void()> wake)
      : hub_(hub), spec_(std::move(spec)), wake_(std::move(wake)) {}

  // Offer queues `change` if it is above the start; false if the watch
  // needs waking. Hub's lock held.
  bool Offer(const std::shared_ptr<const WatchedChange>& change,
             size_t max_backlog) ABSL_LOCKS_EXCLUDED(mu_);
  // End ends the watch with `status` (after what is queued); false if the
  // watch needs waking.
  bool End(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // Nudge asks for a progress notice if nothing went out for `interval`;
  // false if the watch needs no waking.
  bool Nudge(absl::Time now, absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  // ended: the watch is over (overflowed, or ended by the hub).
  bool ended() ABSL_LOCKS_EXCLUDED(mu_);
  // Raise moves the start to `revision` (the initial contents' revision)
  // and drops what is queued at or below it.
  void Raise(uint64_t revision) ABSL_LOCKS_EXCLUDED(mu_);

  WatchHub* const hub_;
  const WatchSpec spec_;
  std::function<void()> wake_;
  // start_ and oldest_ are set before Start returns the watch.
  uint64_t start_ = 0;
  uint64_t oldest_ = 0;
  std::vector<v1::ChangeRecord> initial_;
  bool cancelled_ = false;      // the hub's lock
  bool ended_for_hub_ = false;  // the hub's lock: counted as an overflow

  Mutex mu_;
  std::deque<std::shared_ptr<const WatchedChange>> pending_
      ABSL_GUARDED_BY(mu_);
  // floor_: records at or below it are not queued (the start, raised).
  uint64_t floor_ ABSL_GUARDED_BY(mu_) = 0;
  // armed: the next record wakes the watch (nothing is waiting to be
  // taken).
  bool armed_ ABSL_GUARDED_BY(mu_) = true;
  bool progress_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status end_ ABSL_GUARDED_BY(mu_);
  absl::Time last_sent_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

class WatchHub final : public ChangeSink {
 public:
  struct Options {
    // history_records and history_bytes bound the records kept for
    // watches that resume (--watch_history).
    size_t history_records = 100'000;
    size_t history_bytes = 64 << 20;
    // max_backlog bounds the records queued for one watch: a watcher that
    // falls further behind is ended with WATCH_TOO_OLD.
    size_t max_backlog = 10'000;
    // progress_interval: a watch that sent nothing for this long gets a
    // progress notice (Tick).
    absl::Duration progress_interval = absl::Seconds(10);
  };

  WatchHub(ChangeStream& stream, Registry& registry, SessionTable& sessions);
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;
  ~WatchHub() override;

  void set_options(const Options& options) ABSL_LOCKS_EXCLUDED(mu_);

  // Listen attaches the hub to the change stream (once; Start does it).
  // The server calls it at start when it has a data dir, so that a watch
  // can resume from any revision since.
  void Listen() ABSL_LOCKS_EXCLUDED(mu_);

  // Start begins a watch. `wake` runs whenever the watch has something to
  // take after a Take left it empty (with locks held: schedule only).
  // Errors: VALUE_ERROR for a bad name or prefix, or `initial` with
  // `since`; OBJECT_NOT_FOUND for a name that does not exist;
  // INVALID_ARGUMENT for a `since` after the server's revision;
  // WATCH_TOO_OLD for a `since` older than the history.
  absl::StatusOr<std::shared_ptr<Watch>> Start(const WatchSpec& spec,
                                               std::function<void()> wake)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Recovered keeps a record replayed from the log at start (before
  // Listen), so that a watch can resume across a restart from any revision
  // the log still held.
  void Recovered(const v1::ChangeRecord& record) ABSL_LOCKS_EXCLUDED(mu_);

  // Tick sends progress notices to the watches idle since
  // progress_interval (the server calls it often).
  void Tick(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // watches counts the live watches.
  size_t watches() const ABSL_LOCKS_EXCLUDED(mu_);
  // events counts the changes queued for watches; overflows the watches
  // ended because their reader fell behind (metrics).
  uint64_t events() const { return events_.load(std::memory_order_relaxed); }
  uint64_t overflows() const {
    return overflows_.load(std::memory_order_relaxed);
  }
  // history counts the changes kept for watches that resume.
  size_t history() const ABSL_LOCKS_EXCLUDED(mu_);
  // oldest_revision is the oldest `since` a watch can resume from now.
  uint64_t oldest_revision() const ABSL_LOCKS_EXCLUDED(mu_);

  // ChangeSink (the stream's listener).
  void Write(const v1::ChangeRecord& record) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class Watch;

  void Forget(Watch* watch) ABSL_LOCKS_EXCLUDED(mu_);
  // Keep notes a record's session label and keeps it in the history;
  // returns it as kept, or null for a record no watch sees.
  std::shared_ptr<const WatchedChange> KeepLocked(
      const v1::ChangeRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Register adds `watch` to the indexes and queues the history above
  // `since` (if set) for it; `start` is its start revision.
  void RegisterLocked(const std::shared_ptr<Watch>& watch,
                      std::optional<uint64_t> since, uint64_t start)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TooOld(absl::string_view what, absl::string_view object) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChangeStream& stream_;
  Registry& registry_;
  SessionTable& sessions_;

  mutable Mutex mu_;
  Options options_ ABSL_GUARDED_BY(mu_);
  bool listening_ ABSL_GUARDED_BY(mu_) = false;
  std::once_flag listen_once_;
  // seen_: the last revision the hub saw (written under mu_, after the
  // record went to its watches). floor_: the last revision whose record is
  // not in history_ (resuming needs since >= floor_).
  std::atomic<uint64_t> seen_{0};
  uint64_t floor_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<const WatchedChange>> history_
      ABSL_GUARDED_BY(mu_);
  size_t history_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // recovered_: Recovered filled the history before the hub listened.
  bool recovered_ ABSL_GUARDED_BY(mu_) = false;
  // Session labels, for the changes' authors.
  absl::flat_hash_map<uint64_t, std::string> labels_ ABSL_GUARDED_BY(mu_);
  std::deque<uint64_t> ended_ ABSL_GUARDED_BY(mu_);
  // The watches by the name they follow, and the prefix watches.
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<Watch>>> by_name_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Watch>> by_prefix_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> count_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> overflows_{0};
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_WATCHES_H_
