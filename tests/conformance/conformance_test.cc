// Replays cases.json -- sequences of operations whose results Python itself
// produced (generate.py) -- against a real statehub-server through the C++
// client, and expects the same results, the same error kinds and the same
// object contents after every step.
//
// One server serves the whole suite; even-numbered cases talk to it over its
// Unix socket, odd-numbered ones over TCP, so both transports are exercised.
// Each case works on its own object, named after the case.

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "conformance.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "tests/testing/server_process.h"

#ifndef STATEHUB_CONFORMANCE_CASES
#error "STATEHUB_CONFORMANCE_CASES must name cases.json"
#endif

namespace statehub {
namespace {

using ::statehub::conformance::Case;
using ::statehub::conformance::Step;
using ::statehub::conformance::Suite;
using ::statehub::testing::ServerProcess;

// Deep enough for any case; the server's own limit is what tests limits.
constexpr int kMaxDepth = 100;

// Handle is the one shared object a case works on.
using Handle = std::variant<Dict, List, Namespace, ValueCell, Array>;
using Args = std::vector<Value>;
using OpFn = std::function<absl::StatusOr<Value>(Handle&, const Args&)>;

// ---------------------------------------------------------------------------
// Turning client results into Values, and Values into client arguments.

absl::StatusOr<Value> Lift(const absl::Status& status) {
  if (!status.ok()) return status;
  return Value();
}
absl::StatusOr<Value> Lift(absl::StatusOr<Value> value) { return value; }
absl::StatusOr<Value> Lift(const absl::StatusOr<bool>& value) {
  if (!value.ok()) return value.status();
  return Value(*value);
}
absl::StatusOr<Value> Lift(const absl::StatusOr<int64_t>& value) {
  if (!value.ok()) return value.status();
  return Value(*value);
}
absl::StatusOr<Value> Lift(absl::StatusOr<Value::Items> items) {
  if (!items.ok()) return items.status();
  return Value::List(*std::move(items));
}
// A map value in the dict's order (dict.copy(), vars(ns)).
absl::StatusOr<Value> LiftMap(absl::StatusOr<Value::Entries> entries) {
  if (!entries.ok()) return entries.status();
  return Value::Map(*std::move(entries));
}
// A list of (key, value) tuples (list(d.items())).
absl::StatusOr<Value> LiftPairs(absl::StatusOr<Value::Entries> entries) {
  if (!entries.ok()) return entries.status();
  Value::Items pairs;
  for (auto& [key, value] : *entries) {
    pairs.push_back(Value::Tuple({std::move(key), std::move(value)}));
  }
  return Value::List(std::move(pairs));
}
// (swapped, current): the result of compare_and_set in cases.json.
absl::StatusOr<Value> LiftSwap(const absl::StatusOr<bool>& swapped,
                               Value current) {
  if (!swapped.ok()) return swapped.status();
  return Value::Tuple({*swapped, std::move(current)});
}

// A slice bound: an int, or null for None.
std::optional<int64_t> Bound(const Value& v) {
  if (v.is_null()) return std::nullopt;
  return v.AsInt();
}
// The slice spelled by args[first], args[first + 1], args[first + 2].
Slice SliceAt(const Args& a, size_t first) {
  return Slice{Bound(a[first]), Bound(a[first + 1]), Bound(a[first + 2])};
}
// Entries from a list of (key, value) tuples, duplicates and all, as
// d.update(pairs) takes them.
Value::Entries Pairs(const Value& pairs) {
  Value::Entries entries;
  for (const Value& pair : pairs.AsItems()) {
    entries.emplace_back(pair.AsItems().at(0), pair.AsItems().at(1));
  }
  return entries;
}

// On adapts a call on handle type H to an OpFn.
template <typename H, typename F>
OpFn On(F f) {
  return [f](Handle& handle, const Args& a) -> absl::StatusOr<Value> {
    return f(std::get<H>(handle), a);
  };
}

// ---------------------------------------------------------------------------
// The one table: "<object type>.<op>/<number of args>" -> client call. The
// ops and their results are described in README.md beside this file.

const std::map<std::string, OpFn>& Ops() {
  using A = const Args&;
  static const auto* const kOps = new std::map<std::string, OpFn>{
      // dict
      {"dict.get/1", On<Dict>([](Dict& d, A a) { return Lift(d.Get(a[0])); })},
      {"dict.get/2",
       On<Dict>([](Dict& d, A a) { return Lift(d.Get(a[0], a[1])); })},
      {"dict.set/2",
       On<Dict>([](Dict& d, A a) { return Lift(d.Set(a[0], a[1])); })},
      {"dict.delete/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.Delete(a[0])); })},
      {"dict.contains/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.Contains(a[0])); })},
      {"dict.len/0", On<Dict>([](Dict& d, A) { return Lift(d.Len()); })},
      {"dict.items/0",
       On<Dict>([](Dict& d, A) { return LiftPairs(d.Items()); })},
      {"dict.keys/0", On<Dict>([](Dict& d, A) { return Lift(d.Keys()); })},
      {"dict.values/0", On<Dict>([](Dict& d, A) { return Lift(d.Values()); })},
      {"dict.pop/1", On<Dict>([](Dict& d, A a) { return Lift(d.Pop(a[0])); })},
      {"dict.pop/2",
       On<Dict>([](Dict& d, A a) { return Lift(d.Pop(a[0], a[1])); })},
      {"dict.popitem/0", On<Dict>([](Dict& d, A) -> absl::StatusOr<Value> {
         absl::StatusOr<std::pair<Value, Value>> item = d.PopItem();
         if (!item.ok()) return item.status();
         return Value::Tuple({item->first, item->second});
       })},
      {"dict.setdefault/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.SetDefault(a[0])); })},
      {"dict.setdefault/2",
       On<Dict>([](Dict& d, A a) { return Lift(d.SetDefault(a[0], a[1])); })},
      {"dict.update/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.Update(Pairs(a[0]))); })},
      {"dict.fromkeys/2", On<Dict>([](Dict& d, A a) {
         Value::Entries entries;
         for (const Value& key : a[0].AsItems()) {
           entries.emplace_back(key, a[1]);
         }
         return Lift(d.Update(entries));
       })},
      {"dict.ior/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.Update(Pairs(a[0]))); })},
      {"dict.clear/0", On<Dict>([](Dict& d, A) { return Lift(d.Clear()); })},
      {"dict.copy/0", On<Dict>([](Dict& d, A) { return LiftMap(d.Items()); })},
      {"dict.increment/1",
       On<Dict>([](Dict& d, A a) { return Lift(d.Increment(a[0])); })},
      {"dict.increment/2",
       On<Dict>([](Dict& d, A a) { return Lift(d.Increment(a[0], a[1])); })},
      {"dict.compare_and_set/3", On<Dict>([](Dict& d, A a) {
         Value current;
         absl::StatusOr<bool> swapped =
             d.CompareAndSet(a[0], a[1], a[2], &current);
         return LiftSwap(swapped, std::move(current));
       })},
      {"dict.compare_and_set_absent/2", On<Dict>([](Dict& d, A a) {
         Value current;
         absl::StatusOr<bool> swapped =
             d.CompareAndSet(a[0], std::nullopt, a[1], &current);
         return LiftSwap(swapped, std::move(current));
       })},
      {"dict.get_and_set/2",
       On<Dict>([](Dict& d, A a) -> absl::StatusOr<Value> {
         absl::StatusOr<std::optional<Value>> previous =
             d.GetAndSet(a[0], a[1]);
         if (!previous.ok()) return previous.status();
         if (!previous->has_value()) return Value::List();
         return Value::List({**previous});
       })},

      // list
      {"list.len/0", On<List>([](List& l, A) { return Lift(l.Len()); })},
      {"list.get/1",
       On<List>([](List& l, A a) { return Lift(l.Get(a[0].AsInt())); })},
      {"list.get_slice/3",
       On<List>([](List& l, A a) { return Lift(l.GetSlice(SliceAt(a, 0))); })},
      {"list.set/2",
       On<List>([](List& l, A a) { return Lift(l.Set(a[0].AsInt(), a[1])); })},
      {"list.set_slice/4", On<List>([](List& l, A a) {
         return Lift(l.SetSlice(SliceAt(a, 0), a[3].AsItems()));
       })},
      {"list.delete/1",
       On<List>([](List& l, A a) { return Lift(l.Delete(a[0].AsInt())); })},
      {"list.delete_slice/3", On<List>([](List& l, A a) {
         return Lift(l.DeleteSlice(SliceAt(a, 0)));
       })},
      {"list.append/1",
       On<List>([](List& l, A a) { return Lift(l.Append(a[0])); })},
      {"list.extend/1",
       On<List>([](List& l, A a) { return Lift(l.Extend(a[0].AsItems())); })},
      {"list.iadd/1",
       On<List>([](List& l, A a) { return Lift(l.Extend(a[0].AsItems())); })},
      {"list.insert/2", On<List>([](List& l, A a) {
         return Lift(l.Insert(a[0].AsInt(), a[1]));
       })},
      {"list.pop/0", On<List>([](List& l, A) { return Lift(l.Pop()); })},
      {"list.pop/1",
       On<List>([](List& l, A a) { return Lift(l.Pop(a[0].AsInt())); })},
      {"list.remove/1",
       On<List>([](List& l, A a) { return Lift(l.Remove(a[0])); })},
      {"list.index/1",
       On<List>([](List& l, A a) { return Lift(l.Index(a[0])); })},
      {"list.index/2", On<List>([](List& l, A a) {
         return Lift(l.Index(a[0], a[1].AsInt()));
       })},
      {"list.index/3", On<List>([](List& l, A a) {
         return Lift(l.Index(a[0], a[1].AsInt(), a[2].AsInt()));
       })},
      {"list.count/1",
       On<List>([](List& l, A a) { return Lift(l.Count(a[0])); })},
      {"list.contains/1",
       On<List>([](List& l, A a) { return Lift(l.Contains(a[0])); })},
      {"list.reverse/0",
       On<List>([](List& l, A) { return Lift(l.Reverse()); })},
      {"list.sort/0", On<List>([](List& l, A) { return Lift(l.Sort()); })},
      {"list.sort/1",
       On<List>([](List& l, A a) { return Lift(l.Sort(a[0].AsBool())); })},
      {"list.clear/0", On<List>([](List& l, A) { return Lift(l.Clear()); })},
      {"list.repeat/1",
       On<List>([](List& l, A a) { return Lift(l.Repeat(a[0].AsInt())); })},

      // namespace
      {"namespace.get/1", On<Namespace>([](Namespace& ns, A a) {
         return Lift(ns.Get(a[0].AsString()));
       })},
      {"namespace.set/2", On<Namespace>([](Namespace& ns, A a) {
         return Lift(ns.Set(a[0].AsString(), a[1]));
       })},
      {"namespace.delete/1", On<Namespace>([](Namespace& ns, A a) {
         return Lift(ns.Delete(a[0].AsString()));
       })},
      {"namespace.items/0",
       On<Namespace>([](Namespace& ns, A) { return LiftMap(ns.Items()); })},

      // value
      {"value.get/0",
       On<ValueCell>([](ValueCell& v, A) { return Lift(v.Get()); })},
      {"value.set/1",
       On<ValueCell>([](ValueCell& v, A a) { return Lift(v.Set(a[0])); })},
      {"value.increment/0",
       On<ValueCell>([](ValueCell& v, A) { return Lift(v.Increment()); })},
      {"value.increment/1", On<ValueCell>([](ValueCell& v, A a) {
         return Lift(v.Increment(a[0]));
       })},
      {"value.compare_and_set/2", On<ValueCell>([](ValueCell& v, A a) {
         Value current;
         absl::StatusOr<bool> swapped = v.CompareAndSet(a[0], a[1], &current);
         return LiftSwap(swapped, std::move(current));
       })},
      {"value.get_and_set/1", On<ValueCell>([](ValueCell& v, A a) {
         return Lift(v.GetAndSet(a[0]));
       })},

      // array
      {"array.len/0", On<Array>([](Array& arr, A) { return Lift(arr.Len()); })},
      {"array.get/1",
       On<Array>([](Array& arr, A a) { return Lift(arr.Get(a[0].AsInt())); })},
      {"array.get_slice/3", On<Array>([](Array& arr, A a) {
         return Lift(arr.GetSlice(SliceAt(a, 0)));
       })},
      {"array.set/2", On<Array>([](Array& arr, A a) {
         return Lift(arr.Set(a[0].AsInt(), a[1]));
       })},
      {"array.set_slice/4", On<Array>([](Array& arr, A a) {
         return Lift(arr.SetSlice(SliceAt(a, 0), a[3].AsItems()));
       })},
  };
  return *kOps;
}

// ReadContents returns the whole object in the shape of Step.contents_after.
absl::StatusOr<Value> ReadContents(Handle& handle) {
  struct Reader {
    absl::StatusOr<Value> operator()(Dict& d) { return LiftMap(d.Items()); }
    absl::StatusOr<Value> operator()(List& l) { return Lift(l.Snapshot()); }
    absl::StatusOr<Value> operator()(Namespace& ns) {
      return LiftMap(ns.Items());
    }
    absl::StatusOr<Value> operator()(ValueCell& v) { return v.Get(); }
    absl::StatusOr<Value> operator()(Array& a) {
      return Lift(a.GetSlice(Slice{}));
    }
  };
  return std::visit(Reader{}, handle);
}

// Open creates the case's object with its initial contents.
absl::StatusOr<Handle> Open(Client& client, const std::string& name,
                            const Case& c, const Value& init) {
  auto wrap = [](auto opened) -> absl::StatusOr<Handle> {
    if (!opened.ok()) return opened.status();
    return Handle(*std::move(opened));
  };
  const std::string& type = c.object_type();
  if (type == "dict") return wrap(client.OpenDict(name, init.AsEntries()));
  if (type == "list") return wrap(client.OpenList(name, init.AsItems()));
  if (type == "namespace") {
    return wrap(client.OpenNamespace(name, init.AsEntries()));
  }
  if (type == "value") return wrap(client.OpenValue(name, init, c.typecode()));
  if (type == "array") {
    return wrap(client.OpenArray(name, c.typecode(), init.AsItems()));
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown object type ", type));
}

// ---------------------------------------------------------------------------
// Comparing

// Same is Python-level sameness, stricter than Value's ==: kinds must match
// (1, 1.0 and True differ; a stored key keeps its first spelling) and maps
// must list their entries in the same order.
bool Same(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kNull:
      return true;
    case Value::Kind::kBool:
      return a.AsBool() == b.AsBool();
    case Value::Kind::kInt:
      return a.AsInt() == b.AsInt();
    case Value::Kind::kDouble:
      return a.AsDouble() == b.AsDouble() ||
             (std::isnan(a.AsDouble()) && std::isnan(b.AsDouble()));
    case Value::Kind::kString:
      return a.AsString() == b.AsString();
    case Value::Kind::kBytes:
      return a.AsBytes() == b.AsBytes();
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      const Value::Items& x = a.AsItems();
      const Value::Items& y = b.AsItems();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Same(x[i], y[i])) return false;
      }
      return true;
    }
    case Value::Kind::kMap: {
      const Value::Entries& x = a.AsEntries();
      const Value::Entries& y = b.AsEntries();
      if (x.size() != y.size()) return false;
      for (size_t i = 0; i < x.size(); ++i) {
        if (!Same(x[i].first, y[i].first) || !Same(x[i].second, y[i].second)) {
          return false;
        }
      }
      return true;
    }
    case Value::Kind::kRef:
    case Value::Kind::kBlob:
      return a == b;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Loading cases.json

struct CaseParam {
  // index is the case's position in the file; it picks the transport.
  size_t index = 0;
  Case c;
  // load_error is set (and c empty) if cases.json could not be read.
  std::string load_error;
};

// gtest prints parameters in failure messages; the name is enough.
void PrintTo(const CaseParam& param, std::ostream* os) {
  *os << param.c.name();
}

std::vector<CaseParam> LoadCases() {
  const char* path = STATEHUB_CONFORMANCE_CASES;
  auto failed = [&](std::string why) {
    CaseParam param;
    param.c.set_name("cases_json_unreadable");
    param.load_error = absl::StrCat(path, ": ", why);
    return std::vector<CaseParam>{std::move(param)};
  };
  std::ifstream in(path);
  if (!in) return failed("cannot open");
  std::stringstream text;
  text << in.rdbuf();
  Suite suite;
  auto status = google::protobuf::util::JsonStringToMessage(text.str(), &suite);
  if (!status.ok()) return failed(status.ToString());
  if (suite.cases().empty()) return failed("no cases");
  std::vector<CaseParam> params;
  for (int i = 0; i < suite.cases_size(); ++i) {
    params.push_back({static_cast<size_t>(i), suite.cases(i), ""});
  }
  return params;
}

absl::StatusOr<Value> Decode(const v1::Value& wire) {
  return internal::DecodeValue(wire, kMaxDepth);
}

// ---------------------------------------------------------------------------
// The test

class ConformanceTest : public ::testing::TestWithParam<CaseParam> {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start();
    if (!server.ok()) {
      *setup_status_ = server.status();
      return;
    }
    server_ = server->release();
    for (const auto& [address, client] :
         {std::pair{server_->unix_address(), &unix_client_},
          std::pair{server_->tcp_address(), &tcp_client_}}) {
      absl::StatusOr<std::unique_ptr<Client>> connected =
          Client::Connect(address);
      if (!connected.ok()) {
        *setup_status_ = connected.status();
        return;
      }
      *client = connected->release();
    }
  }

  static void TearDownTestSuite() {
    delete unix_client_;
    unix_client_ = nullptr;
    delete tcp_client_;
    tcp_client_ = nullptr;
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->Stop();
      delete server_;
      server_ = nullptr;
    }
  }

  static ServerProcess* server_;
  static Client* unix_client_;
  static Client* tcp_client_;
  static absl::Status* setup_status_;
};

ServerProcess* ConformanceTest::server_ = nullptr;
Client* ConformanceTest::unix_client_ = nullptr;
Client* ConformanceTest::tcp_client_ = nullptr;
absl::Status* ConformanceTest::setup_status_ = new absl::Status();

TEST_P(ConformanceTest, MatchesPython) {
  const CaseParam& param = GetParam();
  ASSERT_TRUE(param.load_error.empty()) << param.load_error;
  ASSERT_TRUE(setup_status_->ok()) << *setup_status_;
  const Case& c = param.c;
  const bool over_tcp = param.index % 2 == 1;
  Client& client = over_tcp ? *tcp_client_ : *unix_client_;
  if (!c.note().empty()) RecordProperty("note", c.note());
  SCOPED_TRACE(absl::StrCat(c.name(), " over ", over_tcp ? "TCP" : "unix"));

  // Unique per process and run, so --gtest_repeat finds fresh objects.
  static int runs = 0;
  const std::string name =
      absl::StrCat("conformance/", c.name(), "/", getpid(), "-", ++runs);

  absl::StatusOr<Value> init = Decode(c.init());
  ASSERT_TRUE(init.ok()) << init.status();
  absl::StatusOr<Handle> handle = Open(client, name, c, *init);
  ASSERT_TRUE(handle.ok()) << "open " << name << ": " << handle.status();
  {
    absl::StatusOr<Value> want = Decode(c.contents_initial());
    ASSERT_TRUE(want.ok()) << want.status();
    absl::StatusOr<Value> got = ReadContents(*handle);
    ASSERT_TRUE(got.ok()) << "reading " << name << ": " << got.status();
    ASSERT_TRUE(Same(*got, *want))
        << "contents after open\n  got:  " << got->Repr()
        << "\n  want: " << want->Repr();
  }

  for (int i = 0; i < c.steps_size(); ++i) {
    const Step& step = c.steps(i);
    SCOPED_TRACE(absl::StrCat("step ", i, ": ", step.python()));
    Args args;
    for (const v1::Value& wire : step.args()) {
      absl::StatusOr<Value> arg = Decode(wire);
      ASSERT_TRUE(arg.ok()) << arg.status();
      args.push_back(*std::move(arg));
    }
    const std::string key =
        absl::StrCat(c.object_type(), ".", step.op(), "/", args.size());
    auto op = Ops().find(key);
    ASSERT_NE(op, Ops().end()) << "no client call for " << key;

    absl::StatusOr<Value> got = op->second(*handle, args);
    if (step.has_result()) {
      absl::StatusOr<Value> want = Decode(step.result());
      ASSERT_TRUE(want.ok()) << want.status();
      if (!got.ok()) {
        ADD_FAILURE() << "want " << want->Repr() << ", got " << got.status();
      } else {
        EXPECT_TRUE(Same(*got, *want)) << "result\n  got:  " << got->Repr()
                                       << "\n  want: " << want->Repr();
      }
    } else {
      const std::string want_kind = v1::ErrorKind_Name(step.error_kind());
      if (got.ok()) {
        ADD_FAILURE() << "want " << want_kind << ", got " << got->Repr();
      } else {
        EXPECT_EQ(std::string(ErrorKindName(GetErrorKind(got.status()))),
                  want_kind)
            << got.status();
        EXPECT_TRUE(absl::StrContains(got.status().message(), name))
            << "the message does not name the object " << name << ": "
            << got.status();
      }
    }

    absl::StatusOr<Value> want = Decode(step.contents_after());
    ASSERT_TRUE(want.ok()) << want.status();
    absl::StatusOr<Value> contents = ReadContents(*handle);
    ASSERT_TRUE(contents.ok())
        << "reading " << name << ": " << contents.status();
    // Later steps build on these contents: stop at the first difference.
    ASSERT_TRUE(Same(*contents, *want))
        << "contents after the step\n  got:  " << contents->Repr()
        << "\n  want: " << want->Repr();
  }
  EXPECT_TRUE(client.Delete(name).ok());
}

INSTANTIATE_TEST_SUITE_P(Python, ConformanceTest,
                         ::testing::ValuesIn(LoadCases()),
                         [](const ::testing::TestParamInfo<CaseParam>& info) {
                           return info.param.c.name();
                         });

}  // namespace
}  // namespace statehub
