// File: server/engine/object.h
//
// `Object` is the base of every shared object the registry holds. Each object
// has its own mutex; an operation locks only its object, never the registry
// (lock order: object mutex, then registry mutex; never the reverse).
//
// An object removed from the registry (deleted, or an anonymous object nobody
// holds any more) is *retired*: its contents are dropped and every later
// operation on it fails with OBJECT_NOT_FOUND, even through a handle that
// found it before.

#ifndef STATEHUB_SERVER_ENGINE_OBJECT_H_
#define STATEHUB_SERVER_ENGINE_OBJECT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/engine/caller.h"
#include "server/engine/changes.h"
#include "server/engine/mutex.h"
#include "server/engine/waiter.h"
#include "statehub/status.h"
#include "statehub/value.h"

namespace statehub {

class Registry;

class Object : public std::enable_shared_from_this<Object> {
 public:
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  virtual ~Object() = default;

  const std::string& name() const { return name_; }
  ObjectType type() const { return type_; }
  // anonymous is true for server-named, reference-counted objects.
  bool anonymous() const { return anonymous_; }

  // Size is the number of entries/items (1 for a value cell).
  virtual int64_t Size() const = 0;
  // Typecode of a value cell or array; "" otherwise.
  virtual std::string Typecode() const { return ""; }
  // BoundLock is the name of the lock a condition is bound to; "" for
  // other types.
  virtual std::string BoundLock() const { return ""; }

  // OnSessionEnd releases what `session` held in this object (but see
  // SessionEnd::kLeaveLocks) and removes its parked calls; returns their
  // completions (deliver with no mutex held). Objects a session holds or
  // waits on are tracked by the registry (Registry::Track), which calls this
  // when the session ends.
  virtual std::vector<Completion> OnSessionEnd(SessionId session,
                                               SessionEnd how) {
    (void)session;
    (void)how;
    return {};
  }

  // Retire drops the contents and fails later operations. Returns the values
  // it held, so the registry can release the refs inside them, and the
  // completions of calls parked on it (they fail with OBJECT_NOT_FOUND).
  struct Retired {
    std::vector<Value> values;
    std::vector<Completion> completions;
  };
  Retired Retire() ABSL_LOCKS_EXCLUDED(mu_);

  // Apply replays one record about this object (recovery from the log):
  // the change as it took effect, with no waiting and no decision. Records
  // of a kind the object does not have fail. Errors: DATA_LOSS naming the
  // object and the record's revision.
  virtual absl::Status Apply(const v1::ChangeRecord& record)
      ABSL_LOCKS_EXCLUDED(mu_) {
    return CannotApply(record);
  }
  // RestoreContents loads what an ObjectCreated record holds beyond what
  // MakeObject takes (a queue's items). Called once, right after the
  // registry made the object from the record.
  virtual absl::Status RestoreContents(const v1::ObjectCreated& created)
      ABSL_LOCKS_EXCLUDED(mu_) {
    (void)created;
    return absl::OkStatus();
  }
  // Dump appends the records that recreate this object as it is now: its
  // created record with its contents, then records of its state (a lock's
  // holder, ...), each carrying the object's name; and returns the
  // object's revision (the last change to it) as of the state it dumped,
  // read under the same hold of mu_ as that state. The records' own
  // revisions are the caller's to set.
  virtual uint64_t Dump(std::vector<v1::ChangeRecord>* out) const
      ABSL_LOCKS_EXCLUDED(mu_) = 0;

  // revision is the revision of the last change to this object (its
  // creation, or the last record it emitted); 0 while nothing records.
  uint64_t revision() const {
    return revision_.load(std::memory_order_acquire);
  }
  // set_revision stamps the object's creation (the registry, before the
  // object is visible to anyone else; and recovery).
  void set_revision(uint64_t revision) {
    revision_.store(revision, std::memory_order_release);
  }

  // Label is how messages name this object: `dict "jobs"`.
  std::string Label() const;

  // Error returns a status with `kind` whose message is `<label>: <what>`.
  absl::Status Error(absl::StatusCode code, ErrorKind kind,
                     absl::string_view what) const;

 protected:
  Object(std::string name, ObjectType type, Registry* registry);

  // TakeContents moves every held value out (for Retire).
  virtual std::vector<Value> TakeContents()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) = 0;
  // TakeWaiters claims every parked call and fails it with `status` (for
  // Retire). Objects without parked calls keep the default.
  virtual std::vector<Completion> TakeWaiters(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    (void)status;
    return {};
  }

  // CheckLive fails with OBJECT_NOT_FOUND once the object is retired. Every
  // operation calls it first, under mu_.
  absl::Status CheckLive() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // CheckSize fails with LIMIT_EXCEEDED if a container would grow past
  // --max_elements.
  absl::Status CheckSize(int64_t new_size) const;

  // Hold adds the caller's session holds for the anonymous refs in a value
  // about to be returned; called under mu_ so the targets cannot vanish
  // in between.
  void Hold(const Caller& caller, const Value& value) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Keep collects a value an operation removed if it holds refs; after
  // unlocking mu_ the operation passes them to ReleaseDropped.
  static void Keep(Value value, std::vector<Value>* dropped);
  void ReleaseDropped(const std::vector<Value>& dropped) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // AcquireRefs counts refs in a value about to be stored (see Registry);
  // errors name this object.
  absl::Status AcquireRefs(const Value& value) const;

  // recording is true while changes are recorded (a data dir): only then
  // build records to Emit.
  bool recording() const;
  // Emit publishes `record` about this object (its name filled in) on the
  // registry's change stream, stamped with the next revision. Called under
  // mu_, right where the change takes effect, so records keep the order of
  // the changes.
  void Emit(v1::ChangeRecord record) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copy returns the object's revision and what `copy` returns, both read
  // under one hold of mu_: a Dump's copy of the state, encoded after mu_ is
  // dropped, so that a large object's calls wait only for the copy.
  template <typename Fn>
  std::pair<uint64_t, std::invoke_result_t<Fn>> Copy(Fn copy) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return {RevisionLocked(), copy()};
  }
  // RevisionLocked is revision() where mu_ is held: it matches the state.
  uint64_t RevisionLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return revision_.load(std::memory_order_relaxed);
  }
  // CannotApply is the DATA_LOSS error of a record that does not fit this
  // object (Apply).
  absl::Status CannotApply(const v1::ChangeRecord& record) const;
  // Created starts this object's created record (name and type set) for
  // Dump.
  v1::ChangeRecord Created() const;

  Registry* const registry_;
  mutable Mutex mu_;

 private:
  const std::string name_;
  const ObjectType type_;
  const bool anonymous_;
  bool retired_ ABSL_GUARDED_BY(mu_) = false;
  // Written under mu_ (Emit, const: publishing is not a change of the
  // object's contents) or before the object is shared (creation), so
  // a reader holding mu_ sees the revision of the state it reads.
  mutable std::atomic<uint64_t> revision_{0};
};

// ObjectLabel formats `type "name"` for messages about objects that may not
// exist.
std::string ObjectLabel(ObjectType type, absl::string_view name);

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_OBJECT_H_
