// File: tests/fuzz/engine_harness.h
//
// `Harness` is engine_fuzz's client side. It reads requests from the fuzz
// input (fuzz_input.h), runs them through the transport-neutral handlers
// into an Engine of its own (the transport's part: fake_transport.h), keeps a
// model of what must hold (the named objects, fencing tokens, parked calls) and
// checks it after every request. One Harness serves one input.
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

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/engine/engine.h"
#include "server/engine/limits.h"
#include "server/handlers/call.h"
#include "server/handlers/cell_handlers.h"
#include "server/handlers/dict_handlers.h"
#include "server/handlers/list_handlers.h"
#include "server/handlers/lock_handlers.h"
#include "server/handlers/namespace_handlers.h"
#include "server/handlers/objects_handlers.h"
#include "server/handlers/queue_handlers.h"
#include "server/handlers/sync_handlers.h"
#include "statehub/v1/value.pb.h"
#include "tests/fuzz/fake_transport.h"
#include "tests/fuzz/fuzz_input.h"

namespace statehub::fuzz {

inline constexpr int kSlots = 3;
inline constexpr size_t kMaxOps = 256;
inline constexpr size_t kMaxAnonymous = 16;
// Finished calls are retired (the transport forgets them, and can no longer
// cancel them) once this many pile up.
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

// Who a request comes from: the session id it carries (gRPC's
// statehub-session metadata, or the lane connection's session), the live
// session that names (0 for none), and the transport it came by.
struct Who {
  std::string id;
  SessionId session = 0;
  handlers::Transport transport = handlers::Transport::kGrpc;
  // admitted: the transport lets the call through (no session, or a live
  // one); otherwise it fails with SESSION_ERROR before any handler runs.
  bool admitted() const { return id.empty() || session != 0; }
};

// How long a blocking request may wait. A zero timeout that parks (a
// condition or barrier wait) times out when the harness next fires the due
// timers, at the end of the op; a negative one is refused; a long one (an
// hour) never fires within a run.
enum class Timeout { kUnset, kZero, kNegative, kLong };

// Outcome is how an immediate call ended. Unlike absl::Status it may go
// unread: Harness::Call checks every outcome itself.
struct Outcome {
  absl::Status status;
  bool ok() const { return status.ok(); }
};

template <typename H, typename Request, typename Response>
using Immediate = absl::Status (H::*)(const Caller&, const Request*, Response*);
template <typename H, typename Request, typename Response>
using Blocking = void (H::*)(handlers::Call*, const Request*, Response*);

// One blocking call the harness keeps until it retires it.
struct Pending {
  std::unique_ptr<FakeCall> call;
  std::string what;
  std::string object;
  SessionId session = 0;
  // cancelled: the transport ran its canceller (it does so at most once).
  bool cancelled = false;
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
  // Admit is the transport's admission: the session the call carries must
  // be live (the bearer token is not fuzzed: the engine requires none).
  absl::StatusOr<Caller> Admit(const Who& who) {
    return engine_.ResolveCaller(who.id, absl::Now());
  }
  // Call runs an immediate request from `who` and checks how it ended.
  template <typename H, typename Request, typename Response>
  Outcome Call(H& handlers, Immediate<H, Request, Response> method,
               const Who& who, const Request& req, Response* resp,
               absl::string_view what) {
    absl::StatusOr<Caller> caller = Admit(who);
    const absl::Status status =
        caller.ok() ? (handlers.*method)(*caller, &req, resp) : caller.status();
    if constexpr (requires { req.name(); }) {
      Trace(what, req.name(), who, status);
    } else {
      Trace(what, "", who, status);
    }
    CheckOutcome(status, what);
    return Outcome{status};
  }
  template <typename H, typename Request, typename Response>
  Outcome Call(H& handlers, Immediate<H, Request, Response> method,
               const Who& who, const Request& req, absl::string_view what) {
    Response resp;
    return Call(handlers, method, who, req, &resp, what);
  }
  // Block starts a blocking request from `who`; the call, answered or
  // parked, is kept in pending_ until retired.
  template <typename H, typename Request, typename Response>
  void Block(H& handlers, Blocking<H, Request, Response> method, const Who& who,
             std::unique_ptr<Request> req, absl::string_view what) {
    const Request* request = req.get();
    absl::StatusOr<Caller> caller = Admit(who);
    auto call = std::make_unique<FakeCall>(
        who.transport, caller.ok() ? *caller : Caller{}, &timers_,
        std::move(req), std::make_unique<Response>());
    if (caller.ok()) {
      (handlers.*method)(call.get(), request,
                         static_cast<Response*>(call->response()));
    } else {
      call->Finish(caller.status());
    }
    Started(std::move(call), request->name(), who, what);
  }
  void Started(std::unique_ptr<FakeCall> call, const std::string& object,
               const Who& who, absl::string_view what);
  void CheckOutcome(const absl::Status& status, absl::string_view what);
  void Trace(absl::string_view what, const std::string& object, const Who& who,
             const absl::Status& status) const;

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
  // Retire forgets every finished call; with `all`, every call must have
  // finished.
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

  FakeTimers timers_;
  Engine engine_{FuzzLimits(), kLeaseTtl};
  handlers::ObjectsHandlers objects_{engine_};
  handlers::DictHandlers dicts_{engine_};
  handlers::ListHandlers lists_{engine_};
  handlers::NamespaceHandlers namespaces_{engine_};
  handlers::ValueHandlers values_{engine_};
  handlers::ArrayHandlers arrays_{engine_};
  handlers::LockHandlers locks_{engine_};
  handlers::ConditionHandlers conditions_{engine_};
  handlers::SemaphoreHandlers semaphores_{engine_};
  handlers::EventHandlers events_{engine_};
  handlers::BarrierHandlers barriers_{engine_};
  handlers::QueueHandlers queues_{engine_};

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
