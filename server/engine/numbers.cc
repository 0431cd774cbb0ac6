#include "server/engine/numbers.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace statehub {

absl::StatusOr<Value> Add(const Value& a, const Value& b) {
  if (!a.is_number() || !b.is_number()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unsupported operand type(s) for +: '%s' and '%s'",
                        a.TypeName(), b.TypeName()));
  }
  if (a.is_double() || b.is_double()) return Value(a.ToDouble() + b.ToDouble());
  const int64_t x = a.is_bool() ? a.AsBool() : a.AsInt();
  const int64_t y = b.is_bool() ? b.AsBool() : b.AsInt();
  int64_t sum;
  if (__builtin_add_overflow(x, y, &sum)) {
    return absl::OutOfRangeError("integer overflow: the sum leaves int64");
  }
  return Value(sum);
}

}  // namespace statehub
