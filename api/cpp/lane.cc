#include "statehub/internal/lane.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/message_lite.h"

namespace statehub::lane {

std::string KindName(uint8_t kind) {
  static constexpr const char* kNames[] = {
      nullptr,  "HELLO", "WELCOME", "REQUEST", "RESPONSE", "ERROR",
      "CANCEL", "PING",  "PONG",    "RELEASE", "GOODBYE",  "EVENT"};
  if (kind >= 1 && kind < std::size(kNames)) return kNames[kind];
  return absl::StrFormat("kind %d", kind);
}

void EncodeHeader(const Header& h, char* out) {
  absl::little_endian::Store32(out, h.length);
  absl::little_endian::Store32(out + 4, h.request_id);
  absl::little_endian::Store16(out + 8, h.method);
  out[10] = static_cast<char>(h.kind);
  out[11] = static_cast<char>(h.flags);
}

Header DecodeHeader(const char* in) {
  Header h;
  h.length = absl::little_endian::Load32(in);
  h.request_id = absl::little_endian::Load32(in + 4);
  h.method = absl::little_endian::Load16(in + 8);
  h.kind = static_cast<uint8_t>(in[10]);
  h.flags = static_cast<uint8_t>(in[11]);
  return h;
}

void AppendFrame(std::string* out, Kind kind, uint32_t request_id,
                 uint16_t method, const google::protobuf::MessageLite* body) {
  const size_t length = body == nullptr ? 0 : body->ByteSizeLong();
  const size_t at = out->size();
  out->resize(at + kHeaderSize + length);
  EncodeHeader({static_cast<uint32_t>(length), request_id, method,
                static_cast<uint8_t>(kind), 0},
               out->data() + at);
  if (length > 0) {
    body->SerializeWithCachedSizesToArray(
        reinterpret_cast<uint8_t*>(out->data() + at + kHeaderSize));
  }
}

void AppendFrame(std::string* out, Kind kind, uint32_t request_id,
                 uint16_t method, absl::string_view body) {
  char header[kHeaderSize];
  EncodeHeader({static_cast<uint32_t>(body.size()), request_id, method,
                static_cast<uint8_t>(kind), 0},
               header);
  out->append(header, kHeaderSize);
  out->append(body.data(), body.size());
}

void FrameReader::Append(absl::string_view bytes) {
  if (error_) return;
  // Drop what earlier frames used before growing the buffer.
  if (consumed_ > 0 && (consumed_ == buffer_.size() || consumed_ > 4096)) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

bool FrameReader::Next(Frame* frame, std::optional<FrameError>* error) {
  if (error_) {
    *error = error_;
    return false;
  }
  absl::string_view rest(buffer_.data() + consumed_,
                         buffer_.size() - consumed_);
  if (need_preface_) {
    const size_t n = std::min(rest.size(), kPreface.size());
    if (rest.substr(0, n) != kPreface.substr(0, n)) {
      error_ = FrameError{absl::InvalidArgumentError(
          "not a statehub lane connection: it must start with the preface "
          "\"SHLN\" (api/LANE.md)")};
      *error = error_;
      return false;
    }
    if (n < kPreface.size()) return false;
    need_preface_ = false;
    consumed_ += kPreface.size();
    rest.remove_prefix(kPreface.size());
  }
  if (rest.size() < kHeaderSize) return false;
  const Header h = DecodeHeader(rest.data());
  if (h.kind < static_cast<uint8_t>(Kind::kHello) ||
      h.kind > static_cast<uint8_t>(Kind::kEvent)) {
    error_ = FrameError{absl::InvalidArgumentError(
        absl::StrFormat("unknown lane frame kind %d", h.kind))};
  } else if (h.flags != 0 && (h.kind != static_cast<uint8_t>(Kind::kRequest) ||
                              h.flags != kNumbered)) {
    error_ = FrameError{absl::InvalidArgumentError(absl::StrFormat(
        "lane %s frame with flags %#x: only a REQUEST may have a flag, "
        "NUMBERED (1)",
        KindName(h.kind), h.flags))};
  } else if (h.length > max_length_) {
    error_ = FrameError{
        absl::ResourceExhaustedError(absl::StrFormat(
            "a lane %s frame of %d bytes exceeds --max_message_bytes=%d",
            KindName(h.kind), h.length, max_length_)),
        h.request_id};
  }
  if (error_) {
    *error = error_;
    return false;
  }
  if (rest.size() - kHeaderSize < h.length) return false;
  frame->header = h;
  frame->body = rest.substr(kHeaderSize, h.length);
  consumed_ += kHeaderSize + h.length;
  return true;
}

}  // namespace statehub::lane
