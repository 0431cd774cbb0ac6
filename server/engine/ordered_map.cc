#include "server/engine/ordered_map.h"

#include <utility>

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

std::optional<Value> OrderedMap::Set(const Value& key, Value value) {
  if (Value* slot = Find(key)) return std::exchange(*slot, std::move(value));
  Insert(key, std::move(value));
  return std::nullopt;
}

std::optional<Value> OrderedMap::Set(Value&& key, Value value) {
  if (Value* slot = Find(key)) return std::exchange(*slot, std::move(value));
  Insert(std::move(key), std::move(value));
  return std::nullopt;
}

void OrderedMap::Insert(Value key, Value value) {
  slots_.push_back(Slot{std::move(key), std::move(value)});
  live_slots_.push_back(true);
  index_.insert(static_cast<SlotNumber>(slots_.size() - 1));
  ++live_;
  ++size_version_;
}

std::optional<Value> OrderedMap::Erase(const Value& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  const SlotNumber slot = *it;
  index_.erase(it);
  Value value = std::move(slots_[slot].value);
  slots_[slot] = Slot{};
  live_slots_[slot] = false;
  --live_;
  ++size_version_;
  MaybeCompact();
  return value;
}

std::pair<Value, Value> OrderedMap::PopLast() {
  while (!live_slots_.back()) {
    slots_.pop_back();
    live_slots_.pop_back();
  }
  // Unindexed before the key moves out: the index hashes a slot number
  // through to its key, and a moved-from key hashes differently.
  index_.erase(static_cast<SlotNumber>(slots_.size() - 1));
  Slot last = std::move(slots_.back());
  slots_.pop_back();
  live_slots_.pop_back();
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
    if (!live_slots_[i]) continue;
    if (limit > 0 && visited == limit) return static_cast<int64_t>(i);
    fn(slots_[i].key, slots_[i].value);
    ++visited;
  }
  return 0;
}

std::vector<Value> OrderedMap::TakeValues() {
  std::vector<Value> values;
  values.reserve(live_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (live_slots_[i]) values.push_back(std::move(slots_[i].value));
  }
  index_.clear();
  slots_.clear();
  live_slots_.clear();
  if (live_ != 0) ++size_version_;
  live_ = 0;
  return values;
}

void OrderedMap::MaybeCompact() {
  if (slots_.size() < 16 || static_cast<int64_t>(slots_.size()) < 2 * live_) {
    return;
  }
  // Each kept slot's new number is the count of live slots before it.
  std::vector<SlotNumber> renumbered(slots_.size());
  std::vector<Slot> kept;
  kept.reserve(live_);
  for (size_t i = 0; i < slots_.size(); ++i) {
    renumbered[i] = static_cast<SlotNumber>(kept.size());
    if (live_slots_[i]) kept.push_back(std::move(slots_[i]));
  }
  slots_ = std::move(kept);
  live_slots_.assign(slots_.size(), true);
  // The index is renumbered in place, not rebuilt: an entry's hash is its
  // key's, which the renumbering keeps, so every entry stays where it is
  // in the table and nothing is hashed again. (Rebuilding it hashed every
  // key again, under the owner's mutex: a dict of a million entries
  // stalled its callers and its expiries for ~100 ms.)
  for (auto it = index_.begin(); it != index_.end(); ++it) {
    SlotNumber& number = const_cast<SlotNumber&>(*it);
    number = renumbered[number];
  }
}

}  // namespace statehub
