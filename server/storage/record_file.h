// File: server/storage/record_file.h
//
// The framing of statehub's on-disk files (log segments and snapshots) and
// the reader over it. docs/storage-format.md is the byte-level contract;
// this header is its C++ side.
//
// A file is a 28-byte header (magic, format version, a revision, a
// checksum) followed by frames, each a 20-byte header and an opaque
// payload stamped with a revision. `AppendFrame` encodes a frame;
// `RecordReader` returns a file's frames in order and tells a torn tail
// (the unfinished last write of a crashed process, which it trims) from
// corruption (anything else, which it refuses with an error naming the
// file, the byte offset and what to do).
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<RecordReader>> reader =
//       RecordReader::OpenFile(path, {.expect_kind = FileKind::kLog});
//   if (!reader.ok()) return reader.status();
//   Frame frame;
//   while ((*reader)->Next(&frame)) Apply(frame.revision, frame.payload);
//   if (!(*reader)->status().ok()) return (*reader)->status();
//   if ((*reader)->torn_tail())
//   spdlog::warn((*reader)->torn_tail()->ToString());
//
// Thread safety: the free functions are thread-safe; a RecordReader is not
// (use one per thread).

#ifndef STATEHUB_SERVER_STORAGE_RECORD_FILE_H_
#define STATEHUB_SERVER_STORAGE_RECORD_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace statehub::storage {

// The format this code writes and the newest it reads. A file whose header
// says more is refused ("written by a newer statehub").
inline constexpr uint32_t kFormatVersion = 1;

inline constexpr size_t kFileHeaderSize = 28;
inline constexpr size_t kFrameHeaderSize = 20;
// A frame announcing a longer payload fails the length check.
inline constexpr uint32_t kMaxPayloadBytes = uint32_t{1} << 30;

enum class FileKind {
  kLog,       // magic "SHLOG\0\0\0"; the header's revision is the first
              // revision the segment may hold.
  kSnapshot,  // magic "SHSNAP\0\0"; the header's revision is the snapshot's.
};

// "log segment" or "snapshot", for messages.
absl::string_view FileKindName(FileKind kind);

// Checksum is the CRC-32 of zlib's crc32() (the IEEE 802.3 polynomial, as
// in gzip and PNG; initial value 0 in zlib's convention) over `bytes`.
uint32_t Checksum(absl::string_view bytes);

// EncodeFileHeader returns the kFileHeaderSize bytes that begin a file of
// `kind` at format kFormatVersion.
std::string EncodeFileHeader(FileKind kind, uint64_t revision);

// AppendFrame appends the frame of (`revision`, `payload`) to `*out`.
// REQUIRES: payload.size() <= kMaxPayloadBytes.
void AppendFrame(std::string* out, uint64_t revision,
                 absl::string_view payload);

// A torn tail: bytes at the end of a file that are not a whole valid frame
// and are followed by no valid frame (a write the crash interrupted).
struct TornTail {
  std::string path;
  uint64_t offset = 0;  // where the bad bytes start (the file is valid below)
  uint64_t bytes = 0;   // how many bytes from `offset` to the end of file
  std::string reason;   // what the first check found, e.g. "short payload"

  // "log segment /d/log-...: torn tail at byte offset 120 (37 bytes cut:
  // short payload)".
  std::string ToString() const;
};

struct ReadOptions {
  // expect_kind: if set, a file of the other kind is an error.
  std::optional<FileKind> expect_kind;
  // allow_torn_tail: true: a torn tail ends the file cleanly and is
  // reported by torn_tail(). false: it is corruption (DATA_LOSS), as it is
  // in a snapshot or in any log segment but the newest.
  bool allow_torn_tail = true;
  // max_payload_bytes: the length sanity check (tests lower it).
  uint32_t max_payload_bytes = kMaxPayloadBytes;
};

// One frame as read. `payload` points into the reader's buffer and stays
// valid until the next call of Next or the reader's destruction.
struct Frame {
  uint64_t revision = 0;
  uint64_t offset = 0;  // of the frame's header in the file
  absl::string_view payload;
};

// RecordReader reads one file's frames in order.
//
// Revision rules checked: in a log segment, revisions strictly increase
// and are at least the header's revision; in a snapshot they never
// decrease. A frame whose checksums hold but which breaks these rules is
// corruption (a torn write cannot produce it).
class RecordReader {
 public:
  // OpenFile opens `path` and checks its header. Errors: NOT_FOUND or
  // UNAVAILABLE (open/read failed, with errno text); DATA_LOSS (bad magic,
  // short header, header checksum); FAILED_PRECONDITION (format version
  // newer than kFormatVersion, or not the expected kind). Every message
  // names the path.
  static absl::StatusOr<std::unique_ptr<RecordReader>> OpenFile(
      const std::string& path, const ReadOptions& options = {});
  // OpenBuffer reads `bytes` (not copied: it must outlive the reader) as
  // the contents of a file called `name` in messages.
  static absl::StatusOr<std::unique_ptr<RecordReader>> OpenBuffer(
      std::string name, absl::string_view bytes,
      const ReadOptions& options = {});

  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;
  ~RecordReader();

  FileKind kind() const { return kind_; }
  uint32_t version() const { return version_; }
  // header_revision: the segment's first revision or the snapshot's.
  uint64_t header_revision() const { return header_revision_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const;

  // Next stores the next frame in `*frame` and returns true; returns false
  // at the end of the file, at a torn tail, or on an error (then status()
  // says which). After false, every later call returns false.
  bool Next(Frame* frame);

  // status: OK until an error: DATA_LOSS for corruption (the message names
  // the path, the byte offset, what was wrong and what to do), UNAVAILABLE
  // for an I/O error.
  const absl::Status& status() const { return status_; }
  // torn_tail: set once Next returned false at a torn tail it allowed.
  const std::optional<TornTail>& torn_tail() const { return torn_tail_; }
  // valid_end: the offset just past the last frame returned (or the
  // header): where a torn tail starts, the length to truncate it to.
  uint64_t valid_end() const { return offset_; }
  // frames: how many frames Next returned.
  int64_t frames() const { return frames_; }
  // last_revision: the last frame's revision, 0 before the first.
  uint64_t last_revision() const { return last_revision_; }

  class Source;  // the bytes: a file through pread, or memory

 private:
  RecordReader(std::string path, std::unique_ptr<Source> source,
               const ReadOptions& options);
  absl::Status ReadHeader();
  // CheckFrameAt checks the frame at `offset`; empty if valid (the frame
  // is stored in *frame), else what is wrong.
  // *intact tells whether both checksums held (only the revision rules
  // failed). An I/O error is returned in *io_error.
  std::string CheckFrameAt(uint64_t offset, Frame* frame, bool* intact,
                           absl::Status* io_error);
  // FindValidFrameAfter: the offset of the first valid frame (both
  // checksums) starting after `offset`, if any.
  absl::StatusOr<std::optional<uint64_t>> FindValidFrameAfter(uint64_t offset);
  bool Fail(absl::Status status);
  std::string Corrupt(uint64_t offset, absl::string_view what) const;

  const std::string path_;
  const std::unique_ptr<Source> source_;
  const ReadOptions options_;
  FileKind kind_ = FileKind::kLog;
  uint32_t version_ = 0;
  uint64_t header_revision_ = 0;
  uint64_t offset_ = 0;
  int64_t frames_ = 0;
  uint64_t last_revision_ = 0;
  bool done_ = false;
  absl::Status status_;
  std::optional<TornTail> torn_tail_;
};

namespace storage_internal {

// ErrnoError: `message` + ": " + strerror(err), as RESOURCE_EXHAUSTED for
// ENOSPC and EDQUOT, NOT_FOUND for ENOENT, UNAVAILABLE otherwise.
absl::Status ErrnoError(int err, absl::string_view message);
// SyncDirectory fsyncs a directory, so that creates, renames and deletes
// in it are durable.
absl::Status SyncDirectory(const std::string& path);
// WriteFileAtomically writes `contents` to path + ".tmp", fsyncs it and
// renames it to `path` (the caller syncs the directory).
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents);

}  // namespace storage_internal
}  // namespace statehub::storage

#endif  // STATEHUB_SERVER_STORAGE_RECORD_FILE_H_
