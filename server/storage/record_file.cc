#include "server/storage/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace statehub::storage {
namespace {

constexpr absl::string_view kLogMagic("SHLOG\0\0\0", 8);
constexpr absl::string_view kSnapshotMagic("SHSNAP\0\0", 8);
// How much a file reader reads at once.
constexpr size_t kReadChunk = size_t{1} << 20;

// Little-endian by hand (absl's endian.h is internal).
uint64_t LoadLE(absl::string_view at, size_t i, int bytes) {
  uint64_t v = 0;
  for (int b = bytes - 1; b >= 0; --b) {
    v = v << 8 | static_cast<uint8_t>(at[i + b]);
  }
  return v;
}
uint32_t Load32(absl::string_view at, size_t i) {
  return static_cast<uint32_t>(LoadLE(at, i, 4));
}
uint64_t Load64(absl::string_view at, size_t i) { return LoadLE(at, i, 8); }
void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int b = 0; b < bytes; ++b)
    out->push_back(static_cast<char>(v >> (8 * b)));
}
void Put32(std::string* out, uint32_t v) { PutLE(out, v, 4); }
void Put64(std::string* out, uint64_t v) { PutLE(out, v, 8); }

}  // namespace

absl::string_view FileKindName(FileKind kind) {
  return kind == FileKind::kLog ? "log segment" : "snapshot";
}

uint32_t Checksum(absl::string_view bytes) {
  // zlib's crc32 takes a uInt length: feed it in pieces below 4 GiB.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!bytes.empty()) {
    const size_t n = std::min<size_t>(bytes.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()),
                static_cast<uInt>(n));
    bytes.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

std::string EncodeFileHeader(FileKind kind, uint64_t revision) {
  std::string out(kind == FileKind::kLog ? kLogMagic : kSnapshotMagic);
  Put32(&out, kFormatVersion);
  Put32(&out, 0);  // reserved
  Put64(&out, revision);
  Put32(&out, Checksum(out));
  return out;
}

void AppendFrame(std::string* out, uint64_t revision,
                 absl::string_view payload) {
  std::string covered;  // length and revision, under the header checksum
  Put32(&covered, static_cast<uint32_t>(payload.size()));
  Put64(&covered, revision);
  Put32(out, Checksum(covered));
  out->append(covered);
  Put32(out, Checksum(payload));
  out->append(payload.data(), payload.size());
}

std::string TornTail::ToString() const {
  return absl::StrFormat("%s: torn tail at byte offset %d (%d bytes cut: %s)",
                         path, offset, bytes, reason);
}

// Source: the bytes of a file. Read returns up to `n` bytes at `offset`
// (fewer only at the end), valid until the next Read.
class RecordReader::Source {
 public:
  virtual ~Source() = default;
  virtual uint64_t size() const = 0;
  virtual absl::StatusOr<absl::string_view> Read(uint64_t offset, size_t n) = 0;
};

namespace {

class BufferSource final : public RecordReader::Source {
 public:
  explicit BufferSource(absl::string_view bytes) : bytes_(bytes) {}
  uint64_t size() const override { return bytes_.size(); }
  absl::StatusOr<absl::string_view> Read(uint64_t offset, size_t n) override {
    if (offset >= bytes_.size()) return absl::string_view();
    return bytes_.substr(offset, n);
  }

 private:
  const absl::string_view bytes_;
};

// FileSource reads through a window of at least kReadChunk bytes, so that
// frames (and the byte-by-byte scan after a bad one) cost few syscalls.
class FileSource final : public RecordReader::Source {
 public:
  FileSource(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  ~FileSource() override { close(fd_); }
  uint64_t size() const override { return size_; }

  absl::StatusOr<absl::string_view> Read(uint64_t offset, size_t n) override {
    if (offset >= size_) return absl::string_view();
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - offset));
    if (offset < start_ || offset + n > start_ + window_.size()) {
      // Never more than the file holds: a corrupt length cannot make us
      // allocate a gigabyte for a small file.
      const size_t want = static_cast<size_t>(
          std::min<uint64_t>(std::max(n, kReadChunk), size_ - offset));
      window_.resize(want);
      start_ = offset;
      size_t got = 0;
      while (got < want) {
        const ssize_t r = pread(fd_, window_.data() + got, want - got,
                                static_cast<off_t>(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          window_.clear();
          return absl::UnavailableError(
              absl::StrFormat("cannot read %s at byte offset %d: %s", path_,
                              offset + got, std::strerror(errno)));
        }
        if (r == 0) break;  // the file shrank under us
        got += static_cast<size_t>(r);
      }
      window_.resize(got);
    }
    const absl::string_view w(window_);
    return w.substr(offset - start_, n);
  }

 private:
  const std::string path_;
  const int fd_;
  const uint64_t size_;
  std::string window_;
  uint64_t start_ = 0;
};

}  // namespace

RecordReader::RecordReader(std::string path, std::unique_ptr<Source> source,
                           const ReadOptions& options)
    : path_(std::move(path)), source_(std::move(source)), options_(options) {}

RecordReader::~RecordReader() = default;

uint64_t RecordReader::file_size() const { return source_->size(); }

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::OpenFile(
    const std::string& path, const ReadOptions& options) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const std::string msg =
        absl::StrFormat("cannot open %s: %s", path, std::strerror(errno));
    return errno == ENOENT ? absl::NotFoundError(msg)
                           : absl::UnavailableError(msg);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::UnavailableError(
        absl::StrFormat("cannot stat %s: %s", path, std::strerror(err)));
  }
  auto source = std::make_unique<FileSource>(path, fd, st.st_size);
  std::unique_ptr<RecordReader> reader(
      new RecordReader(path, std::move(source), options));
  if (absl::Status s = reader->ReadHeader(); !s.ok()) return s;
  return reader;
}

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::OpenBuffer(
    std::string name, absl::string_view bytes, const ReadOptions& options) {
  std::unique_ptr<RecordReader> reader(new RecordReader(
      std::move(name), std::make_unique<BufferSource>(bytes), options));
  if (absl::Status s = reader->ReadHeader(); !s.ok()) return s;
  return reader;
}

absl::Status RecordReader::ReadHeader() {
  absl::StatusOr<absl::string_view> h = source_->Read(0, kFileHeaderSize);
  if (!h.ok()) return h.status();
  const std::string what = absl::StrCat(
      path_,
      " is not a statehub log segment or snapshot, or its header is "
      "damaged: ");
  if (h->size() < kFileHeaderSize) {
    return absl::DataLossError(absl::StrFormat(
        "%sshort header (%d of %d bytes)", what, h->size(), kFileHeaderSize));
  }
  const absl::string_view magic = h->substr(0, 8);
  if (magic == kLogMagic) {
    kind_ = FileKind::kLog;
  } else if (magic == kSnapshotMagic) {
    kind_ = FileKind::kSnapshot;
  } else {
    return absl::DataLossError(absl::StrCat(what, "bad magic"));
  }
  if (Checksum(h->substr(0, 24)) != Load32(*h, 24)) {
    return absl::DataLossError(absl::StrCat(what, "header checksum mismatch"));
  }
  version_ = Load32(*h, 8);
  header_revision_ = Load64(*h, 16);
  if (version_ > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s %s was written by a newer statehub (format %d); this server "
        "reads format %d",
        FileKindName(kind_), path_, version_, kFormatVersion));
  }
  if (version_ == 0) {
    return absl::DataLossError(absl::StrCat(what, "format version 0"));
  }
  if (options_.expect_kind && *options_.expect_kind != kind_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s is a %s, not a %s", path_, FileKindName(kind_),
                        FileKindName(*options_.expect_kind)));
  }
  offset_ = kFileHeaderSize;
  return absl::OkStatus();
}

std::string RecordReader::CheckFrameAt(uint64_t offset, Frame* frame,
                                       bool* intact, absl::Status* io_error) {
  *intact = false;
  const uint64_t left = source_->size() - offset;
  absl::StatusOr<absl::string_view> h = source_->Read(offset, kFrameHeaderSize);
  if (!h.ok()) {
    *io_error = h.status();
    return "read error";
  }
  if (h->size() < kFrameHeaderSize) {
    return absl::StrFormat("short frame header (%d of %d bytes)", h->size(),
                           kFrameHeaderSize);
  }
  const uint32_t header_crc = Load32(*h, 0);
  const uint32_t length = Load32(*h, 4);
  const uint64_t revision = Load64(*h, 8);
  const uint32_t payload_crc = Load32(*h, 16);
  if (Checksum(h->substr(4, 12)) != header_crc) {
    return "frame header checksum mismatch";
  }
  if (length > options_.max_payload_bytes) {
    return absl::StrFormat("payload length %d over the maximum %d", length,
                           options_.max_payload_bytes);
  }
  if (left - kFrameHeaderSize < length) {
    return absl::StrFormat("short payload (%d of %d bytes)",
                           left - kFrameHeaderSize, length);
  }
  absl::StatusOr<absl::string_view> payload =
      source_->Read(offset + kFrameHeaderSize, length);
  if (!payload.ok()) {
    *io_error = payload.status();
    return "read error";
  }
  if (payload->size() < length) return "short payload (file shrank)";
  if (Checksum(*payload) != payload_crc) return "payload checksum mismatch";
  *intact = true;
  frame->revision = revision;
  frame->offset = offset;
  frame->payload = *payload;
  if (kind_ == FileKind::kLog) {
    if (revision < header_revision_) {
      return absl::StrFormat(
          "revision %d is below the segment's first revision %d", revision,
          header_revision_);
    }
    if (frames_ > 0 && revision <= last_revision_) {
      return absl::StrFormat(
          "revision %d out of order (after %d; they must increase)", revision,
          last_revision_);
    }
  } else if (frames_ > 0 && revision < last_revision_) {
    return absl::StrFormat("revision %d out of order (after %d)", revision,
                           last_revision_);
  }
  return "";
}

absl::StatusOr<std::optional<uint64_t>> RecordReader::FindValidFrameAfter(
    uint64_t offset) {
  const uint64_t size = source_->size();
  for (uint64_t at = offset + 1; at + kFrameHeaderSize <= size; ++at) {
    absl::StatusOr<absl::string_view> h = source_->Read(at, kFrameHeaderSize);
    if (!h.ok()) return h.status();
    if (Checksum(h->substr(4, 12)) != Load32(*h, 0)) continue;
    const uint32_t length = Load32(*h, 4);
    const uint32_t payload_crc = Load32(*h, 16);
    if (length > options_.max_payload_bytes ||
        size - at - kFrameHeaderSize < length) {
      continue;
    }
    absl::StatusOr<absl::string_view> payload =
        source_->Read(at + kFrameHeaderSize, length);
    if (!payload.ok()) return payload.status();
    if (payload->size() == length && Checksum(*payload) == payload_crc) {
      return at;
    }
  }
  return std::nullopt;
}

std::string RecordReader::Corrupt(uint64_t offset,
                                  absl::string_view what) const {
  const std::string advice =
      kind_ == FileKind::kLog
          ? absl::StrFormat(
                "restore the data dir from a backup, or move this segment "
                "and every later one aside to start from the last snapshot "
                "and the segments before it, losing the changes after "
                "revision %d",
                last_revision_)
          : std::string(
                "restore the data dir from a backup (the log "
                "segments this snapshot replaced are gone)");
  return absl::StrFormat("%s %s is corrupt at byte offset %d: %s; %s",
                         FileKindName(kind_), path_, offset, what, advice);
}

bool RecordReader::Fail(absl::Status status) {
  status_ = std::move(status);
  done_ = true;
  return false;
}

namespace storage_internal {

absl::Status ErrnoError(int err, absl::string_view message) {
  const std::string text = absl::StrCat(message, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(text);
  if (err == ENOENT) return absl::NotFoundError(text);
  return absl::UnavailableError(text);
}

absl::Status SyncDirectory(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open ", path));
  const int r = fsync(fd);
  const int err = errno;
  close(fd);
  if (r != 0) return ErrnoError(err, absl::StrCat("cannot sync ", path));
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd =
      open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot create ", tmp));
  int err = 0;
  while (!contents.empty() && err == 0) {
    const ssize_t r = write(fd, contents.data(), contents.size());
    if (r < 0 && errno != EINTR) err = errno;
    if (r > 0) contents.remove_prefix(static_cast<size_t>(r));
  }
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace storage_internal

bool RecordReader::Next(Frame* frame) {
  if (done_) return false;
  if (offset_ == source_->size()) {
    done_ = true;
    return false;
  }
  bool intact = false;
  absl::Status io;
  Frame got;
  const std::string bad = CheckFrameAt(offset_, &got, &intact, &io);
  if (!io.ok()) return Fail(io);
  if (bad.empty()) {
    *frame = got;
    offset_ += kFrameHeaderSize + got.payload.size();
    last_revision_ = got.revision;
    ++frames_;
    return true;
  }
  // A frame whose checksums hold was written whole: breaking the revision
  // rules is no torn write.
  if (intact) return Fail(absl::DataLossError(Corrupt(offset_, bad)));
  absl::StatusOr<std::optional<uint64_t>> next = FindValidFrameAfter(offset_);
  if (!next.ok()) return Fail(next.status());
  if (next->has_value()) {
    return Fail(absl::DataLossError(Corrupt(
        offset_,
        absl::StrFormat("%s (a valid frame follows at byte offset %d, so this "
                        "is no torn write)",
                        bad, **next))));
  }
  TornTail tail{path_, offset_, source_->size() - offset_, bad};
  if (!options_.allow_torn_tail) {
    return Fail(absl::DataLossError(Corrupt(
        offset_, absl::StrFormat("%s, and nothing valid after it (%d bytes): "
                                 "a torn write, in a file that must be whole",
                                 bad, tail.bytes))));
  }
  torn_tail_ = std::move(tail);
  done_ = true;
  return false;
}

}  // namespace statehub::storage
