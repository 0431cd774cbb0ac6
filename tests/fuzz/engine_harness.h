// File: tests/fuzz/engine_harness.h
//
// `Harness` is engine_fuzz's client side. It reads requests from the fuzz
// input (fuzz_input.h), runs them through the gRPC service handlers into an
// Engine of its own (fake_call.h), keeps a model of what must hold (the
// named objects, fencing tokens, parked calls) and checks it after every
// request. One Harness serves one input.
//
// Its code: engine_harness.cc (reading requests, sessions, objects, parked
// calls), engine_data_ops.cc (dicts, lists, namespaces, values, arrays),
// engine_sync_ops.cc (locks, conditions, semaphores, events, barriers,
// queues) and engine_checks.cc (the invariants).
//
// Example:
//
//   Input in(data, size);
//   Harness harness;
//   harness.Run(in);
//   harness.Teardown();
//
// Not thread-safe.

#ifndef STATEHUB_TESTS_FUZZ_ENGINE_HARNESS_H_
#define STATEHUB_TESTS_FUZZ_ENGINE_HARNESS_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/engine/engine.h"
#include "server/engine/limits.h"
#include "server/service/cell_service.h"
#include "server/service/dict_service.h"
#include "server/service/list_service.h"
#include "server/service/lock_service.h"
#include "server/service/namespace_service.h"
#include "server/service/objects_service.h"
#include "server/service/queue_service.h"
#include "server/service/sync_service.h"
#include "statehub/v1/value.pb.h"
#include "tests/fuzz/fake_call.h"
#include "tests/fuzz/fuzz_input.h"

namespace statehub::fuzz {

inline constexpr int kSlots = 3;
inline constexpr size_t kMaxOps = 256;
inline constexpr size_t kMaxAnonymous = 16;
// Finished calls are retired (OnDone) once this many pile up.
inline constexpr size_t kMaxPending = 48;
inline constexpr absl::Duration kLeaseTtl = absl::Hours(1);

// Tracing is true when STATEHUB_FUZZ_TRACE is set: every request and how it
// ended is printed, to read what a crashing input does (README.md).
bool Tracing();

// FuzzLimits are small, so that every limit is within a fuzzer's reach.
Limits FuzzLimits();

// The op codes: an op's first byte, modulo kOpCount. make_corpus.py
// mirrors this list.
enum Op : uint8_t {
  kSessionOpen,
  kSessionKeepalive,
  kSessionRelease,
  kSessionGoodbye,
  kSessionsExpire,
  kOpen,
  kDelete,
  kList,
  kDescribe,
  kDictGet,
  kDictSet,
  kDictDelete,
  kDictContains,
  kDictLen,
  kDictItems,
  kDictPop,
  kDictPopItem,
  kDictSetDefault,
  kDictUpdate,
  kDictClear,
  kDictIncrement,
  kDictCompareAndSet,
  kDictGetAndSet,
  kListLen,
  kListGet,
  kListSet,
  kListDelete,
  kListAppend,
  kListExtend,
  kListInsert,
  kListPop,
  kListRemove,
  kListIndex,
  kListCount,
  kListContains,
  kListReverse,
  kListSort,
  kListClear,
  kListRepeat,
  kNamespaceGet,
  kNamespaceSet,
  kNamespaceDelete,
  kNamespaceItems,
  kValueGet,
  kValueSet,
  kValueIncrement,
  kValueCompareAndSet,
  kValueGetAndSet,
  kArrayLen,
  kArrayGet,
  kArraySet,
  kLockAcquire,
  kLockRelease,
  kLockState,
  kConditionWait,
  kConditionNotify,
  kSemaphoreAcquire,
  kSemaphoreRelease,
  kSemaphoreState,
  kEventSet,
  kEventClear,
  kEventIsSet,
  kEventWait,
  kBarrierWait,
  kBarrierAbort,
  kBarrierReset,
  kBarrierState,
  kQueuePut,
  kQueueGet,
  kQueueTaskDone,
  kQueueJoin,
  kQueueSize,
  kQueueState,
  kCancel,
  kRetire,
  kOpCount,
};

inline const std::string kLabels[] = {"", "worker", "w2"};

// Who a request comes from: its statehub-session metadata, and the live
// session that names (0 for none).
struct Who {
  std::string metadata;
  SessionId session = 0;
  // admitted: the call gets past its session check (none, or a live one).
  bool admitted() const { return metadata.empty() || session != 0; }
};

// How long a blocking request may wait. Zero and negative timeouts are
// answered at once; a long one arms a grpc::Alarm that never fires within
// a run (it is cancelled when the call ends), so no gRPC thread ever runs
// engine code.
enum class Timeout { kUnset, kZero, kNegative, kLong };

// One blocking call the harness keeps until it retires it.
struct Pending {
  std::unique_ptr<BlockingCall> call;
  std::string what;
  std::string object;
  SessionId session = 0;
  // answered: the handler answered at once (FinishNow) rather than
  // parking the call.
  bool answered = false;
  // generation: how many times `object` had been deleted when the call
  // started; a later object of that name is another object.
  int64_t generation = 0;
  bool checked = false;
};

class Harness {
 public:
  Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void Run(Input& in);
  // Ends every session (which must finish every parked call), retires the
  // calls and checks that nothing is left held.
  void Teardown();

 private:
  // --- reading requests
  std::string Name(Input& in);
  Who From(Input& in);
  void BuildValue(Input& in, v1::Value* out, int depth);
  void BuildSubscript(Input& in, v1::Subscript* out);
  Timeout TimeoutOf(Input& in) { return static_cast<Timeout>(in.Byte() % 4); }

  // --- calls
  // Call runs a unary request from `who` and checks how it ended.
  template <typename Service, typename Request, typename Response>
  Outcome Call(Service& service, Handler<Service, Request, Response> method,
               const Who& who, const Request& req, Response* resp,
               absl::string_view what) {
    Outcome out = Unary(service, method, who.metadata, req, resp);
    if constexpr (requires { req.name(); }) {
      Trace(what, req.name(), who, out);
    } else {
      Trace(what, "", who, out);
    }
    CheckOutcome(out, what);
    return out;
  }
  template <typename Service, typename Request, typename Response>
  Outcome Call(Service& service, Handler<Service, Request, Response> method,
               const Who& who, const Request& req, absl::string_view what) {
    Response resp;
    return Call(service, method, who, req, &resp, what);
  }
  // Block starts a blocking request from `who`; the call, answered or
  // parked, is kept in pending_ until retired.
  template <typename Service, typename Request, typename Response>
  void Block(Service& service, Handler<Service, Request, Response> method,
             const Who& who, std::unique_ptr<Request> req,
             absl::string_view what) {
    const std::string object = req->name();
    std::unique_ptr<BlockingCall> call =
        BlockingCall::Start(service, method, who.metadata, std::move(req));
    if (Tracing()) {
      std::fprintf(stderr, "  %s \"%s\" from %s: %s (call %zu)\n",
                   std::string(what).c_str(), object.c_str(),
                   who.metadata.empty() ? "-" : who.metadata.c_str(),
                   call->finished() ? "answered" : "parked", pending_.size());
    }
    const bool answered = call->finished();
    pending_.push_back(Pending{std::move(call), std::string(what), object,
                               who.session, answered, deletions_[object]});
  }
  void CheckOutcome(const Outcome& out, absl::string_view what);
  void Trace(absl::string_view what, const std::string& object, const Who& who,
             const Outcome& out) const;

  // --- the ops
  void Step(Input& in);
  void SessionOp(Op op, Input& in);
  void Open(Input& in);
  void DictOp(Op op, Input& in);
  void ListOp(Op op, Input& in);
  void CellOp(Op op, Input& in);
  void SyncOp(Op op, Input& in);
  void QueueOp(Op op, Input& in);
  void Cancel(Input& in);
  // Settle checks how a finished call ended, once.
  void Settle(Pending& p);
  // Retire runs OnDone for every finished call; with `all`, every call
  // must have finished.
  void Retire(bool all);

  // --- invariants
  void CheckAll();
  void CheckObject(const v1::ObjectInfo& info);
  void CheckPending();
  void CheckDict(const std::string& name, int64_t size);
  void CheckLock(const std::string& name);
  std::string Canonical(const v1::Value& wire);
  bool Live(SessionId id) const {
    return id != 0 && engine_.sessions().IsLive(id, absl::Now());
  }
  void NoteAnonymous(const std::string& name);

  Engine engine_{FuzzLimits(), kLeaseTtl};
  service::ObjectsService objects_{engine_};
  service::DictService dicts_{engine_};
  service::ListService lists_{engine_};
  service::NamespaceService namespaces_{engine_};
  service::ValueService values_{engine_};
  service::ArrayService arrays_{engine_};
  service::LockService locks_{engine_};
  service::ConditionService conditions_{engine_};
  service::SemaphoreService semaphores_{engine_};
  service::EventService events_{engine_};
  service::BarrierService barriers_{engine_};
  service::QueueService queues_{engine_};

  // The session each client slot last opened (0: none yet).
  SessionId slots_[kSlots] = {};
  // The model: named objects opened and not deleted, with their types.
  std::map<std::string, v1::ObjectType> named_;
  // Anonymous names seen, newest last, dead ones included.
  std::vector<std::string> anonymous_;
  // The highest fencing token seen per lock, until it is deleted.
  std::map<std::string, uint64_t> tokens_;
  // How many times each name was deleted.
  std::map<std::string, int64_t> deletions_;
  // The size_version of the last dict items page, for the next request.
  int64_t size_version_ = 0;
  std::vector<Pending> pending_;
};

}  // namespace statehub::fuzz

#endif  // STATEHUB_TESTS_FUZZ_ENGINE_HARNESS_H_
