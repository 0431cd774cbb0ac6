#include "statehub/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace statehub {
namespace {

constexpr absl::string_view kKindNames[] = {"null",   "bool",  "int",  "double",
                                            "string", "bytes", "list", "tuple",
                                            "map",    "ref",   "blob"};

[[noreturn]] void WrongKind(Value::Kind want, Value::Kind have) {
  std::fprintf(stderr, "statehub::Value: expected %s, have %s\n",
               kKindNames[static_cast<int>(want)].data(),
               kKindNames[static_cast<int>(have)].data());
  std::abort();
}

// Python's repr of a str or bytes body: single quotes unless the text holds a
// single quote and no double quote; escapes for control bytes.
std::string QuoteRepr(absl::string_view text, bool bytes) {
  const bool double_quotes = text.find('\'') != absl::string_view::npos &&
                             text.find('"') == absl::string_view::npos;
  const char quote = double_quotes ? '"' : '\'';
  std::string out = bytes ? "b" : "";
  out += quote;
  for (unsigned char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c == static_cast<unsigned char>(quote)) {
          out += '\\';
          out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f || (bytes && c >= 0x80)) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += quote;
  return out;
}

// Python's float repr: the shortest digits that round-trip, positional when
// the decimal exponent is in [-4, 16) (1000000.0, 0.0001) and scientific
// otherwise (1e+16, 1e-05), always with a '.' or an exponent; "inf"/"nan"
// spelled as Python does. (std::to_chars' own choice, whichever form is
// shorter, differs: it writes 1e+06.)
std::string DoubleRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  // buf holds "[-]D[.DDD]e(+|-)XX" with at least two exponent digits, which
  // is Python's scientific form too.
  const absl::string_view sci(buf, end - buf);
  const size_t e = sci.find('e');
  int exponent = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.end(),
                  exponent);
  if (exponent < -4 || exponent >= 16) return std::string(sci);
  std::string out = sci[0] == '-' ? "-" : "";
  std::string digits;
  for (char c : sci.substr(0, e)) {
    if (c >= '0' && c <= '9') digits += c;
  }
  const int point = exponent + 1;  // digits before the decimal point
  const int n = static_cast<int>(digits.size());
  if (point <= 0) {
    absl::StrAppend(&out, "0.", std::string(-point, '0'), digits);
  } else if (point >= n) {
    absl::StrAppend(&out, digits, std::string(point - n, '0'), ".0");
  } else {
    absl::StrAppend(&out, digits.substr(0, point), ".", digits.substr(point));
  }
  return out;
}

// Integral doubles hash and compare as the integer they equal, as in Python.
bool DoubleAsInt(double d, int64_t* out) {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) {
    return false;
  }
  const auto i = static_cast<int64_t>(d);
  if (static_cast<double>(i) != d) return false;
  *out = i;
  return true;
}

// Exact comparison of two numbers (bool, int, double): <0, 0, >0, or 2 when
// unordered (NaN).
int CompareNumbers(const Value& a, const Value& b) {
  if (!a.is_double() && !b.is_double()) {
    const int64_t x = a.is_bool() ? a.AsBool() : a.AsInt();
    const int64_t y = b.is_bool() ? b.AsBool() : b.AsInt();
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_double() && b.is_double()) {
    const double x = a.AsDouble(), y = b.AsDouble();
    if (std::isnan(x) || std::isnan(y)) return 2;
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  // One int, one double: compare without losing int precision.
  const bool flip = a.is_double();
  const Value& iv = flip ? b : a;
  const double d = flip ? a.AsDouble() : b.AsDouble();
  const int64_t i = iv.is_bool() ? iv.AsBool() : iv.AsInt();
  int r;
  if (std::isnan(d)) return 2;
  if (d >= 9223372036854775808.0) {
    r = -1;
  } else if (d < -9223372036854775808.0) {
    r = 1;
  } else {
    const double fl = std::floor(d);
    const auto di = static_cast<int64_t>(fl);
    if (i < di) {
      r = -1;
    } else if (i > di) {
      r = 1;
    } else {
      r = fl == d ? 0 : -1;  // i == floor(d) < d when d has a fraction
    }
  }
  return flip ? -r : r;
}

bool ItemsEqual(const Value::Items& a, const Value::Items& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!(a[i] == b[i])) return false;
  }
  return true;
}

absl::StatusOr<int> CompareItems(const Value::Items& a, const Value::Items& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] == b[i]) continue;
    return Compare(a[i], b[i]);
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

}  // namespace

absl::string_view ObjectTypeName(ObjectType type) {
  switch (type) {
    case ObjectType::kDict:
      return "dict";
    case ObjectType::kList:
      return "list";
    case ObjectType::kNamespace:
      return "namespace";
    case ObjectType::kValue:
      return "value";
    case ObjectType::kArray:
      return "array";
    case ObjectType::kLock:
      return "lock";
    case ObjectType::kRLock:
      return "rlock";
    case ObjectType::kCondition:
      return "condition";
    case ObjectType::kSemaphore:
      return "semaphore";
    case ObjectType::kBoundedSemaphore:
      return "bounded_semaphore";
    case ObjectType::kEvent:
      return "event";
    case ObjectType::kBarrier:
      return "barrier";
    case ObjectType::kQueue:
      return "queue";
    case ObjectType::kJoinableQueue:
      return "joinable_queue";
    case ObjectType::kUnspecified:
      break;
  }
  return "unspecified";
}

static_assert(sizeof(Value) <= 40, "a Value is what each stored item costs");

Value Value::Bytes(std::string data) {
  Value v;
  v.rep_ = BytesRep{std::move(data)};
  return v;
}

Value Value::List(Items items) {
  Value v;
  v.rep_ = ListRep{std::move(items)};
  return v;
}

Value Value::Tuple(Items items) {
  Value v;
  v.rep_ = TupleRep{std::move(items)};
  return v;
}

Value Value::Map(std::vector<std::pair<Value, Value>> entries) {
  Value v;
  Entries unique;
  unique.reserve(entries.size());
  // Position of each key in `unique`: a repeated key keeps its first place
  // and takes its last value, in linear time.
  absl::flat_hash_map<Value, size_t, KeyHash, KeyEq> position;
  position.reserve(entries.size());
  for (auto& [key, value] : entries) {
    auto [it, inserted] = position.try_emplace(key, unique.size());
    if (inserted) {
      unique.emplace_back(std::move(key), std::move(value));
    } else {
      unique[it->second].second = std::move(value);
    }
  }
  v.rep_ = MapRep{std::move(unique)};
  return v;
}

bool Value::AsBool() const {
  if (!is_bool()) WrongKind(Kind::kBool, kind());
  return std::get<bool>(rep_);
}
int64_t Value::AsInt() const {
  if (!is_int()) WrongKind(Kind::kInt, kind());
  return std::get<int64_t>(rep_);
}
double Value::AsDouble() const {
  if (!is_double()) WrongKind(Kind::kDouble, kind());
  return std::get<double>(rep_);
}
const std::string& Value::AsString() const {
  if (!is_string()) WrongKind(Kind::kString, kind());
  return std::get<std::string>(rep_);
}
const std::string& Value::AsBytes() const {
  if (!is_bytes()) WrongKind(Kind::kBytes, kind());
  return std::get<BytesRep>(rep_).data;
}
const Value::Items& Value::AsItems() const {
  if (is_list()) return std::get<ListRep>(rep_).items;
  if (!is_tuple()) WrongKind(Kind::kList, kind());
  return std::get<TupleRep>(rep_).items;
}
Value::Items& Value::MutableItems() {
  if (is_list()) return std::get<ListRep>(rep_).items;
  if (!is_tuple()) WrongKind(Kind::kList, kind());
  return std::get<TupleRep>(rep_).items;
}
const Value::Entries& Value::AsEntries() const {
  if (!is_map()) WrongKind(Kind::kMap, kind());
  return std::get<MapRep>(rep_).entries;
}
Value::Entries& Value::MutableEntries() {
  if (!is_map()) WrongKind(Kind::kMap, kind());
  return std::get<MapRep>(rep_).entries;
}
const Ref& Value::AsRef() const {
  if (!is_ref()) WrongKind(Kind::kRef, kind());
  return *std::get<std::shared_ptr<const Ref>>(rep_);
}
const Blob& Value::AsBlob() const {
  if (!is_blob()) WrongKind(Kind::kBlob, kind());
  return *std::get<std::shared_ptr<const Blob>>(rep_);
}

double Value::ToDouble() const {
  switch (kind()) {
    case Kind::kBool:
      return AsBool() ? 1.0 : 0.0;
    case Kind::kInt:
      return static_cast<double>(AsInt());
    case Kind::kDouble:
      return AsDouble();
    default:
      WrongKind(Kind::kDouble, kind());
  }
}

const Value* Value::Find(const Value& key) const {
  if (!is_map()) return nullptr;
  for (const auto& [k, v] : AsEntries()) {
    if (k == key) return &v;
  }
  return nullptr;
}

absl::string_view Value::TypeName() const {
  switch (kind()) {
    case Kind::kNull:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kDouble:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kMap:
      return "dict";
    case Kind::kRef:
      return "ref";
    case Kind::kBlob:
      return "blob";
  }
  return "unknown";
}

std::string Value::Repr() const {
  switch (kind()) {
    case Kind::kNull:
      return "None";
    case Kind::kBool:
      return AsBool() ? "True" : "False";
    case Kind::kInt:
      return absl::StrCat(AsInt());
    case Kind::kDouble:
      return DoubleRepr(AsDouble());
    case Kind::kString:
      return QuoteRepr(AsString(), /*bytes=*/false);
    case Kind::kBytes:
      return QuoteRepr(AsBytes(), /*bytes=*/true);
    case Kind::kList:
    case Kind::kTuple: {
      std::string out = is_list() ? "[" : "(";
      const Items& items = AsItems();
      for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += ", ";
        out += items[i].Repr();
      }
      if (is_tuple() && items.size() == 1) out += ",";
      out += is_list() ? "]" : ")";
      return out;
    }
    case Kind::kMap: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : AsEntries()) {
        if (!first) out += ", ";
        first = false;
        absl::StrAppend(&out, k.Repr(), ": ", v.Repr());
      }
      return out + "}";
    }
    case Kind::kRef:
      return absl::StrFormat("<%s \"%s\">", ObjectTypeName(AsRef().type),
                             AsRef().name);
    case Kind::kBlob:
      return absl::StrFormat("<%s blob of %d bytes>", AsBlob().codec,
                             AsBlob().data.size());
  }
  return "?";
}

bool Value::HasRefs() const {
  switch (kind()) {
    case Kind::kRef:
      return true;
    case Kind::kList:
    case Kind::kTuple:
      for (const Value& item : AsItems()) {
        if (item.HasRefs()) return true;
      }
      return false;
    case Kind::kMap:
      for (const auto& [k, v] : AsEntries()) {
        if (v.HasRefs()) return true;
      }
      return false;
    default:
      return false;
  }
}

bool operator==(const Value& a, const Value& b) {
  using Kind = Value::Kind;
  if (a.is_number() && b.is_number()) return CompareNumbers(a, b) == 0;
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Kind::kNull:
      return true;
    case Kind::kString:
      return a.AsString() == b.AsString();
    case Kind::kBytes:
      return a.AsBytes() == b.AsBytes();
    case Kind::kList:
    case Kind::kTuple:
      return ItemsEqual(a.AsItems(), b.AsItems());
    case Kind::kMap: {
      const auto& x = a.AsEntries();
      if (x.size() != b.AsEntries().size()) return false;
      for (const auto& [k, v] : x) {
        const Value* other = b.Find(k);
        if (other == nullptr || !(*other == v)) return false;
      }
      return true;
    }
    case Kind::kRef:
      return a.AsRef().name == b.AsRef().name &&
             a.AsRef().type == b.AsRef().type;
    case Kind::kBlob:
      return a.AsBlob().codec == b.AsBlob().codec &&
             a.AsBlob().data == b.AsBlob().data;
    default:
      return false;  // numbers handled above
  }
}

size_t KeyHash::operator()(const Value& key) const {
  using Kind = Value::Kind;
  switch (key.kind()) {
    case Kind::kNull:
      return absl::HashOf(0xa11);
    case Kind::kBool:
      return absl::HashOf(int64_t{key.AsBool()});
    case Kind::kInt:
      return absl::HashOf(key.AsInt());
    case Kind::kDouble: {
      int64_t i;
      if (DoubleAsInt(key.AsDouble(), &i)) return absl::HashOf(i);
      return absl::HashOf(key.AsDouble());
    }
    case Kind::kString:
      return absl::HashOf(1, key.AsString());
    case Kind::kBytes:
      return absl::HashOf(2, key.AsBytes());
    case Kind::kTuple: {
      size_t h = absl::HashOf(3, key.AsItems().size());
      for (const Value& item : key.AsItems()) {
        h = absl::HashOf(h, (*this)(item));
      }
      return h;
    }
    default:
      return absl::HashOf(4);  // not a key; CheckKey refuses it
  }
}

absl::Status CheckKey(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kNull:
    case Value::Kind::kBool:
    case Value::Kind::kInt:
    case Value::Kind::kString:
    case Value::Kind::kBytes:
      return absl::OkStatus();
    case Value::Kind::kDouble:
      if (std::isnan(key.AsDouble())) {
        return absl::InvalidArgumentError("NaN cannot be a key");
      }
      return absl::OkStatus();
    case Value::Kind::kTuple:
      for (const Value& item : key.AsItems()) {
        if (absl::Status s = CheckKey(item); !s.ok()) return s;
      }
      return absl::OkStatus();
    default:
      return absl::InvalidArgumentError(
          absl::StrFormat("unhashable type: '%s'", key.TypeName()));
  }
}

absl::StatusOr<int> Compare(const Value& a, const Value& b) {
  using Kind = Value::Kind;
  if (a.is_number() && b.is_number()) {
    const int r = CompareNumbers(a, b);
    return r == 2 ? 1 : r;  // NaN: never less, as Python's `<` answers False
  }
  if (a.kind() == b.kind()) {
    switch (a.kind()) {
      case Kind::kString:
        return a.AsString().compare(b.AsString());
      case Kind::kBytes:
        return a.AsBytes().compare(b.AsBytes());
      case Kind::kList:
      case Kind::kTuple:
        return CompareItems(a.AsItems(), b.AsItems());
      default:
        break;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("'<' not supported between instances of '%s' and '%s'",
                      a.TypeName(), b.TypeName()));
}

}  // namespace statehub
