#include "statehub/client.h"

#include <functional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core.h"
#include "grpcpp/grpcpp.h"
#include "statehub/v1/objects.grpc.pb.h"

namespace statehub {

using client_internal::Core;
using client_internal::HandleState;
using client_internal::SessionTag;
using internal::EncodeValue;

namespace {

using Objects = v1::Objects::Stub;

// Replies can be large (Items of a big dict, a long slice); gRPC's default
// of 4 MiB is too small for the bulk calls.
constexpr int kMaxReceiveMessageBytes = 64 << 20;
// gRPC keepalive pings. The server must permit pings this often, even
// without calls (GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS and
// GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS on its side).
constexpr int kKeepaliveTimeMs = 30 * 1000;
// gRPC's own reconnect backoff (1 s growing to 120 s) could outlast the
// session lease; a restarted server must find us back well within it.
// (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left alone: gRPC 1.51 uses it as the
// minimum connect timeout, not as a backoff.)
constexpr int kInitialReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;

// WithContext prefixes a status message, keeping its error kind and object.
absl::Status WithContext(const absl::Status& status, absl::string_view what) {
  return StatusFromWire(status.code(),
                        absl::StrCat(what, ": ", status.message()),
                        SerializeErrorDetail(status));
}

ObjectInfo FromWire(const v1::ObjectInfo& wire) {
  ObjectInfo info;
  info.name = wire.name();
  info.type = internal::FromWire(wire.type());
  info.anonymous = wire.anonymous();
  info.size = wire.size();
  info.typecode = wire.typecode();
  info.condition_lock = wire.condition_lock();
  info.holders = wire.holders();
  info.referrers = wire.referrers();
  return info;
}

// Open is Objects.Open for every type: `init` fills the initial contents.
// The handle holds the object if it is anonymous: the server granted this
// session a hold for the call (creating one, or adopting one by name).
// `reply`, if given, receives the server's answer (whether this call created
// the object, a condition's lock, ...).
absl::StatusOr<HandleState> Open(
    const std::shared_ptr<Core>& core, absl::string_view name, ObjectType type,
    const std::function<void(v1::OpenRequest*)>& init,
    v1::OpenResponse* reply = nullptr) {
  if (name.empty() && core->CurrentSession().id.empty()) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
        absl::StrFormat("cannot create an anonymous %s without a session "
                        "(the client was closed or connected with "
                        "open_session = false)",
                        ObjectTypeName(type)));
  }
  v1::OpenRequest request;
  request.set_name(std::string(name));
  request.set_type(internal::ToWire(type));
  if (init) init(&request);
  v1::OpenResponse local;
  v1::OpenResponse& response = reply != nullptr ? *reply : local;
  STATEHUB_ASSIGN_OR_RETURN(const SessionTag tag,
                            core->Call(&Objects::Open, request, &response));
  HandleState state{core, response.name(), type, nullptr};
  if (absl::StartsWith(response.name(), "_anon/")) {
    state.hold = core->MakeHold(response.name(), tag);
  }
  return state;
}

absl::StatusOr<HandleState> FromRef(const std::shared_ptr<Core>& core,
                                    const Value& ref, ObjectType type) {
  if (!ref.is_ref()) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrFormat("expected a ref to a %s, got a %s value",
                                     ObjectTypeName(type), ref.TypeName()));
  }
  const Ref& r = ref.AsRef();
  if (r.type != type) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, ErrorKind::kTypeError,
        absl::StrFormat("ref \"%s\" names a %s, not a %s", r.name,
                        ObjectTypeName(r.type), ObjectTypeName(type)),
        r.name);
  }
  return HandleState{core, r.name, type, r.hold};
}

void EncodeEntries(const Value::Entries& entries, v1::ValueMap* wire) {
  for (const auto& [key, value] : entries) {
    v1::MapEntry* entry = wire->add_entries();
    EncodeValue(key, entry->mutable_key());
    EncodeValue(value, entry->mutable_value());
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    absl::string_view address, ClientOptions options) {
  if (options.label.empty()) options.label = client_internal::DefaultLabel();
  // The server has no lane on TLS listeners (api/LANE.md): TLS means gRPC.
  if (options.transport == Transport::kLane && !options.tls.has_value()) {
    absl::StatusOr<std::unique_ptr<client_internal::LaneTransport>> lane =
        client_internal::LaneTransport::Connect(address, options);
    if (!lane.ok()) return lane.status();
    return std::unique_ptr<Client>(new Client(
        std::make_shared<Core>(*std::move(lane), std::move(options))));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (options.tls.has_value()) {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = options.tls->root_certs;
    tls.pem_cert_chain = options.tls->cert_chain;
    tls.pem_private_key = options.tls->private_key;
    credentials = grpc::SslCredentials(tls);
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(std::string(address), credentials, args);
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    return absl::UnavailableError(
        absl::StrFormat("statehub: cannot connect to %s within %s", address,
                        absl::FormatDuration(options.connect_timeout)));
  }
  auto core = std::make_shared<Core>(std::move(channel), std::string(address),
                                     std::move(options));
  if (absl::Status s = core->StartSession(); !s.ok()) {
    return WithContext(
        s, absl::StrCat("statehub: opening a session on ", address));
  }
  return std::unique_ptr<Client>(new Client(std::move(core)));
}

Client::Client(std::shared_ptr<Core> core) : core_(std::move(core)) {}

Client::~Client() { Close(); }

void Client::Close() { core_->CloseSession(); }

std::string Client::session_id() const { return core_->CurrentSession().id; }

absl::Duration Client::lease_ttl() const { return core_->lease_ttl(); }

absl::StatusOr<Dict> Client::OpenDict(absl::string_view name,
                                      Value::Entries initial) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kDict, [&](v1::OpenRequest* request) {
        if (!initial.empty()) {
          EncodeEntries(initial, request->mutable_dict_init());
        }
      }));
  return Dict(std::move(state));
}

absl::StatusOr<List> Client::OpenList(absl::string_view name,
                                      Value::Items initial) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kList, [&](v1::OpenRequest* request) {
        if (!initial.empty()) {
          client_internal::EncodeItems(
              initial, request->mutable_list_init()->mutable_items());
        }
      }));
  return List(std::move(state));
}

absl::StatusOr<Namespace> Client::OpenNamespace(absl::string_view name,
                                                Value::Entries initial) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kNamespace, [&](v1::OpenRequest* request) {
        if (!initial.empty()) {
          EncodeEntries(initial, request->mutable_dict_init());
        }
      }));
  return Namespace(std::move(state));
}

absl::StatusOr<ValueCell> Client::OpenValue(absl::string_view name,
                                            Value initial,
                                            absl::string_view typecode) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kValue, [&](v1::OpenRequest* request) {
        EncodeValue(initial, request->mutable_value_init());
        request->set_typecode(std::string(typecode));
      }));
  return ValueCell(std::move(state));
}

absl::StatusOr<Array> Client::OpenArray(absl::string_view name,
                                        absl::string_view typecode,
                                        Value::Items items) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kArray, [&](v1::OpenRequest* request) {
        v1::ArrayInit* init = request->mutable_array_init();
        init->set_typecode(std::string(typecode));
        client_internal::EncodeItems(items, init->mutable_items());
      }));
  return Array(std::move(state));
}

absl::StatusOr<Lock> Client::OpenLock(absl::string_view name) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            Open(core_, name, ObjectType::kLock, nullptr));
  return Lock(std::move(state));
}

absl::StatusOr<RLock> Client::OpenRLock(absl::string_view name) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            Open(core_, name, ObjectType::kRLock, nullptr));
  return RLock(std::move(state));
}

absl::StatusOr<Condition> Client::OpenCondition(absl::string_view name,
                                                const BasicLock& lock) {
  if (lock.name().empty()) return client_internal::MovedFromError();
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kCondition, [&](v1::OpenRequest* request) {
        request->set_condition_lock(lock.name());
      }));
  return Condition(std::move(state), nullptr);
}

absl::StatusOr<Condition> Client::OpenCondition(absl::string_view name) {
  STATEHUB_ASSIGN_OR_RETURN(RLock own, OpenRLock(""));
  v1::OpenResponse reply;
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            Open(
                                core_, name, ObjectType::kCondition,
                                [&](v1::OpenRequest* request) {
                                  request->set_condition_lock(own.name());
                                },
                                &reply));
  if (reply.created()) {
    return Condition(std::move(state), std::make_unique<RLock>(std::move(own)));
  }
  // The condition existed: its own lock is the one the server reports. A
  // Condition without a lock owns an RLock, so that is what it must be; a
  // TYPE_ERROR means it is a plain Lock. Any other failure (transport,
  // session, a server limit) is returned as it is.
  absl::StatusOr<RLock> bound = OpenRLock(reply.condition_lock());
  if (GetErrorKind(bound.status()) == ErrorKind::kTypeError) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("condition \"%s\" exists, bound to \"%s\", which is "
                        "not an rlock: open the condition with that lock",
                        name, reply.condition_lock()),
        name);
  }
  if (!bound.ok()) return bound.status();
  return Condition(std::move(state),
                   std::make_unique<RLock>(*std::move(bound)));
}

absl::StatusOr<Semaphore> Client::OpenSemaphore(absl::string_view name,
                                                int64_t value) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kSemaphore, [&](v1::OpenRequest* request) {
        request->set_semaphore_value(value);
      }));
  return Semaphore(std::move(state));
}

absl::StatusOr<Semaphore> Client::OpenBoundedSemaphore(absl::string_view name,
                                                       int64_t value) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            Open(core_, name, ObjectType::kBoundedSemaphore,
                                 [&](v1::OpenRequest* request) {
                                   request->set_semaphore_value(value);
                                 }));
  return Semaphore(std::move(state));
}

absl::StatusOr<Event> Client::OpenEvent(absl::string_view name) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            Open(core_, name, ObjectType::kEvent, nullptr));
  return Event(std::move(state));
}

absl::StatusOr<Barrier> Client::OpenBarrier(absl::string_view name,
                                            int64_t parties) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kBarrier,
           [&](v1::OpenRequest* request) { request->set_parties(parties); }));
  return Barrier(std::move(state));
}

absl::StatusOr<Queue> Client::OpenQueue(absl::string_view name,
                                        int64_t maxsize) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kQueue,
           [&](v1::OpenRequest* request) { request->set_maxsize(maxsize); }));
  return Queue(std::move(state));
}

absl::StatusOr<Queue> Client::OpenJoinableQueue(absl::string_view name,
                                                int64_t maxsize) {
  STATEHUB_ASSIGN_OR_RETURN(
      HandleState state,
      Open(core_, name, ObjectType::kJoinableQueue,
           [&](v1::OpenRequest* request) { request->set_maxsize(maxsize); }));
  return Queue(std::move(state));
}

absl::StatusOr<Dict> Client::DictFromRef(const Value& ref) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            FromRef(core_, ref, ObjectType::kDict));
  return Dict(std::move(state));
}

absl::StatusOr<List> Client::ListFromRef(const Value& ref) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            FromRef(core_, ref, ObjectType::kList));
  return List(std::move(state));
}

absl::StatusOr<Namespace> Client::NamespaceFromRef(const Value& ref) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            FromRef(core_, ref, ObjectType::kNamespace));
  return Namespace(std::move(state));
}

absl::StatusOr<ValueCell> Client::ValueFromRef(const Value& ref) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            FromRef(core_, ref, ObjectType::kValue));
  return ValueCell(std::move(state));
}

absl::StatusOr<Array> Client::ArrayFromRef(const Value& ref) {
  STATEHUB_ASSIGN_OR_RETURN(HandleState state,
                            FromRef(core_, ref, ObjectType::kArray));
  return Array(std::move(state));
}

absl::Status Client::Delete(absl::string_view name) {
  v1::DeleteRequest request;
  request.set_name(std::string(name));
  v1::DeleteResponse response;
  return core_->Call(&Objects::Delete, request, &response).status();
}

absl::StatusOr<std::vector<ObjectInfo>> Client::ListObjects(
    absl::string_view prefix, bool include_anonymous) {
  v1::ListObjectsRequest request;
  request.set_prefix(std::string(prefix));
  request.set_include_anonymous(include_anonymous);
  v1::ListObjectsResponse response;
  STATEHUB_RETURN_IF_ERROR(
      core_->Call(&Objects::List, request, &response).status());
  std::vector<ObjectInfo> objects;
  objects.reserve(response.objects_size());
  for (const v1::ObjectInfo& info : response.objects()) {
    objects.push_back(FromWire(info));
  }
  return objects;
}

absl::StatusOr<ObjectInfo> Client::Describe(absl::string_view name) {
  v1::DescribeRequest request;
  request.set_name(std::string(name));
  v1::DescribeResponse response;
  STATEHUB_RETURN_IF_ERROR(
      core_->Call(&Objects::Describe, request, &response).status());
  return FromWire(response.info());
}

absl::StatusOr<Watch> Client::WatchObject(absl::string_view name,
                                          WatchOptions options) {
  return client_internal::StartWatch(core_, name, /*by_prefix=*/false, options);
}

absl::StatusOr<Watch> Client::WatchNames(absl::string_view prefix,
                                         WatchOptions options) {
  return client_internal::StartWatch(core_, prefix, /*by_prefix=*/true,
                                     options);
}

}  // namespace statehub
