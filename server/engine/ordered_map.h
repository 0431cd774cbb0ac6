// File: server/engine/ordered_map.h
//
// `OrderedMap` is the storage of dicts and namespaces: Python dict semantics
// (key equality of statehub::Value, insertion order, a key keeps its first
// spelling) in a vector of slots plus a hash index of slot numbers. The index
// hashes through to the slot's key, so each key is stored once.
//
// Not thread-safe: the owning object's mutex guards it.

#ifndef STATEHUB_SERVER_ENGINE_ORDERED_MAP_H_
#define STATEHUB_SERVER_ENGINE_ORDERED_MAP_H_

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "statehub/value.h"

namespace statehub {

class OrderedMap {
 public:
  OrderedMap();
  OrderedMap(const OrderedMap&) = delete;
  OrderedMap& operator=(const OrderedMap&) = delete;

  int64_t size() const { return live_; }
  // size_version changes whenever the number of entries changes (and only
  // then); it is never 0. Iteration cursors stay valid while it is unchanged.
  int64_t size_version() const { return size_version_; }

  // Find returns the value under `key`, or nullptr.
  const Value* Find(const Value& key) const;
  Value* Find(const Value& key);

  // Set stores value under key and returns the previous value, if any. An
  // existing key keeps its first spelling (d[1] = x after d[1.0] keeps 1.0);
  // the key is copied or moved in only when it is new.
  std::optional<Value> Set(const Value& key, Value value);
  std::optional<Value> Set(Value&& key, Value value);

  // Erase removes `key` and returns its value, or nullopt if absent.
  std::optional<Value> Erase(const Value& key);

  // PopLast removes the most recently inserted entry. REQUIRES: size() > 0.
  std::pair<Value, Value> PopLast();

  // Visit calls fn(key, value) for live entries from slot `cursor` on, at most
  // `limit` of them (0: no limit). Returns the cursor after the last visited
  // entry, or 0 if no live entry remains.
  int64_t Visit(int64_t cursor, int64_t limit,
                absl::FunctionRef<void(const Value&, const Value&)> fn) const;

  // TakeValues empties the map and returns its values.
  std::vector<Value> TakeValues();

 private:
  // Insert appends a new entry. REQUIRES: `key` is not in the map.
  void Insert(Value key, Value value);

  // A slot is an entry in insertion order; erased ones stay (empty, not
  // live) until MaybeCompact drops them. Liveness is kept apart, one bit a
  // slot, so that a slot is two Values: 80 bytes.
  struct Slot {
    Value key;
    Value value;
  };
  // Slot numbers are 32-bit to halve the index: a map never nears 2^32
  // slots (--max_elements caps entries, and compaction keeps slots at most
  // twice the live entries).
  using SlotNumber = uint32_t;
  struct SlotHash {
    using is_transparent = void;
    const std::vector<Slot>* slots;
    size_t operator()(SlotNumber i) const { return KeyHash()((*slots)[i].key); }
    size_t operator()(const Value& key) const { return KeyHash()(key); }
  };
  struct SlotEq {
    using is_transparent = void;
    const std::vector<Slot>* slots;
    bool operator()(SlotNumber a, SlotNumber b) const { return a == b; }
    bool operator()(SlotNumber a, const Value& key) const {
      return (*slots)[a].key == key;
    }
    bool operator()(const Value& key, SlotNumber a) const {
      return (*slots)[a].key == key;
    }
  };

  // Drops dead slots when they outnumber live ones, renumbering the index.
  void MaybeCompact();

  std::vector<Slot> slots_;
  // live_slots_[i]: slots_[i] holds an entry (not erased).
  std::vector<bool> live_slots_;
  absl::flat_hash_set<SlotNumber, SlotHash, SlotEq> index_;
  int64_t live_ = 0;
  int64_t size_version_ = 1;
};

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_ORDERED_MAP_H_
