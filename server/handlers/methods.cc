#include "server/handlers/methods.h"

#include <cstdlib>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "server/handlers/cell_handlers.h"
#include "server/handlers/dict_handlers.h"
#include "server/handlers/list_handlers.h"
#include "server/handlers/lock_handlers.h"
#include "server/handlers/namespace_handlers.h"
#include "server/handlers/objects_handlers.h"
#include "server/handlers/queue_handlers.h"
#include "server/handlers/sync_handlers.h"
#include "spdlog/spdlog.h"
#include "statehub/status.h"
#include "statehub/v1/lane.pb.h"
#include "statehub/v1/session.pb.h"

namespace statehub::handlers {

void Serve(Engine& engine, const Method& m, Call* call, uint64_t number,
           uint64_t seen, const google::protobuf::Message& request,
           google::protobuf::Message* response) {
  if (number == 0) return m.run(call, request, response);
  const SessionId session = call->caller().session;
  if (std::optional<v1::CallAnswered> first =
          engine.replies().Begin(session, number, seen)) {
    if (first->method() != m.lane_id) {
      return call->Finish(MakeError(
          absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
          absl::StrFormat("%s: call number %d of this session was another "
                          "rpc (lane method id %d); each call takes a new "
                          "number, sent again only with the same request",
                          m.full_name, number, first->method())));
    }
    if (first->code() != 0) {
      return call->Finish(
          StatusFromWire(static_cast<absl::StatusCode>(first->code()),
                         first->message(), first->detail()));
    }
    if (!response->ParseFromString(first->response())) {
      return call->Finish(absl::InternalError(absl::StrFormat(
          "%s: the remembered answer of call %d is not a %s", m.full_name,
          number, m.response->GetDescriptor()->full_name())));
    }
    return call->Finish(absl::OkStatus());
  }
  NumberedCall numbered(engine.changes(), session, number);
  call->Number(number, m.lane_id, &engine.replies(), response);
  m.run(call, request, response);
}
namespace {

// The proto files whose services the table must cover, one message of each
// standing for its file.
std::vector<const google::protobuf::FileDescriptor*> ContractFiles() {
  return {v1::OpenRequest::descriptor()->file(),
          v1::DictGetRequest::descriptor()->file(),
          v1::ListGetRequest::descriptor()->file(),
          v1::NamespaceGetRequest::descriptor()->file(),
          v1::ValueGetRequest::descriptor()->file(),
          v1::LockAcquireRequest::descriptor()->file(),
          v1::QueueGetRequest::descriptor()->file(),
          v1::SessionRequest::descriptor()->file()};
}

[[noreturn]] void Broken(const std::string& what) {
  spdlog::critical("the method table is broken: {}", what);
  std::abort();
}

}  // namespace

// The handler objects the table's entries point into.
struct MethodTable::Handlers {
  explicit Handlers(Engine& engine)
      : objects(engine),
        dicts(engine),
        lists(engine),
        namespaces(engine),
        values(engine),
        arrays(engine),
        locks(engine),
        conditions(engine),
        semaphores(engine),
        events(engine),
        barriers(engine),
        queues(engine) {}
  ObjectsHandlers objects;
  DictHandlers dicts;
  ListHandlers lists;
  NamespaceHandlers namespaces;
  ValueHandlers values;
  ArrayHandlers arrays;
  LockHandlers locks;
  ConditionHandlers conditions;
  SemaphoreHandlers semaphores;
  EventHandlers events;
  BarrierHandlers barriers;
  QueueHandlers queues;
};

MethodTable::MethodTable(Engine& engine)
    : engine_(engine), handlers_(std::make_unique<Handlers>(engine)) {
  Handlers& h = *handlers_;
  Add("statehub.v1.Objects.Open", &h.objects, &ObjectsHandlers::Open);
  Add("statehub.v1.Objects.Delete", &h.objects, &ObjectsHandlers::Delete);
  Add("statehub.v1.Objects.List", &h.objects, &ObjectsHandlers::List);
  Add("statehub.v1.Objects.Describe", &h.objects, &ObjectsHandlers::Describe);
  Add("statehub.v1.Dicts.Get", &h.dicts, &DictHandlers::Get);
  Add("statehub.v1.Dicts.Set", &h.dicts, &DictHandlers::Set);
  Add("statehub.v1.Dicts.Delete", &h.dicts, &DictHandlers::Delete);
  Add("statehub.v1.Dicts.Contains", &h.dicts, &DictHandlers::Contains);
  Add("statehub.v1.Dicts.Len", &h.dicts, &DictHandlers::Len);
  Add("statehub.v1.Dicts.Items", &h.dicts, &DictHandlers::Items);
  Add("statehub.v1.Dicts.Pop", &h.dicts, &DictHandlers::Pop);
  Add("statehub.v1.Dicts.PopItem", &h.dicts, &DictHandlers::PopItem);
  Add("statehub.v1.Dicts.SetDefault", &h.dicts, &DictHandlers::SetDefault);
  Add("statehub.v1.Dicts.Update", &h.dicts, &DictHandlers::Update);
  Add("statehub.v1.Dicts.Clear", &h.dicts, &DictHandlers::Clear);
  Add("statehub.v1.Dicts.Increment", &h.dicts, &DictHandlers::Increment);
  Add("statehub.v1.Dicts.CompareAndSet", &h.dicts,
      &DictHandlers::CompareAndSet);
  Add("statehub.v1.Dicts.GetAndSet", &h.dicts, &DictHandlers::GetAndSet);
  Add("statehub.v1.Dicts.Expire", &h.dicts, &DictHandlers::Expire);
  Add("statehub.v1.Dicts.Ttl", &h.dicts, &DictHandlers::Ttl);
  Add("statehub.v1.Lists.Len", &h.lists, &ListHandlers::Len);
  Add("statehub.v1.Lists.Get", &h.lists, &ListHandlers::Get);
  Add("statehub.v1.Lists.Set", &h.lists, &ListHandlers::Set);
  Add("statehub.v1.Lists.Delete", &h.lists, &ListHandlers::Delete);
  Add("statehub.v1.Lists.Append", &h.lists, &ListHandlers::Append);
  Add("statehub.v1.Lists.Extend", &h.lists, &ListHandlers::Extend);
  Add("statehub.v1.Lists.Insert", &h.lists, &ListHandlers::Insert);
  Add("statehub.v1.Lists.Pop", &h.lists, &ListHandlers::Pop);
  Add("statehub.v1.Lists.Remove", &h.lists, &ListHandlers::Remove);
  Add("statehub.v1.Lists.Index", &h.lists, &ListHandlers::Index);
  Add("statehub.v1.Lists.Count", &h.lists, &ListHandlers::Count);
  Add("statehub.v1.Lists.Contains", &h.lists, &ListHandlers::Contains);
  Add("statehub.v1.Lists.Reverse", &h.lists, &ListHandlers::Reverse);
  Add("statehub.v1.Lists.Sort", &h.lists, &ListHandlers::Sort);
  Add("statehub.v1.Lists.Clear", &h.lists, &ListHandlers::Clear);
  Add("statehub.v1.Lists.Repeat", &h.lists, &ListHandlers::Repeat);
  Add("statehub.v1.Namespaces.Get", &h.namespaces, &NamespaceHandlers::Get);
  Add("statehub.v1.Namespaces.Set", &h.namespaces, &NamespaceHandlers::Set);
  Add("statehub.v1.Namespaces.Delete", &h.namespaces,
      &NamespaceHandlers::Delete);
  Add("statehub.v1.Namespaces.Items", &h.namespaces, &NamespaceHandlers::Items);
  Add("statehub.v1.Values.Get", &h.values, &ValueHandlers::Get);
  Add("statehub.v1.Values.Set", &h.values, &ValueHandlers::Set);
  Add("statehub.v1.Values.Increment", &h.values, &ValueHandlers::Increment);
  Add("statehub.v1.Values.CompareAndSet", &h.values,
      &ValueHandlers::CompareAndSet);
  Add("statehub.v1.Values.GetAndSet", &h.values, &ValueHandlers::GetAndSet);
  Add("statehub.v1.Arrays.Len", &h.arrays, &ArrayHandlers::Len);
  Add("statehub.v1.Arrays.Get", &h.arrays, &ArrayHandlers::Get);
  Add("statehub.v1.Arrays.Set", &h.arrays, &ArrayHandlers::Set);
  Add("statehub.v1.Locks.Acquire", &h.locks, &LockHandlers::Acquire);
  Add("statehub.v1.Locks.Release", &h.locks, &LockHandlers::Release);
  Add("statehub.v1.Locks.State", &h.locks, &LockHandlers::State);
  Add("statehub.v1.Locks.Deadlocks", &h.locks, &LockHandlers::Deadlocks);
  Add("statehub.v1.Conditions.Wait", &h.conditions, &ConditionHandlers::Wait);
  Add("statehub.v1.Conditions.Notify", &h.conditions,
      &ConditionHandlers::Notify);
  Add("statehub.v1.Semaphores.Acquire", &h.semaphores,
      &SemaphoreHandlers::Acquire);
  Add("statehub.v1.Semaphores.Release", &h.semaphores,
      &SemaphoreHandlers::Release);
  Add("statehub.v1.Semaphores.State", &h.semaphores, &SemaphoreHandlers::State);
  Add("statehub.v1.Events.Set", &h.events, &EventHandlers::Set);
  Add("statehub.v1.Events.Clear", &h.events, &EventHandlers::Clear);
  Add("statehub.v1.Events.IsSet", &h.events, &EventHandlers::IsSet);
  Add("statehub.v1.Events.Wait", &h.events, &EventHandlers::Wait);
  Add("statehub.v1.Barriers.Wait", &h.barriers, &BarrierHandlers::Wait);
  Add("statehub.v1.Barriers.Abort", &h.barriers, &BarrierHandlers::Abort);
  Add("statehub.v1.Barriers.Reset", &h.barriers, &BarrierHandlers::Reset);
  Add("statehub.v1.Barriers.State", &h.barriers, &BarrierHandlers::State);
  Add("statehub.v1.Barriers.ActionDone", &h.barriers,
      &BarrierHandlers::ActionDone);
  Add("statehub.v1.Queues.Put", &h.queues, &QueueHandlers::Put);
  Add("statehub.v1.Queues.Get", &h.queues, &QueueHandlers::Get);
  Add("statehub.v1.Queues.TaskDone", &h.queues, &QueueHandlers::TaskDone);
  Add("statehub.v1.Queues.Join", &h.queues, &QueueHandlers::Join);
  Add("statehub.v1.Queues.Size", &h.queues, &QueueHandlers::Size);
  Add("statehub.v1.Queues.State", &h.queues, &QueueHandlers::State);
  Check();
}

MethodTable::~MethodTable() = default;

Method& MethodTable::Insert(absl::string_view full_name,
                            const google::protobuf::Descriptor* request,
                            const google::protobuf::Descriptor* response) {
  const google::protobuf::MethodDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          std::string(full_name));
  if (descriptor == nullptr) Broken(absl::StrCat("no rpc ", full_name));
  if (descriptor->input_type() != request ||
      descriptor->output_type() != response) {
    Broken(absl::StrCat(full_name, ": the handler's message types differ"));
  }
  const uint32_t lane_id = descriptor->options().GetExtension(v1::lane_method);
  if (lane_id == 0 || lane_id > 0xffff) {
    Broken(absl::StrCat(full_name, " has no lane_method id (1 .. 65535)"));
  }
  Method m;
  m.index = static_cast<int>(methods_.size());
  m.descriptor = descriptor;
  m.full_name = std::string(full_name);
  m.grpc_path = absl::StrCat("/", descriptor->service()->full_name(), "/",
                             descriptor->name());
  m.lane_id = static_cast<uint16_t>(lane_id);
  m.read_only = descriptor->options().GetExtension(v1::read_only);
  m.request =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          request);
  m.response =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(
          response);
  methods_.push_back(std::move(m));
  return methods_.back();
}

template <typename H, typename Req, typename Resp>
void MethodTable::Add(absl::string_view full_name, H* handlers,
                      absl::Status (H::*fn)(const Caller&, const Req*, Resp*)) {
  Method& m = Insert(full_name, Req::descriptor(), Resp::descriptor());
  m.run = [this, read_only = m.read_only, handlers, fn](
              Call* call, const google::protobuf::Message& request,
              google::protobuf::Message* response) {
    if (absl::Status refused = Refused(read_only); !refused.ok()) {
      return call->Finish(refused);
    }
    call->Finish((handlers->*fn)(call->caller(),
                                 static_cast<const Req*>(&request),
                                 static_cast<Resp*>(response)));
  };
}

template <typename H, typename Req, typename Resp>
void MethodTable::Add(absl::string_view full_name, H* handlers,
                      void (H::*fn)(Call*, const Req*, Resp*)) {
  Method& m = Insert(full_name, Req::descriptor(), Resp::descriptor());
  m.blocking = true;
  m.run = [this, read_only = m.read_only, handlers, fn](
              Call* call, const google::protobuf::Message& request,
              google::protobuf::Message* response) {
    if (absl::Status refused = Refused(read_only); !refused.ok()) {
      return call->Finish(refused);
    }
    (handlers->*fn)(call, static_cast<const Req*>(&request),
                    static_cast<Resp*>(response));
  };
}

absl::Status MethodTable::Refused(bool read_only) const {
  if (read_only || !engine_.changes().durable()) return absl::OkStatus();
  return engine_.changes().health();
}

void MethodTable::Check() const {
  absl::flat_hash_set<const google::protobuf::MethodDescriptor*> served;
  uint32_t max_id = 0;
  for (const Method& m : methods_) {
    served.insert(m.descriptor);
    max_id = std::max<uint32_t>(max_id, m.lane_id);
  }
  for (const google::protobuf::FileDescriptor* file : ContractFiles()) {
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      for (int i = 0; i < service->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* method = service->method(i);
        // The session stream is the one rpc of its own kind: gRPC serves
        // it in server/grpc, the lane with HELLO, PING, RELEASE, GOODBYE.
        if (method->client_streaming() || method->server_streaming()) continue;
        if (!served.contains(method)) {
          Broken(absl::StrCat(method->full_name(), " has no handler"));
        }
      }
    }
  }
  auto& by_id = const_cast<std::vector<const Method*>&>(by_lane_id_);
  by_id.assign(max_id + 1, nullptr);
  for (const Method& m : methods_) {
    if (by_id[m.lane_id] != nullptr) {
      Broken(absl::StrCat(m.full_name, " and ", by_id[m.lane_id]->full_name,
                          " share lane id ", m.lane_id));
    }
    by_id[m.lane_id] = &m;
  }
}

std::vector<std::string> MethodTable::Services() const {
  std::vector<std::string> services;
  for (const Method& m : methods_) {
    const std::string& name = m.descriptor->service()->full_name();
    if (services.empty() || services.back() != name) services.push_back(name);
  }
  return services;
}

}  // namespace statehub::handlers
