// File: server/engine/numbers.h
//
// Python's `+` on the numeric kinds, for the atomic increments of dicts and
// value cells.

#ifndef STATEHUB_SERVER_ENGINE_NUMBERS_H_
#define STATEHUB_SERVER_ENGINE_NUMBERS_H_

#include "absl/status/statusor.h"
#include "statehub/value.h"

namespace statehub {

// Add returns a + b as Python computes it for bool/int/double: int + int is an
// int, a double on either side makes a double, bools count as 0 and 1.
// Errors (messages name no object): INVALID_ARGUMENT "unsupported operand
// type(s) for +: 'str' and 'int'"; OUT_OF_RANGE "integer overflow" when an
// int sum leaves int64.
absl::StatusOr<Value> Add(const Value& a, const Value& b);

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_NUMBERS_H_
