// lane_frame_fuzz: a byte stream, appended in chunks of varying sizes,
// through the lane's frame decoder (lane::FrameReader, api/LANE.md "Byte
// order and framing"), against a model of the contract that reads the
// whole stream at once.
//
// Input: two bytes of parameters, then the stream.
//   byte 0, bits 0-1: max_length = 64 MiB (the server's default), 4096, 16
//                     or 0;
//   byte 0, bit 2:    no preface expected (the client's side of the
//                     connection) instead of the server's "SHLN";
//   byte 1:           chunking: 0 appends the stream at once; n > 0 appends
//                     chunks of 0 .. n bytes, their sizes drawn from a
//                     generator seeded with n. Next is called until it
//                     returns false after every Append.
// make_corpus.py writes seeds in this format (corpus/lane_frame/).
//
// Invariants, besides "no sanitizer report, no abort":
//   - the frames returned are the model's, in order, however the stream is
//     cut: each one's body is the `length` bytes after its header, never
//     more than max_length; its kind is known and its flags are 0, or
//     NUMBERED (1) on a REQUEST;
//     re-encoding its header (EncodeHeader) gives the stream's 12 bytes,
//     and AppendFrame the stream's bytes of the whole frame;
//   - no frame is held back: once a frame's last byte is appended, Next
//     returns it;
//   - an error is reported exactly when the model finds one (a wrong
//     preface, an unknown kind, any other flags: INVALID_ARGUMENT; a length
//     past max_length: RESOURCE_EXHAUSTED, with the frame's request id;
//     otherwise request id 0: api/LANE.md's Errors table), not before the
//     bytes that show it have arrived, and with a message; once reported, every
//     later Next reports the same error and returns no frame;
//   - buffered() is what was appended minus the preface and the frames
//     returned, and never grows after an error.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "statehub/internal/lane.h"
#include "tests/fuzz/check.h"

namespace statehub::lane {
namespace {

constexpr uint32_t kMaxLengths[] = {64 << 20, 4096, 16, 0};

// The model's reading of a frame header: little-endian by hand, not with
// DecodeHeader, so that a bug there shows as a difference.
Header ParseHeader(absl::string_view at) {
  auto byte = [at](size_t i) { return static_cast<uint8_t>(at[i]); };
  Header h;
  h.length = byte(0) | byte(1) << 8 | byte(2) << 16 | uint32_t{byte(3)} << 24;
  h.request_id =
      byte(4) | byte(5) << 8 | byte(6) << 16 | uint32_t{byte(7)} << 24;
  h.method = static_cast<uint16_t>(byte(8) | byte(9) << 8);
  h.kind = byte(10);
  h.flags = byte(11);
  return h;
}

bool SameHeader(const Header& a, const Header& b) {
  return a.length == b.length && a.request_id == b.request_id &&
         a.method == b.method && a.kind == b.kind && a.flags == b.flags;
}

// FlagsAllowed: no flags, or NUMBERED on a REQUEST (api/LANE.md).
bool FlagsAllowed(const Header& h) {
  return h.flags == 0 || (h.kind == 3 && h.flags == 1);
}

// Model is what api/LANE.md says of the whole stream.
struct Model {
  struct Framed {
    size_t offset = 0;  // of the header
    Header header;
    size_t end() const { return offset + kHeaderSize + header.length; }
  };
  std::vector<Framed> frames;
  // The error, if the stream has one: its code, the request id an ERROR
  // about it carries, and how many bytes must have arrived to tell.
  std::optional<absl::StatusCode> error;
  uint32_t error_request_id = 0;
  size_t error_at = 0;
  // preface: the bytes of the preface consumed (0 or 4).
  size_t preface = 0;

  Model(absl::string_view stream, uint32_t max_length, bool expect_preface) {
    size_t pos = 0;
    if (expect_preface) {
      for (size_t i = 0; i < kPreface.size() && i < stream.size(); ++i) {
        if (stream[i] != kPreface[i]) {
          error = absl::StatusCode::kInvalidArgument;
          error_at = i + 1;
          return;
        }
      }
      if (stream.size() < kPreface.size()) return;
      pos = preface = kPreface.size();
    }
    while (stream.size() - pos >= kHeaderSize) {
      const Header h = ParseHeader(stream.substr(pos, kHeaderSize));
      if (h.kind < 1 || h.kind > 11 || !FlagsAllowed(h)) {
        error = absl::StatusCode::kInvalidArgument;
      } else if (h.length > max_length) {
        error = absl::StatusCode::kResourceExhausted;
      }
      if (error) {
        // Only a frame too long is answered with its id: a frame of an
        // unknown kind or with flags has no id anyone can trust.
        error_request_id =
            *error == absl::StatusCode::kResourceExhausted ? h.request_id : 0;
        error_at = pos + kHeaderSize;
        return;
      }
      if (stream.size() - pos - kHeaderSize < h.length) return;
      frames.push_back({pos, h});
      pos = frames.back().end();
    }
  }
};

// Chunks draws chunk sizes of 0 .. max (all at once for max 0).
class Chunks {
 public:
  explicit Chunks(uint8_t max) : max_(max), state_(max) {}
  size_t Next(size_t left) {
    if (max_ == 0) return left;
    state_ = state_ * 1103515245u + 12345u;
    return std::min<size_t>(left, (state_ >> 16) % (max_ + 1u));
  }

 private:
  const uint8_t max_;
  uint32_t state_;
};

void CheckFrame(const Frame& frame, const Model::Framed& want,
                absl::string_view stream, uint32_t max_length) {
  const Header& h = frame.header;
  FUZZ_CHECK(SameHeader(h, want.header),
             "frame at %d: header (length %d, id %d, method %d, kind %d, "
             "flags %d) differs from the stream's",
             want.offset, h.length, h.request_id, h.method, h.kind, h.flags);
  FUZZ_CHECK(frame.body.size() == h.length,
             "frame at %d: %d body bytes, %d "
             "in its header",
             want.offset, frame.body.size(), h.length);
  FUZZ_CHECK(h.length <= max_length, "frame at %d: %d bytes past max %d",
             want.offset, h.length, max_length);
  FUZZ_CHECK(h.kind >= 1 && h.kind <= 11 && FlagsAllowed(h),
             "frame at %d: kind %d, flags %d", want.offset, h.kind, h.flags);
  FUZZ_CHECK(!KindName(h.kind).empty(), "kind %d has no name", h.kind);
  const absl::string_view bytes =
      stream.substr(want.offset, kHeaderSize + h.length);
  FUZZ_CHECK(frame.body == bytes.substr(kHeaderSize),
             "frame at %d: the body is not the stream's", want.offset);
  char header[kHeaderSize];
  EncodeHeader(h, header);
  FUZZ_CHECK(
      absl::string_view(header, kHeaderSize) == bytes.substr(0, kHeaderSize),
      "frame at %d: EncodeHeader does not give the header back", want.offset);
  FUZZ_CHECK(SameHeader(DecodeHeader(header), h),
             "frame at %d: DecodeHeader(EncodeHeader(h)) != h", want.offset);
  std::string again;
  AppendFrame(&again, static_cast<Kind>(h.kind), h.request_id, h.method,
              frame.body);
  // AppendFrame writes no flags: a client sets NUMBERED on its own.
  again[11] = static_cast<char>(h.flags);
  FUZZ_CHECK(again == bytes, "frame at %d: AppendFrame writes it otherwise",
             want.offset);
}

void CheckError(const FrameError& got, const Model& model) {
  FUZZ_CHECK(model.error.has_value(), "error '%s' in a well-formed stream",
             got.status.ToString());
  FUZZ_CHECK(got.status.code() == *model.error && !got.status.message().empty(),
             "error '%s', expected code %s", got.status.ToString(),
             absl::StatusCodeToString(*model.error));
  FUZZ_CHECK(got.request_id == model.error_request_id,
             "error '%s' for request %d, expected %d", got.status.ToString(),
             got.request_id, model.error_request_id);
}

}  // namespace
}  // namespace statehub::lane

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statehub::lane;
  if (size < 2) return 0;
  const uint32_t max_length = kMaxLengths[data[0] & 3];
  const bool expect_preface = (data[0] & 4) == 0;
  const absl::string_view stream(reinterpret_cast<const char*>(data + 2),
                                 size - 2);
  const Model model(stream, max_length, expect_preface);

  FrameReader reader(max_length, expect_preface);
  Chunks chunks(data[1]);
  size_t appended = 0;
  size_t returned = 0;  // frames
  size_t consumed = 0;  // bytes of the preface and the frames returned
  std::optional<FrameError> first_error;
  for (;;) {
    const size_t n = chunks.Next(stream.size() - appended);
    const size_t before = reader.buffered();
    reader.Append(stream.substr(appended, n));
    appended += n;
    if (first_error) {
      FUZZ_CHECK(reader.buffered() == before,
                 "buffered grew from %d to %d after an error", before,
                 reader.buffered());
    }
    Frame frame;
    std::optional<FrameError> error;
    while (reader.Next(&frame, &error)) {
      FUZZ_CHECK(!first_error, "a frame after the error '%s'",
                 first_error->status.ToString());
      FUZZ_CHECK(returned < model.frames.size(),
                 "frame %d returned; the stream holds %d", returned + 1,
                 model.frames.size());
      const Model::Framed& want = model.frames[returned++];
      CheckFrame(frame, want, stream, max_length);
      FUZZ_CHECK(want.end() <= appended,
                 "frame at %d returned before its "
                 "last byte was appended",
                 want.offset);
      consumed = want.end();
    }
    if (expect_preface && consumed == 0 && appended >= kPreface.size() &&
        model.preface > 0) {
      consumed = model.preface;
    }
    if (error) {
      CheckError(*error, model);
      FUZZ_CHECK(appended >= model.error_at,
                 "error '%s' after %d bytes; the stream shows it after %d",
                 error->status.ToString(), appended, model.error_at);
      if (first_error) {
        FUZZ_CHECK(error->status == first_error->status &&
                       error->request_id == first_error->request_id,
                   "error '%s' (request %d) became '%s' (request %d)",
                   first_error->status.ToString(), first_error->request_id,
                   error->status.ToString(), error->request_id);
      }
      first_error = error;
      // Once more: Next keeps reporting it.
      FUZZ_CHECK(!reader.Next(&frame, &error) && error &&
                     error->status == first_error->status,
                 "the error '%s' was not reported again",
                 first_error->status.ToString());
    } else {
      FUZZ_CHECK(!first_error, "the error '%s' was not reported again",
                 first_error->status.ToString());
      FUZZ_CHECK(!model.error || appended < model.error_at,
                 "no error after %d bytes; the stream shows one after %d",
                 appended, model.error_at);
      // Every frame whose bytes have all arrived was returned.
      size_t due = 0;
      while (due < model.frames.size() && model.frames[due].end() <= appended) {
        ++due;
      }
      FUZZ_CHECK(returned == due, "%d frames returned after %d bytes, %d due",
                 returned, appended, due);
      FUZZ_CHECK(reader.buffered() == appended - consumed,
                 "buffered %d, appended %d, consumed %d", reader.buffered(),
                 appended, consumed);
    }
    FUZZ_CHECK(reader.buffered() <= appended, "buffered %d of %d appended",
               reader.buffered(), appended);
    if (appended == stream.size()) break;
  }
  FUZZ_CHECK(returned == model.frames.size() || first_error,
             "%d of %d frames returned", returned, model.frames.size());
  FUZZ_CHECK(first_error.has_value() == model.error.has_value(),
             "the stream's error was never reported");
  return 0;
}
