#include "server/storage/data_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace statehub::storage {
namespace {

using storage_internal::ErrnoError;

constexpr absl::string_view kLockFile = "LOCK";
constexpr absl::string_view kCurrentFile = "CURRENT";

std::string Join(absl::string_view dir, absl::string_view name) {
  return absl::StrCat(dir, "/", name);
}

std::string SegmentName(uint64_t first_revision) {
  return absl::StrFormat("log-%020d.log", first_revision);
}
std::string SnapshotName(uint64_t revision) {
  return absl::StrFormat("snap-%020d.snap", revision);
}

// ParseName: the revision in "<prefix><20 digits><suffix>", if `name` is
// exactly that.
std::optional<uint64_t> ParseName(absl::string_view name,
                                  absl::string_view prefix,
                                  absl::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size() ||
      !absl::ConsumePrefix(&name, prefix) ||
      !absl::ConsumeSuffix(&name, suffix)) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : name) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
  }
  if (!absl::SimpleAtoi(name, &v)) return std::nullopt;
  return v;
}

// Layout: what a directory listing and CURRENT say.
struct Layout {
  std::optional<SnapshotInfo> snapshot;      // named by CURRENT
  std::vector<SegmentInfo> segments;         // all, by first revision
  std::vector<std::string> other_snapshots;  // not named by CURRENT
  std::vector<std::string> leftovers;        // *.tmp
};

absl::StatusOr<Layout> ReadLayout(const std::string& dir) {
  Layout layout;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    return ErrnoError(errno, absl::StrCat("cannot list the data dir ", dir));
  }
  std::vector<std::pair<uint64_t, std::string>> snapshots;
  while (struct dirent* e = readdir(d)) {
    const absl::string_view name = e->d_name;
    if (auto rev = ParseName(name, "log-", ".log")) {
      layout.segments.push_back({Join(dir, name), *rev});
    } else if (auto rev = ParseName(name, "snap-", ".snap")) {
      snapshots.emplace_back(*rev, std::string(name));
    } else if (absl::EndsWith(name, ".tmp")) {
      layout.leftovers.push_back(Join(dir, name));
    }
  }
  closedir(d);
  std::sort(layout.segments.begin(), layout.segments.end(),
            [](const SegmentInfo& a, const SegmentInfo& b) {
              return a.first_revision < b.first_revision;
            });

  const std::string current_path = Join(dir, kCurrentFile);
  std::string current;
  const int fd = open(current_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("cannot open ", current_path));
  }
  if (fd >= 0) {
    char buf[256];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0 && current.size() < 4096) {
      current.append(buf, static_cast<size_t>(r));
    }
    const int err = errno;
    close(fd);
    if (r < 0)
      return ErrnoError(err, absl::StrCat("cannot read ", current_path));
    absl::string_view line = current;
    std::optional<uint64_t> rev;
    if (absl::ConsumeSuffix(&line, "\n"))
      rev = ParseName(line, "snap-", ".snap");
    const bool listed =
        rev && std::any_of(snapshots.begin(), snapshots.end(),
                           [&](const auto& s) { return s.second == line; });
    if (!rev || !listed) {
      return absl::DataLossError(absl::StrFormat(
          "%s %s (\"%s\"); restore the data dir from a backup, or write "
          "into CURRENT the name of the newest snap-*.snap file and a "
          "newline",
          current_path,
          rev ? "names a snapshot that is missing"
              : "is not one line naming a snapshot",
          absl::CHexEscape(current.substr(0, 100))));
    }
    layout.snapshot = SnapshotInfo{Join(dir, line), *rev};
  }
  for (const auto& [rev, name] : snapshots) {
    if (!layout.snapshot || Join(dir, name) != layout.snapshot->path) {
      layout.other_snapshots.push_back(Join(dir, name));
    }
  }
  return layout;
}

// Covered: the segments before the first that may hold a revision after
// `snapshot_revision` (segment i is covered when segment i+1 starts at or
// before snapshot_revision + 1). The newest is never covered.
size_t CoveredSegments(const std::vector<SegmentInfo>& segments,
                       uint64_t snapshot_revision) {
  size_t covered = 0;
  while (covered + 1 < segments.size() &&
         segments[covered + 1].first_revision <= snapshot_revision + 1) {
    ++covered;
  }
  return covered;
}

absl::Status MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, absl::StrCat("cannot create the data dir ", path,
                                            " (at ", prefix, ")"));
    }
    if (slash == std::string::npos) return absl::OkStatus();
  }
}

}  // namespace

DataDir::DataDir(std::string path, int lock_fd)
    : path_(std::move(path)), lock_fd_(lock_fd) {}

DataDir::~DataDir() { close(lock_fd_); }  // releases the flock

absl::StatusOr<std::unique_ptr<DataDir>> DataDir::Open(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (absl::Status s = MakeDirs(path); !s.ok()) return s;
  const std::string lock_path = Join(path, kLockFile);
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open ", lock_path));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string owner(256, '\0');
    const ssize_t n = pread(fd, owner.data(), owner.size(), 0);
    close(fd);
    if (err != EWOULDBLOCK) {
      return ErrnoError(err, absl::StrCat("cannot lock ", lock_path));
    }
    owner.resize(n > 0 ? static_cast<size_t>(n) : 0);
    absl::StripAsciiWhitespace(&owner);
    if (owner.empty()) owner = "another process (not yet named in LOCK)";
    return absl::FailedPreconditionError(absl::StrFormat(
        "data dir %s is in use by %s; two servers cannot share one data dir",
        path, owner));
  }
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  const std::string owner = absl::StrFormat(
      "%s pid %d on host %s\n", program_invocation_short_name, getpid(), host);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, owner.data(), owner.size(), 0) !=
                                   static_cast<ssize_t>(owner.size())) {
    const int err = errno;
    close(fd);
    return ErrnoError(err, absl::StrCat("cannot write ", lock_path));
  }
  std::unique_ptr<DataDir> dir(new DataDir(path, fd));

  absl::StatusOr<Layout> layout = ReadLayout(path);
  if (!layout.ok()) return layout.status();
  // Leftovers of a write a crash interrupted: temporary files, and
  // snapshots renamed into place whose CURRENT switch never happened (or
  // old ones whose delete did not). Nothing reads them.
  for (const std::vector<std::string>* files :
       {&layout->leftovers, &layout->other_snapshots}) {
    for (const std::string& file : *files) {
      spdlog::info("data dir {}: removing {}, left by an interrupted write",
                   path, file);
      if (unlink(file.c_str()) != 0) {
        return ErrnoError(errno, absl::StrCat("cannot remove ", file));
      }
    }
  }
  absl::MutexLock lock(&dir->mu_);
  dir->snapshot_ = layout->snapshot;
  return dir;
}

std::optional<SnapshotInfo> DataDir::snapshot() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

std::string DataDir::SegmentPath(uint64_t first_revision) const {
  return Join(path_, SegmentName(first_revision));
}

std::string DataDir::SnapshotPath(uint64_t revision) const {
  return Join(path_, SnapshotName(revision));
}

absl::Status DataDir::SyncDir() const {
  return storage_internal::SyncDirectory(path_);
}

absl::StatusOr<std::vector<SegmentInfo>> DataDir::LogSegments() const {
  absl::StatusOr<Layout> layout = ReadLayout(path_);
  if (!layout.ok()) return layout.status();
  std::vector<SegmentInfo> segments = std::move(layout->segments);
  const std::optional<SnapshotInfo> snap = snapshot();
  if (snap) {
    segments.erase(
        segments.begin(),
        segments.begin() + CoveredSegments(segments, snap->revision));
  }
  return segments;
}

absl::Status DataDir::InstallSnapshot(const std::string& tmp_path,
                                      uint64_t revision) {
  absl::MutexLock install(&install_mu_);
  const std::optional<SnapshotInfo> old = snapshot();
  if (old && revision < old->revision) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snapshot %s at revision %d is older than the current one (%d)",
        tmp_path, revision, old->revision));
  }
  {
    absl::StatusOr<std::unique_ptr<RecordReader>> reader =
        RecordReader::OpenFile(tmp_path, {.expect_kind = FileKind::kSnapshot});
    if (!reader.ok()) return reader.status();
    if ((*reader)->header_revision() != revision) {
      return absl::InvalidArgumentError(
          absl::StrFormat("snapshot %s says revision %d, not %d", tmp_path,
                          (*reader)->header_revision(), revision));
    }
  }
  const int fd = open(tmp_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open ", tmp_path));
  const int r = fsync(fd);
  const int err = errno;
  close(fd);
  if (r != 0) return ErrnoError(err, absl::StrCat("cannot sync ", tmp_path));
  const std::string final_path = SnapshotPath(revision);
  if (rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    return ErrnoError(errno, absl::StrCat("cannot rename ", tmp_path));
  }
  // The snapshot's name must be durable before CURRENT can name it.
  if (absl::Status s = SyncDir(); !s.ok()) return s;
  // The switch: until CURRENT's rename is durable, a restart reads the old
  // snapshot and every segment, all still there.
  if (absl::Status s = storage_internal::WriteFileAtomically(
          Join(path_, kCurrentFile), SnapshotName(revision) + "\n");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SyncDir(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    snapshot_ = SnapshotInfo{final_path, revision};
  }
  // Only now delete, oldest first, so that what is left is always a
  // suffix of the segments a restart can read.
  absl::StatusOr<Layout> layout = ReadLayout(path_);
  if (!layout.ok()) return layout.status();
  std::vector<std::string> doomed = layout->other_snapshots;
  const size_t covered = CoveredSegments(layout->segments, revision);
  for (size_t i = 0; i < covered; ++i) {
    doomed.push_back(layout->segments[i].path);
  }
  for (const std::string& file : doomed) {
    if (unlink(file.c_str()) != 0) {
      spdlog::warn("data dir {}: cannot remove {}: {}", path_, file,
                   std::strerror(errno));
    }
  }
  return SyncDir();
}

SnapshotWriter::SnapshotWriter(std::string path, int fd)
    : path_(std::move(path)), fd_(fd) {}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
}

absl::StatusOr<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(
    const DataDir& dir, uint64_t revision) {
  const std::string path = dir.SnapshotPath(revision) + ".tmp";
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot create ", path));
  std::unique_ptr<SnapshotWriter> writer(new SnapshotWriter(path, fd));
  writer->buffer_ = EncodeFileHeader(FileKind::kSnapshot, revision);
  return writer;
}

absl::Status SnapshotWriter::Add(uint64_t revision, absl::string_view payload) {
  if (!status_.ok()) return status_;
  if (any_ && revision < last_revision_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "snapshot %s: revision %d after %d", path_, revision, last_revision_));
  }
  if (payload.size() > kMaxPayloadBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("snapshot %s: a payload of %d bytes (max %d)", path_,
                        payload.size(), kMaxPayloadBytes));
  }
  any_ = true;
  last_revision_ = revision;
  AppendFrame(&buffer_, revision, payload);
  return buffer_.size() >= (1 << 20) ? Flush() : absl::OkStatus();
}

absl::Status SnapshotWriter::Flush() {
  absl::string_view rest = buffer_;
  while (!rest.empty()) {
    const ssize_t r = write(fd_, rest.data(), rest.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      status_ = ErrnoError(errno, absl::StrCat("cannot write ", path_));
      return status_;
    }
    rest.remove_prefix(static_cast<size_t>(r));
  }
  buffer_.clear();
  return absl::OkStatus();
}

absl::StatusOr<std::string> SnapshotWriter::Finish() {
  if (!status_.ok()) return status_;
  if (absl::Status s = Flush(); !s.ok()) return s;
  if (fsync(fd_) != 0) {
    status_ = ErrnoError(errno, absl::StrCat("cannot sync ", path_));
    return status_;
  }
  close(fd_);
  fd_ = -1;
  return path_;
}

absl::StatusOr<RecoveryFiles> ReadRecoveryFiles(const std::string& path) {
  absl::StatusOr<Layout> layout = ReadLayout(path);
  if (!layout.ok()) return layout.status();
  RecoveryFiles files;
  files.snapshot = layout->snapshot;
  files.segments = std::move(layout->segments);
  if (files.snapshot) {
    files.segments.erase(
        files.segments.begin(),
        files.segments.begin() +
            CoveredSegments(files.segments, files.snapshot->revision));
  }
  return files;
}

absl::StatusOr<ReplayResult> ReplayLog(
    const DataDir& dir, uint64_t after_revision,
    absl::FunctionRef<absl::Status(uint64_t, absl::string_view)> fn) {
  absl::StatusOr<std::vector<SegmentInfo>> segments = dir.LogSegments();
  if (!segments.ok()) return segments.status();
  return ReplaySegments(*segments, after_revision, fn);
}

absl::StatusOr<ReplayResult> ReplaySegments(
    const std::vector<SegmentInfo>& all, uint64_t after_revision,
    absl::FunctionRef<absl::Status(uint64_t, absl::string_view)> fn) {
  const std::vector<SegmentInfo>* segments = &all;
  ReplayResult result;
  uint64_t last = 0;
  for (size_t i = 0; i < segments->size(); ++i) {
    const SegmentInfo& segment = (*segments)[i];
    const bool newest = i + 1 == segments->size();
    absl::StatusOr<std::unique_ptr<RecordReader>> reader =
        RecordReader::OpenFile(segment.path, {.expect_kind = FileKind::kLog,
                                              .allow_torn_tail = newest});
    if (!reader.ok()) return reader.status();
    RecordReader& r = **reader;
    if (r.header_revision() != segment.first_revision) {
      return absl::DataLossError(absl::StrFormat(
          "log segment %s says its first revision is %d; restore the data "
          "dir from a backup",
          segment.path, r.header_revision()));
    }
    const uint64_t bound =
        newest ? UINT64_MAX : (*segments)[i + 1].first_revision;
    Frame frame;
    while (r.Next(&frame)) {
      if (frame.revision <= last || frame.revision >= bound) {
        return absl::DataLossError(absl::StrFormat(
            "log segment %s is corrupt at byte offset %d: revision %d is out "
            "of order across segments (the previous is %d, the next segment "
            "starts at %d); restore the data dir from a backup",
            segment.path, frame.offset, frame.revision, last, bound));
      }
      last = frame.revision;
      if (frame.revision <= after_revision) continue;
      if (absl::Status s = fn(frame.revision, frame.payload); !s.ok()) {
        return absl::Status(
            s.code(), absl::StrFormat("log segment %s at byte offset %d: %s",
                                      segment.path, frame.offset, s.message()));
      }
      result.last_revision = frame.revision;
      ++result.frames;
    }
    if (!r.status().ok()) return r.status();
    result.torn_tail = r.torn_tail();
  }
  return result;
}

absl::Status CutLog(const std::vector<SegmentInfo>& segments, uint64_t from) {
  // The last segment whose first revision is not after `from` holds it.
  auto holder = std::find_if(
      segments.rbegin(), segments.rend(),
      [from](const SegmentInfo& s) { return s.first_revision <= from; });
  if (holder == segments.rend()) {
    return absl::NotFoundError(
        absl::StrFormat("no log segment holds revision %d", from));
  }
  const SegmentInfo& segment = *holder;
  const bool newest = holder == segments.rbegin();
  absl::StatusOr<std::unique_ptr<RecordReader>> reader = RecordReader::OpenFile(
      segment.path, {.expect_kind = FileKind::kLog, .allow_torn_tail = newest});
  if (!reader.ok()) return reader.status();
  std::optional<uint64_t> offset;
  Frame frame;
  while ((*reader)->Next(&frame)) {
    if (frame.revision >= from) {
      offset = frame.offset;
      break;
    }
  }
  if (!(*reader)->status().ok()) return (*reader)->status();
  if (!offset) {
    return absl::NotFoundError(absl::StrFormat(
        "log segment %s holds no frame of revision %d", segment.path, from));
  }
  // Later segments go first, newest first: a crash in between leaves the
  // group's start in the log, and the next recovery cuts it again.
  if (holder != segments.rbegin()) {
    for (auto later = segments.rbegin(); later != holder; ++later) {
      if (unlink(later->path.c_str()) != 0) {
        return ErrnoError(errno, absl::StrCat("cannot remove ", later->path));
      }
    }
    const std::string& path = segment.path;
    if (absl::Status s =
            storage_internal::SyncDirectory(path.substr(0, path.rfind('/')));
        !s.ok()) {
      return s;
    }
  }
  const int fd = open(segment.path.c_str(), O_WRONLY | O_CLOEXEC);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    if (ftruncate(fd, static_cast<off_t>(*offset)) != 0 || fsync(fd) != 0) {
      err = errno;
    }
    close(fd);
  }
  if (err != 0) {
    return ErrnoError(err, absl::StrCat("cannot cut ", segment.path));
  }
  return absl::OkStatus();
}

absl::StatusOr<DirStats> InspectDataDir(const std::string& path) {
  absl::StatusOr<Layout> layout = ReadLayout(path);
  if (!layout.ok()) return layout.status();
  DirStats stats;
  auto inspect = [&stats](const std::string& file, bool allow_torn) {
    FileStats f;
    f.path = file;
    absl::StatusOr<std::unique_ptr<RecordReader>> reader =
        RecordReader::OpenFile(file, {.allow_torn_tail = allow_torn});
    if (!reader.ok()) {
      f.status = reader.status();
    } else {
      RecordReader& r = **reader;
      f.kind = r.kind();
      f.header_revision = r.header_revision();
      f.bytes = r.file_size();
      Frame frame;
      while (r.Next(&frame)) {
      }
      f.frames = r.frames();
      f.last_revision = r.last_revision();
      f.torn_tail = r.torn_tail();
      f.status = r.status();
    }
    if (stats.status.ok()) stats.status = f.status;
    stats.total_bytes += f.bytes;
    stats.frames += f.frames;
    stats.last_revision = std::max(stats.last_revision, f.last_revision);
    return f;
  };
  uint64_t snapshot_revision = 0;
  if (layout->snapshot) {
    stats.snapshot = inspect(layout->snapshot->path, false);
    snapshot_revision = layout->snapshot->revision;
    stats.last_revision = std::max(stats.last_revision, snapshot_revision);
  }
  const size_t covered =
      layout->snapshot ? CoveredSegments(layout->segments, snapshot_revision)
                       : 0;
  for (size_t i = covered; i < layout->segments.size(); ++i) {
    stats.segments.push_back(
        inspect(layout->segments[i].path, i + 1 == layout->segments.size()));
  }
  return stats;
}

}  // namespace statehub::storage
