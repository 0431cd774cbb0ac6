#include "server/engine/queue.h"

#include <iterator>
#include <optional>
#include <string>

#include "server/engine/records.h"
#include "server/engine/registry.h"
#include "statehub/internal/value_codec.h"

namespace statehub {

using wait_queue_internal::Parked;

namespace {

v1::ChangeRecord QueuePutRecord(const Value& item, bool front) {
  v1::ChangeRecord record;
  v1::QueuePut* put = record.mutable_queue_put();
  internal::EncodeValue(item, put->mutable_item());
  put->set_front(front);
  return record;
}

v1::ChangeRecord QueueTakenRecord() {
  v1::ChangeRecord record;
  record.mutable_queue_taken();
  return record;
}

v1::ChangeRecord TasksChangedRecord(int64_t unfinished) {
  v1::ChangeRecord record;
  record.mutable_tasks_changed()->set_unfinished(unfinished);
  return record;
}

}  // namespace

QueueObject::QueueObject(std::string name, ObjectType type, int64_t maxsize,
                         Registry* registry)
    : Object(std::move(name), type, registry), maxsize_(maxsize) {}

absl::StatusOr<std::shared_ptr<QueueObject>> QueueObject::Make(
    std::string name, ObjectType type, int64_t maxsize, Registry* registry) {
  return std::shared_ptr<QueueObject>(
      new QueueObject(std::move(name), type, maxsize, registry));
}

int64_t QueueObject::Size() const {
  MutexLock lock(&mu_);
  return static_cast<int64_t>(items_.size());
}

std::vector<Value> QueueObject::TakeContents() {
  std::vector<Value> values(std::make_move_iterator(items_.begin()),
                            std::make_move_iterator(items_.end()));
  items_.clear();
  // Parked putters' items are counted too. Retire calls TakeWaiters next,
  // which removes the putters themselves.
  for (PendingPut& p : putters_) values.push_back(std::move(p.item));
  return values;
}

std::vector<Completion> QueueObject::TakeWaiters(const absl::Status& status) {
  std::vector<Completion> out;
  wait_queue_internal::FailAll(getters_, status, &out);
  wait_queue_internal::FailAll(putters_, status, &out);
  wait_queue_internal::FailAll(joiners_, status, &out);
  return out;
}

bool QueueObject::FullLocked() const {
  return maxsize_ > 0 && static_cast<int64_t>(items_.size()) >= maxsize_;
}

bool QueueObject::TrackLocked(SessionId session) {
  return session == 0 || registry_->Track(session, shared_from_this());
}

bool QueueObject::HandOffLocked(Value& item, std::vector<Completion>* out,
                                std::vector<Value>* dropped) {
  while (!getters_.empty()) {
    Parked getter = std::move(getters_.front());
    getters_.pop_front();
    // A getter claimed by its timeout or cancellation is on its way out.
    if (!getter.waiter->TryClaim()) continue;
    const SessionId session = getter.waiter->session();
    WaitResult result;
    // A getter whose session ended (its OnSessionEnd not yet run here) must
    // not take the item with it.
    if (!TrackLocked(session)) {
      result.status =
          Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
                "the waiting session ended");
      out->push_back(Completion{std::move(getter.waiter), std::move(result)});
      continue;
    }
    // The getter's hold is taken before the queue's count is released, so
    // an anonymous value survives the hand-over.
    registry_->HoldRefs(session, item);
    result.granted = true;
    result.item = item;
    Keep(std::move(item), dropped);
    out->push_back(Completion{std::move(getter.waiter), std::move(result)});
    return true;
  }
  return false;
}

void QueueObject::RefillLocked(std::vector<Completion>* out,
                               std::vector<Value>* dropped) {
  while (!FullLocked() && !putters_.empty()) {
    PendingPut putter = std::move(putters_.front());
    putters_.pop_front();
    if (!putter.waiter->TryClaim()) {
      // On its way out; whoever removes it releases its item.
      Keep(std::move(putter.item), dropped);
      continue;
    }
    if (recording()) Emit(QueuePutRecord(putter.item, /*front=*/false));
    items_.push_back(std::move(putter.item));
    ++unfinished_;
    if (recording()) Emit(TasksChangedRecord(unfinished_));
    WaitResult result;
    result.granted = true;
    out->push_back(Completion{std::move(putter.waiter), std::move(result)});
  }
}

absl::StatusOr<QueueObject::Stored> QueueObject::Put(
    const Caller& caller, Value item, std::shared_ptr<Waiter> waiter) {
  Stored stored;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (FullLocked()) {
      if (waiter == nullptr) return stored;
      if (!TrackLocked(caller.session)) {
        return Error(absl::StatusCode::kFailedPrecondition,
                     ErrorKind::kSessionError, "the waiting session ended");
      }
      // Counted now: the item is held by the queue while its putter waits.
      if (absl::Status s = AcquireRefs(item); !s.ok()) return s;
      putters_.push_back(PendingPut{std::move(waiter), std::move(item)});
      stored.parked = true;
      return stored;
    }
    if (absl::Status s = CheckSize(static_cast<int64_t>(items_.size()) + 1);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = AcquireRefs(item); !s.ok()) return s;
    // An item handed to a parked getter never rests in the queue, so it is
    // not recorded; only the task it adds is (queue.h, Durability).
    if (!items_.empty() ||
        !HandOffLocked(item, &stored.completions, &dropped)) {
      if (recording()) Emit(QueuePutRecord(item, /*front=*/false));
      items_.push_back(std::move(item));
    }
    ++unfinished_;
    if (recording()) Emit(TasksChangedRecord(unfinished_));
    stored.stored = true;
  }
  ReleaseDropped(dropped);
  return stored;
}

absl::StatusOr<QueueObject::Got> QueueObject::Get(
    const Caller& caller, std::shared_ptr<Waiter> waiter) {
  Got got;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (absl::Status s = CheckLive(); !s.ok()) return s;
    if (items_.empty()) {
      if (waiter == nullptr) return got;
      if (!TrackLocked(caller.session)) {
        return Error(absl::StatusCode::kFailedPrecondition,
                     ErrorKind::kSessionError, "the waiting session ended");
      }
      getters_.push_back(Parked{std::move(waiter)});
      got.parked = true;
      return got;
    }
    if (recording()) Emit(QueueTakenRecord());
    Value item = std::move(items_.front());
    items_.pop_front();
    // The caller's hold is taken before the queue's count is released.
    Hold(caller, item);
    got.item = item;
    got.got = true;
    Keep(std::move(item), &dropped);
    RefillLocked(&got.completions, &dropped);
  }
  ReleaseDropped(dropped);
  return got;
}

absl::StatusOr<int64_t> QueueObject::Qsize() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return static_cast<int64_t>(items_.size());
}

absl::StatusOr<bool> QueueObject::Empty() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return items_.empty();
}

absl::StatusOr<bool> QueueObject::Full() const {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  return FullLocked();
}

absl::StatusOr<std::vector<Completion>> QueueObject::TaskDone() {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (unfinished_ <= 0) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 "task_done() called too many times");
  }
  --unfinished_;
  if (recording()) Emit(TasksChangedRecord(unfinished_));
  if (unfinished_ > 0) return out;
  for (Parked& joiner : joiners_) {
    if (!joiner.waiter->TryClaim()) continue;
    WaitResult result;
    result.granted = true;
    out.push_back(Completion{std::move(joiner.waiter), std::move(result)});
  }
  joiners_.clear();
  return out;
}

absl::StatusOr<QueueObject::Joined> QueueObject::Join(
    const Caller& caller, std::shared_ptr<Waiter> waiter) {
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (unfinished_ == 0) return Joined{true, false};
  if (waiter == nullptr) return Joined{};
  if (!TrackLocked(caller.session)) {
    return Error(absl::StatusCode::kFailedPrecondition,
                 ErrorKind::kSessionError, "the waiting session ended");
  }
  joiners_.push_back(Parked{std::move(waiter)});
  return Joined{false, true};
}

void QueueObject::Withdraw(const Waiter* waiter) {
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    if (wait_queue_internal::Take(getters_, waiter)) return;
    if (std::optional<PendingPut> putter =
            wait_queue_internal::Take(putters_, waiter)) {
      Keep(std::move(putter->item), &dropped);
    } else {
      wait_queue_internal::Take(joiners_, waiter);
    }
  }
  ReleaseDropped(dropped);
}

std::vector<Completion> QueueObject::RollbackGet(SessionId session,
                                                 Value item) {
  // The names the grant gave `session` a hold on, one per ref.
  std::vector<std::string> held;
  item.ForEachRef([&held](const Ref& ref) { held.push_back(ref.name); });
  std::vector<Completion> out;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    // Counted again before the getter's hold goes, so nothing dies between.
    if (CheckLive().ok() && AcquireRefs(item).ok()) {
      // Handed to another getter, the item never rests in the queue: no
      // record, as for a put handed off.
      if (!items_.empty() || !HandOffLocked(item, &out, &dropped)) {
        if (recording()) Emit(QueuePutRecord(item, /*front=*/true));
        items_.push_front(std::move(item));
      }
    }
  }
  ReleaseDropped(dropped);
  if (!held.empty()) registry_->ReleaseHolds(session, held);
  return out;
}

QueueState QueueObject::State(bool include_waiters) const {
  MutexLock lock(&mu_);
  QueueState state;
  state.size = static_cast<int64_t>(items_.size());
  state.maxsize = maxsize_;
  state.unfinished = unfinished_;
  if (!include_waiters) return state;
  state.getters = wait_queue_internal::Infos(getters_);
  state.putters = wait_queue_internal::Infos(putters_);
  state.joiners = wait_queue_internal::Infos(joiners_);
  return state;
}

std::vector<Completion> QueueObject::OnSessionEnd(SessionId session,
                                                  SessionEnd /*how*/) {
  std::vector<Completion> out;
  std::vector<Value> dropped;
  {
    MutexLock lock(&mu_);
    const absl::Status ended =
        Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
              "the waiting session ended");
    wait_queue_internal::FailSession(getters_, session, ended, &out);
    for (PendingPut& p :
         wait_queue_internal::FailSession(putters_, session, ended, &out)) {
      Keep(std::move(p.item), &dropped);
    }
    wait_queue_internal::FailSession(joiners_, session, ended, &out);
  }
  ReleaseDropped(dropped);
  return out;
}

absl::Status QueueObject::RestoreContents(const v1::ObjectCreated& created) {
  absl::StatusOr<Value::Items> items = records::DecodeItems(created.items());
  if (!items.ok()) return items.status();
  MutexLock lock(&mu_);
  items_.assign(std::make_move_iterator(items->begin()),
                std::make_move_iterator(items->end()));
  return absl::OkStatus();
}

absl::Status QueueObject::Apply(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  switch (record.change_case()) {
    case v1::ChangeRecord::kQueuePut: {
      absl::StatusOr<Value> item = records::Decode(record.queue_put().item());
      if (!item.ok()) return item.status();
      if (record.queue_put().front()) {
        items_.push_front(*std::move(item));
      } else {
        items_.push_back(*std::move(item));
      }
      return absl::OkStatus();
    }
    case v1::ChangeRecord::kQueueTaken:
      if (items_.empty()) return CannotApply(record);
      items_.pop_front();
      return absl::OkStatus();
    case v1::ChangeRecord::kTasksChanged:
      if (record.tasks_changed().unfinished() < 0) return CannotApply(record);
      unfinished_ = record.tasks_changed().unfinished();
      return absl::OkStatus();
    default:
      return CannotApply(record);
  }
}

uint64_t QueueObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  auto [revision, state] = Copy([this] {
    return std::make_pair(Value::Items(items_.begin(), items_.end()),
                          unfinished_);
  });
  const auto& [items, unfinished] = state;
  v1::ChangeRecord& created = out->emplace_back(Created());
  created.mutable_created()->set_maxsize(maxsize_);
  records::AddItems(items, created.mutable_created()->mutable_items());
  if (unfinished > 0) {
    v1::ChangeRecord& tasks = out->emplace_back(TasksChangedRecord(unfinished));
    tasks.set_object(name());
  }
  return revision;
}

}  // namespace statehub
