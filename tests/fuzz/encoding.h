// File: tests/fuzz/encoding.h
//
// Deterministic bytes of wire messages and values, so the fuzz targets can
// compare two values by their encodings: unlike Value's ==, that treats a
// NaN as equal to itself and tells 1 from 1.0 and true.
//
// Example:
//
//   FUZZ_CHECK(EncodedBytes(got) == EncodedBytes(want), "...");

#ifndef STATEHUB_TESTS_FUZZ_ENCODING_H_
#define STATEHUB_TESTS_FUZZ_ENCODING_H_

#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/message_lite.h"
#include "statehub/internal/wire.h"
#include "statehub/value.h"

namespace statehub::fuzz {

// WireBytes serializes `message` deterministically (map fields sorted).
inline std::string WireBytes(const google::protobuf::MessageLite& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

// EncodedBytes is the wire encoding of `value` (internal::EncodeValue).
inline std::string EncodedBytes(const Value& value) {
  v1::Value wire;
  internal::EncodeValue(value, &wire);
  return WireBytes(wire);
}

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_ENCODING_H_
