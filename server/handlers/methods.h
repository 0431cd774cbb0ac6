// File: server/handlers/methods.h
//
// `MethodTable` is the one table of statehub's rpcs: for every rpc of
// api/statehub/v1 (Sessions.Connect excepted), its descriptor, its gRPC path,
// its lane method id (the `lane_method` option), whether it may park, and
// the transport-neutral handler that serves it. The gRPC adapter
// (server/grpc) and the lane (server/lane) serve the same table, so no rpc
// is written twice and none behaves differently by transport.
//
// Example:
//
//   MethodTable table(engine);
//   const Method* m = table.ByLaneId(16);   // statehub.v1.Dicts.Get
//   std::unique_ptr<google::protobuf::Message> req(m->request->New());
//   ...
//   m->run(call, *req, resp.get());         // finishes `call`, now or later
//
// Thread safety: immutable after construction.

#ifndef STATEHUB_SERVER_HANDLERS_METHODS_H_
#define STATEHUB_SERVER_HANDLERS_METHODS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "server/engine/engine.h"
#include "server/handlers/call.h"

namespace statehub::handlers {

struct Method {
  // index is the method's position in the table (metrics series).
  int index = 0;
  const google::protobuf::MethodDescriptor* descriptor = nullptr;
  // full_name is "statehub.v1.Dicts.Get"; grpc_path "/statehub.v1.Dicts/Get".
  std::string full_name;
  std::string grpc_path;
  uint16_t lane_id = 0;
  // blocking: the call may park (acquire, wait, get, put, join).
  bool blocking = false;
  // read_only: the rpc's `(statehub.v1.read_only)` option: it changes
  // nothing. While the log cannot take changes (a full disk), every other
  // rpc is refused before it runs, and these are served.
  bool read_only = false;
  // request and response are prototypes: New() makes a message of the type.
  const google::protobuf::Message* request = nullptr;
  const google::protobuf::Message* response = nullptr;
  // run serves `request` for `call`, filling `response`, and finishes the
  // call, now or (a parked call) later. Both messages must outlive the call.
  std::function<void(Call* call, const google::protobuf::Message& request,
                     google::protobuf::Message* response)>
      run;
};

// Serve runs `m` for `call`, with `response` the message its handler
// fills. A numbered call (`number` > 0, docs/durability.md "Exactly once";
// its client has seen every answer numbered below `seen`) that was answered
// before gets that answer again without running: it is a retry. Otherwise
// it runs inside a NumberedCall and its answer is remembered.
void Serve(Engine& engine, const Method& m, Call* call, uint64_t number,
           uint64_t seen, const google::protobuf::Message& request,
           google::protobuf::Message* response);

class MethodTable {
 public:
  // Builds the table over `engine`. Aborts, naming the rpc, if an rpc of
  // api/statehub/v1 has no handler or no lane id, or two share an id: the
  // table is the contract, and a gap is a bug that must not ship.
  explicit MethodTable(Engine& engine);
  MethodTable(const MethodTable&) = delete;
  MethodTable& operator=(const MethodTable&) = delete;
  ~MethodTable();

  const std::vector<Method>& methods() const { return methods_; }
  // ByLaneId returns the method with that id, or null.
  const Method* ByLaneId(uint32_t id) const {
    return id < by_lane_id_.size() ? by_lane_id_[id] : nullptr;
  }
  // Services lists the full names of the services in the table, e.g.
  // "statehub.v1.Dicts", in a stable order.
  std::vector<std::string> Services() const;

 private:
  struct Handlers;

  // Refused is the status a changing (not `read_only`) rpc gets before it
  // runs while the change stream's sink cannot take changes; OK otherwise.
  absl::Status Refused(bool read_only) const;

  template <typename H, typename Req, typename Resp>
  void Add(absl::string_view full_name, H* handlers,
           absl::Status (H::*fn)(const Caller&, const Req*, Resp*));
  template <typename H, typename Req, typename Resp>
  void Add(absl::string_view full_name, H* handlers,
           void (H::*fn)(Call*, const Req*, Resp*));
  Method& Insert(absl::string_view full_name,
                 const google::protobuf::Descriptor* request,
                 const google::protobuf::Descriptor* response);
  void Check() const;

  Engine& engine_;
  std::unique_ptr<Handlers> handlers_;
  std::vector<Method> methods_;
  std::vector<const Method*> by_lane_id_;
};

}  // namespace statehub::handlers

#endif  // STATEHUB_SERVER_HANDLERS_METHODS_H_
