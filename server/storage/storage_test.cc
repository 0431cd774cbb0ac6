#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/storage/data_dir.h"
#include "server/storage/log.h"
#include "server/storage/record_file.h"

namespace statehub::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = testing::TempDir() + "/storage_test.XXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Payload(uint64_t revision) {
  return absl::StrCat("record ", revision, std::string(revision % 37, 'x'));
}

struct Read {
  std::vector<uint64_t> revisions;
  absl::Status status;
  std::optional<TornTail> torn_tail;
};

Read ReadFile(const std::string& path, ReadOptions options = {}) {
  Read out;
  absl::StatusOr<std::unique_ptr<RecordReader>> r =
      RecordReader::OpenFile(path, options);
  if (!r.ok()) {
    out.status = r.status();
    return out;
  }
  Frame frame;
  while ((*r)->Next(&frame)) {
    EXPECT_EQ(frame.payload, Payload(frame.revision));
    out.revisions.push_back(frame.revision);
  }
  out.status = (*r)->status();
  out.torn_tail = (*r)->torn_tail();
  return out;
}

// A log segment with frames 1..n, and where each frame starts.
std::string Segment(int n, std::vector<size_t>* offsets = nullptr) {
  std::string bytes = EncodeFileHeader(FileKind::kLog, 1);
  for (int i = 1; i <= n; ++i) {
    if (offsets) offsets->push_back(bytes.size());
    AppendFrame(&bytes, i, Payload(i));
  }
  return bytes;
}

std::vector<uint64_t> Replay(const DataDir& dir, uint64_t after,
                             absl::Status* status = nullptr) {
  std::vector<uint64_t> got;
  absl::StatusOr<ReplayResult> r =
      ReplayLog(dir, after, [&](uint64_t rev, absl::string_view payload) {
        EXPECT_EQ(payload, Payload(rev));
        got.push_back(rev);
        return absl::OkStatus();
      });
  if (status) *status = r.status();
  EXPECT_TRUE(status || r.ok()) << r.status();
  return got;
}

std::vector<uint64_t> Iota(uint64_t from, uint64_t to) {
  std::vector<uint64_t> v;
  for (uint64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

TEST(RecordFileTest, TornTailOfEveryLengthIsTrimmedAndReported) {
  TempDir tmp;
  std::vector<size_t> offsets;
  const std::string whole = Segment(3, &offsets);
  const std::string path = tmp.File("log-00000000000000000001.log");
  for (size_t cut = 1; cut < whole.size() - offsets[2]; ++cut) {
    WriteAll(path, whole.substr(0, whole.size() - cut));
    Read got = ReadFile(path);
    ASSERT_TRUE(got.status.ok()) << "cut " << cut << ": " << got.status;
    EXPECT_THAT(got.revisions, ElementsAre(1, 2));
    ASSERT_TRUE(got.torn_tail.has_value()) << cut;
    EXPECT_EQ(got.torn_tail->offset, offsets[2]);
    EXPECT_EQ(got.torn_tail->bytes, whole.size() - cut - offsets[2]);
    EXPECT_EQ(got.torn_tail->path, path);

    got = ReadFile(path, {.allow_torn_tail = false});
    EXPECT_EQ(got.status.code(), absl::StatusCode::kDataLoss) << cut;
    EXPECT_THAT(got.status.message(),
                HasSubstr(absl::StrCat("byte offset ", offsets[2])));
  }
  WriteAll(path, whole);
  Read got = ReadFile(path);
  EXPECT_THAT(got.revisions, ElementsAre(1, 2, 3));
  EXPECT_FALSE(got.torn_tail.has_value());
}

TEST(RecordFileTest, FlippedByteInAMiddleFrameIsCorruptionNamingFileAndOffset) {
  TempDir tmp;
  std::vector<size_t> offsets;
  const std::string whole = Segment(3, &offsets);
  const std::string path = tmp.File("seg.log");
  for (size_t i = offsets[1]; i < offsets[2]; ++i) {
    std::string bytes = whole;
    bytes[i] ^= 0x20;
    WriteAll(path, bytes);
    Read got = ReadFile(path);
    EXPECT_THAT(got.revisions, ElementsAre(1)) << "byte " << i;
    EXPECT_EQ(got.status.code(), absl::StatusCode::kDataLoss) << i;
    EXPECT_THAT(got.status.message(), HasSubstr(path));
    EXPECT_THAT(got.status.message(),
                HasSubstr(absl::StrCat("corrupt at byte offset ", offsets[1])));
    EXPECT_THAT(got.status.message(), HasSubstr("restore the data dir"));
  }
}

TEST(RecordFileTest, FlippedByteInTheLastFrameIsATornTail) {
  TempDir tmp;
  std::vector<size_t> offsets;
  const std::string whole = Segment(3, &offsets);
  const std::string path = tmp.File("seg.log");
  for (size_t i = offsets[2]; i < whole.size(); ++i) {
    std::string bytes = whole;
    bytes[i] ^= 0x01;
    WriteAll(path, bytes);
    Read got = ReadFile(path);
    EXPECT_TRUE(got.status.ok()) << i << ": " << got.status;
    EXPECT_THAT(got.revisions, ElementsAre(1, 2));
    ASSERT_TRUE(got.torn_tail.has_value());
    EXPECT_EQ(got.torn_tail->offset, offsets[2]);
  }
}

TEST(RecordFileTest, IntactFrameOutOfOrderIsCorruption) {
  std::string bytes = EncodeFileHeader(FileKind::kLog, 1);
  AppendFrame(&bytes, 2, "b");
  AppendFrame(&bytes, 2, "c");
  auto r = RecordReader::OpenBuffer("mem", bytes);
  ASSERT_TRUE(r.ok());
  Frame f;
  EXPECT_TRUE((*r)->Next(&f));
  EXPECT_FALSE((*r)->Next(&f));
  EXPECT_THAT((*r)->status().message(), HasSubstr("out of order"));
  // A snapshot's frames may repeat a revision.
  std::string snap = EncodeFileHeader(FileKind::kSnapshot, 2);
  AppendFrame(&snap, 2, "b");
  AppendFrame(&snap, 2, "c");
  r = RecordReader::OpenBuffer("mem", snap);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->Next(&f) && (*r)->Next(&f));
  EXPECT_FALSE((*r)->Next(&f));
  EXPECT_TRUE((*r)->status().ok());
}

TEST(RecordFileTest, ChecksumIsZlibCrc32) {
  EXPECT_EQ(Checksum("123456789"), 0xCBF43926u);  // the CRC-32 check value
  EXPECT_EQ(Checksum(""), 0u);
}

TEST(RecordFileTest, NewerFormatIsRefusedNamingTheVersion) {
  std::string header("SHLOG\0\0\0", 8);
  header += std::string("\x02\0\0\0", 4) + std::string(4, '\0');
  header += std::string("\x01\0\0\0\0\0\0\0", 8);
  const uint32_t crc = Checksum(header);
  for (int i = 0; i < 4; ++i) header.push_back(static_cast<char>(crc >> 8 * i));
  auto r = RecordReader::OpenBuffer("/d/log-1.log", header);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(),
              HasSubstr("/d/log-1.log was written by a newer statehub "
                        "(format 2); this server reads format 1"));
  header[0] = 'X';
  r = RecordReader::OpenBuffer("/d/x", header);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("bad magic"));
}

TEST(DataDirTest, SecondOpenIsRefusedNamingThePid) {
  TempDir tmp;
  const std::string path = tmp.File("data/sub");
  auto first = DataDir::Open(path);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_all);
  auto second = DataDir::Open(path);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("data dir ", path, " is in use by ")));
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat(" pid ", getpid(), " on host ")));
  EXPECT_THAT(second.status().message(),
              HasSubstr("two servers cannot share one data dir"));
  // And from another process.
  const pid_t child = fork();
  if (child == 0) _exit(DataDir::Open(path).ok() ? 1 : 0);
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  first->reset();
  EXPECT_TRUE(DataDir::Open(path).ok());
}

TEST(LogTest, RoundTripAcrossSegmentRolls) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  ASSERT_TRUE(dir.ok());
  {
    auto log =
        Log::Open(**dir, {.fsync = FsyncPolicy::kNo, .segment_bytes = 2000});
    ASSERT_TRUE(log.ok()) << log.status();
    for (uint64_t rev = 1; rev <= 1000; ++rev) {
      (*log)->Append(rev, Payload(rev));
      if (rev % 7 == 0) (*log)->WhenDurable(rev, [](absl::Status) {});
    }
    EXPECT_TRUE((*log)->Close().ok());
  }
  auto segments = (*dir)->LogSegments();
  ASSERT_TRUE(segments.ok());
  EXPECT_GT(segments->size(), 10u);
  EXPECT_EQ(Replay(**dir, 0), Iota(1, 1000));
  EXPECT_EQ(Replay(**dir, 500), Iota(501, 1000));
  auto stats = InspectDataDir(tmp.path());
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->frames, 1000);
  EXPECT_EQ(stats->last_revision, 1000u);
  EXPECT_TRUE(stats->status.ok());
}

TEST(LogTest, OpenTruncatesTheTornTailOfThePreviousRun) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  ASSERT_TRUE(dir.ok());
  {
    auto log = Log::Open(**dir, {.fsync = FsyncPolicy::kEverySec});
    for (uint64_t rev = 1; rev <= 5; ++rev) (*log)->Append(rev, Payload(rev));
  }  // the destructor closes
  const std::string seg = (*dir)->SegmentPath(1);
  const std::string whole = ReadAll(seg);
  std::string torn;
  AppendFrame(&torn, 6, Payload(6));
  WriteAll(seg, whole + torn.substr(0, 9));
  absl::Status status;
  EXPECT_EQ(Replay(**dir, 0, &status), Iota(1, 5));
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(Log::Open(**dir, {.next_revision = 5}).status().code(),
            absl::StatusCode::kInvalidArgument);
  {
    auto log = Log::Open(**dir, {.next_revision = 6});
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ(ReadAll(seg), whole);
    (*log)->Append(6, Payload(6));
  }
  EXPECT_EQ(Replay(**dir, 0), Iota(1, 6));
  // A torn tail in a segment that is not the newest is corruption.
  WriteAll(seg, whole + torn.substr(0, 9));
  Replay(**dir, 0, &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(status.message(), HasSubstr(seg));
}

TEST(LogTest, CutLogDropsTheFramesFromARevisionOnAndTheSegmentsAfterIt) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  ASSERT_TRUE(dir.ok());
  {
    auto log = Log::Open(
        **dir, {.fsync = FsyncPolicy::kEverySec, .segment_bytes = 500});
    for (uint64_t rev = 1; rev <= 60; ++rev) {
      (*log)->Append(rev, Payload(rev));
      // Written now, alone, so that segments roll between records.
      (*log)->WhenDurable(rev, [](absl::Status s) { ASSERT_TRUE(s.ok()); });
    }
  }
  absl::StatusOr<std::vector<SegmentInfo>> segments = (*dir)->LogSegments();
  ASSERT_TRUE(segments.ok());
  ASSERT_GE(segments->size(), 3u);
  // A revision in the middle of the second segment.
  const uint64_t from = (*segments)[1].first_revision + 2;
  ASSERT_LT(from, (*segments)[2].first_revision);
  ASSERT_TRUE(CutLog(*segments, from).ok());
  EXPECT_EQ(Replay(**dir, 0), Iota(1, from - 1));
  EXPECT_EQ((*dir)->LogSegments()->size(), 2u);
  // The log goes on from there.
  {
    auto log = Log::Open(**dir, {.next_revision = from});
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Append(from, Payload(from));
  }
  EXPECT_EQ(Replay(**dir, 0), Iota(1, from));
  // A revision no frame has is an error, and cuts nothing.
  segments = (*dir)->LogSegments();
  EXPECT_EQ(CutLog(*segments, from + 1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Replay(**dir, 0), Iota(1, from));
}

class CountingObserver : public LogObserver {
 public:
  void Synced(absl::Duration) override { ++syncs; }
  void Wrote(int64_t bytes) override { written += bytes; }
  std::atomic<int> syncs{0};
  std::atomic<int64_t> written{0};
};

TEST(LogTest, GroupCommitUnderAlwaysRunsEachCallbackOnceWhenDurable) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  CountingObserver observer;
  auto opened =
      Log::Open(**dir, {.fsync = FsyncPolicy::kAlways, .observer = &observer});
  ASSERT_TRUE(opened.ok());
  Log& log = **opened;
  constexpr int kThreads = 8, kEach = 200, kTotal = kThreads * kEach;
  std::vector<std::atomic<int>> calls(kTotal + 1);
  std::atomic<int> finished{0}, early{0};
  absl::Mutex order;
  uint64_t next = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        uint64_t rev;
        {
          absl::MutexLock lock(&order);
          rev = ++next;
          log.Append(rev, Payload(rev));
        }
        log.WhenDurable(rev, [&, rev](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          if (log.durable_revision() < rev) ++early;
          ++calls[rev];
          ++finished;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (finished < kTotal && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(finished, kTotal);
  EXPECT_EQ(early, 0);
  for (int rev = 1; rev <= kTotal; ++rev) EXPECT_EQ(calls[rev], 1) << rev;
  EXPECT_EQ(log.durable_revision(), uint64_t{kTotal});
  // Group commit: far fewer syncs than records (one for the header too).
  EXPECT_LT(observer.syncs, kTotal);
  EXPECT_GT(observer.written, 0);
  // Already durable: inline.
  bool ran = false;
  log.WhenDurable(5, [&](absl::Status s) { ran = s.ok(); });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(log.Close().ok());
  EXPECT_EQ(Replay(**dir, 0), Iota(1, kTotal));
}

TEST(LogTest, EverySecWritesBeforeReturning) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  auto log = Log::Open(**dir, {.fsync = FsyncPolicy::kEverySec,
                               .sync_interval = absl::Hours(1)});
  ASSERT_TRUE(log.ok());
  (*log)->Append(1, Payload(1));
  (*log)->Append(2, Payload(2));
  EXPECT_EQ((*log)->written_revision(), 0u);
  bool ran = false;
  (*log)->WhenDurable(1, [&](absl::Status s) { ran = s.ok(); });
  EXPECT_TRUE(ran);
  EXPECT_EQ((*log)->written_revision(), 2u);  // one write for both
  EXPECT_EQ((*log)->durable_revision(), 0u);  // not yet synced
  EXPECT_THAT(ReadFile((*dir)->SegmentPath(1)).revisions, ElementsAre(1, 2));
  EXPECT_TRUE((*log)->Close().ok());
  EXPECT_EQ((*log)->durable_revision(), 2u);
}

TEST(LogTest, ParsesFsyncPolicies) {
  EXPECT_EQ(*ParseFsyncPolicy("always"), FsyncPolicy::kAlways);
  EXPECT_EQ(*ParseFsyncPolicy("everysec"), FsyncPolicy::kEverySec);
  EXPECT_EQ(*ParseFsyncPolicy("no"), FsyncPolicy::kNo);
  EXPECT_THAT(ParseFsyncPolicy("sometimes").status().message(),
              HasSubstr("always, everysec or no"));
}

TEST(DataDirTest, InstallSnapshotRemovesCoveredSegmentsAndKeepsTheRest) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  {
    auto log = Log::Open(
        **dir, {.fsync = FsyncPolicy::kEverySec, .segment_bytes = 500});
    for (uint64_t rev = 1; rev <= 100; ++rev) {
      (*log)->Append(rev, Payload(rev));
      (*log)->WhenDurable(rev, [](absl::Status) {});
    }
  }
  auto before = (*dir)->LogSegments();
  ASSERT_GT(before->size(), 4u);
  const uint64_t snap_rev = (*before)[2].first_revision + 1;
  auto install = [&](uint64_t rev) {
    auto writer = SnapshotWriter::Create(**dir, rev);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Add(rev, "state").ok());
    auto path = (*writer)->Finish();
    ASSERT_TRUE(path.ok());
    ASSERT_TRUE((*dir)->InstallSnapshot(*path, rev).ok());
  };
  install(snap_rev);
  auto after = (*dir)->LogSegments();
  // Segments 0 and 1 end before segment 2 starts, at or before snap_rev.
  ASSERT_EQ(after->size(), before->size() - 2);
  EXPECT_EQ((*after)[0].path, (*before)[2].path);
  EXPECT_FALSE(fs::exists((*before)[0].path));
  EXPECT_FALSE(fs::exists((*before)[1].path));
  EXPECT_EQ(ReadAll(tmp.File("CURRENT")),
            absl::StrFormat("snap-%020d.snap\n", snap_rev));
  EXPECT_EQ((*dir)->snapshot()->revision, snap_rev);
  EXPECT_EQ(Replay(**dir, snap_rev), Iota(snap_rev + 1, 100));
  // A newer snapshot replaces the older; a reopened dir finds it.
  install(snap_rev + 1);
  EXPECT_FALSE(fs::exists((*dir)->SnapshotPath(snap_rev)));
  dir->reset();
  dir = DataDir::Open(tmp.path());
  ASSERT_TRUE(dir.ok()) << dir.status();
  EXPECT_EQ((*dir)->snapshot()->revision, snap_rev + 1);
  auto snap = RecordReader::OpenFile(
      (*dir)->snapshot()->path,
      {.expect_kind = FileKind::kSnapshot, .allow_torn_tail = false});
  ASSERT_TRUE(snap.ok());
  Frame frame;
  ASSERT_TRUE((*snap)->Next(&frame));
  EXPECT_EQ(frame.payload, "state");
  EXPECT_FALSE((*snap)->Next(&frame));
  EXPECT_TRUE((*snap)->status().ok());
  auto stats = InspectDataDir(tmp.path());
  EXPECT_EQ(stats->last_revision, 100u);
}

// FullDisk: a disk with `space` bytes left (negative: unlimited), and a
// sync that fails while `fail_syncs` > 0.
class FullDisk : public FileOps {
 public:
  ssize_t Pwrite(int fd, const char* data, size_t size, off_t off) override {
    const int64_t left = space.load();
    if (left < 0) return FileOps::Pwrite(fd, data, size, off);
    const size_t n = std::min<size_t>(size, static_cast<size_t>(left));
    if (n == 0) {
      errno = ENOSPC;
      return -1;
    }
    space -= static_cast<int64_t>(n);
    return FileOps::Pwrite(fd, data, n, off);
  }
  int Fdatasync(int fd) override {
    if (fail_syncs > 0) {
      --fail_syncs;
      errno = EIO;
      return -1;
    }
    return FileOps::Fdatasync(fd);
  }
  std::atomic<int64_t> space{-1};
  std::atomic<int> fail_syncs{0};
};

bool WaitHealthy(const Log& log) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!log.health().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  return log.health().ok();
}

absl::Status AwaitDurable(Log& log, uint64_t rev) {
  absl::Notification done;
  absl::Status result;
  log.WhenDurable(rev, [&](absl::Status s) {
    result = s;
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

class FullDiskTest : public testing::TestWithParam<FsyncPolicy> {};

TEST_P(FullDiskTest, FailsChangesThenRecoversWithEveryRecordOnce) {
  TempDir tmp;
  auto dir = DataDir::Open(tmp.path());
  FullDisk disk;
  auto opened = Log::Open(**dir, {.fsync = GetParam(),
                                  .segment_bytes = 300,
                                  .sync_interval = absl::Milliseconds(10),
                                  .retry_interval = absl::Milliseconds(5),
                                  .file_ops = &disk});
  ASSERT_TRUE(opened.ok());
  Log& log = **opened;
  for (uint64_t rev = 1; rev <= 10; ++rev) log.Append(rev, Payload(rev));
  EXPECT_TRUE(AwaitDurable(log, 10).ok());

  disk.space = 70;  // room for a frame and a half
  for (uint64_t rev = 11; rev <= 20; ++rev) log.Append(rev, Payload(rev));
  absl::Status s = AwaitDurable(log, 20);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("cannot "));
  EXPECT_THAT(s.message(), HasSubstr(tmp.path() + "/log-"));
  EXPECT_THAT(s.message(), HasSubstr("No space left on device; the server "
                                     "refuses changes until it can"));
  EXPECT_EQ(log.health().code(), absl::StatusCode::kResourceExhausted);
  // Still failing: later callbacks fail too, and nothing is dropped.
  log.Append(21, Payload(21));
  EXPECT_EQ(AwaitDurable(log, 21).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(AwaitDurable(log, 10).ok());  // durable before the failure

  disk.space = -1;
  if (GetParam() == FsyncPolicy::kAlways) {
    EXPECT_TRUE(WaitHealthy(log));
  }
  EXPECT_TRUE(AwaitDurable(log, 21).ok());
  EXPECT_TRUE(log.health().ok());

  // A failed sync: the unsynced bytes are written again, not trusted.
  // (kNo syncs only on roll and Close.)
  const bool syncs = GetParam() != FsyncPolicy::kNo;
  if (syncs) disk.fail_syncs = 1;
  for (uint64_t rev = 22; rev <= 25; ++rev) log.Append(rev, Payload(rev));
  s = AwaitDurable(log, 25);
  if (syncs) {
    if (GetParam() == FsyncPolicy::kAlways) {
      EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
      EXPECT_THAT(s.message(), HasSubstr("cannot sync the log"));
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (log.durable_revision() < 25 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_EQ(log.durable_revision(), 25u);
    EXPECT_EQ(disk.fail_syncs, 0);
    EXPECT_TRUE(WaitHealthy(log));
  }
  for (uint64_t rev = 26; rev <= 30; ++rev) log.Append(rev, Payload(rev));
  EXPECT_TRUE(AwaitDurable(log, 30).ok());
  s = log.Close();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(Replay(**dir, 0), Iota(1, 30));
}

INSTANTIATE_TEST_SUITE_P(Policies, FullDiskTest,
                         testing::Values(FsyncPolicy::kAlways,
                                         FsyncPolicy::kEverySec,
                                         FsyncPolicy::kNo),
                         [](const auto& info) {
                           return std::string(FsyncPolicyName(info.param));
                         });

}  // namespace
}  // namespace statehub::storage
