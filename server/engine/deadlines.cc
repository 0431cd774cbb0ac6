#include "server/engine/deadlines.h"

namespace statehub {

void DeadlineIndex::Set(const Value& key, int64_t micros) {
  const When when{micros, next_++};
  auto [it, inserted] = of_key_.try_emplace(key, when);
  if (!inserted) {
    by_time_.erase(it->second);
    it->second = when;
  }
  by_time_.emplace(when, key);
}

bool DeadlineIndex::Erase(const Value& key) {
  auto it = of_key_.find(key);
  if (it == of_key_.end()) return false;
  by_time_.erase(it->second);
  of_key_.erase(it);
  return true;
}

int64_t DeadlineIndex::Get(const Value& key) const {
  auto it = of_key_.find(key);
  return it == of_key_.end() ? 0 : it->second.first;
}

int64_t DeadlineIndex::Earliest() const {
  return by_time_.empty() ? kNone : by_time_.begin()->first.first;
}

int64_t DeadlineIndex::CountDue(int64_t now) const {
  int64_t due = 0;
  for (auto it = by_time_.begin();
       it != by_time_.end() && it->first.first <= now; ++it) {
    ++due;
  }
  return due;
}

std::vector<Value> DeadlineIndex::PopDue(int64_t now, size_t limit) {
  std::vector<Value> keys;
  while (!by_time_.empty() && keys.size() < limit) {
    auto first = by_time_.begin();
    if (first->first.first > now) break;
    of_key_.erase(first->second);
    keys.push_back(std::move(first->second));
    by_time_.erase(first);
  }
  return keys;
}

void DeadlineIndex::Clear() {
  // Swapped out rather than cleared, so the memory goes too.
  absl::flat_hash_map<Value, When, KeyHash, KeyEq>().swap(of_key_);
  by_time_.clear();
}

}  // namespace statehub
