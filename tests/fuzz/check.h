// File: tests/fuzz/check.h
//
// FUZZ_CHECK: the fuzz targets' invariant check. A broken invariant prints
// what was expected and aborts, which libFuzzer reports as a crash and saves
// the input that caused it (unlike assert, it stays on in release builds).
//
// Example:
//
//   FUZZ_CHECK(len == items, "dict %s: len %d but %d items", name, len,
//              items);

#ifndef STATEHUB_TESTS_FUZZ_CHECK_H_
#define STATEHUB_TESTS_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_format.h"

#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", __FILE__, \
                   __LINE__, #cond, absl::StrFormat(__VA_ARGS__).c_str());     \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

#endif  // STATEHUB_TESTS_FUZZ_CHECK_H_
