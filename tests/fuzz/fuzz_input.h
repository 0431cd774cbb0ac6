// File: tests/fuzz/fuzz_input.h
//
// `Input` reads engine_fuzz's input front to back: bytes that choose, from
// small tables, names, integers and request values. Every byte string is a
// valid input (an exhausted input reads as zeros), and the encodings are
// simple enough for make_corpus.py to write seeds by hand. Keep the two in
// step: the tables and codes below are the format.
//
//   Byte()  one byte; 0 once the input is exhausted.
//   Int()   t = Byte(): t < 200 is t - 100; 200 <= t < 255 is
//           kBoundaryInts[(t - 200) % size]; 255 is 8 more bytes,
//           little-endian.
//   Value   t = Byte() % 14, then:
//            0 null          1 bool: Byte() & 1     2 int: Int()
//            3 double: kDoubles[Byte() % size]
//            4 string: kStrings[Byte() % size] (bytes if not UTF-8)
//            5 bytes: kStrings[Byte() % size]
//            6 list, 7 tuple: n = Byte() % 5, then n Values
//            8 map: n = Byte() % 5, then n (key Value, value Value)
//            9 ref: name (see the harness), type Byte() % 16 (0, 15 bad)
//           10 blob: codec kCodecs[Byte() % 3], data kStrings[Byte() % size]
//           11 deep: n = Byte() lists nested around the int 1
//           12 big: a string of Byte() * 512 bytes
//           13 text: n = Byte() % 32, then n raw bytes (bytes if not
//              UTF-8)
//           Nesting stops (null) at depth 12; deep values go past it.
//
// Example:
//
//   Input in(data, size);
//   while (!in.done()) Step(in.Byte() % kOps);

#ifndef STATEHUB_TESTS_FUZZ_FUZZ_INPUT_H_
#define STATEHUB_TESTS_FUZZ_FUZZ_INPUT_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace statehub::fuzz {

inline constexpr int64_t kBoundaryInts[] = {
    std::numeric_limits<int64_t>::min(),
    std::numeric_limits<int64_t>::max(),
    std::numeric_limits<int64_t>::min() + 1,
    std::numeric_limits<int64_t>::max() - 1,
    std::numeric_limits<int32_t>::min(),
    std::numeric_limits<int32_t>::max(),
    std::numeric_limits<uint32_t>::max(),
    -129,
    128,
    255,
    256,
    65536,
    1000,
    -1000,
    int64_t{1} << 53,
    (int64_t{1} << 53) + 1,
};

inline constexpr double kDoubles[] = {
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    2.5,
    std::numeric_limits<double>::quiet_NaN(),
    std::numeric_limits<double>::infinity(),
    -std::numeric_limits<double>::infinity(),
    1e300,
    -1e300,
    9223372036854775808.0,   // 2^63: just past int64
    -9223372036854775808.0,  // -2^63: int64's minimum
    9007199254740993.0,      // 2^53 + 1 rounds to 2^53
    3.5e38,                  // past float's range
    5e-324,                  // the smallest subnormal
};

inline const std::string kStrings[] = {
    "",                     // 0
    "a",                    // 1
    "b",                    // 2
    "x",                    // 3
    "key",                  // 4
    "\xc3\xa9",             // 5: é
    "\xff\xfe",             // 6: not UTF-8
    "a'b\"c",               // 7
    "\n\t\\",               // 8
    std::string(1, '\0'),   // 9
    "1",                    // 10
    "pickle",               // 11
    std::string(100, 'z'),  // 12
    "jobs",                 // 13
    "_private",             // 14
    "a b",                  // 15
};

inline const std::string kCodecs[] = {"", "pickle", "json"};

// IsUtf8 is true for well-formed UTF-8 (no overlong forms, surrogates or
// code points past U+10FFFF), which protobuf demands of proto3 string
// fields: the transports' parser refuses a request holding anything else,
// so no handler ever sees it.
inline bool IsUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated
    for (size_t k = 1; k <= n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool done() const { return pos_ >= size_; }

  uint8_t Byte() { return done() ? 0 : data_[pos_++]; }
  bool Bit() { return Byte() & 1; }

  int64_t Int() {
    const uint8_t t = Byte();
    if (t < 200) return int64_t{t} - 100;
    if (t < 255) {
      constexpr size_t n = sizeof(kBoundaryInts) / sizeof(kBoundaryInts[0]);
      return kBoundaryInts[(t - 200) % n];
    }
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= uint64_t{Byte()} << (8 * i);
    return static_cast<int64_t>(u);
  }

  template <typename T, size_t N>
  const T& Pick(const T (&table)[N]) {
    return table[Byte() % N];
  }

  // Raw returns the next n bytes (fewer at the end).
  std::string Raw(size_t n) {
    n = std::min(n, size_ - std::min(pos_, size_));
    std::string out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }

 private:
  const uint8_t* const data_;
  const size_t size_;
  size_t pos_ = 0;
};

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_FUZZ_INPUT_H_
