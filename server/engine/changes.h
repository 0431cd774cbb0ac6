// File: server/engine/changes.h
//
// `ChangeStream` is the one stream of change records (api/statehub/v1/
// change.proto): every mutation of the engine publishes a record here,
// stamped with the next value of the server-wide revision, and the stream
// hands the records, in revision order, to its sink (the log on disk,
// server/storage). Objects publish under their own mutex, so the order of
// revisions is the order in which the changes took effect.
//
// Nothing is built while nothing listens: objects ask `recording()` before
// they make a record, so a server without a data dir pays one relaxed load
// per mutation.
//
// Example:
//
//   ChangeStream changes;
//   changes.set_sink(&log_sink);          // before serving
//   v1::ChangeRecord record;
//   record.mutable_cell_set()->...;
//   changes.Publish(record);              // record.revision() is now set
//
// Thread safety: Publish and revision() are thread-safe; set_sink and
// set_revision are called before serving (or with no mutation running).

#ifndef STATEHUB_SERVER_ENGINE_CHANGES_H_
#define STATEHUB_SERVER_ENGINE_CHANGES_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "server/engine/caller.h"
#include "server/engine/mutex.h"
#include "statehub/v1/change.pb.h"

namespace statehub {

// ChangeSink receives every published record, in revision order, with the
// stream's mutex held: it must be quick (copy the bytes, no I/O) and must
// not call back into the engine.
class ChangeSink {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;

  virtual ~ChangeSink() = default;
  virtual void Write(const v1::ChangeRecord& record) = 0;
  // WriteGroup takes consecutive records that must be kept all or none (a
  // numbered call's changes and its answer): the log writes them in one
  // go. The default writes them one by one.
  virtual void WriteGroup(absl::Span<const v1::ChangeRecord> records) {
    for (const v1::ChangeRecord& record : records) Write(record);
  }
  // WhenDurable runs `done` once every record up to `revision` is as
  // durable as the sink promises (the log: on disk under --fsync=always,
  // written to the OS otherwise), with an error if it cannot be made so.
  // It may run inline or on another thread.
  virtual void WhenDurable(uint64_t revision, Done done) {
    (void)revision;
    done(absl::OkStatus());
  }
  // health is OK while the sink can take records; otherwise why not (a
  // full disk), in a message for the callers it refuses.
  virtual absl::Status health() const { return absl::OkStatus(); }
  // answers_inline: WhenDurable always runs `done` before it returns, so a
  // transport may answer a call from the stack that made it.
  virtual bool answers_inline() const { return true; }
};

class ChangeStream {
 public:
  ChangeStream() = default;
  ChangeStream(const ChangeStream&) = delete;
  ChangeStream& operator=(const ChangeStream&) = delete;

  // recording is true while a sink or a listener listens: only then do
  // objects build records.
  bool recording() const { return recording_.load(std::memory_order_acquire); }

  // durable is true while a sink (the log) listens: a reply may then wait
  // for it (AfterCommit), and its health decides what is refused.
  bool durable() const {
    return sink_.load(std::memory_order_acquire) != nullptr;
  }

  // set_sink attaches the sink (null detaches it: later mutations record
  // nothing, e.g. while the server shuts down).
  void set_sink(ChangeSink* sink) ABSL_LOCKS_EXCLUDED(mu_);
  // set_listener attaches a second consumer, the watches (watches.h): it
  // gets every record the sink gets, in the same order, after the sink;
  // only its Write and WriteGroup are used (durability is the sink's).
  // May be called while serving. Returns the last revision published
  // before it listens: it sees every record after that one.
  uint64_t set_listener(ChangeSink* listener) ABSL_LOCKS_EXCLUDED(mu_);

  // Publish stamps `record` with the next revision and, if the record has
  // no author yet, the session of the call running on this thread
  // (ChangeAuthor), then hands it to the sink. Returns the revision; 0 (and
  // nothing published) when no sink listens.
  uint64_t Publish(v1::ChangeRecord& record) ABSL_LOCKS_EXCLUDED(mu_);

  // AfterCommit runs `done` once every record published so far is durable
  // (ChangeSink::WhenDurable); at once, with OK, when no sink listens. A
  // reply waits on it, so that nothing acknowledged, nor anything a reply
  // shows, can be lost.
  // A `read_only` call is answered at once while the sink is unhealthy:
  // reads go on while changes cannot. (A read's only records are the holds
  // it takes on anonymous objects it returns; those wait in the sink.)
  void AfterCommit(ChangeSink::Done done, bool read_only = false) const;
  // health is the sink's (ChangeSink::health); OK without one.
  absl::Status health() const;
  // commits_inline: AfterCommit runs `done` before it returns (no sink, or
  // one that answers inline).
  bool commits_inline() const;

  // RunLocked runs `fn` with the last revision while no record can be
  // published (the sink's shutdown draws its line there).
  void RunLocked(absl::FunctionRef<void(uint64_t revision)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);

  // revision is the last revision published (or restored).
  uint64_t revision() const {
    return revision_.load(std::memory_order_acquire);
  }
  // set_revision continues the revision after recovery: the next record
  // gets `revision + 1`.
  void set_revision(uint64_t revision) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class NumberedCall;

  // Close ends the numbered call whose records took revisions `first` to
  // `last`; then the held records that no open call needs go to the sink
  // as one group.
  void Close(uint64_t first, uint64_t last) ABSL_LOCKS_EXCLUDED(mu_);

  // Deliver hands records to the sink and the listener.
  void Deliver(const v1::ChangeRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeliverGroup(absl::Span<const v1::ChangeRecord> records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Mutex mu_;
  std::atomic<ChangeSink*> sink_{nullptr};
  std::atomic<ChangeSink*> listener_{nullptr};
  std::atomic<bool> recording_{false};
  std::atomic<uint64_t> revision_{0};
  // The numbered calls that have published and whose records are still
  // held: first revision -> last revision, 0 while the call is open. A
  // call that closed stays until its records go, so that a group never
  // ends inside it (Close).
  absl::btree_map<uint64_t, uint64_t> calls_ ABSL_GUARDED_BY(mu_);
  // The records published since the oldest of calls_, held back from the
  // sink (revision order).
  std::deque<v1::ChangeRecord> held_ ABSL_GUARDED_BY(mu_);
};

// NumberedCall is a call the client numbered so that a retry is applied
// exactly once (docs/durability.md, "Exactly once"), running on this
// thread while it lives. Records published meanwhile carry its number, and
// the stream holds them, and every later record, back from the sink until
// the call closes: Answer publishes the call's CallAnswered record after
// them, so the log never holds a call's changes without its answer (a
// retry would apply them twice) nor an answer without its changes. Calls
// that overlap hold each other back for as long as their handlers run (a
// numbered call never parks while open).
//
// Thread safety: one thread; Answer may be called from that thread only.
class NumberedCall {
 public:
  NumberedCall(ChangeStream& stream, SessionId session, uint64_t number);
  NumberedCall(const NumberedCall&) = delete;
  NumberedCall& operator=(const NumberedCall&) = delete;
  // Closes the call if Answer did not.
  ~NumberedCall();

  // Current is the numbered call open on this thread, or null.
  static NumberedCall* Current();

  SessionId session() const { return session_; }
  uint64_t number() const { return number_; }
  // changed: a record of this call was published.
  bool changed() const { return first_ != 0; }

  // Answer publishes `answer` (a CallAnswered record, filled in) if the
  // call changed something, then closes it. Once.
  void Answer(v1::ChangeRecord& answer);

 private:
  friend class ChangeStream;

  ChangeStream& stream_;
  const SessionId session_;
  const uint64_t number_;
  NumberedCall* const previous_;
  // first_ and last_ are the revisions of the call's first and latest
  // records; 0 while it published none.
  uint64_t first_ = 0;
  uint64_t last_ = 0;
  bool closed_ = false;
};

// ChangeAuthor names, for the records published on this thread while it
// lives, the session whose call makes the changes. The transports open one
// around each handler call.
class ChangeAuthor {
 public:
  explicit ChangeAuthor(SessionId session);
  ChangeAuthor(const ChangeAuthor&) = delete;
  ChangeAuthor& operator=(const ChangeAuthor&) = delete;
  ~ChangeAuthor();

  // Current is the session of the innermost ChangeAuthor on this thread, or
  // 0 (the server itself).
  static SessionId Current();

 private:
  const SessionId previous_;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_CHANGES_H_
