#include "statehub/namespace.h"

#include <string>

#include "core.h"
#include "statehub/v1/namespace.grpc.pb.h"

namespace statehub {

using client_internal::CallOn;
using client_internal::SessionTag;
using internal::EncodeValue;

namespace {
using Namespaces = v1::Namespaces::Stub;
}  // namespace

absl::StatusOr<Value> Namespace::Get(absl::string_view attribute) const {
  v1::NamespaceGetRequest request;
  request.set_attribute(std::string(attribute));
  v1::NamespaceGetResponse response;
  STATEHUB_ASSIGN_OR_RETURN(
      const SessionTag tag,
      CallOn(state_, &Namespaces::Get, request, &response));
  return state_.core->Decode(response.value(), tag);
}

absl::Status Namespace::Set(absl::string_view attribute, const Value& value) {
  v1::NamespaceSetRequest request;
  request.set_attribute(std::string(attribute));
  EncodeValue(value, request.mutable_value());
  v1::NamespaceSetResponse response;
  return CallOn(state_, &Namespaces::Set, request, &response).status();
}

absl::Status Namespace::Delete(absl::string_view attribute) {
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
