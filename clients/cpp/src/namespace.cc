#include "statehub/namespace.h"

#include <optional>
#include <string>
#include <utility>

#include "core.h"
#include "near_cache.h"
#include "statehub/v1/namespace.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::Dropping;
using client_internal::NearCache;
using client_internal::SessionTag;
using internal::EncodeValue;

namespace {
using Namespaces = v1::Namespaces::Stub;
}  // namespace

absl::StatusOr<Namespace> Namespace::Cached(CacheOptions options) const {
  Namespace cached(state_);
  STATEHUB_RETURN_IF_ERROR(
      cached.cache_.Start(state_, client_internal::kCachedNamespace, options));
  return cached;
}

// The cache keeps an attribute under its name, a string key: the key of
// the namespace's watch events.
absl::StatusOr<Value> Namespace::Get(absl::string_view attribute) const {
  return NearCache::Read(
      cache_.get(), Value(std::string(attribute)),
      [&](std::optional<double>*) -> absl::StatusOr<Value> {
        v1::NamespaceGetRequest request;
        request.set_attribute(std::string(attribute));
        v1::NamespaceGetResponse response;
        STATEHUB_ASSIGN_OR_RETURN(
            const SessionTag tag,
            CallOn(state_, &Namespaces::Get, request, &response));
        return state_.core->Decode(response.value(), tag);
      });
}

absl::Status Namespace::Set(absl::string_view attribute, const Value& value) {
  const Value key{std::string(attribute)};
  const Dropping dropping(cache_.get(), &key);
  v1::NamespaceSetRequest request;
  request.set_attribute(std::string(attribute));
  EncodeValue(value, request.mutable_value());
  v1::NamespaceSetResponse response;
  return CallOn(state_, &Namespaces::Set, request, &response).status();
}

absl::Status Namespace::Delete(absl::string_view attribute) {
  const Value key{std::string(attribute)};
  const Dropping dropping(cache_.get(), &key);
  v1::NamespaceDeleteRequest request;
  request.set_attribute(std::string(attribute));
  v1::NamespaceDeleteResponse response;
  return CallOn(state_, &Namespaces::Delete, request, &response).status();
}

absl::StatusOr<Value::Entries> Namespace::Items() const {
  v1::NamespaceItemsRequest request;
  v1::NamespaceItemsResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Namespaces::Items, request, &response));
  return state_.core->DecodeEntries(response.attributes().entries(), tag);
}

absl::StatusOr<statehub::Watch> Namespace::Watch(WatchOptions options) const {
  return client_internal::StartWatch(state_.core, state_.name,
                                     /*by_prefix=*/false, options);
}

}  // namespace statehub
