// File: server/engine/registry.h
//
// The registry maps names to objects and keeps anonymous objects alive while
// anyone needs them.
//
// Lifetime: a named object lives until Delete. An anonymous object ("_anon/…")
// lives while its count is positive, where the count is the session holds on
// it (one per proxy a session received) plus the refs to it stored in other
// objects' values. At zero it is removed and retired at once, which may
// release refs inside it in turn. Cycles of anonymous objects that only refer
// to each other are not collected (as with Manager).
//
// Thread safety: all methods are thread-safe. The registry's mutex is held
// only for map and count updates, never while an object's operation runs.
// Lock order: an object's mutex may be held when calling AcquireRefs and
// HoldRefs; ReleaseRefs, ReleaseHolds and EndSession must be called with no
// object mutex held (they retire objects, which locks them).
//
// Example:
//
//   Registry registry(Limits{});
//   auto dict = registry.Open("jobs", ObjectType::kDict, {}, Caller{});
//   auto found = registry.Find<DictObject>("jobs");

#ifndef STATEHUB_SERVER_ENGINE_REGISTRY_H_
#define STATEHUB_SERVER_ENGINE_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/changes.h"
#include "server/engine/expirer.h"
#include "server/engine/limits.h"
#include "server/engine/mutex.h"
#include "server/engine/object.h"
#include "server/engine/observer.h"
#include "server/engine/wait_for_graph.h"

namespace statehub {

// Names of anonymous objects start with this; clients cannot create them.
inline constexpr absl::string_view kAnonymousPrefix = "_anon/";

// CheckName fails with VALUE_ERROR unless `name` is 1-256 bytes of
// [A-Za-z0-9._:/-].
absl::Status CheckName(absl::string_view name);

// InitialContents is what Open puts into an object it creates.
struct InitialContents {
  // entries of a dict or namespace.
  Value::Entries entries;
  // items of a list or array.
  Value::Items items;
  // value of a value cell.
  Value value;
  // typecode of a value cell or array.
  std::string typecode;
  // condition_lock names the lock or rlock a condition is bound to.
  std::string condition_lock;
  // semaphore_value is the initial (and, for a bounded semaphore, the
  // maximum) value of a semaphore; must be >= 0. Python's default is 1.
  int64_t semaphore_value = 1;
  // parties is the number of threads a barrier waits for; must be >= 1, so
  // creating a barrier without it fails.
  int64_t parties = 0;
  // maxsize bounds a queue's items; <= 0 means unbounded, as in Python.
  int64_t maxsize = 0;
};

// ObjectInfo is a snapshot of one object's bookkeeping.
struct ObjectInfo {
  std::string name;
  ObjectType type = ObjectType::kUnspecified;
  bool anonymous = false;
  int64_t size = 0;
  std::string typecode;
  // condition_lock names a condition's lock; "" for other types.
  std::string condition_lock;
  int64_t holders = 0;
  int64_t referrers = 0;
};

class Registry {
 public:
  explicit Registry(const Limits& limits);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  ~Registry();

  const Limits& limits() const { return limits_; }

  // set_observers installs what records the engine's activity (metrics);
  // null means none. Call before any object is created; not thread-safe.
  // `observers` must outlive the registry.
  void set_observers(Observers* observers) { observers_ = observers; }
  Observers* observers() const { return observers_; }
  // changes is the stream every mutation publishes its record on
  // (changes.h).
  ChangeStream& changes() { return changes_; }
  const ChangeStream& changes() const { return changes_; }
  // wait_for_graph finds the cycles of waits among the locks
  // (wait_for_graph.h).
  WaitForGraph& wait_for_graph() { return wait_for_graph_; }
  const WaitForGraph& wait_for_graph() const { return wait_for_graph_; }
  // expirer reclaims dict entries whose ttl ran out (expirer.h).
  Expirer& expirer() { return expirer_; }

  struct Opened {
    std::shared_ptr<Object> object;
    bool created = false;
  };
  // Open returns the object called `name`, creating it from `init` if absent
  // (the check and the creation are one atomic step). An empty name creates
  // an anonymous object held once by `caller.session`; opening an existing
  // anonymous object adds a hold for the caller.
  // Errors: VALUE_ERROR (bad name or contents), TYPE_ERROR (exists with
  // another type, or refs in `init` name objects of other types),
  // OBJECT_NOT_FOUND (an "_anon/" name that does not exist, or refs to
  // missing objects), SESSION_ERROR (anonymous without a live session),
  // LIMIT_EXCEEDED (--max_objects, --max_elements).
  absl::StatusOr<Opened> Open(absl::string_view name, ObjectType type,
                              InitialContents init, const Caller& caller);

  // Find returns the object called `name` as a T (T::kType must match, or
  // T::Accepts(type) when defined). Errors: OBJECT_NOT_FOUND, TYPE_ERROR.
  template <typename T>
  absl::StatusOr<std::shared_ptr<T>> Find(absl::string_view name) const;

  // FindObject returns the object called `name`, whatever its type.
  // Errors: OBJECT_NOT_FOUND.
  absl::StatusOr<std::shared_ptr<Object>> FindObject(
      absl::string_view name) const {
    return Lookup(name);
  }

  // Delete removes and retires an object. Errors: OBJECT_NOT_FOUND.
  absl::Status Delete(absl::string_view name);

  // List returns objects whose names start with `prefix`, in name order.
  std::vector<ObjectInfo> List(absl::string_view prefix,
                               bool include_anonymous) const;
  // WithNames calls `fn` with the name and type of every object whose name
  // starts with `prefix`, in name order, while no object can be created or
  // deleted: the registry's lock is held, so `fn` must not call the
  // registry or lock an object (a watch starts there, watches.h).
  void WithNames(
      absl::string_view prefix, bool include_anonymous,
      absl::FunctionRef<
          void(const std::vector<std::pair<std::string, ObjectType>>& names)>
          fn) const;
  // Describe returns one object's info. Errors: OBJECT_NOT_FOUND.
  absl::StatusOr<ObjectInfo> Describe(absl::string_view name) const;
  // Count returns the number of objects.
  int64_t Count() const;
  // Snapshot returns every live object (for metrics scrapes).
  std::vector<std::shared_ptr<Object>> Snapshot() const;

  // AcquireRefs counts the refs in a value about to be stored: each must name
  // an existing object of the ref's type. All or nothing.
  // Errors: OBJECT_NOT_FOUND, TYPE_ERROR (both naming the ref).
  absl::Status AcquireRefs(const Value& value);
  // ReleaseRefs uncounts the refs in values that were removed from storage.
  void ReleaseRefs(const std::vector<Value>& values);
  void ReleaseRefs(const Value& value);
  // HoldRefs adds a hold for `session` on every anonymous ref in a value being
  // returned to it. No-op for session 0 or a session that has ended.
  void HoldRefs(SessionId session, const Value& value);
  // ReleaseHolds drops one hold of `session` per listed name; names it does
  // not hold are ignored.
  void ReleaseHolds(SessionId session, const std::vector<std::string>& names);

  // Track records that `session` holds or waits on `object`, so that
  // EndSession can release it there (Object::OnSessionEnd). Returns false if
  // the session has ended: the caller must then refuse the call.
  [[nodiscard]] bool Track(SessionId session, std::shared_ptr<Object> object);

  // BeginSession lets `session` take holds; EndSession drops all of them and
  // releases what it held in tracked objects.
  void BeginSession(SessionId session);
  void EndSession(SessionId session, SessionEnd how = SessionEnd::kReleased);

  // Recovery (replay.cc; Engine::Replay drives it, before serving). Restore
  // creates an object from its created record, contents included, counting
  // no refs; Remove deletes one without touching what it refers to;
  // RestoreHolds sets a session's holds on an anonymous object;
  // ForgetSession drops a session's holds and tracking without releasing
  // anything. Errors: DATA_LOSS naming the object.
  absl::Status Restore(const v1::ChangeRecord& record);
  absl::Status Remove(absl::string_view name);
  void RestoreHolds(SessionId holder, absl::string_view name, int64_t count);
  void ForgetSession(SessionId session);
  // Recount sets every anonymous object's holders from the holds and its
  // referrers from `referrers` (name -> refs stored in other objects, as
  // Engine::FinishRecovery counted them), then frees those that are neither
  // held nor referred to. Returns how many it freed.
  int64_t Recount(const absl::flat_hash_map<std::string, int64_t>& referrers);
  // DumpHolds appends a HoldsChanged record per (session, anonymous object)
  // hold.
  void DumpHolds(std::vector<v1::ChangeRecord>* out) const;

 private:
  struct Entry {
    std::shared_ptr<Object> object;
    // referrers counts refs in stored values (anonymous objects only).
    int64_t referrers = 0;
    // holders counts session holds (anonymous objects only).
    int64_t holders = 0;
  };

  absl::StatusOr<std::shared_ptr<Object>> Lookup(absl::string_view name) const;
  absl::Status AcquireRefsLocked(const Value& value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Publishes a record about `name` (under mu_, so registry changes keep
  // their order); no-op while not recording.
  // Returns the record's revision (0 while not recording).
  uint64_t PublishLocked(absl::string_view name, v1::ChangeRecord record) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PublishHoldsLocked(SessionId holder, absl::string_view name,
                          int64_t count) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unrefs an anonymous object; when its count reaches 0 moves it to `dead`.
  void UnrefLocked(absl::string_view name, bool hold,
                   std::vector<std::shared_ptr<Object>>* dead)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Retires dead objects and releases the refs they held (mu_ not held).
  void Bury(std::vector<std::shared_ptr<Object>> dead) ABSL_LOCKS_EXCLUDED(mu_);
  std::pair<ObjectInfo, std::shared_ptr<Object>> InfoLocked(
      const Entry& entry) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const Limits limits_;
  Observers* observers_ = nullptr;
  // mutable: objects publish from const methods (a read that hands out a
  // hold on an anonymous object changes the holds).
  mutable ChangeStream changes_;
  WaitForGraph wait_for_graph_;
  // Stopped first thing in ~Registry, before the objects it calls go.
  Expirer expirer_;
  mutable Mutex mu_;
  // Sorted by name so List answers prefixes in order.
  absl::btree_map<std::string, Entry, std::less<>> objects_
      ABSL_GUARDED_BY(mu_);
  // Holds per live session: anonymous object name -> hold count.
  absl::flat_hash_map<SessionId, absl::flat_hash_map<std::string, int64_t>>
      holds_ ABSL_GUARDED_BY(mu_);
  // Synchronization objects each live session has held or waited on.
  absl::flat_hash_map<SessionId, absl::flat_hash_set<std::shared_ptr<Object>>>
      tracked_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_anonymous_{1};
};

// CreatedRecord describes the creation of an object of `type` from `init`
// (its ObjectCreated record, object name unset). InitFromCreated is its
// inverse. Both in replay.cc. Errors: DATA_LOSS.
v1::ChangeRecord CreatedRecord(ObjectType type, const InitialContents& init);
absl::StatusOr<InitialContents> InitFromCreated(
    const v1::ObjectCreated& created);

// MakeObject builds an object of `type` from `init`. Defined in
// objects.cc, next to every object type.
absl::StatusOr<std::shared_ptr<Object>> MakeObject(std::string name,
                                                   ObjectType type,
                                                   InitialContents init,
                                                   Registry* registry);

template <typename T>
absl::StatusOr<std::shared_ptr<T>> Registry::Find(
    absl::string_view name) const {
  absl::StatusOr<std::shared_ptr<Object>> object = Lookup(name);
  if (!object.ok()) return object.status();
  bool accepted;
  absl::string_view wanted;
  if constexpr (requires { T::Accepts(ObjectType{}); }) {
    accepted = T::Accepts((*object)->type());
    wanted = T::kTypeName;
  } else {
    accepted = (*object)->type() == T::kType;
    wanted = ObjectTypeName(T::kType);
  }
  if (!accepted) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, ErrorKind::kTypeError,
        absl::StrCat((*object)->Label(), ": is a ",
                     ObjectTypeName((*object)->type()), ", not a ", wanted),
        name);
  }
  return std::static_pointer_cast<T>(*std::move(object));
}

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_REGISTRY_H_
