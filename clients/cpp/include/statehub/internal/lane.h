// File: statehub/internal/lane.h
//
// The lane's framing (api/LANE.md): the connection preface, the 12-byte
// frame header, and FrameReader, which cuts a byte stream into frames and
// refuses malformed ones. Shared by the server and the C++ client; not part
// of the public API.
//
// Example:
//
//   FrameReader reader(max_message_bytes);
//   reader.Append(bytes_from_socket);
//   Frame frame;
//   std::optional<FrameError> error;
//   while (reader.Next(&frame, &error)) Handle(frame);
//   if (error) { /* send ERROR error->request_id, close */ }
//   // else: wait for more bytes
//
// Thread safety: FrameReader is not thread-safe; the rest is stateless.

#ifndef STATEHUB_INTERNAL_LANE_H_
#define STATEHUB_INTERNAL_LANE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace statehub::lane {

// kPreface is what a client writes first on a lane connection.
inline constexpr absl::string_view kPreface = "SHLN";
// kProtocolVersion is the LaneHello.protocol_version this code speaks.
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 12;

enum class Kind : uint8_t {
  kHello = 1,
  kWelcome = 2,
  kRequest = 3,
  kResponse = 4,
  kError = 5,
  kCancel = 6,
  kPing = 7,
  kPong = 8,
  kRelease = 9,
  kGoodbye = 10,
  kEvent = 11,
};

// kNumbered, the one flag there is (REQUEST frames only): the body starts
// with the call's number and the client's `seen`, 8 bytes each, before the
// request message (api/LANE.md, "Numbered calls").
inline constexpr uint8_t kNumbered = 0x01;
inline constexpr size_t kNumberSize = 16;

// KindName is "HELLO", "REQUEST", ... or "kind N" for an unknown one.
std::string KindName(uint8_t kind);

struct Header {
  uint32_t length = 0;
  uint32_t request_id = 0;
  uint16_t method = 0;
  uint8_t kind = 0;
  uint8_t flags = 0;
};

// EncodeHeader writes `h` into out[0 .. kHeaderSize).
void EncodeHeader(const Header& h, char* out);
// DecodeHeader reads a header from in[0 .. kHeaderSize).
Header DecodeHeader(const char* in);

// AppendFrame appends one frame, header and `body` (serialized), to `out`.
void AppendFrame(std::string* out, Kind kind, uint32_t request_id,
                 uint16_t method, const google::protobuf::MessageLite* body);
// AppendFrame with a body already serialized.
void AppendFrame(std::string* out, Kind kind, uint32_t request_id,
                 uint16_t method, absl::string_view body);

// A frame cut from the stream; `body` points into the reader's buffer and
// is valid until the reader's next Append or Next.
struct Frame {
  Header header;
  absl::string_view body;
};

// FrameError is why a stream of frames cannot go on, and the request id
// (0 if none) an ERROR frame about it should carry.
struct FrameError {
  absl::Status status;
  uint32_t request_id = 0;
};

class FrameReader {
 public:
  // `max_length` bounds a frame's body; `expect_preface` makes the reader
  // demand the preface first (the server's side).
  FrameReader(uint32_t max_length, bool expect_preface)
      : max_length_(max_length), need_preface_(expect_preface) {}

  // Append adds bytes read from the stream.
  void Append(absl::string_view bytes);

  // Next sets *frame to the next whole frame and returns true; returns
  // false when more bytes are needed, or when the stream is malformed (then
  // *error says why). After an error the stream is unusable and every later
  // call reports the same error. Errors (INVALID_ARGUMENT unless said): a wrong
  // preface; an unknown kind or flags (kNumbered on a REQUEST excepted); a body
  // longer than max_length (RESOURCE_EXHAUSTED, with the frame's request id).
  bool Next(Frame* frame, std::optional<FrameError>* error);

  // buffered is the number of bytes held and not yet returned as frames.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  const uint32_t max_length_;
  bool need_preface_;
  std::string buffer_;
  size_t consumed_ = 0;
  std::optional<FrameError> error_;
};

}  // namespace statehub::lane

#endif  // STATEHUB_INTERNAL_LANE_H_
