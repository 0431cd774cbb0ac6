#include "server/durability/durability.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/storage/record_file.h"
#include "spdlog/spdlog.h"

namespace statehub {
namespace {

absl::Status Unparsable() {
  return absl::DataLossError(
      "the record passed its checksum but is not a change record this "
      "statehub understands (written by a newer statehub?)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Durability>> Durability::Open(
    Engine& engine, DurabilityOptions options) {
  absl::StatusOr<std::unique_ptr<storage::DataDir>> dir =
      storage::DataDir::Open(options.data_dir);
  if (!dir.ok()) return dir.status();
  std::unique_ptr<Durability> durable(
      new Durability(engine, *std::move(dir), options));
  if (absl::Status s = durable->Recover(); !s.ok()) return s;

  storage::LogOptions log;
  log.fsync = options.fsync;
  log.next_revision = durable->recovered_.revision + 1;
  log.segment_bytes = options.segment_bytes;
  log.observer = options.observer;
  absl::StatusOr<std::unique_ptr<storage::Log>> opened =
      storage::Log::Open(*durable->dir_, log);
  if (!opened.ok()) return opened.status();
  durable->log_ = *std::move(opened);
  engine.changes().set_sink(durable.get());
  // Entries whose ttl ran out while the server was down expire now, as
  // records in the log.
  engine.registry().expirer().Resume();
  if (options.snapshot_log_bytes > 0) {
    durable->snapshots_ =
        std::thread([d = durable.get()] { d->RunSnapshots(); });
  }
  return durable;
}

absl::StatusOr<RecoveryStats> RecoverEngine(Engine& engine,
                                            const storage::RecoveryFiles& files,
                                            absl::Time now) {
  const absl::Time start = absl::Now();
  RecoveryStats recovered;
  v1::ChangeRecord record;
  if (const std::optional<storage::SnapshotInfo>& snap = files.snapshot) {
    storage::ReadOptions read;
    read.expect_kind = storage::FileKind::kSnapshot;
    read.allow_torn_tail = false;
    absl::StatusOr<std::unique_ptr<storage::RecordReader>> reader =
        storage::RecordReader::OpenFile(snap->path, read);
    if (!reader.ok()) return reader.status();
    storage::Frame frame;
    while ((*reader)->Next(&frame)) {
      absl::Status s;
      if (!record.ParseFromArray(frame.payload.data(),
                                 static_cast<int>(frame.payload.size()))) {
        s = Unparsable();
      } else {
        s = engine.ReplaySnapshot(snap->revision, record);
      }
      if (!s.ok()) {
        return absl::DataLossError(
            absl::StrFormat("snapshot %s at byte offset %d: %s", snap->path,
                            frame.offset, s.message()));
      }
      ++recovered.snapshot_records;
    }
    if (!(*reader)->status().ok()) return (*reader)->status();
    recovered.snapshot_revision = snap->revision;
    recovered.bytes += (*reader)->file_size();
  }
  // The records of a write group (ChangeRecord.more) wait in `group` until
  // its last one is read: a group the crash cut short is not applied. Each
  // frame is parsed into the next slot, reused from record to record (a
  // parse keeps the message's allocations), so that a replay copies no
  // record and allocates little.
  std::vector<v1::ChangeRecord> group(1);
  size_t held = 0;  // records of the current group in group[0, held)
  auto apply = [&](const v1::ChangeRecord& r) -> absl::Status {
    if (absl::Status s = engine.Replay(r); !s.ok()) {
      return absl::DataLossError(absl::StrFormat(
          "revision %d: %s; the log does not fit the state before it: "
          "restore the data dir from a backup",
          r.revision(), s.message()));
    }
    ++recovered.log_records;
    return absl::OkStatus();
  };
  absl::StatusOr<storage::ReplayResult> replayed = storage::ReplaySegments(
      files.segments, recovered.snapshot_revision,
      [&](uint64_t revision, absl::string_view payload) -> absl::Status {
        // As the bytes of the file: the frame's header and its payload.
        recovered.bytes += storage::kFrameHeaderSize + payload.size();
        if (held == group.size()) group.emplace_back();
        v1::ChangeRecord& slot = group[held];
        if (!slot.ParseFromArray(payload.data(),
                                 static_cast<int>(payload.size())) ||
            slot.revision() != revision) {
          return Unparsable();
        }
        ++held;
        if (slot.more()) return absl::OkStatus();
        for (size_t i = 0; i < held; ++i) {
          if (absl::Status s = apply(group[i]); !s.ok()) return s;
        }
        held = 0;
        return absl::OkStatus();
      });
  if (!replayed.ok()) return replayed.status();
  recovered.torn_tail = replayed->torn_tail;
  if (held > 0) {
    recovered.unfinished =
        UnfinishedGroup{group.front().revision(), static_cast<int64_t>(held)};
  }
  if (absl::Status s = engine.FinishRecovery(now); !s.ok()) return s;
  recovered.revision = engine.changes().revision();
  recovered.took = absl::Now() - start;
  recovered.sessions = engine.sessions().Count();
  recovered.objects = engine.registry().Count();
  return recovered;
}

absl::Status Durability::Recover() {
  absl::StatusOr<std::vector<storage::SegmentInfo>> segments =
      dir_->LogSegments();
  if (!segments.ok()) return segments.status();
  absl::StatusOr<RecoveryStats> recovered =
      RecoverEngine(engine_, {dir_->snapshot(), *segments}, absl::Now());
  if (!recovered.ok()) return recovered.status();
  recovered_ = *std::move(recovered);
  if (recovered_.torn_tail) {
    spdlog::warn(
        "data dir {}: {}; the write a crash interrupted was cut off (its "
        "change was never acknowledged)",
        dir_->path(), recovered_.torn_tail->ToString());
  }
  if (const std::optional<UnfinishedGroup>& cut = recovered_.unfinished) {
    // Its records are not applied; the log must not keep them either, or
    // the next records written would follow half a group.
    if (absl::Status s = storage::CutLog(*segments, cut->first_revision);
        !s.ok()) {
      return s;
    }
    spdlog::warn(
        "data dir {}: the log ended inside a write group (a crash "
        "interrupted it): its {} record(s) from revision {} on were cut off "
        "(the numbered calls they belong to had not been logged whole; a "
        "client's retry runs them again)",
        dir_->path(), cut->records, cut->first_revision);
  }
  return absl::OkStatus();
}

Durability::~Durability() {
  if (absl::Status s = Close(); !s.ok()) {
    spdlog::error("closing the log: {}", std::string(s.message()));
  }
  engine_.changes().set_sink(nullptr);
}

absl::Status Durability::Close() {
  {
    absl::MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  cancel_snapshot_.store(true);
  if (snapshots_.joinable()) snapshots_.join();
  if (log_ == nullptr || closed_.load()) return absl::OkStatus();
  // Under the stream's mutex, so that no Write is half done: every record
  // up to closed_at_ is in the log, every later one is dropped.
  engine_.changes().RunLocked([this](uint64_t revision) {
    closed_at_.store(revision);
    closed_.store(true);
  });
  return log_->Close();
}

void Durability::Write(const v1::ChangeRecord& record) {
  if (closed_.load(std::memory_order_relaxed)) return;
  buffer_.clear();
  record.AppendToString(&buffer_);
  log_->Append(record.revision(), buffer_);
  unsnapshotted_bytes_.fetch_add(buffer_.size(), std::memory_order_relaxed);
}

void Durability::WriteGroup(absl::Span<const v1::ChangeRecord> records) {
  if (closed_.load(std::memory_order_relaxed)) return;
  // One buffer for the group (reused, as Write's), cut into the records.
  buffer_.clear();
  std::vector<size_t> ends;
  ends.reserve(records.size());
  for (const v1::ChangeRecord& record : records) {
    record.AppendToString(&buffer_);
    ends.push_back(buffer_.size());
  }
  std::vector<storage::Log::Entry> entries;
  entries.reserve(records.size());
  size_t begin = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    entries.push_back({records[i].revision(), absl::string_view(buffer_).substr(
                                                  begin, ends[i] - begin)});
    begin = ends[i];
  }
  log_->AppendGroup(entries);
  unsnapshotted_bytes_.fetch_add(buffer_.size(), std::memory_order_relaxed);
}

void Durability::RunSnapshots() {
  absl::MutexLock lock(&stop_mu_);
  while (!stopping_) {
    // Polled, not signalled: Write runs under the change stream's mutex
    // and must not wake threads.
    stop_mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                              absl::Milliseconds(200));
    if (stopping_) break;
    if (unsnapshotted_bytes_.load() < options_.snapshot_log_bytes) continue;
    stop_mu_.Unlock();
    const absl::Status s = Snapshot();
    if (!s.ok() && !absl::IsCancelled(s)) {
      spdlog::error(
          "data dir {}: snapshot failed, the log keeps growing "
          "until one succeeds: {}",
          dir_->path(), std::string(s.message()));
    }
    stop_mu_.Lock();
  }
}

absl::Status Durability::Snapshot() {
  absl::MutexLock one_at_a_time(&snapshot_mu_);
  const absl::Time began = absl::Now();
  // The log after `start` replays over the dump (Engine::ReplaySnapshot):
  // every object is dumped at its own revision, later than `start`.
  const uint64_t start = engine_.changes().revision();
  unsnapshotted_bytes_.store(0);
  absl::StatusOr<std::unique_ptr<storage::SnapshotWriter>> writer =
      storage::SnapshotWriter::Create(*dir_, start);
  if (!writer.ok()) return writer.status();
  absl::Status status;
  int64_t bytes = 0;
  std::string payload;
  engine_.DumpTo([&](v1::ChangeRecord& record) {
    if (!status.ok()) return;
    if (cancel_snapshot_.load(std::memory_order_relaxed)) {
      status = absl::CancelledError("the server is shutting down");
      return;
    }
    payload.clear();
    record.AppendToString(&payload);
    bytes += static_cast<int64_t>(payload.size());
    status = (*writer)->Add(start, payload);
  });
  if (!status.ok()) return status;
  absl::StatusOr<std::string> written = (*writer)->Finish();
  if (!written.ok()) return written.status();
  if (absl::Status s = dir_->InstallSnapshot(*written, start); !s.ok()) {
    return s;
  }
  const absl::Duration took = absl::Now() - began;
  spdlog::info("data dir {}: snapshot at revision {} ({} bytes) in {:.3f} s",
               dir_->path(), start, bytes, absl::ToDoubleSeconds(took));
  if (options_.snapshot_taken) options_.snapshot_taken(took, bytes);
  return absl::OkStatus();
}

void Durability::WhenDurable(uint64_t revision, Done done) {
  if (closed_.load(std::memory_order_acquire)) {
    if (revision <= closed_at_.load()) {
      done(absl::OkStatus());
    } else {
      done(absl::UnavailableError(
          "the server is shutting down: this call's change was not logged"));
    }
    return;
  }
  log_->WhenDurable(revision, std::move(done));
}

}  // namespace statehub
