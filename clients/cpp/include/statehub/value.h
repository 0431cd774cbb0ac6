// File: statehub/value.h
//
// `statehub::Value` is the neutral value every shared object holds: null,
// bool, int64, double, string, bytes, list, tuple, map, a ref to another
// shared object, or an opaque blob from a client codec (Python's pickle).
// The server and the C++ client use this same type, so both agree on what is
// equal, what may be a key and how values sort.
//
// Equality follows Python: numbers compare by value across bool, int and
// double (1 == 1.0 == true), a list never equals a tuple, maps compare
// regardless of order, NaN equals nothing.
//
// Example:
//
//   statehub::Value v = 3;
//   assert(v.is_int() && v.AsInt() == 3);
//   statehub::Value config = statehub::Value::Map({
//       {"workers", 8},
//       {"hosts", statehub::Value::List({"a", "b"})},
//   });
//   const statehub::Value* hosts = config.Find("hosts");
//
// Thread safety: a Value is a plain value type; const access from several
// threads is safe, mutation needs outside synchronization.

#ifndef STATEHUB_VALUE_H_
#define STATEHUB_VALUE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace statehub {

// ObjectType is the type of a shared object; the numbers match the wire.
enum class ObjectType {
  kUnspecified = 0,
  kDict = 1,
  kList = 2,
  kNamespace = 3,
  kValue = 4,
  kArray = 5,
  kLock = 6,
  kRLock = 7,
  kCondition = 8,
  kSemaphore = 9,
  kBoundedSemaphore = 10,
  kEvent = 11,
  kBarrier = 12,
  kQueue = 13,
  kJoinableQueue = 14,
};

// ObjectTypeName returns the lower-case name of `type` as used in messages
// and docs ("dict", "bounded_semaphore"), or "unspecified".
absl::string_view ObjectTypeName(ObjectType type);

// Ref names another shared object. Equality compares name and type only.
struct Ref {
  std::string name;
  ObjectType type = ObjectType::kUnspecified;
  // hold is set by the client library when the server granted this process a
  // hold on an anonymous target; the hold is released when the last copy of
  // the Ref goes away. The server never sets it.
  std::shared_ptr<const void> hold;
};

// Blob is a value encoded by a client codec, stored and compared as bytes.
struct Blob {
  std::string codec;
  std::string data;
};

class Value {
 public:
  enum class Kind {
    kNull,
    kBool,
    kInt,
    kDouble,
    kString,
    kBytes,
    kList,
    kTuple,
    kMap,
    kRef,
    kBlob,
  };
  using Items = std::vector<Value>;
  // Entries of a map in insertion order; keys are unique under Equals.
  using Entries = std::vector<std::pair<Value, Value>>;

  // Null.
  Value() = default;
  Value(std::nullptr_t) {}  // NOLINT: null converts implicitly, as None does.
  // Scalars convert implicitly so that `Value v = 3;` and `d.Set("k", 1.5)`
  // read naturally.
  Value(bool b) : rep_(b) {}                             // NOLINT
  Value(int i) : rep_(static_cast<int64_t>(i)) {}        // NOLINT
  Value(long i) : rep_(static_cast<int64_t>(i)) {}       // NOLINT
  Value(long long i) : rep_(static_cast<int64_t>(i)) {}  // NOLINT
  Value(unsigned i) : rep_(static_cast<int64_t>(i)) {}   // NOLINT
  Value(double d) : rep_(d) {}                           // NOLINT
  Value(const char* s) : rep_(std::string(s)) {}         // NOLINT
  Value(std::string s) : rep_(std::move(s)) {}           // NOLINT
  Value(absl::string_view s) : rep_(std::string(s)) {}   // NOLINT
  Value(Ref ref)                                         // NOLINT
      : rep_(std::make_shared<const Ref>(std::move(ref))) {}
  Value(Blob blob)  // NOLINT
      : rep_(std::make_shared<const Blob>(std::move(blob))) {}

  // Factories for the kinds that have no natural C++ literal.
  static Value Bytes(std::string data);
  static Value List(Items items = {});
  static Value Tuple(Items items = {});
  // Map keeps the first position of a repeated key and its last value, as a
  // Python dict literal does.
  static Value Map(std::vector<std::pair<Value, Value>> entries = {});

  Kind kind() const { return static_cast<Kind>(rep_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool is_bool() const { return kind() == Kind::kBool; }
  bool is_int() const { return kind() == Kind::kInt; }
  bool is_double() const { return kind() == Kind::kDouble; }
  // is_number is true for bool, int and double, which Python adds and
  // compares together.
  bool is_number() const { return is_bool() || is_int() || is_double(); }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_bytes() const { return kind() == Kind::kBytes; }
  bool is_list() const { return kind() == Kind::kList; }
  bool is_tuple() const { return kind() == Kind::kTuple; }
  // is_sequence is true for list and tuple.
  bool is_sequence() const { return is_list() || is_tuple(); }
  bool is_map() const { return kind() == Kind::kMap; }
  bool is_ref() const { return kind() == Kind::kRef; }
  bool is_blob() const { return kind() == Kind::kBlob; }

  // Accessors. REQUIRES: the value has that kind; otherwise the process
  // aborts with a message naming both kinds.
  bool AsBool() const;
  int64_t AsInt() const;
  double AsDouble() const;
  const std::string& AsString() const;
  const std::string& AsBytes() const;
  const Items& AsItems() const;  // list or tuple
  Items& MutableItems();         // list or tuple
  const Entries& AsEntries() const;
  Entries& MutableEntries();
  const Ref& AsRef() const;
  const Blob& AsBlob() const;

  // ToDouble returns a number as a double. REQUIRES: is_number().
  double ToDouble() const;

  // Find returns the value stored under `key` in a map, or nullptr if absent
  // or if this is not a map.
  const Value* Find(const Value& key) const;

  // Python-style repr: None, True, 3, 1.5, 'text', b'raw', [1, 2], (1,),
  // {'k': 1}; refs as <dict "name">, blobs as <pickle blob of 12 bytes>.
  std::string Repr() const;
  // TypeName is Python's name for the kind: "NoneType", "int", "str", ...
  absl::string_view TypeName() const;

  // True if any ref is reachable in this value (nested values included).
  bool HasRefs() const;
  // Calls fn(const Ref&) for every ref in this value, depth first.
  template <typename Fn>
  void ForEachRef(Fn&& fn) const;

  friend bool operator==(const Value& a, const Value& b);
  friend bool operator!=(const Value& a, const Value& b) { return !(a == b); }

 private:
  struct BytesRep {
    std::string data;
  };
  struct ListRep {
    Items items;
  };
  struct TupleRep {
    Items items;
  };
  struct MapRep {
    Entries entries;
  };
  // The alternative index is the Kind. Refs and blobs are rare and large,
  // so they live behind an immutable shared pointer: that keeps a Value at
  // 40 bytes (a std::string and the index), which is what a stored dict
  // entry or list item costs the server (docs/benchmarks.md).
  std::variant<std::monostate, bool, int64_t, double, std::string, BytesRep,
               ListRep, TupleRep, MapRep, std::shared_ptr<const Ref>,
               std::shared_ptr<const Blob>>
      rep_;
};

// KeyHash and KeyEq make Values usable as hash-map keys with Python's key
// semantics. REQUIRES: CheckKey(key).ok() for every key hashed.
struct KeyHash {
  size_t operator()(const Value& key) const;
};
struct KeyEq {
  bool operator()(const Value& a, const Value& b) const { return a == b; }
};

// CheckKey returns OK if `key` may be a dict key: a scalar or a tuple of
// keys, and not NaN. Otherwise an INVALID_ARGUMENT status whose message says
// why ("unhashable type: 'list'"), without naming an object.
absl::Status CheckKey(const Value& key);

// Compare orders two values as Python's `<` would: numbers by value, strings
// and bytes lexicographically, lists and tuples item by item. Returns <0, 0 or
// >0, or INVALID_ARGUMENT ("'<' not supported between instances of 'str' and
// 'int'") when Python would raise TypeError.
absl::StatusOr<int> Compare(const Value& a, const Value& b);

template <typename Fn>
void Value::ForEachRef(Fn&& fn) const {
  switch (kind()) {
    case Kind::kRef:
      fn(AsRef());
      break;
    case Kind::kList:
    case Kind::kTuple:
      for (const Value& item : AsItems()) item.ForEachRef(fn);
      break;
    case Kind::kMap:
      for (const auto& [key, value] : AsEntries()) value.ForEachRef(fn);
      break;
    default:
      break;
  }
}

}  // namespace statehub

#endif  // STATEHUB_VALUE_H_
