#include "server/engine/ordered_map.h"

namespace statehub {

OrderedMap::OrderedMap() : index_(0, SlotHash{&slots_}, SlotEq{&slots_}) {}

const Value* OrderedMap::Find(const Value& key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &slots_[*it].value;
}

Value* OrderedMap::Find(const Value& key) {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &slots_[*it].value;
}

std::optional<Value> OrderedMap::Set(Value key, Value value) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    Value previous = std::move(slots_[*it].value);
    slots_[*it].value = std::move(value);
    return previous;
  }
  slots_.push_back(Slot{std::move(key), std::move(value), true});
  index_.insert(slots_.size() - 1);
  ++live_;
  ++size_version_;
  return std::nullopt;
}

std::optional<Value> OrderedMap::Erase(const Value& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const size_t slot = *it;
  index_.erase(it);
  Slot& s = slots_[slot];
  Value value = std::move(s.value);
  s = Slot{};
  --live_;
  ++size_version_;
  MaybeCompact();
  return value;
}

std::pair<Value, Value> OrderedMap::PopLast() {
  while (!slots_.back().live) slots_.pop_back();
  Slot last = std::move(slots_.back());
  index_.erase(slots_.size() - 1);
  slots_.pop_back();
  --live_;
  ++size_version_;
  return {std::move(last.key), std::move(last.value)};
}

int64_t OrderedMap::Visit(
    int64_t cursor, int64_t limit,
    absl::FunctionRef<void(const Value&, const Value&)> fn) const {
  int64_t visited = 0;
  auto i = static_cast<size_t>(cursor < 0 ? 0 : cursor);
  for (; i < slots_.size(); ++i) {
    if (!slots_[i].live) continue;
    if (limit > 0 && visited == limit) return static_cast<int64_t>(i);
    fn(slots_[i].key, slots_[i].value);
    ++visited;
  }
  return 0;
}

std::vector<Value> OrderedMap::TakeValues() {
  std::vector<Value> values;
  values.reserve(live_);
  for (Slot& slot : slots_) {
    if (slot.live) values.push_back(std::move(slot.value));
  }
  index_.clear();
  slots_.clear();
  if (live_ != 0) ++size_version_;
  live_ = 0;
  return values;
}

void OrderedMap::MaybeCompact() {
  if (slots_.size() < 16 || static_cast<int64_t>(slots_.size()) < 2 * live_) {
    return;
  }
  std::vector<Slot> kept;
  kept.reserve(live_);
  for (Slot& slot : slots_) {
    if (slot.live) kept.push_back(std::move(slot));
  }
  index_.clear();
  slots_ = std::move(kept);
  for (size_t i = 0; i < slots_.size(); ++i) index_.insert(i);
}

}  // namespace statehub
