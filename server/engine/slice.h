// File: server/engine/slice.h
//
// Python's index and slice arithmetic (PySlice_Unpack and
// PySlice_AdjustIndices), shared by lists and arrays.

#ifndef STATEHUB_SERVER_ENGINE_SLICE_H_
#define STATEHUB_SERVER_ENGINE_SLICE_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"

namespace statehub {

// SliceSpec is slice(start, stop, step); nullopt is None.
struct SliceSpec {
  std::optional<int64_t> start;
  std::optional<int64_t> stop;
  std::optional<int64_t> step;
};

// SliceRange is the resolved slice: positions start + i * step, i < count.
struct SliceRange {
  int64_t start = 0;
  int64_t step = 1;
  int64_t count = 0;
  int64_t at(int64_t i) const { return start + i * step; }
};

// ResolveSlice applies a slice to a sequence of `length` items. Fails with
// INVALID_ARGUMENT "slice step cannot be zero" for step 0 (no object named:
// callers add it).
absl::StatusOr<SliceRange> ResolveSlice(const SliceSpec& spec, int64_t length);

// NormalizeIndex maps a possibly negative index onto [0, length), or returns
// nullopt if it is out of range.
std::optional<int64_t> NormalizeIndex(int64_t index, int64_t length);

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_SLICE_H_
