// File: server/storage/log.h
//
// `Log` appends the engine's change records to log segments in a data dir
// (data_dir.h) and tells the caller when each is durable, under one of
// three fsync policies:
//
//   kAlways    a record is durable once written and fdatasync'ed. A sync
//              thread writes everything pending, syncs once, and then runs
//              every callback waiting for what it synced (group commit).
//   kEverySec  durable once written to the OS (write(2)); a background
//              thread fdatasyncs about once a second if anything was
//              written since. An OS crash loses up to about a second.
//   kNo        durable once written to the OS; never synced but on roll
//              and Close.
//
// Append only copies the framed record into memory; WhenDurable is where
// the writing happens (kEverySec, kNo: on the calling thread, one write
// for everything pending) or is waited for (kAlways). A failed write or
// sync puts the log in a failed state (health() says why): the records
// stay buffered, callbacks get the error, and the log retries every
// retry_interval until the disk takes them again.
//
// Each Open starts a new segment (log-<next_revision>.log); a segment
// grows past segment_bytes by at most one group write, then the next
// starts. A segment is synced before the next is created, whatever the
// policy, so only the newest segment can end in a torn write.
//
// Example:
//
//   LogOptions options;
//   options.fsync = FsyncPolicy::kAlways;
//   options.next_revision = replayed.last_revision + 1;
//   absl::StatusOr<std::unique_ptr<Log>> log = Log::Open(*dir, options);
//   ...
//   // Under the engine's ordering mutex:
//   (*log)->Append(revision, record_bytes);
//   // Then, without it:
//   (*log)->WhenDurable(revision, [reply](absl::Status s) { reply(s); });
//
// Thread safety: all methods are thread-safe. Callbacks run on the thread
// that made the record durable (the sync thread under kAlways, the caller
// of WhenDurable otherwise, inline if already durable), with no lock of
// the Log held; they may call the Log.

#ifndef STATEHUB_SERVER_STORAGE_LOG_H_
#define STATEHUB_SERVER_STORAGE_LOG_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "server/storage/data_dir.h"

namespace statehub::storage {

enum class FsyncPolicy { kAlways, kEverySec, kNo };

// ParseFsyncPolicy reads "always", "everysec" or "no" (the --fsync flag).
// Errors: INVALID_ARGUMENT naming the text and the choices.
absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view text);
absl::string_view FsyncPolicyName(FsyncPolicy policy);

// LogObserver receives the Log's measurements (for metrics), on the
// writing thread while it holds the writer's mutex: keep it quick, and do
// not call the Log from it.
class LogObserver {
 public:
  virtual ~LogObserver() = default;
  // Synced: one successful fdatasync took `latency`.
  virtual void Synced(absl::Duration latency) = 0;
  // Wrote: one write(2) put `bytes` into a segment.
  virtual void Wrote(int64_t bytes) = 0;
};

// FileOps are the syscalls by which the Log writes frames; tests override
// them to inject ENOSPC or EIO. Each is the POSIX call of its name: it
// returns what the call returns and leaves errno set.
class FileOps {
 public:
  virtual ~FileOps() = default;
  virtual ssize_t Pwrite(int fd, const char* data, size_t size, off_t offset);
  virtual int Fdatasync(int fd);
  virtual int Ftruncate(int fd, off_t length);
};

struct LogOptions {
  FsyncPolicy fsync = FsyncPolicy::kEverySec;
  // next_revision: the first revision the new segment may hold, one past
  // the last revision recovered (1 for an empty data dir).
  uint64_t next_revision = 1;
  // segment_bytes: a segment past this size is followed by a new one.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // sync_interval: kEverySec's period; also how often the background
  // thread writes pending records under kEverySec and kNo.
  absl::Duration sync_interval = absl::Seconds(1);
  // retry_interval: how often a failed log retries.
  absl::Duration retry_interval = absl::Milliseconds(100);
  // observer: null for none; not owned, must outlive the Log.
  LogObserver* observer = nullptr;
  // file_ops: null for the POSIX calls; not owned, must outlive the Log.
  FileOps* file_ops = nullptr;
};

class Log {
 public:
  using Done = absl::AnyInvocable<void(absl::Status)>;

  // Open prepares `dir` for appending: if the newest segment ends in a torn
  // tail (a crash during a write), truncates it at its last valid frame
  // (logging what it cut), so that it stays the only segment that could
  // have one; then creates log-<next_revision>.log (replacing a segment of
  // that name, which can only hold no valid frame given the check below)
  // and starts the Log's thread. `dir` must outlive the Log.
  // Errors: INVALID_ARGUMENT if the newest segment holds a revision at or
  // after next_revision; DATA_LOSS if that segment is corrupt (see
  // RecordReader); UNAVAILABLE / RESOURCE_EXHAUSTED for I/O errors.
  static absl::StatusOr<std::unique_ptr<Log>> Open(DataDir& dir,
                                                   LogOptions options);

  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;
  // Closes (see Close), logging an error if that fails.
  ~Log();

  // Append buffers the record `revision` in memory; it makes no syscall.
  // REQUIRES: revisions strictly increase from call to call (the caller
  // orders its calls), at least next_revision; payload under 1 GiB; not
  // closed.
  void Append(uint64_t revision, absl::string_view payload);
  // AppendGroup buffers several records, each as Append would, at once:
  // the writer takes all of them or none, so a crash never leaves part of
  // the group in the log (only a torn write can).
  struct Entry {
    uint64_t revision;
    absl::string_view payload;
  };
  void AppendGroup(absl::Span<const Entry> records);

  // WhenDurable runs `done` exactly once: with OK once every record up to
  // `revision` is as durable as the policy promises (inline if it is
  // already); with the failed log's error (health()) if a write or sync
  // fails first, or if the log is failed when called; with
  // FAILED_PRECONDITION after Close. Under kEverySec and kNo a record not
  // yet written is written by this call (with everything pending), so it
  // may block for a write(2), and `done` always runs before it returns;
  // under kAlways it never blocks.
  void WhenDurable(uint64_t revision, Done done);

  // durable_revision: every record up to it is written and synced.
  uint64_t durable_revision() const;
  // written_revision: every record up to it is written to the OS.
  uint64_t written_revision() const;
  // health: OK, or why the log cannot write (RESOURCE_EXHAUSTED for a
  // full disk, UNAVAILABLE otherwise): the server refuses changes then.
  absl::Status health() const;
  FsyncPolicy policy() const { return options_.fsync; }

  // Close writes and syncs everything pending, stops the thread and closes
  // the segment; callbacks still waiting get the result. Returns the error
  // if the last write or sync failed (the records not written are lost).
  // Later calls return OK and do nothing.
  absl::Status Close();

 private:
  using Ready = std::vector<std::pair<Done, absl::Status>>;

  Log(DataDir& dir, LogOptions options);
  void Run();
  // One pass of the writer: write what is pending (rolling or retrying as
  // needed), sync if `sync`, and settle the callbacks (returned, to be run
  // with no lock held).
  Ready Pass(bool sync) ABSL_LOCKS_EXCLUDED(write_mu_);
  // WriteThrough is WhenDurable's write under kEverySec and kNo: writes
  // everything pending unless `revision` is written already, and returns
  // the outcome for that revision.
  absl::Status WriteThrough(uint64_t revision) ABSL_LOCKS_EXCLUDED(write_mu_);
  // PassSyncingOutside is everysec's periodic pass: write what is pending,
  // then fdatasync without holding write_mu_.
  Ready PassSyncingOutside() ABSL_LOCKS_EXCLUDED(write_mu_);
  absl::Status WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status WriteTailLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status SyncLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  absl::Status CreateSegmentLocked(uint64_t first_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // SettleLocked records the outcome of a write or sync (`attempted`) in
  // health_ and returns the callbacks it settles: those now durable, and
  // if `status` failed, all the others with it.
  Ready SettleLocked(absl::Status status, bool attempted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  uint64_t ThresholdLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(int err, absl::string_view verb,
                     const std::string& path) const;
  static void RunAll(Ready ready);

  DataDir& dir_;
  const LogOptions options_;
  FileOps* const ops_;

  // The writer: one thread at a time writes, syncs or rolls.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  int fd_ ABSL_GUARDED_BY(write_mu_) = -1;
  std::string segment_path_ ABSL_GUARDED_BY(write_mu_);
  // tail_: the bytes assigned to this segment but not yet synced (under
  // kNo: not yet written), starting at file offset tail_offset_; the first
  // tail_written_ of them are in the file. A short write continues with
  // exactly the bytes not written; after a failed sync the file is
  // truncated back to tail_offset_ and all of tail_ written again.
  std::string tail_ ABSL_GUARDED_BY(write_mu_);
  uint64_t tail_offset_ ABSL_GUARDED_BY(write_mu_) = 0;
  size_t tail_written_ ABSL_GUARDED_BY(write_mu_) = 0;
  uint64_t tail_last_revision_ ABSL_GUARDED_BY(write_mu_) = 0;
  bool need_truncate_ ABSL_GUARDED_BY(write_mu_) = false;
  bool unsynced_ ABSL_GUARDED_BY(write_mu_) = false;   // written since sync
  bool fd_closed_ ABSL_GUARDED_BY(write_mu_) = false;  // by Close
  // segments_ counts the segments created, so that a sync made outside
  // write_mu_ can tell whether the segment rolled meanwhile.
  uint64_t segments_ ABSL_GUARDED_BY(write_mu_) = 0;

  // The buffer and the progress: short critical sections only.
  mutable absl::Mutex mu_;
  absl::CondVar wake_;                        // the thread: work, or closing
  std::string pending_ ABSL_GUARDED_BY(mu_);  // framed, not yet in tail_
  uint64_t pending_first_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t pending_last_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_ ABSL_GUARDED_BY(mu_);
  uint64_t durable_ ABSL_GUARDED_BY(mu_);
  absl::Status health_ ABSL_GUARDED_BY(mu_);
  // healthy_ is health_.ok(), readable without mu_.
  std::atomic<bool> healthy_{true};
  // waiters_ are the replies waiting for the sync thread (kAlways only:
  // the other policies write through in WhenDurable).
  std::multimap<uint64_t, Done> waiters_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;
};

}  // namespace statehub::storage

#endif  // STATEHUB_SERVER_STORAGE_LOG_H_
