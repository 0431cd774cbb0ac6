#include "server/engine/expirer.h"

#include <algorithm>
#include <vector>

#include "server/engine/dict.h"

namespace statehub {

Expirer::~Expirer() { Stop(); }

void Expirer::Schedule(const std::shared_ptr<DictObject>& dict,
                       absl::Time when) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  const DictObject* key = dict.get();
  auto [it, inserted] = requests_.try_emplace(key, when, dict);
  if (!inserted) {
    queue_.erase({it->second.first, key});
    it->second = {when, dict};
  }
  const bool earliest = queue_.empty() || when < queue_.begin()->first;
  queue_.insert({when, key});
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { Run(); });
  } else if (earliest) {
    wake_.notify_one();
  }
}

void Expirer::Cancel(const DictObject* dict) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = requests_.find(dict);
  if (it == requests_.end()) return;
  queue_.erase({it->second.first, dict});
  requests_.erase(it);
}

void Expirer::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
}

void Expirer::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = false;
  wake_.notify_one();
}

void Expirer::Stop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    queue_.clear();
    requests_.clear();
    thread = std::move(thread_);
    wake_.notify_one();
  }
  if (thread.joinable()) thread.join();
}

void Expirer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  std::vector<std::weak_ptr<DictObject>> due;
  // Rounds are kRound apart at least: deadlines that fall densely (a
  // million over seconds) are reclaimed a round's worth at a time, in
  // records of many keys, instead of waking for each.
  absl::Time next_round = absl::InfinitePast();
  while (!stopped_) {
    if (paused_ || queue_.empty()) {
      wake_.wait(lock);
      continue;
    }
    const absl::Time first = std::max(queue_.begin()->first, next_round);
    const absl::Time now = absl::Now();
    if (first > now) {
      // At most an hour at a time: a far deadline (a record's, which no
      // longer went through the request's checks) never overflows the
      // clock's arithmetic.
      wake_.wait_until(
          lock, absl::ToChronoTime(std::min(first, now + absl::Hours(1))));
      continue;
    }
    // Every request due now, taken out; each dict asks again (Schedule)
    // for its next deadline from ExpireDue.
    while (!queue_.empty() && queue_.begin()->first <= now) {
      const DictObject* key = queue_.begin()->second;
      queue_.erase(queue_.begin());
      auto it = requests_.find(key);
      due.push_back(std::move(it->second.second));
      requests_.erase(it);
    }
    next_round = now + kRound;
    lock.unlock();
    for (std::weak_ptr<DictObject>& weak : due) {
      if (std::shared_ptr<DictObject> dict = weak.lock()) dict->ExpireDue();
    }
    due.clear();
    lock.lock();
  }
}

}  // namespace statehub
