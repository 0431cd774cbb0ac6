// The data ops: dicts, lists, namespaces, value cells and arrays.

#include "absl/strings/match.h"
#include "server/engine/dict.h"
#include "tests/fuzz/check.h"
#include "tests/fuzz/encoding.h"
#include "tests/fuzz/engine_harness.h"

namespace statehub::fuzz {
namespace {

const std::string kAttributes[] = {"x",        "y",   "count",
                                   "_private", "1a",  "",
                                   "\xc3\xa9", "a b", std::string(300, 'n')};

}  // namespace

void Harness::DictOp(Op op, Input& in) {
  const Who who = From(in);
  const std::string name = Name(in);
  using S = handlers::DictHandlers;
  // After a removal, the key must be gone.
  auto check_gone = [&](const v1::Value& key, absl::string_view what) {
    v1::DictContainsRequest req;
    req.set_name(name);
    *req.mutable_key() = key;
    v1::DictContainsResponse resp;
    const Outcome out = Call(dicts_, &S::Contains, Who{}, req, &resp, what);
    FUZZ_CHECK(out.ok() && !resp.contains(),
               "dict \"%s\": a key is still there after %s (%s)", name, what,
               out.status.message());
  };
  switch (op) {
    case kDictGet: {
      v1::DictGetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      if (in.Bit()) BuildValue(in, req.mutable_default_(), 0);
      Call(dicts_, &S::Get, who, req, "dict get");
      break;
    }
    case kDictSet: {
      v1::DictSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      BuildValue(in, req.mutable_value(), 0);
      // A ttl, half the time: 0, negatives, NaN, infinities and huge ones
      // must be refused, tiny ones expire at once.
      if (in.Bit()) req.set_ttl_seconds(in.Pick(kDoubles));
      if (!Call(dicts_, &S::Set, who, req, "dict set").ok()) break;
      FUZZ_CHECK(!req.has_ttl_seconds() ||
                     (req.ttl_seconds() > 0 &&
                      req.ttl_seconds() <= DictObject::kMaxTtlSeconds),
                 "dict \"%s\": a ttl of %g was taken", name,
                 req.ttl_seconds());
      // What was stored reads back (unless its ttl may have run out).
      if (req.has_ttl_seconds() && req.ttl_seconds() < 1) break;
      v1::DictGetRequest get;
      get.set_name(name);
      *get.mutable_key() = req.key();
      v1::DictGetResponse got;
      const Outcome out = Call(dicts_, &S::Get, Who{}, get, &got, "get");
      FUZZ_CHECK(out.ok() && got.found(),
                 "dict \"%s\": the key just set is missing (%s)", name,
                 out.status.message());
      FUZZ_CHECK(WireBytes(got.value()) == Canonical(req.value()),
                 "dict \"%s\": the value read back differs", name);
      break;
    }
    case kDictDelete: {
      v1::DictDeleteRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      if (Call(dicts_, &S::Delete, who, req, "dict delete").ok()) {
        check_gone(req.key(), "delete");
      }
      break;
    }
    case kDictContains: {
      v1::DictContainsRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      Call(dicts_, &S::Contains, who, req, "dict contains");
      break;
    }
    case kDictLen: {
      v1::DictLenRequest req;
      req.set_name(name);
      Call(dicts_, &S::Len, who, req, "dict len");
      break;
    }
    case kDictItems: {
      v1::DictItemsRequest req;
      req.set_name(name);
      const uint8_t flags = in.Byte();
      req.set_keys_only(flags & 1);
      if (flags & 2) req.set_size_version(size_version_);
      req.set_cursor(in.Int());
      req.set_limit(in.Int());
      v1::DictItemsResponse resp;
      if (Call(dicts_, &S::Items, who, req, &resp, "dict items").ok()) {
        size_version_ = resp.size_version();
        if (req.limit() > 0) {
          FUZZ_CHECK(resp.entries_size() <= req.limit(),
                     "dict \"%s\": %d items for limit %d", name,
                     resp.entries_size(), req.limit());
        }
      }
      break;
    }
    case kDictPop: {
      v1::DictPopRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      if (in.Bit()) BuildValue(in, req.mutable_default_(), 0);
      v1::DictPopResponse resp;
      if (Call(dicts_, &S::Pop, who, req, &resp, "dict pop").ok() &&
          resp.found()) {
        check_gone(req.key(), "pop");
      }
      break;
    }
    case kDictPopItem: {
      v1::DictPopItemRequest req;
      req.set_name(name);
      v1::DictPopItemResponse resp;
      if (Call(dicts_, &S::PopItem, who, req, &resp, "dict popitem").ok()) {
        check_gone(resp.key(), "popitem");
      }
      break;
    }
    case kDictSetDefault: {
      v1::DictSetDefaultRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      BuildValue(in, req.mutable_default_(), 0);
      Call(dicts_, &S::SetDefault, who, req, "dict setdefault");
      break;
    }
    case kDictUpdate: {
      v1::DictUpdateRequest req;
      req.set_name(name);
      for (int n = in.Byte() % 6; n > 0; --n) {
        v1::MapEntry* entry = req.add_entries();
        BuildValue(in, entry->mutable_key(), 0);
        BuildValue(in, entry->mutable_value(), 0);
      }
      Call(dicts_, &S::Update, who, req, "dict update");
      break;
    }
    case kDictClear: {
      v1::DictClearRequest req;
      req.set_name(name);
      Call(dicts_, &S::Clear, who, req, "dict clear");
      break;
    }
    case kDictIncrement: {
      v1::DictIncrementRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      if (in.Bit()) BuildValue(in, req.mutable_delta(), 0);
      Call(dicts_, &S::Increment, who, req, "dict increment");
      break;
    }
    case kDictCompareAndSet: {
      v1::DictCompareAndSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      if (in.Bit()) BuildValue(in, req.mutable_expected(), 0);
      BuildValue(in, req.mutable_desired(), 0);
      Call(dicts_, &S::CompareAndSet, who, req, "dict compare_and_set");
      break;
    }
    default: {
      v1::DictGetAndSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_key(), 0);
      BuildValue(in, req.mutable_value(), 0);
      Call(dicts_, &S::GetAndSet, who, req, "dict get_and_set");
      break;
    }
  }
}

void Harness::ListOp(Op op, Input& in) {
  const Who who = From(in);
  const std::string name = Name(in);
  using S = handlers::ListHandlers;
  switch (op) {
    case kListLen: {
      v1::ListLenRequest req;
      req.set_name(name);
      Call(lists_, &S::Len, who, req, "list len");
      break;
    }
    case kListGet: {
      v1::ListGetRequest req;
      req.set_name(name);
      BuildSubscript(in, req.mutable_at());
      Call(lists_, &S::Get, who, req, "list get");
      break;
    }
    case kListSet: {
      v1::ListSetRequest req;
      req.set_name(name);
      BuildSubscript(in, req.mutable_at());
      BuildValue(in, req.mutable_value(), 0);
      Call(lists_, &S::Set, who, req, "list set");
      break;
    }
    case kListDelete: {
      v1::ListDeleteRequest req;
      req.set_name(name);
      BuildSubscript(in, req.mutable_at());
      Call(lists_, &S::Delete, who, req, "list delete");
      break;
    }
    case kListAppend: {
      v1::ListAppendRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      v1::ListAppendResponse resp;
      if (!Call(lists_, &S::Append, who, req, &resp, "list append").ok()) {
        break;
      }
      // The item appended is the last one, and the length says so.
      v1::ListGetRequest get;
      get.set_name(name);
      get.mutable_at()->set_index(-1);
      v1::ListGetResponse got;
      const Outcome out = Call(lists_, &S::Get, Who{}, get, &got, "get");
      FUZZ_CHECK(out.ok() && WireBytes(got.value()) == Canonical(req.value()),
                 "list \"%s\": the last item is not the one appended (%s)",
                 name, out.status.message());
      v1::ListLenRequest len;
      len.set_name(name);
      v1::ListLenResponse length;
      Call(lists_, &S::Len, Who{}, len, &length, "len");
      FUZZ_CHECK(length.length() == resp.length(),
                 "list \"%s\": append said %d items, len says %d", name,
                 resp.length(), length.length());
      break;
    }
    case kListExtend: {
      v1::ListExtendRequest req;
      req.set_name(name);
      for (int n = in.Byte() % 6; n > 0; --n) {
        BuildValue(in, req.add_items(), 0);
      }
      Call(lists_, &S::Extend, who, req, "list extend");
      break;
    }
    case kListInsert: {
      v1::ListInsertRequest req;
      req.set_name(name);
      req.set_index(in.Int());
      BuildValue(in, req.mutable_value(), 0);
      Call(lists_, &S::Insert, who, req, "list insert");
      break;
    }
    case kListPop: {
      v1::ListPopRequest req;
      req.set_name(name);
      if (in.Bit()) req.set_index(in.Int());
      Call(lists_, &S::Pop, who, req, "list pop");
      break;
    }
    case kListRemove: {
      v1::ListRemoveRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      Call(lists_, &S::Remove, who, req, "list remove");
      break;
    }
    case kListIndex: {
      v1::ListIndexRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      const uint8_t flags = in.Byte();
      if (flags & 1) req.set_start(in.Int());
      if (flags & 2) req.set_stop(in.Int());
      Call(lists_, &S::Index, who, req, "list index");
      break;
    }
    case kListCount: {
      v1::ListCountRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      Call(lists_, &S::Count, who, req, "list count");
      break;
    }
    case kListContains: {
      v1::ListContainsRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      Call(lists_, &S::Contains, who, req, "list contains");
      break;
    }
    case kListReverse: {
      v1::ListReverseRequest req;
      req.set_name(name);
      Call(lists_, &S::Reverse, who, req, "list reverse");
      break;
    }
    case kListSort: {
      v1::ListSortRequest req;
      req.set_name(name);
      req.set_reverse(in.Bit());
      Call(lists_, &S::Sort, who, req, "list sort");
      break;
    }
    case kListClear: {
      v1::ListClearRequest req;
      req.set_name(name);
      Call(lists_, &S::Clear, who, req, "list clear");
      break;
    }
    default: {
      v1::ListRepeatRequest req;
      req.set_name(name);
      req.set_times(in.Int());
      Call(lists_, &S::Repeat, who, req, "list repeat");
      break;
    }
  }
}

void Harness::CellOp(Op op, Input& in) {
  const Who who = From(in);
  const std::string name = Name(in);
  switch (op) {
    case kNamespaceGet: {
      v1::NamespaceGetRequest req;
      req.set_name(name);
      req.set_attribute(in.Pick(kAttributes));
      Call(namespaces_, &handlers::NamespaceHandlers::Get, who, req,
           "namespace get");
      break;
    }
    case kNamespaceSet: {
      v1::NamespaceSetRequest req;
      req.set_name(name);
      req.set_attribute(in.Pick(kAttributes));
      BuildValue(in, req.mutable_value(), 0);
      Call(namespaces_, &handlers::NamespaceHandlers::Set, who, req,
           "namespace set");
      break;
    }
    case kNamespaceDelete: {
      v1::NamespaceDeleteRequest req;
      req.set_name(name);
      req.set_attribute(in.Pick(kAttributes));
      Call(namespaces_, &handlers::NamespaceHandlers::Delete, who, req,
           "namespace delete");
      break;
    }
    case kNamespaceItems: {
      v1::NamespaceItemsRequest req;
      req.set_name(name);
      Call(namespaces_, &handlers::NamespaceHandlers::Items, who, req,
           "namespace items");
      break;
    }
    case kValueGet: {
      v1::ValueGetRequest req;
      req.set_name(name);
      Call(values_, &handlers::ValueHandlers::Get, who, req, "value get");
      break;
    }
    case kValueSet: {
      v1::ValueSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      Call(values_, &handlers::ValueHandlers::Set, who, req, "value set");
      break;
    }
    case kValueIncrement: {
      v1::ValueIncrementRequest req;
      req.set_name(name);
      if (in.Bit()) BuildValue(in, req.mutable_delta(), 0);
      Call(values_, &handlers::ValueHandlers::Increment, who, req,
           "value increment");
      break;
    }
    case kValueCompareAndSet: {
      v1::ValueCompareAndSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_expected(), 0);
      BuildValue(in, req.mutable_desired(), 0);
      Call(values_, &handlers::ValueHandlers::CompareAndSet, who, req,
           "value compare_and_set");
      break;
    }
    case kValueGetAndSet: {
      v1::ValueGetAndSetRequest req;
      req.set_name(name);
      BuildValue(in, req.mutable_value(), 0);
      Call(values_, &handlers::ValueHandlers::GetAndSet, who, req,
           "value get_and_set");
      break;
    }
    case kArrayLen: {
      v1::ArrayLenRequest req;
      req.set_name(name);
      Call(arrays_, &handlers::ArrayHandlers::Len, who, req, "array len");
      break;
    }
    case kArrayGet: {
      v1::ArrayGetRequest req;
      req.set_name(name);
      BuildSubscript(in, req.mutable_at());
      Call(arrays_, &handlers::ArrayHandlers::Get, who, req, "array get");
      break;
    }
    default: {
      v1::ArraySetRequest req;
      req.set_name(name);
      BuildSubscript(in, req.mutable_at());
      BuildValue(in, req.mutable_value(), 0);
      Call(arrays_, &handlers::ArrayHandlers::Set, who, req, "array set");
      break;
    }
  }
}

}  // namespace statehub::fuzz
