// File: server/storage/data_dir.h
//
// The data directory of a durable statehub (`--data_dir`): its layout, the
// lock that keeps a second server out, and the atomic switch to a new
// snapshot. docs/storage-format.md describes the layout and why a crash at
// any moment leaves a directory a restart can read.
//
//   DIR/LOCK                         flock'ed by the owner; "<program> pid
//                                    <pid> on host <host>"
//   DIR/CURRENT                      one line: the current snapshot's name
//                                    (absent: no snapshot yet)
//   DIR/snap-<20-digit revision>.snap
//   DIR/log-<20-digit first revision>.log
//
// Recovery is: read the snapshot CURRENT names (if any), then ReplayLog the
// segments after it; then Log::Open (log.h) with next_revision one past
// the last revision seen.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<DataDir>> dir = DataDir::Open("/var/sh");
//   if (!dir.ok()) return dir.status();  // e.g. in use by another server
//   uint64_t after = 0;
//   if (auto snap = (*dir)->snapshot()) { LoadSnapshot(snap->path);
//                                         after = snap->revision; }
//   absl::StatusOr<ReplayResult> replayed = ReplayLog(**dir, after,
//       [&](uint64_t revision, absl::string_view payload) {
//         return Apply(revision, payload);
//       });
//
//   // Later, a snapshot at revision r:
//   auto writer = SnapshotWriter::Create(**dir, r);
//   ... (*writer)->Add(r, bytes) ...
//   absl::StatusOr<std::string> tmp = (*writer)->Finish();
//   absl::Status s = (*dir)->InstallSnapshot(*tmp, r);
//
// Thread safety: DataDir's methods are thread-safe. A SnapshotWriter is
// not (one thread writes it).

#ifndef STATEHUB_SERVER_STORAGE_DATA_DIR_H_
#define STATEHUB_SERVER_STORAGE_DATA_DIR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/record_file.h"

namespace statehub::storage {

struct SnapshotInfo {
  std::string path;
  uint64_t revision = 0;
};

struct SegmentInfo {
  std::string path;
  uint64_t first_revision = 0;  // from the file name
};

class DataDir {
 public:
  // Open creates `path` (mode 0700, parents too) if missing, takes an
  // exclusive non-blocking flock on path/LOCK and writes the owner into it,
  // removes leftovers of an interrupted write (*.tmp, snapshots CURRENT does
  // not name) and reads CURRENT. The lock is held until the DataDir is
  // destroyed.
  // Errors: FAILED_PRECONDITION if another process holds the lock ("data
  // dir /x is in use by statehub-server pid 1234 on host h; two servers
  // cannot share one data dir"); DATA_LOSS if CURRENT is malformed or names
  // a missing file; UNAVAILABLE for an I/O error (with errno text).
  static absl::StatusOr<std::unique_ptr<DataDir>> Open(std::string path);

  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;
  ~DataDir();

  const std::string& path() const { return path_; }

  // snapshot: the current snapshot (the one CURRENT names), if any.
  std::optional<SnapshotInfo> snapshot() const;

  // LogSegments lists, by first revision, the log segments that may hold
  // revisions after the current snapshot: every segment but those wholly
  // covered by it (segment i is when segment i+1 starts at or before the
  // snapshot's revision + 1). The newest segment is always listed.
  absl::StatusOr<std::vector<SegmentInfo>> LogSegments() const;

  // InstallSnapshot makes the snapshot file `tmp_path` (written in this
  // directory, e.g. by SnapshotWriter, its header's revision `revision`)
  // the current one: fsyncs it, renames it to snap-<revision>.snap, writes
  // CURRENT.tmp, fsyncs it, renames it to CURRENT, fsyncs the directory,
  // and then deletes the log segments the snapshot wholly covers and the
  // older snapshots.
  // Errors: INVALID_ARGUMENT if `revision` is below the current
  // snapshot's or the file's header disagrees; UNAVAILABLE for an I/O
  // error. A failure before the rename of CURRENT leaves the previous
  // snapshot current; a failure to delete an old file is only logged.
  absl::Status InstallSnapshot(const std::string& tmp_path, uint64_t revision);

  // The paths of a segment or a snapshot in this directory.
  std::string SegmentPath(uint64_t first_revision) const;
  std::string SnapshotPath(uint64_t revision) const;
  // SyncDir fsyncs the directory (after a create, rename or delete).
  absl::Status SyncDir() const;

 private:
  DataDir(std::string path, int lock_fd);

  const std::string path_;
  const int lock_fd_;
  // Serializes InstallSnapshot.
  absl::Mutex install_mu_;
  mutable absl::Mutex mu_;
  std::optional<SnapshotInfo> snapshot_ ABSL_GUARDED_BY(mu_);
};

// SnapshotWriter writes a snapshot file frame by frame into a temporary
// file in the data dir; Finish closes it and returns its path for
// DataDir::InstallSnapshot. Destroying an unfinished writer deletes the
// file.
class SnapshotWriter {
 public:
  // Create starts DIR/snap-<revision>.snap.tmp. Errors: UNAVAILABLE.
  static absl::StatusOr<std::unique_ptr<SnapshotWriter>> Create(
      const DataDir& dir, uint64_t revision);

  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;
  ~SnapshotWriter();

  // Add appends a frame (buffered). Revisions must not decrease.
  // Errors: INVALID_ARGUMENT (order, payload over 1 GiB); UNAVAILABLE or
  // RESOURCE_EXHAUSTED (a write failed; the writer is then unusable).
  absl::Status Add(uint64_t revision, absl::string_view payload);
  // Finish writes what is buffered, fsyncs and closes the file and returns
  // its path. Errors as Add's.
  absl::StatusOr<std::string> Finish();

 private:
  SnapshotWriter(std::string path, int fd);
  absl::Status Flush();

  const std::string path_;
  int fd_;
  std::string buffer_;
  uint64_t last_revision_ = 0;
  bool any_ = false;
  absl::Status status_;
};

struct ReplayResult {
  uint64_t last_revision = 0;  // of the last frame read, 0 if none
  int64_t frames = 0;          // frames passed to the callback
  // A torn tail of the newest segment, trimmed logically (Log::Open
  // truncates it for good).
  std::optional<TornTail> torn_tail;
};

// RecoveryFiles are what a recovery reads: the current snapshot, if any,
// and the log segments after it, by first revision.
struct RecoveryFiles {
  std::optional<SnapshotInfo> snapshot;
  std::vector<SegmentInfo> segments;
};

// ReadRecoveryFiles lists them without taking the data dir's lock and
// without touching anything (statehub-cli inspect reads a running
// server's). Errors: as DataDir::Open's reading of CURRENT.
absl::StatusOr<RecoveryFiles> ReadRecoveryFiles(const std::string& path);

// ReplaySegments reads `segments` in order and calls `fn` for every frame
// with a revision after `after_revision` (the snapshot's), in revision
// order. Only the newest segment may end in a torn tail; revisions must
// increase across segments and stay below the next segment's first.
// Errors: DATA_LOSS (corruption, from RecordReader or the cross-segment
// checks, naming the file and offset); what `fn` returns, which stops the
// replay, its message prefixed with the segment and the frame's offset;
// UNAVAILABLE / FAILED_PRECONDITION as RecordReader::OpenFile.
absl::StatusOr<ReplayResult> ReplaySegments(
    const std::vector<SegmentInfo>& segments, uint64_t after_revision,
    absl::FunctionRef<absl::Status(uint64_t revision,
                                   absl::string_view payload)>
        fn);

// CutLog drops every frame of revision `from` or later from `segments`
// (the log as ReplaySegments read it): the segment that holds `from` is
// truncated before that frame and synced, and later segments are removed.
// Recovery calls it for a write group that a crash cut short
// (ChangeRecord.more). Errors: NOT_FOUND if no frame has revision `from`;
// as ReplaySegments; UNAVAILABLE (I/O).
absl::Status CutLog(const std::vector<SegmentInfo>& segments, uint64_t from);

// ReplayLog is ReplaySegments over dir.LogSegments().
absl::StatusOr<ReplayResult> ReplayLog(
    const DataDir& dir, uint64_t after_revision,
    absl::FunctionRef<absl::Status(uint64_t revision,
                                   absl::string_view payload)>
        fn);

// What InspectDataDir found in one file.
struct FileStats {
  std::string path;
  FileKind kind = FileKind::kLog;
  uint64_t header_revision = 0;
  uint64_t bytes = 0;
  int64_t frames = 0;
  uint64_t last_revision = 0;  // 0 if no frame
  std::optional<TornTail> torn_tail;
  absl::Status status;  // the reader's error, if any
};

struct DirStats {
  std::optional<FileStats> snapshot;
  std::vector<FileStats> segments;  // those after the snapshot, in order
  uint64_t total_bytes = 0;         // of the snapshot and those segments
  int64_t frames = 0;
  // last_revision: the newest revision found (log or snapshot).
  uint64_t last_revision = 0;
  absl::Status status;  // the first file's error, OK if none
};

// InspectDataDir reads a data dir without locking it (a CLI may inspect a
// running server's: the newest segment's last frame may then show as a
// torn tail). Errors: NOT_FOUND, UNAVAILABLE, DATA_LOSS (CURRENT); errors
// of single files are in DirStats::status and FileStats::status.
absl::StatusOr<DirStats> InspectDataDir(const std::string& path);

}  // namespace statehub::storage

#endif  // STATEHUB_SERVER_STORAGE_DATA_DIR_H_
