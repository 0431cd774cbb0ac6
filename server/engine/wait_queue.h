// File: server/engine/wait_queue.h
//
// Helpers for the FIFO queues of parked calls kept by the blocking objects
// (semaphore, event, barrier, queue). An entry is any struct with a
// `std::shared_ptr<Waiter> waiter` member; `Parked` is the plain one, and a
// queue's parked putter adds its item.
//
// Every helper runs under the owning object's mutex and only collects
// Completions; the object delivers them after its mutex drops. An entry
// whose waiter was claimed by someone else (its timeout or cancellation) is
// on its way out: helpers that empty a queue drop such entries, and their
// claimer's later Withdraw finds nothing. Whoever removes an entry owns what
// it carries (a putter's item and the refs counted for it).

#ifndef STATEHUB_SERVER_ENGINE_WAIT_QUEUE_H_
#define STATEHUB_SERVER_ENGINE_WAIT_QUEUE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "server/engine/waiter.h"

namespace statehub {
namespace wait_queue_internal {

// Parked is one parked call with nothing attached.
struct Parked {
  std::shared_ptr<Waiter> waiter;
};

// Take removes and returns the entry of `waiter`, or nullopt if absent.
template <typename T>
std::optional<T> Take(std::deque<T>& queue, const Waiter* waiter) {
  auto it = std::find_if(queue.begin(), queue.end(), [waiter](const T& e) {
    return e.waiter.get() == waiter;
  });
  if (it == queue.end()) return std::nullopt;
  T taken = std::move(*it);
  queue.erase(it);
  return taken;
}

// FailAll empties `queue`: each call it can claim completes with `status`.
// Returns every removed entry (waiters moved out of the claimed ones).
template <typename T>
std::vector<T> FailAll(std::deque<T>& queue, const absl::Status& status,
                       std::vector<Completion>* out) {
  std::vector<T> removed;
  removed.reserve(queue.size());
  for (T& entry : queue) {
    if (entry.waiter->TryClaim()) {
      WaitResult failed;
      failed.status = status;
      out->push_back(Completion{std::move(entry.waiter), std::move(failed)});
    }
    removed.push_back(std::move(entry));
  }
  queue.clear();
  return removed;
}

// FailSession removes the calls of `session` it can claim and completes them
// with `status`. Returns the removed entries (waiters moved out).
template <typename T>
std::vector<T> FailSession(std::deque<T>& queue, SessionId session,
                           const absl::Status& status,
                           std::vector<Completion>* out) {
  std::vector<T> removed;
  for (auto it = queue.begin(); it != queue.end();) {
    if (it->waiter->session() == session && it->waiter->TryClaim()) {
      WaitResult failed;
      failed.status = status;
      out->push_back(Completion{std::move(it->waiter), std::move(failed)});
      removed.push_back(std::move(*it));
      it = queue.erase(it);
    } else {
      ++it;
    }
  }
  return removed;
}

// Infos describes the calls still waiting, in the order they will be served.
template <typename T>
std::vector<HolderInfo> Infos(const std::deque<T>& queue) {
  std::vector<HolderInfo> infos;
  for (const T& entry : queue) {
    if (entry.waiter->claimed()) continue;
    infos.push_back(InfoOf(*entry.waiter));
  }
  return infos;
}

// Waiting counts the calls still waiting.
template <typename T>
int64_t Waiting(const std::deque<T>& queue) {
  return std::count_if(queue.begin(), queue.end(),
                       [](const T& e) { return !e.waiter->claimed(); });
}

}  // namespace wait_queue_internal
}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_WAIT_QUEUE_H_
