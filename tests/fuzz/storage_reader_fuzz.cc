// storage_reader_fuzz: a file's bytes through the storage reader
// (storage::RecordReader, docs/storage-format.md), read from memory and
// from a file (a memfd, through its /proc path, so that the file reader's
// windowed preads are covered too), with and without a torn tail allowed.
//
// Input: the file's bytes, as they are (corpus/storage_reader_fuzz/ holds
// small valid segments and snapshots written by the writer).
//
// Invariants, besides "no sanitizer report, no abort":
//   - a header error names the file; otherwise every frame returned is
//     whole and valid: its header and payload checksums hold (checked here
//     by hand), it starts where the previous one ended (the first right
//     after the header), and the revision rules hold (strictly increasing
//     and at least the header's in a log segment, non-decreasing in a
//     snapshot);
//   - the reader ends exactly one way: at the end of the file, at a torn
//     tail (which starts at valid_end, runs to the end of the file and has
//     no valid frame after it), or with an error naming the file and the
//     byte offset where the bad frame starts;
//   - the file reader and the memory reader agree; refusing torn tails
//     returns the same frames and turns a torn tail into DATA_LOSS.

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "server/storage/record_file.h"
#include "tests/fuzz/check.h"

namespace statehub::storage {
namespace {

uint64_t LoadLE(absl::string_view at, size_t i, int bytes) {
  uint64_t v = 0;
  for (int b = bytes - 1; b >= 0; --b) {
    v = v << 8 | static_cast<uint8_t>(at[i + b]);
  }
  return v;
}

// ValidFrameAt: both checksums of a frame at `at` hold (the model of
// "valid frame" in the torn-tail rule).
bool ValidFrameAt(absl::string_view file, size_t at) {
  if (file.size() - at < kFrameHeaderSize) return false;
  if (Checksum(file.substr(at + 4, 12)) != LoadLE(file, at, 4)) return false;
  const uint64_t length = LoadLE(file, at + 4, 4);
  if (length > kMaxPayloadBytes ||
      file.size() - at - kFrameHeaderSize < length) {
    return false;
  }
  return Checksum(file.substr(at + kFrameHeaderSize, length)) ==
         LoadLE(file, at + 16, 4);
}

struct Outcome {
  absl::Status open;  // the header's verdict
  std::vector<std::pair<uint64_t, std::string>> frames;
  absl::Status status;
  std::optional<TornTail> torn_tail;
};

Outcome ReadAndCheck(absl::StatusOr<std::unique_ptr<RecordReader>> opened,
                     absl::string_view file, const std::string& name) {
  Outcome out;
  if (!opened.ok()) {
    out.open = opened.status();
    FUZZ_CHECK(absl::StrContains(out.open.message(), name),
               "header error '%s' does not name the file", out.open.ToString());
    return out;
  }
  RecordReader& r = **opened;
  FUZZ_CHECK(file.size() >= kFileHeaderSize && r.version() >= 1 &&
                 r.version() <= kFormatVersion,
             "header accepted: %d bytes, version %d", file.size(), r.version());
  uint64_t expect_offset = kFileHeaderSize;
  Frame frame;
  while (r.Next(&frame)) {
    FUZZ_CHECK(frame.offset == expect_offset, "frame at %d, expected at %d",
               frame.offset, expect_offset);
    FUZZ_CHECK(ValidFrameAt(file, frame.offset),
               "frame at %d returned with a bad checksum", frame.offset);
    FUZZ_CHECK(
        frame.revision == LoadLE(file, frame.offset + 8, 8) &&
            frame.payload == file.substr(frame.offset + kFrameHeaderSize,
                                         LoadLE(file, frame.offset + 4, 4)),
        "frame at %d is not the file's", frame.offset);
    if (!out.frames.empty()) {
      const uint64_t prev = out.frames.back().first;
      FUZZ_CHECK(r.kind() == FileKind::kLog ? frame.revision > prev
                                            : frame.revision >= prev,
                 "revision %d after %d", frame.revision, prev);
    }
    FUZZ_CHECK(
        r.kind() != FileKind::kLog || frame.revision >= r.header_revision(),
        "revision %d below the first %d", frame.revision, r.header_revision());
    out.frames.emplace_back(frame.revision, std::string(frame.payload));
    expect_offset += kFrameHeaderSize + frame.payload.size();
  }
  FUZZ_CHECK(!r.Next(&frame), "a frame after the end");
  FUZZ_CHECK(r.valid_end() == expect_offset, "valid_end %d, frames end at %d",
             r.valid_end(), expect_offset);
  out.status = r.status();
  out.torn_tail = r.torn_tail();
  if (!out.status.ok()) {
    FUZZ_CHECK(!out.torn_tail, "both an error and a torn tail");
    FUZZ_CHECK(
        absl::StrContains(out.status.message(), name) &&
            absl::StrContains(out.status.message(),
                              absl::StrCat("byte offset ", expect_offset)),
        "error '%s' names neither the file nor offset %d",
        out.status.ToString(), expect_offset);
  } else if (out.torn_tail) {
    FUZZ_CHECK(out.torn_tail->offset == expect_offset &&
                   out.torn_tail->bytes == file.size() - expect_offset,
               "torn tail at %d (%d bytes) in a file of %d, frames end at %d",
               out.torn_tail->offset, out.torn_tail->bytes, file.size(),
               expect_offset);
    for (size_t at = expect_offset + 1; at < file.size(); ++at) {
      FUZZ_CHECK(!ValidFrameAt(file, at),
                 "torn tail at %d, but a valid frame starts at %d",
                 expect_offset, at);
    }
  } else {
    FUZZ_CHECK(expect_offset == file.size(), "ended at %d of %d bytes",
               expect_offset, file.size());
  }
  return out;
}

bool Same(const Outcome& a, const Outcome& b) {
  return a.open == b.open && a.frames == b.frames && a.status == b.status &&
         a.torn_tail.has_value() == b.torn_tail.has_value();
}

}  // namespace
}  // namespace statehub::storage

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statehub::storage;
  const absl::string_view file(reinterpret_cast<const char*>(data), size);

  // The file reader, through a memfd, and the memory reader under the
  // same name, must agree.
  const int fd = memfd_create("storage_reader_fuzz", MFD_CLOEXEC);
  FUZZ_CHECK(fd >= 0, "memfd_create failed");
  for (size_t done = 0; done < size;) {
    const ssize_t n = write(fd, data + done, size - done);
    FUZZ_CHECK(n > 0, "write to the memfd failed");
    done += static_cast<size_t>(n);
  }
  const std::string name = absl::StrCat("/proc/self/fd/", fd);
  const Outcome from_file =
      ReadAndCheck(RecordReader::OpenFile(name), file, name);
  close(fd);
  const Outcome from_memory =
      ReadAndCheck(RecordReader::OpenBuffer(name, file), file, name);
  FUZZ_CHECK(Same(from_file, from_memory),
             "file and memory readers differ: '%s' / '%s', %d / %d frames",
             from_file.status.ToString(), from_memory.status.ToString(),
             from_file.frames.size(), from_memory.frames.size());

  const Outcome strict = ReadAndCheck(
      RecordReader::OpenBuffer(name, file, {.allow_torn_tail = false}), file,
      name);
  FUZZ_CHECK(strict.frames == from_memory.frames,
             "refusing torn tails changed the frames");
  if (from_memory.torn_tail) {
    FUZZ_CHECK(strict.status.code() == absl::StatusCode::kDataLoss,
               "a torn tail, refused, gave '%s'", strict.status.ToString());
  } else {
    FUZZ_CHECK(strict.status == from_memory.status && !strict.torn_tail,
               "refusing torn tails changed '%s' to '%s'",
               from_memory.status.ToString(), strict.status.ToString());
  }
  return 0;
}
