// File: server/engine/wait_for_graph.h
//
// `WaitForGraph` finds deadlocks among locks and rlocks the moment they
// form (docs/deadlocks.md). Its nodes are client threads, (session, thread
// id); a thread parked on a lock, as an acquirer or as a condition waiter
// reacquiring, waits for the thread that holds that lock. A new wait that
// closes a cycle is a deadlock: the graph reports it once, keeps it while
// every wait in it lasts, and drops it when one ends or one of its locks
// changes hands.
//
// The graph holds only the locks somebody waits for, so an uncontended
// acquire or release never reaches it: a LockObject calls it only while its
// own queue holds waits the graph knows of (LockObject::graphed_).
//
// Semaphores, events, barriers and queues stay out: their units and items
// have no holder a waiter could be said to wait for.
//
// Thread safety: thread-safe. Lock objects call it with their own mutex
// held (lock order: object mutex, then the graph's); it never calls into an
// object. The observer runs under the graph's mutex.

#ifndef STATEHUB_SERVER_ENGINE_WAIT_FOR_GRAPH_H_
#define STATEHUB_SERVER_ENGINE_WAIT_FOR_GRAPH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/time/time.h"
#include "server/engine/mutex.h"
#include "server/engine/waiter.h"

namespace statehub {

// DeadlockPolicy is what the server does with a cycle (--deadlock).
enum class DeadlockPolicy {
  // kReport counts and logs it and shows it; the waiters stay parked.
  kReport,
  // kFail also fails one acquire of the cycle at once with DEADLOCK.
  kFail,
};

// One wait of a cycle: `waiter` is parked on `lock`, held by `holder`.
struct DeadlockEdge {
  std::string lock;
  bool reentrant = false;
  // condition: the waiter is a condition waiter reacquiring the lock.
  bool condition = false;
  HolderInfo waiter;
  HolderInfo holder;
};

// A cycle of waits: edge i's holder is edge i + 1's waiter, and the last
// edge's holder is the first edge's waiter.
struct Deadlock {
  // id numbers the cycles found since the server started, from 1.
  uint64_t id = 0;
  absl::Time found;
  std::vector<DeadlockEdge> edges;
  // victim is the index of the edge whose acquire fails under kFail; -1
  // when nothing fails (kReport).
  int victim = -1;
};

// Describe says in one line which thread waits for which lock held by whom,
// around the cycle.
std::string DescribeDeadlock(const Deadlock& deadlock);

class WaitForGraph {
 public:
  // The observer sees every cycle found, once (metrics and the log).
  using Observer = std::function<void(const Deadlock&)>;

  WaitForGraph() = default;
  WaitForGraph(const WaitForGraph&) = delete;
  WaitForGraph& operator=(const WaitForGraph&) = delete;

  // Configure sets the policy and the observer; call before serving.
  void Configure(DeadlockPolicy policy, Observer observer);
  DeadlockPolicy policy() const { return policy_; }

  // Identifies a lock to the graph: its address, name and kind.
  struct LockRef {
    const void* id = nullptr;
    const std::string* name = nullptr;
    bool reentrant = false;
  };

  struct Outcome {
    // cycle is the deadlock this wait closed, if any.
    std::optional<Deadlock> cycle;
    // refused: under kFail the new wait is the victim; it was not recorded
    // and the caller must fail it with DeadlockError(*cycle).
    bool refused = false;
    // failed: under kFail another wait of the cycle is the victim; the
    // graph claimed its waiter and dropped its wait, and the caller must
    // deliver this completion (its lock's queue drops the claimed entry
    // when it next serves it).
    std::optional<Completion> failed;
  };
  // Wait records that `waiter` parks on `lock`, whose holder is `holder`
  // (nullopt when free), and looks for the cycle it closes. `condition`: a
  // condition waiter moving on to reacquire. A condition waiter is never
  // refused: under kFail the victim is the cycle's newest plain acquire, and
  // the new wait itself only when the cycle has no other.
  Outcome Wait(const LockRef& lock, const std::optional<HolderInfo>& holder,
               const std::shared_ptr<Waiter>& waiter, bool condition);
  // Unwait drops the wait of `waiter` (granted, withdrawn, failed); no-op
  // if it has none.
  void Unwait(const Waiter* waiter);
  // SetHolder tells the graph that `lock`, which has waits, changed hands.
  void SetHolder(const void* lock, const std::optional<HolderInfo>& holder);

  // Cycles returns the deadlocks present now, oldest first; with a lock,
  // only those through it.
  std::vector<Deadlock> Cycles(const void* lock = nullptr) const;
  // PresentCount is Cycles().size() without copying the cycles (metrics).
  int64_t PresentCount() const;
  // Found counts the cycles found since the start.
  uint64_t Found() const;

  // DeadlockError is the status of an acquire failed by `deadlock`.
  static absl::Status DeadlockError(const Deadlock& deadlock);

 private:
  // A client thread.
  struct Actor {
    SessionId session = 0;
    uint64_t thread_id = 0;
    bool operator==(const Actor&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const Actor& a) {
      return H::combine(std::move(h), a.session, a.thread_id);
    }
  };
  struct Edge {
    Actor actor;
    const void* lock = nullptr;
    std::shared_ptr<Waiter> waiter;
    bool condition = false;
  };
  struct LockNode {
    std::string name;
    bool reentrant = false;
    std::optional<HolderInfo> holder;
    int64_t waits = 0;
  };
  struct Present {
    Deadlock deadlock;
    std::vector<const Waiter*> waiters;
    std::vector<const void*> locks;
  };

  static Actor ActorOf(const HolderInfo& who) {
    return Actor{who.session, who.thread_id};
  }
  // Finds a path of live waits from `from` to `to`; appends its edges.
  bool PathLocked(Actor from, Actor to, std::vector<const Edge*>* path) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const Waiter* waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the present cycles that `pred` selects.
  template <typename Pred>
  void DissolveLocked(Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  DeadlockPolicy policy_ = DeadlockPolicy::kReport;
  Observer observer_;
  mutable Mutex mu_;
  absl::flat_hash_map<const Waiter*, Edge> edges_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Actor, absl::InlinedVector<const Waiter*, 1>> waits_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<const void*, LockNode> locks_ ABSL_GUARDED_BY(mu_);
  std::vector<Present> present_ ABSL_GUARDED_BY(mu_);
  uint64_t found_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_WAIT_FOR_GRAPH_H_
