// value_decoder_fuzz: a request's statehub.v1.Value, as a transport would
// parse it off the wire, through handlers::Decoder (the --max_value_bytes and
// --max_depth limits, then internal::DecodeValue) into the engine's Value;
// then the key semantics every dict relies on.
//
// Input: one byte of limits, then a serialized statehub.v1.Value.
//   byte 0, bits 0-6: --max_depth = bits % 49 (48 is the server's maximum);
//   byte 0, bit 7:    --max_value_bytes = 64 instead of 1 MiB.
//
// Invariants, besides "no sanitizer report, no abort":
//   - a refusal is INVALID_ARGUMENT or RESOURCE_EXHAUSTED with a kind, names
//     the object, and is justified (the value really is too deep or big);
//     an accepted value is within the limits;
//   - encode(decode(v)) decodes again to the same encoding (idempotent);
//   - Decoder::Items / Entries agree with decoding the whole list / map;
//   - equality is reflexive (NaN aside) and symmetric; equal keys hash
//     alike; Compare is antisymmetric and agrees with equality on numbers;
//   - decoded maps hold unique, hashable keys that Find finds;
//   - OrderedMap (the dict store) finds every key it holds and none it
//     popped or erased.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "google/protobuf/stubs/logging.h"
#include "server/engine/ordered_map.h"
#include "server/handlers/call.h"
#include "statehub/internal/wire.h"
#include "statehub/status.h"
#include "statehub/v1/value.pb.h"
#include "statehub/value.h"
#include "tests/fuzz/check.h"
#include "tests/fuzz/encoding.h"

namespace statehub {
namespace {

using fuzz::EncodedBytes;

constexpr char kObject[] = "fuzz";
// Pairwise checks are quadratic: they look at this many items at most.
constexpr size_t kMaxPairs = 48;

// Nesting depth as the decoder counts it: a scalar is 0, and each list,
// tuple or map adds one for whatever it holds.
int Depth(const v1::Value& wire) {
  int deepest = -1;
  auto item = [&deepest](const v1::Value& v) {
    deepest = std::max(deepest, Depth(v));
  };
  switch (wire.kind_case()) {
    case v1::Value::kListValue:
      for (const v1::Value& v : wire.list_value().items()) item(v);
      break;
    case v1::Value::kTupleValue:
      for (const v1::Value& v : wire.tuple_value().items()) item(v);
      break;
    case v1::Value::kMapValue:
      for (const v1::MapEntry& e : wire.map_value().entries()) {
        item(e.key());
        item(e.value());
      }
      break;
    default:
      return 0;
  }
  return deepest + 1;
}

// Python's NaN != NaN makes any value holding one unequal to itself.
bool HasNaN(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kDouble:
      return std::isnan(v.AsDouble());
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      for (const Value& item : v.AsItems()) {
        if (HasNaN(item)) return true;
      }
      return false;
    case Value::Kind::kMap:
      for (const auto& [key, value] : v.AsEntries()) {
        if (HasNaN(key) || HasNaN(value)) return true;
      }
      return false;
    default:
      return false;
  }
}

int Sign(int c) { return (c > 0) - (c < 0); }

void CheckRefusal(const absl::Status& status, const v1::Value& wire,
                  const Limits& limits) {
  const absl::StatusCode code = status.code();
  const ErrorKind kind = GetErrorKind(status);
  FUZZ_CHECK(code == absl::StatusCode::kInvalidArgument ||
                 code == absl::StatusCode::kResourceExhausted,
             "unexpected code: %s", status.ToString());
  FUZZ_CHECK(absl::StrContains(status.message(), "dict \"fuzz\""),
             "the message does not name the object: %s", status.ToString());
  FUZZ_CHECK(GetErrorObject(status) == kObject, "no object in %s",
             status.ToString());
  if (code == absl::StatusCode::kResourceExhausted) {
    FUZZ_CHECK(kind == ErrorKind::kLimitExceeded, "%s", status.ToString());
    const std::string limit = GetErrorLimit(status);
    if (limit == "max_depth") {
      FUZZ_CHECK(Depth(wire) > limits.max_depth,
                 "depth %d refused with --max_depth=%d", Depth(wire),
                 limits.max_depth);
    } else {
      FUZZ_CHECK(limit == "max_value_bytes", "limit '%s'", limit);
      FUZZ_CHECK(
          static_cast<int64_t>(wire.ByteSizeLong()) > limits.max_value_bytes,
          "%d bytes refused", wire.ByteSizeLong());
    }
  } else {
    FUZZ_CHECK(kind == ErrorKind::kValueError || kind == ErrorKind::kTypeError,
               "%s", status.ToString());
  }
}

// Equality, hashing and ordering of two values, as dicts and sorts use them.
void CheckPair(const Value& a, const Value& b) {
  const bool eq = a == b;
  FUZZ_CHECK(eq == (b == a), "== is not symmetric: %s, %s", a.Repr(), b.Repr());
  if (eq && CheckKey(a).ok() && CheckKey(b).ok()) {
    FUZZ_CHECK(KeyHash()(a) == KeyHash()(b),
               "equal keys %s and %s hash differently", a.Repr(), b.Repr());
  }
  absl::StatusOr<int> ab = Compare(a, b);
  absl::StatusOr<int> ba = Compare(b, a);
  FUZZ_CHECK(ab.ok() == ba.ok(), "Compare(%s, %s) fails one way only", a.Repr(),
             b.Repr());
  if (ab.ok() && !HasNaN(a) && !HasNaN(b)) {
    FUZZ_CHECK(Sign(*ab) == -Sign(*ba), "Compare(%s, %s) not antisymmetric",
               a.Repr(), b.Repr());
    if (a.is_number() && b.is_number()) {
      FUZZ_CHECK((*ab == 0) == eq, "Compare and == disagree on %s, %s",
                 a.Repr(), b.Repr());
    }
  }
}

// The dict store against a plain list of the distinct keys.
void CheckOrderedMap(const std::vector<Value>& keys) {
  std::vector<Value> distinct;
  OrderedMap map;
  for (size_t i = 0; i < keys.size(); ++i) {
    bool seen = false;
    for (const Value& k : distinct) seen = seen || k == keys[i];
    if (!seen) distinct.push_back(keys[i]);
    map.Set(keys[i], Value(static_cast<int64_t>(i)));
    FUZZ_CHECK(map.Find(keys[i]) != nullptr, "key %s lost right after Set",
               keys[i].Repr());
  }
  FUZZ_CHECK(map.size() == static_cast<int64_t>(distinct.size()),
             "%d entries for %d distinct keys", map.size(), distinct.size());
  for (const Value& k : distinct) {
    FUZZ_CHECK(map.Find(k) != nullptr, "key %s not found", k.Repr());
  }
  int64_t visited = 0;
  map.Visit(0, 0, [&visited](const Value&, const Value&) { ++visited; });
  FUZZ_CHECK(visited == map.size(), "visited %d of %d", visited, map.size());

  // Pop from the end, then refill and erase from the front: a key that
  // left must not be found again.
  while (map.size() > 0) {
    const int64_t before = map.size();
    auto [key, value] = map.PopLast();
    FUZZ_CHECK(map.size() == before - 1, "PopLast left the size at %d",
               map.size());
    FUZZ_CHECK(map.Find(key) == nullptr, "popped key %s still found",
               key.Repr());
  }
  for (const Value& k : distinct) map.Set(k, Value());
  for (const Value& k : distinct) {
    FUZZ_CHECK(map.Erase(k).has_value(), "key %s not erased", k.Repr());
    FUZZ_CHECK(map.Find(k) == nullptr, "erased key %s still found", k.Repr());
  }
  FUZZ_CHECK(map.size() == 0, "%d entries left", map.size());
}

void CheckValue(const Value& v, const v1::Value& wire,
                const handlers::Decoder& decode) {
  FUZZ_CHECK(!v.Repr().empty(), "empty repr");
  const bool nan = HasNaN(v);
  if (!nan) FUZZ_CHECK(v == v, "%s != itself", v.Repr());

  // Round trip: the encoding of a decoded value is a fixed point.
  const std::string once = EncodedBytes(v);
  v1::Value canonical;
  FUZZ_CHECK(canonical.ParseFromString(once), "own encoding does not parse");
  Limits unbounded;
  unbounded.max_depth = 1 << 20;
  unbounded.max_value_bytes = INT64_MAX;
  absl::StatusOr<Value> again =
      handlers::Decoder(unbounded, ObjectType::kDict, kObject)(canonical);
  FUZZ_CHECK(again.ok(), "own encoding refused: %s", again.status().ToString());
  FUZZ_CHECK(EncodedBytes(*again) == once, "encoding of %s is not stable",
             v.Repr());
  if (!nan)
    FUZZ_CHECK(*again == v, "%s decoded again as %s", v.Repr(), again->Repr());
  CheckPair(v, *again);

  absl::Status key = CheckKey(v);
  if (key.ok() && !nan) {
    FUZZ_CHECK(KeyHash()(v) == KeyHash()(*again), "hash of %s unstable",
               v.Repr());
  }

  size_t refs = 0;
  v.ForEachRef([&refs](const Ref&) { ++refs; });
  FUZZ_CHECK(v.HasRefs() == (refs > 0), "HasRefs disagrees on %s", v.Repr());

  if (v.is_sequence()) {
    const auto& wire_items =
        v.is_list() ? wire.list_value().items() : wire.tuple_value().items();
    absl::StatusOr<Value::Items> items = decode.Items(wire_items);
    FUZZ_CHECK(items.ok(), "item refused: %s", items.status().ToString());
    FUZZ_CHECK(items->size() == v.AsItems().size(), "%d items, not %d",
               items->size(), v.AsItems().size());
    const size_t n = std::min(items->size(), kMaxPairs);
    std::vector<Value> keys;
    for (size_t i = 0; i < n; ++i) {
      FUZZ_CHECK(EncodedBytes((*items)[i]) == EncodedBytes(v.AsItems()[i]),
                 "item %d differs", i);
      for (size_t j = 0; j < n; ++j) CheckPair(v.AsItems()[i], v.AsItems()[j]);
      if (CheckKey(v.AsItems()[i]).ok()) keys.push_back(v.AsItems()[i]);
    }
    CheckOrderedMap(keys);
  }

  if (v.is_map()) {
    absl::StatusOr<Value::Entries> entries =
        decode.Entries(wire.map_value().entries());
    FUZZ_CHECK(entries.ok(), "entry refused: %s", entries.status().ToString());
    const Value::Entries& unique = v.AsEntries();
    FUZZ_CHECK(unique.size() <= entries->size(), "map grew");
    std::vector<Value> keys;
    for (size_t i = 0; i < unique.size(); ++i) {
      const Value& k = unique[i].first;
      FUZZ_CHECK(CheckKey(k).ok(), "map key %s is not hashable", k.Repr());
      FUZZ_CHECK(v.Find(k) == &unique[i].second, "map key %s not found",
                 k.Repr());
      if (i < kMaxPairs) {
        for (size_t j = 0; j < i; ++j) {
          FUZZ_CHECK(!(unique[j].first == k), "map keys %s and %s repeat",
                     unique[j].first.Repr(), k.Repr());
        }
      }
    }
    for (const auto& [k, value] : *entries) keys.push_back(k);
    CheckOrderedMap(keys);
  }
}

}  // namespace
}  // namespace statehub

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string field that is not UTF-8 as it refuses to
  // parse it; that is expected here, and a log line per input slows the
  // fuzzer down.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace statehub;
  if (size < 1) return 0;
  Limits limits;
  limits.max_depth = (data[0] & 0x7f) % 49;
  limits.max_value_bytes = (data[0] & 0x80) ? 64 : 1 << 20;
  v1::Value wire;
  // What both transports do: protobuf's own parser and its nesting limit.
  // What it refuses never reaches a handler.
  if (!wire.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;

  const handlers::Decoder decode(limits, ObjectType::kDict, kObject);
  absl::StatusOr<Value> value = decode(wire);
  if (!value.ok()) {
    CheckRefusal(value.status(), wire, limits);
    return 0;
  }
  FUZZ_CHECK(Depth(wire) <= limits.max_depth, "depth %d accepted", Depth(wire));
  FUZZ_CHECK(
      static_cast<int64_t>(wire.ByteSizeLong()) <= limits.max_value_bytes,
      "%d bytes accepted", wire.ByteSizeLong());
  CheckValue(*value, wire, decode);
  return 0;
}
