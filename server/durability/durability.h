// File: server/durability/durability.h
//
// `Durability` makes an engine's state outlive the server (--data_dir): at
// start it recovers the state from the data dir (the current snapshot, then
// the log after it), then it records every change record the engine
// publishes into the log (server/storage), and holds each reply until the
// changes before it are as durable as --fsync promises.
//
// It sits between the engine and the transports: the engine publishes
// records on its ChangeStream (server/engine/changes.h) without knowing of
// files; the transports' calls wait on ChangeStream::AfterCommit without
// knowing of the log.
//
// Example:
//
//   Engine engine(limits, ttl);
//   absl::StatusOr<std::unique_ptr<Durability>> durable =
//       Durability::Open(engine, {.data_dir = "/var/lib/statehub"});
//   if (!durable.ok()) return Fail(durable.status());  // names file, offset
//   ... serve ...
//   (*durable)->Close();  // before the transports stop: see Close
//
// Thread safety: Write and WhenDurable are called by the engine's stream
// from any thread; Open, Close and the destructor from the main thread.

#ifndef STATEHUB_SERVER_DURABILITY_DURABILITY_H_
#define STATEHUB_SERVER_DURABILITY_DURABILITY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/changes.h"
#include "server/engine/engine.h"
#include "server/storage/data_dir.h"
#include "server/storage/log.h"

namespace statehub {

struct DurabilityOptions {
  // data_dir is the directory of the snapshot and the log; created if
  // missing.
  std::string data_dir;
  // fsync: always (a reply waits for fdatasync; one for every reply
  // waiting: group commit), everysec (written to the OS before the reply,
  // fdatasync'ed about once a second), no (the OS decides).
  storage::FsyncPolicy fsync = storage::FsyncPolicy::kEverySec;
  // segment_bytes: a log segment rolls over past this size.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // observer sees log writes and fsyncs (metrics); may be null.
  storage::LogObserver* observer = nullptr;
  // snapshot_log_bytes: once this much log has been written since the last
  // snapshot, a new one is taken in the background and the log it covers
  // is deleted. 0: never.
  uint64_t snapshot_log_bytes = uint64_t{64} << 20;
  // snapshot_taken, if set, is told of each snapshot installed: how long
  // it took and how big it is (metrics).
  std::function<void(absl::Duration took, int64_t bytes)> snapshot_taken;
};

// What recovery found and did, for the start-up log line and metrics.
// UnfinishedGroup is a write group (ChangeRecord.more) at the end of the
// log whose last record is missing: the records of a write a crash cut
// short, which recovery does not apply.
struct UnfinishedGroup {
  uint64_t first_revision = 0;
  int64_t records = 0;
};

struct RecoveryStats {
  uint64_t snapshot_revision = 0;  // 0: no snapshot
  int64_t snapshot_records = 0;
  int64_t log_records = 0;
  uint64_t revision = 0;  // the last one recovered
  uint64_t bytes = 0;     // of the snapshot and log segments read
  absl::Duration took;
  std::optional<storage::TornTail> torn_tail;
  std::optional<UnfinishedGroup> unfinished;
  int64_t sessions = 0;
  int64_t objects = 0;
};

// RecoverEngine replays `files` (a snapshot, then the log after it) into a
// fresh `engine` and finishes the recovery (Engine::FinishRecovery at
// `now`). It reads the files and nothing else: no lock, no writes, so
// statehub-cli inspect runs it on a live server's data dir.
// Errors: DATA_LOSS naming the file, the byte offset and what to do;
// FAILED_PRECONDITION (a newer format); UNAVAILABLE (I/O).
absl::StatusOr<RecoveryStats> RecoverEngine(Engine& engine,
                                            const storage::RecoveryFiles& files,
                                            absl::Time now);

class Durability final : public ChangeSink {
 public:
  // Open locks the data dir, recovers `engine`'s state from it, opens the
  // log and attaches itself to the engine's change stream. `engine` must
  // be fresh (nothing created, no sink) and outlive the Durability.
  // Errors: FAILED_PRECONDITION (the dir is in use by another server, or
  // written by a newer format), DATA_LOSS (a corrupt record anywhere but a
  // torn tail: the message names the file, the offset and what to do),
  // UNAVAILABLE (I/O).
  static absl::StatusOr<std::unique_ptr<Durability>> Open(
      Engine& engine, DurabilityOptions options);
  Durability(const Durability&) = delete;
  Durability& operator=(const Durability&) = delete;
  // Detaches from the engine (Close, if not done).
  ~Durability() override;

  const RecoveryStats& recovered() const { return recovered_; }
  storage::FsyncPolicy policy() const { return log_->policy(); }
  // health is the log's: OK, or why it cannot take changes (disk full).
  absl::Status health() const override { return log_->health(); }
  // Under --fsync=always a reply waits for the sync thread.
  bool answers_inline() const override {
    return log_->policy() != storage::FsyncPolicy::kAlways;
  }

  // Close stops logging: every change published so far is written and
  // fsynced, and later ones are not logged, their replies failing with
  // UNAVAILABLE. Call it as the server starts to stop, before the
  // transports close their connections: sessions ended by a shutdown must
  // not be logged as ended, so that clients resume them after the restart.
  absl::Status Close();

  // Snapshot writes a snapshot of the engine's state now, without stopping
  // it (Engine::DumpTo), installs it (storage::DataDir::InstallSnapshot)
  // and deletes the log it covers. The background thread calls it when
  // the log has grown by snapshot_log_bytes; tests and tools may call it.
  // Errors: UNAVAILABLE or RESOURCE_EXHAUSTED (I/O), the previous snapshot
  // and the log staying as they were; CANCELLED when Close interrupted it.
  absl::Status Snapshot() ABSL_LOCKS_EXCLUDED(snapshot_mu_);

  // ChangeSink.
  void Write(const v1::ChangeRecord& record) override;
  void WriteGroup(absl::Span<const v1::ChangeRecord> records) override;
  void WhenDurable(uint64_t revision, Done done) override;

 private:
  Durability(Engine& engine, std::unique_ptr<storage::DataDir> dir,
             DurabilityOptions options)
      : engine_(engine), dir_(std::move(dir)), options_(std::move(options)) {}
  absl::Status Recover();
  // The background thread: a snapshot whenever the log has grown enough.
  void RunSnapshots();

  Engine& engine_;
  std::unique_ptr<storage::DataDir> dir_;
  const DurabilityOptions options_;
  std::unique_ptr<storage::Log> log_;
  // Bytes of records written since the last snapshot began.
  std::atomic<uint64_t> unsnapshotted_bytes_{0};
  // One snapshot at a time.
  absl::Mutex snapshot_mu_;
  absl::Mutex stop_mu_;
  bool stopping_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::atomic<bool> cancel_snapshot_{false};
  std::thread snapshots_;
  RecoveryStats recovered_;
  // closed_ is set by Close; closed_at_ is then the last revision logged.
  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> closed_at_{0};
  // Write's and WriteGroup's serialization buffer (under the stream's
  // mutex).
  std::string buffer_;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_DURABILITY_DURABILITY_H_
