#include "server/storage/log.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/storage/record_file.h"
#include "spdlog/spdlog.h"

namespace statehub::storage {

absl::StatusOr<FsyncPolicy> ParseFsyncPolicy(absl::string_view text) {
  if (text == "always") return FsyncPolicy::kAlways;
  if (text == "everysec") return FsyncPolicy::kEverySec;
  if (text == "no") return FsyncPolicy::kNo;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown fsync policy \"", text, "\"; use always, everysec or no"));
}

absl::string_view FsyncPolicyName(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kEverySec:
      return "everysec";
    case FsyncPolicy::kNo:
      return "no";
  }
  return "?";
}

ssize_t FileOps::Pwrite(int fd, const char* data, size_t size, off_t offset) {
  return pwrite(fd, data, size, offset);
}
int FileOps::Fdatasync(int fd) { return fdatasync(fd); }
int FileOps::Ftruncate(int fd, off_t length) { return ftruncate(fd, length); }

namespace {

FileOps* DefaultFileOps() {
  static FileOps* const ops = new FileOps();
  return ops;
}

}  // namespace

Log::Log(DataDir& dir, LogOptions options)
    : dir_(dir),
      options_(options),
      ops_(options.file_ops != nullptr ? options.file_ops : DefaultFileOps()),
      written_(options.next_revision - 1),
      durable_(options.next_revision - 1) {}

absl::StatusOr<std::unique_ptr<Log>> Log::Open(DataDir& dir,
                                               LogOptions options) {
  if (options.next_revision == 0) {
    return absl::InvalidArgumentError("next_revision must be at least 1");
  }
  absl::StatusOr<std::vector<SegmentInfo>> segments = dir.LogSegments();
  if (!segments.ok()) return segments.status();
  if (!segments->empty()) {
    const SegmentInfo& newest = segments->back();
    absl::StatusOr<std::unique_ptr<RecordReader>> reader =
        RecordReader::OpenFile(newest.path, {.expect_kind = FileKind::kLog});
    if (!reader.ok()) return reader.status();
    RecordReader& r = **reader;
    Frame frame;
    while (r.Next(&frame)) {
    }
    if (!r.status().ok()) return r.status();
    if (newest.first_revision > options.next_revision ||
        (r.frames() > 0 && r.last_revision() >= options.next_revision)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cannot start the log at revision %d: %s holds revisions up to %d",
          options.next_revision, newest.path,
          std::max(r.last_revision(), newest.first_revision)));
    }
    if (r.torn_tail()) {
      // Cut it now: once a newer segment exists, a torn tail here would
      // read as corruption.
      spdlog::warn("{}; truncating it (a write the last run did not finish)",
                   r.torn_tail()->ToString());
      const int fd = open(newest.path.c_str(), O_WRONLY | O_CLOEXEC);
      int err = fd < 0 ? errno : 0;
      if (fd >= 0) {
        if (ftruncate(fd, static_cast<off_t>(r.valid_end())) != 0 ||
            fsync(fd) != 0) {
          err = errno;
        }
        close(fd);
      }
      if (err != 0) {
        return storage_internal::ErrnoError(
            err,
            absl::StrCat("cannot truncate the torn tail of ", newest.path));
      }
    }
  }
  std::unique_ptr<Log> log(new Log(dir, options));
  {
    absl::MutexLock lock(&log->write_mu_);
    if (absl::Status s = log->CreateSegmentLocked(options.next_revision);
        !s.ok()) {
      return s;
    }
  }
  log->thread_ = std::thread([raw = log.get()] { raw->Run(); });
  return log;
}

Log::~Log() {
  if (absl::Status s = Close(); !s.ok()) {
    spdlog::error("closing the log: {}", s.ToString());
  }
}

void Log::Append(uint64_t revision, absl::string_view payload) {
  absl::MutexLock lock(&mu_);
  if (pending_.empty()) pending_first_ = revision;
  pending_last_ = revision;
  AppendFrame(&pending_, revision, payload);
  if (options_.fsync == FsyncPolicy::kAlways) wake_.Signal();
}

void Log::AppendGroup(absl::Span<const Entry> records) {
  if (records.empty()) return;
  absl::MutexLock lock(&mu_);
  if (pending_.empty()) pending_first_ = records.front().revision;
  for (const Entry& record : records) {
    AppendFrame(&pending_, record.revision, record.payload);
  }
  pending_last_ = records.back().revision;
  if (options_.fsync == FsyncPolicy::kAlways) wake_.Signal();
}

uint64_t Log::ThresholdLocked() const {
  return options_.fsync == FsyncPolicy::kAlways ? durable_ : written_;
}

void Log::WhenDurable(uint64_t revision, Done done) {
  absl::Status now;  // the result, when known at once
  bool write = false;
  {
    absl::MutexLock lock(&mu_);
    if (revision <= ThresholdLocked()) {
      // Durable already.
    } else if (closing_) {
      now = absl::FailedPreconditionError(absl::StrFormat(
          "the log is closed; revision %d is not durable", revision));
    } else if (options_.fsync == FsyncPolicy::kAlways) {
      // The sync thread retries a failed log; until then, fail fast.
      if (health_.ok()) {
        waiters_.emplace(revision, std::move(done));
        wake_.Signal();
        return;
      }
      now = health_;
    } else {
      write = true;
    }
  }
  if (write) now = WriteThrough(revision);
  std::move(done)(std::move(now));
}

absl::Status Log::WriteThrough(uint64_t revision) {
  absl::Status s;
  Ready ready;
  {
    absl::MutexLock lock(&write_mu_);
    {
      absl::MutexLock l(&mu_);
      // Another thread's write took this record along.
      if (revision <= written_) return absl::OkStatus();
    }
    s = WriteLocked();
    ready = SettleLocked(s, /*attempted=*/true);
  }
  RunAll(std::move(ready));
  return s;
}

uint64_t Log::durable_revision() const {
  absl::MutexLock lock(&mu_);
  return durable_;
}

uint64_t Log::written_revision() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

absl::Status Log::health() const {
  // Asked before every change (the server refuses changes while the log
  // fails): no mutex while it is healthy.
  if (healthy_.load(std::memory_order_acquire)) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return health_;
}

void Log::RunAll(Ready ready) {
  for (auto& [done, status] : ready) std::move(done)(std::move(status));
}

Log::Ready Log::Pass(bool sync) {
  absl::MutexLock lock(&write_mu_);
  absl::Status s = WriteLocked();
  if (s.ok() && sync) s = SyncLocked();
  return SettleLocked(std::move(s), /*attempted=*/true);
}

void Log::Run() {
  const bool always = options_.fsync == FsyncPolicy::kAlways;
  absl::Time next_sync = absl::Now() + options_.sync_interval;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (always) {
        // Wait for records; a failed log retries every retry_interval.
        while (!closing_ && pending_.empty() && health_.ok()) {
          wake_.Wait(&mu_);
        }
        if (!closing_ && !health_.ok()) {
          wake_.WaitWithTimeout(&mu_, options_.retry_interval);
        }
      } else {
        const absl::Time wake_at =
            health_.ok() ? next_sync : absl::Now() + options_.retry_interval;
        while (!closing_ && absl::Now() < wake_at) {
          wake_.WaitWithDeadline(&mu_, wake_at);
        }
      }
      if (closing_) return;  // Close does the last pass
    }
    if (!always && absl::Now() >= next_sync) {
      next_sync = absl::Now() + options_.sync_interval;
    }
    if (options_.fsync == FsyncPolicy::kEverySec) {
      RunAll(PassSyncingOutside());
    } else {
      RunAll(Pass(/*sync=*/options_.fsync != FsyncPolicy::kNo));
    }
  }
}

Log::Ready Log::PassSyncingOutside() {
  int fd = -1;
  size_t synced = 0;
  uint64_t segment = 0;
  uint64_t written = 0;
  {
    absl::MutexLock lock(&write_mu_);
    absl::Status s = WriteLocked();
    if (!s.ok() || !unsynced_ || fd_ < 0) {
      return SettleLocked(std::move(s), /*attempted=*/true);
    }
    fd = dup(fd_);
    if (fd < 0) return SettleLocked(SyncLocked(), /*attempted=*/true);
    synced = tail_written_;
    segment = segments_;
    absl::MutexLock l(&mu_);
    written = written_;
  }
  // The fdatasync of a second's writes may take long (a snapshot being
  // written to the same disk): replies that write meanwhile (WhenDurable)
  // must not wait behind it, so it runs without write_mu_, on its own
  // descriptor of the same file.
  const absl::Time start = absl::Now();
  const bool synced_ok = ops_->Fdatasync(fd) == 0;
  const int err = errno;
  close(fd);
  absl::MutexLock lock(&write_mu_);
  if (segment != segments_ || tail_written_ < synced) {
    // A roll synced that segment meanwhile, or a rewrite started over:
    // the bookkeeping is theirs.
    return SettleLocked(absl::OkStatus(), /*attempted=*/false);
  }
  if (!synced_ok) {
    need_truncate_ = true;
    return SettleLocked(Error(err, "sync", segment_path_), /*attempted=*/true);
  }
  if (options_.observer != nullptr) {
    options_.observer->Synced(absl::Now() - start);
  }
  tail_offset_ += synced;
  tail_.erase(0, synced);
  tail_written_ -= synced;
  unsynced_ = tail_written_ > 0;
  {
    absl::MutexLock l(&mu_);
    durable_ = std::max(durable_, written);
  }
  return SettleLocked(absl::OkStatus(), /*attempted=*/true);
}

absl::Status Log::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::OkStatus();
    closing_ = true;
    wake_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
  absl::Status result;
  Ready ready;
  {
    absl::MutexLock lock(&write_mu_);
    absl::Status s = WriteLocked();
    if (s.ok()) s = SyncLocked();
    result = s;
    ready = SettleLocked(s, /*attempted=*/true);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    fd_closed_ = true;
  }
  RunAll(std::move(ready));
  return result;
}

absl::Status Log::Error(int err, absl::string_view verb,
                        const std::string& path) const {
  const std::string text = absl::StrFormat(
      "cannot %s the log %s: %s; the server refuses changes until it can", verb,
      path, std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(text);
  return absl::UnavailableError(text);
}

absl::Status Log::WriteLocked() {
  if (fd_closed_) return absl::FailedPreconditionError("the log is closed");
  if (need_truncate_) {
    // A failed fdatasync may have dropped the dirty pages: write the
    // unsynced bytes again rather than trust a later sync.
    if (ops_->Ftruncate(fd_, static_cast<off_t>(tail_offset_)) != 0) {
      return Error(errno, "truncate", segment_path_);
    }
    need_truncate_ = false;
    tail_written_ = 0;
  }
  if (absl::Status s = WriteTailLocked(); !s.ok()) return s;
  uint64_t first = 0;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) return absl::OkStatus();
    first = pending_first_;
  }
  if (fd_ >= 0 && tail_offset_ + tail_.size() >= options_.segment_bytes) {
    // Roll. Sync first, whatever the policy, so that only the newest
    // segment can be torn by a crash.
    if (absl::Status s = SyncLocked(); !s.ok()) return s;
    close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) {
    if (absl::Status s = CreateSegmentLocked(first); !s.ok()) return s;
  }
  {
    absl::MutexLock lock(&mu_);
    if (tail_.empty()) {
      tail_.swap(pending_);
    } else {
      tail_.append(pending_);
    }
    pending_.clear();
    tail_last_revision_ = pending_last_;
  }
  return WriteTailLocked();
}

absl::Status Log::WriteTailLocked() {
  while (tail_written_ < tail_.size()) {
    const ssize_t r = ops_->Pwrite(
        fd_, tail_.data() + tail_written_, tail_.size() - tail_written_,
        static_cast<off_t>(tail_offset_ + tail_written_));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Error(r < 0 ? errno : EIO, "write", segment_path_);
    // A short write: the loop continues with exactly the bytes not written.
    tail_written_ += static_cast<size_t>(r);
    unsynced_ = true;
    if (options_.observer != nullptr) options_.observer->Wrote(r);
  }
  if (tail_.empty()) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    written_ = std::max(written_, tail_last_revision_);
  }
  if (options_.fsync == FsyncPolicy::kNo) {
    // Nothing to write again after a failed sync: kNo promises none.
    tail_offset_ += tail_.size();
    tail_.clear();
    tail_written_ = 0;
  }
  return absl::OkStatus();
}

absl::Status Log::SyncLocked() {
  if (!unsynced_ || fd_ < 0) return absl::OkStatus();
  const absl::Time start = absl::Now();
  if (ops_->Fdatasync(fd_) != 0) {
    const int err = errno;
    need_truncate_ = options_.fsync != FsyncPolicy::kNo;
    return Error(err, "sync", segment_path_);
  }
  if (options_.observer != nullptr) {
    options_.observer->Synced(absl::Now() - start);
  }
  unsynced_ = false;
  tail_offset_ += tail_written_;
  tail_.erase(0, tail_written_);
  tail_written_ = 0;
  absl::MutexLock lock(&mu_);
  durable_ = std::max(durable_, written_);
  return absl::OkStatus();
}

absl::Status Log::CreateSegmentLocked(uint64_t first_revision) {
  ++segments_;
  // Written whole under a temporary name and renamed: a segment never
  // exists with a partial header.
  const std::string path = dir_.SegmentPath(first_revision);
  const std::string tmp = path + ".tmp";
  const int fd =
      open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(errno, "create", path);
  const std::string header = EncodeFileHeader(FileKind::kLog, first_revision);
  size_t done = 0;
  int err = 0;
  while (done < header.size() && err == 0) {
    const ssize_t r =
        ops_->Pwrite(fd, header.data() + done, header.size() - done, done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) err = r < 0 ? errno : EIO;
    if (r > 0) done += static_cast<size_t>(r);
  }
  if (err == 0 && ops_->Fdatasync(fd) != 0) err = errno;
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    close(fd);
    unlink(tmp.c_str());
    return Error(err, "create", path);
  }
  if (absl::Status s = dir_.SyncDir(); !s.ok()) {
    close(fd);
    return s;
  }
  fd_ = fd;
  segment_path_ = path;
  tail_.clear();
  tail_offset_ = header.size();
  tail_written_ = 0;
  need_truncate_ = false;
  unsynced_ = false;
  return absl::OkStatus();
}

Log::Ready Log::SettleLocked(absl::Status status, bool attempted) {
  Ready ready;
  absl::MutexLock lock(&mu_);
  if (!attempted) {
    // Health is what the last write or sync said.
  } else if (!status.ok()) {
    if (health_.ok()) spdlog::error("{}", std::string(status.message()));
    health_ = status;
    healthy_.store(false, std::memory_order_release);
  } else if (!health_.ok()) {
    spdlog::info("the log writes again ({} recovered)", segment_path_);
    health_ = absl::OkStatus();
    healthy_.store(true, std::memory_order_release);
  }
  const uint64_t threshold = ThresholdLocked();
  while (!waiters_.empty() &&
         (waiters_.begin()->first <= threshold || !status.ok())) {
    auto node = waiters_.extract(waiters_.begin());
    ready.emplace_back(std::move(node.mapped()),
                       node.key() <= threshold ? absl::OkStatus() : status);
  }
  return ready;
}

}  // namespace statehub::storage
