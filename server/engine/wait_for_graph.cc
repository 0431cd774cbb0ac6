#include "server/engine/wait_for_graph.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/engine/sessions.h"
#include "statehub/status.h"

namespace statehub {
namespace {

std::string Who(const HolderInfo& who) {
  return absl::StrFormat(
      "session %s (%s, thread %x)", SessionTable::FormatId(who.session),
      who.label.empty() ? "no label" : who.label, who.thread_id);
}

}  // namespace

std::string DescribeDeadlock(const Deadlock& deadlock) {
  std::string text = absl::StrCat("deadlock ", deadlock.id, ": ");
  for (size_t i = 0; i < deadlock.edges.size(); ++i) {
    const DeadlockEdge& e = deadlock.edges[i];
    absl::StrAppend(&text, i == 0 ? "" : "; ", Who(e.waiter),
                    e.condition ? " reacquiring " : " waits for ",
                    e.reentrant ? "rlock \"" : "lock \"", e.lock, "\" held by ",
                    Who(e.holder));
  }
  if (deadlock.victim >= 0) {
    const DeadlockEdge& v = deadlock.edges[deadlock.victim];
    absl::StrAppend(&text, "; --deadlock=fail fails the ",
                    v.condition ? "condition wait" : "acquire", " of \"",
                    v.lock, "\" by session ",
                    SessionTable::FormatId(v.waiter.session));
  }
  return text;
}

absl::Status WaitForGraph::DeadlockError(const Deadlock& deadlock) {
  const DeadlockEdge& v = deadlock.edges[std::max(deadlock.victim, 0)];
  return MakeError(absl::StatusCode::kAborted, ErrorKind::kDeadlock,
                   absl::StrCat(v.reentrant ? "rlock \"" : "lock \"", v.lock,
                                "\": acquiring it would deadlock (",
                                DescribeDeadlock(deadlock), ")"),
                   v.lock);
}

void WaitForGraph::Configure(DeadlockPolicy policy, Observer observer) {
  policy_ = policy;
  observer_ = std::move(observer);
}

bool WaitForGraph::PathLocked(Actor from, Actor to,
                              std::vector<const Edge*>* path) const {
  // Depth-first, iteratively: a convoy may be thousands of threads long.
  struct Frame {
    Actor actor;
    size_t next = 0;
  };
  absl::flat_hash_set<Actor> seen = {from};
  std::vector<Frame> stack = {Frame{from}};
  const size_t base = path->size();
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.actor == to) return true;
    auto waits = waits_.find(top.actor);
    const Edge* edge = nullptr;
    const HolderInfo* holder = nullptr;
    while (waits != waits_.end() && top.next < waits->second.size()) {
      const Edge& e = edges_.at(waits->second[top.next++]);
      // A claimed waiter is on its way out (granted, timed out, cancelled).
      if (e.waiter->claimed()) continue;
      const LockNode& node = locks_.at(e.lock);
      if (!node.holder) continue;
      // A holder seen before leads nowhere new.
      const Actor next = ActorOf(*node.holder);
      if (next != to && !seen.insert(next).second) continue;
      edge = &e;
      holder = &*node.holder;
      break;
    }
    if (edge == nullptr) {
      stack.pop_back();
      if (path->size() > base) path->pop_back();
      continue;
    }
    path->push_back(edge);
    stack.push_back(Frame{ActorOf(*holder)});
  }
  return false;
}

WaitForGraph::Outcome WaitForGraph::Wait(
    const LockRef& lock, const std::optional<HolderInfo>& holder,
    const std::shared_ptr<Waiter>& waiter, bool condition) {
  Outcome outcome;
  const Actor me{waiter->session(), waiter->thread_id()};
  MutexLock l(&mu_);
  std::vector<const Edge*> path;
  // Before the new wait is recorded: the path runs from the holder back to
  // the new waiter through waits already there.
  const bool closes =
      holder.has_value() && PathLocked(ActorOf(*holder), me, &path);
  if (closes) {
    Deadlock d;
    d.id = ++found_;
    d.found = absl::Now();
    d.edges.push_back(DeadlockEdge{*lock.name, lock.reentrant, condition,
                                   InfoOf(*waiter), *holder});
    std::vector<const Waiter*> waiters = {waiter.get()};
    std::vector<const void*> locks = {lock.id};
    for (const Edge* e : path) {
      const LockNode& node = locks_.at(e->lock);
      d.edges.push_back(DeadlockEdge{node.name, node.reentrant, e->condition,
                                     InfoOf(*e->waiter), *node.holder});
      waiters.push_back(e->waiter.get());
      locks.push_back(e->lock);
    }
    if (policy_ == DeadlockPolicy::kFail) {
      if (!condition) {
        d.victim = 0;
        outcome.refused = true;
      } else {
        // The newest plain acquire of the cycle, else this condition wait.
        int victim = 0;
        for (size_t i = 0; i < path.size(); ++i) {
          const Edge& e = *path[i];
          if (e.condition) continue;
          if (victim == 0 || e.waiter->since() > d.edges[victim].waiter.since) {
            victim = static_cast<int>(i) + 1;
          }
        }
        const std::shared_ptr<Waiter> chosen =
            victim == 0 ? waiter : path[victim - 1]->waiter;
        if (chosen->TryClaim()) {
          d.victim = victim;
          WaitResult failed;
          failed.status = DeadlockError(d);
          outcome.failed = Completion{chosen, std::move(failed)};
          if (victim > 0) RemoveLocked(chosen.get());
        }
        // Else the chosen wait is ending already, and the cycle with it.
      }
    }
    if (observer_) observer_(d);
    if (!outcome.refused && !outcome.failed) {
      present_.push_back(Present{d, std::move(waiters), std::move(locks)});
    }
    outcome.cycle = std::move(d);
  }
  if (outcome.refused || (outcome.failed && outcome.failed->waiter == waiter)) {
    return outcome;
  }
  LockNode& node = locks_[lock.id];
  if (node.waits++ == 0) {
    node.name = *lock.name;
    node.reentrant = lock.reentrant;
    node.holder = holder;
  }
  edges_[waiter.get()] = Edge{me, lock.id, waiter, condition};
  waits_[me].push_back(waiter.get());
  return outcome;
}

template <typename Pred>
void WaitForGraph::DissolveLocked(Pred pred) {
  present_.erase(std::remove_if(present_.begin(), present_.end(), pred),
                 present_.end());
}

void WaitForGraph::RemoveLocked(const Waiter* waiter) {
  auto it = edges_.find(waiter);
  if (it == edges_.end()) return;
  const Edge& edge = it->second;
  auto waits = waits_.find(edge.actor);
  auto& list = waits->second;
  list.erase(std::find(list.begin(), list.end(), waiter));
  if (list.empty()) waits_.erase(waits);
  auto node = locks_.find(edge.lock);
  if (--node->second.waits == 0) locks_.erase(node);
  edges_.erase(it);
  if (!present_.empty()) {
    DissolveLocked([waiter](const Present& p) {
      return std::find(p.waiters.begin(), p.waiters.end(), waiter) !=
             p.waiters.end();
    });
  }
}

void WaitForGraph::Unwait(const Waiter* waiter) {
  MutexLock l(&mu_);
  RemoveLocked(waiter);
}

void WaitForGraph::SetHolder(const void* lock,
                             const std::optional<HolderInfo>& holder) {
  MutexLock l(&mu_);
  auto node = locks_.find(lock);
  if (node == locks_.end()) return;
  node->second.holder = holder;
  if (!present_.empty()) {
    DissolveLocked([lock](const Present& p) {
      return std::find(p.locks.begin(), p.locks.end(), lock) != p.locks.end();
    });
  }
}

std::vector<Deadlock> WaitForGraph::Cycles(const void* lock) const {
  MutexLock l(&mu_);
  std::vector<Deadlock> cycles;
  for (const Present& p : present_) {
    if (lock == nullptr ||
        std::find(p.locks.begin(), p.locks.end(), lock) != p.locks.end()) {
      cycles.push_back(p.deadlock);
    }
  }
  return cycles;
}

int64_t WaitForGraph::PresentCount() const {
  MutexLock l(&mu_);
  return static_cast<int64_t>(present_.size());
}

uint64_t WaitForGraph::Found() const {
  MutexLock l(&mu_);
  return found_;
}

}  // namespace statehub
