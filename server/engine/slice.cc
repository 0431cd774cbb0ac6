#include "server/engine/slice.h"

#include <limits>

#include "absl/status/status.h"

namespace statehub {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Clamps an index as PySlice_AdjustIndices does for start and stop.
int64_t Adjust(int64_t index, int64_t length, int64_t step) {
  if (index < 0) {
    index += length;  // cannot overflow: index < 0 <= length
    if (index < 0) index = step < 0 ? -1 : 0;
  } else if (index >= length) {
    index = step < 0 ? length - 1 : length;
  }
  return index;
}

}  // namespace

absl::StatusOr<SliceRange> ResolveSlice(const SliceSpec& spec, int64_t length) {
  int64_t step = spec.step.value_or(1);
  if (step == 0) return absl::InvalidArgumentError("slice step cannot be zero");
  // -step must not overflow, as in CPython.
  if (step < -kMax) step = -kMax;
  int64_t start = spec.start ? Adjust(*spec.start, length, step)
                             : (step < 0 ? length - 1 : 0);
  int64_t stop =
      spec.stop ? Adjust(*spec.stop, length, step) : (step < 0 ? -1 : length);
  SliceRange range{start, step, 0};
  if (step < 0) {
    if (stop < start) range.count = (start - stop - 1) / (-step) + 1;
  } else if (start < stop) {
    range.count = (stop - start - 1) / step + 1;
  }
  return range;
}

std::optional<int64_t> NormalizeIndex(int64_t index, int64_t length) {
  if (index < 0) index += length;
  if (index < 0 || index >= length) return std::nullopt;
  return index;
}

}  // namespace statehub
