#include "server/engine/semaphore.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/engine/registry.h"

namespace statehub {
namespace {

using wait_queue_internal::Parked;

absl::Status NeedsSession(const Object& object) {
  return object.Error(absl::StatusCode::kFailedPrecondition,
                      ErrorKind::kSessionError,
                      "needs a live session: semaphore units belong to "
                      "sessions");
}

}  // namespace

SemaphoreObject::SemaphoreObject(std::string name, ObjectType type,
                                 int64_t value, Registry* registry,
                                 std::shared_ptr<AcquireObserver> observer)
    : Object(std::move(name), type, registry),
      initial_value_(value),
      observer_(std::move(observer)),
      value_(value) {}

absl::StatusOr<std::shared_ptr<SemaphoreObject>> SemaphoreObject::Make(
    std::string name, ObjectType type, int64_t value, Registry* registry) {
  // Checked first: a semaphore never made must not take a metrics series.
  if (value < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrCat(ObjectLabel(type, name),
                                  ": semaphore initial value must be >= 0"),
                     name);
  }
  std::shared_ptr<AcquireObserver> observer;
  if (registry != nullptr && registry->observers() != nullptr) {
    observer = registry->observers()->ForSemaphore(name);
  }
  return std::shared_ptr<SemaphoreObject>(new SemaphoreObject(
      std::move(name), type, value, registry, std::move(observer)));
}

std::vector<Value> SemaphoreObject::TakeContents() { return {}; }

std::vector<Completion> SemaphoreObject::TakeWaiters(
    const absl::Status& status) {
  std::vector<Completion> out;
  // Only the calls claimed here (their waiter moved into `out`) end here.
  for (const Parked& p : wait_queue_internal::FailAll(queue_, status, &out)) {
    if (observer_ && p.waiter == nullptr) observer_->NotAcquired(false);
  }
  return out;
}

v1::SemaphoreChanged SemaphoreObject::StateRecordLocked() const {
  v1::SemaphoreChanged changed;
  changed.set_value(value_);
  std::vector<std::pair<uint64_t, SessionId>> by_age;
  by_age.reserve(held_.size());
  for (const auto& [holder, holding] : held_) {
    by_age.emplace_back(holding.order, holder);
  }
  std::sort(by_age.begin(), by_age.end());
  for (const auto& [order, holder] : by_age) {
    v1::SemaphoreUnits* holding = changed.add_holdings();
    holding->set_session(holder);
    const Holding& held = held_.at(holder);
    holding->set_units(held.units);
    holding->set_left(held.left);
  }
  return changed;
}

void SemaphoreObject::EmitStateLocked() const {
  v1::ChangeRecord record;
  *record.mutable_semaphore_changed() = StateRecordLocked();
  Emit(std::move(record));
}

void SemaphoreObject::AddUnitLocked(SessionId session) {
  Holding& holding = held_[session];
  if (holding.units == 0) holding.order = ++next_order_;
  ++holding.units;
}

void SemaphoreObject::CreditLocked(SessionId session, int64_t n) {
  if (auto own = held_.find(session); own != held_.end()) {
    const int64_t credited = std::min(n, own->second.units);
    own->second.units -= credited;
    n -= credited;
    if (own->second.units == 0) held_.erase(own);
  }
  if (n == 0 || held_.empty()) return;
  // Released for someone else: the oldest holding is the likeliest unit to
  // have been handed over.
  std::vector<std::pair<uint64_t, SessionId>> by_age;
  by_age.reserve(held_.size());
  for (const auto& [holder, holding] : held_) {
    by_age.emplace_back(holding.order, holder);
  }
  std::sort(by_age.begin(), by_age.end());
  for (const auto& [order, holder] : by_age) {
    if (n == 0) break;
    auto it = held_.find(holder);
    const int64_t credited = std::min(n, it->second.units);
    it->second.units -= credited;
    n -= credited;
    if (it->second.units == 0) held_.erase(it);
  }
}

void SemaphoreObject::GrantLocked(std::vector<Completion>* out) {
  while (value_ > 0 && !queue_.empty()) {
    Parked next = std::move(queue_.front());
    queue_.pop_front();
    // A waiter claimed by its timeout or cancellation is on its way out.
    if (!next.waiter->TryClaim()) continue;
    --value_;
    AddUnitLocked(next.waiter->session());
    if (observer_) {
      observer_->Acquired(absl::Now() - next.waiter->since(), true, false);
    }
    WaitResult result;
    result.granted = true;
    out->push_back(Completion{std::move(next.waiter), std::move(result)});
  }
}

absl::StatusOr<SemaphoreObject::Acquired> SemaphoreObject::Acquire(
    const Caller& caller, std::shared_ptr<Waiter> waiter) {
  if (caller.session == 0) return NeedsSession(*this);
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (!registry_->Track(caller.session, shared_from_this())) {
    return NeedsSession(*this);
  }
  // FIFO: a newcomer may not overtake parked callers.
  if (value_ > 0 && queue_.empty()) {
    --value_;
    AddUnitLocked(caller.session);
    if (recording()) EmitStateLocked();
    if (observer_) observer_->Acquired(absl::ZeroDuration(), false, false);
    return Acquired{true, false};
  }
  if (waiter == nullptr) {
    if (observer_) observer_->NotAcquired(true);
    return Acquired{};
  }
  queue_.push_back(Parked{std::move(waiter)});
  return Acquired{false, true};
}

absl::StatusOr<std::vector<Completion>> SemaphoreObject::Release(
    const Caller& caller, int64_t n) {
  if (n < 1) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 "n must be one or more");
  }
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  if (absl::Status s = CheckLive(); !s.ok()) return s;
  if (bounded() && n > initial_value_ - value_) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 "Semaphore released too many times");
  }
  if (n > std::numeric_limits<int64_t>::max() - value_) {
    return Error(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                 "semaphore value would overflow int64");
  }
  CreditLocked(caller.session, n);
  value_ += n;
  GrantLocked(&out);
  // One record for the release and the grants it made: they took effect
  // together, under one hold of mu_.
  if (recording()) EmitStateLocked();
  return out;
}

void SemaphoreObject::Withdraw(const Waiter* waiter, bool timed_out) {
  MutexLock lock(&mu_);
  // Counted whether or not a grant pass already dropped the claimed entry.
  if (observer_) observer_->NotAcquired(timed_out);
  wait_queue_internal::Take(queue_, waiter);
}

std::vector<Completion> SemaphoreObject::Rollback(SessionId session) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  auto it = held_.find(session);
  if (it == held_.end()) return out;
  if (--it->second.units == 0) held_.erase(it);
  ++value_;
  GrantLocked(&out);
  if (recording()) EmitStateLocked();
  return out;
}

SemaphoreObject::Load SemaphoreObject::CurrentLoad() const {
  MutexLock lock(&mu_);
  return Load{value_, wait_queue_internal::Waiting(queue_)};
}

SemaphoreState SemaphoreObject::State() const {
  MutexLock lock(&mu_);
  SemaphoreState state;
  state.value = value_;
  state.initial_value = initial_value_;
  for (const auto& [session, holding] : held_) {
    state.holders.emplace_back(session, holding.units);
  }
  std::sort(state.holders.begin(), state.holders.end());
  state.waiters = wait_queue_internal::Infos(queue_);
  return state;
}

std::vector<Completion> SemaphoreObject::OnSessionEnd(SessionId session,
                                                      SessionEnd how) {
  std::vector<Completion> out;
  MutexLock lock(&mu_);
  const size_t failed =
      wait_queue_internal::FailSession(
          queue_, session,
          Error(absl::StatusCode::kFailedPrecondition, ErrorKind::kSessionError,
                "the waiting session ended"),
          &out)
          .size();
  if (observer_) {
    for (size_t i = 0; i < failed; ++i) observer_->NotAcquired(false);
  }
  auto it = held_.find(session);
  if (it != held_.end() && how == SessionEnd::kLeaveLocks) {
    // As with Manager: the units stay taken until someone releases them.
    it->second.left = true;
    if (recording()) EmitStateLocked();
  } else if (it != held_.end()) {
    // Conservation keeps a bounded semaphore within its bound here: its
    // value plus all held units is its initial value.
    value_ += it->second.units;
    held_.erase(it);
    GrantLocked(&out);
    if (recording()) EmitStateLocked();
  }
  return out;
}

absl::Status SemaphoreObject::Apply(const v1::ChangeRecord& record) {
  if (record.change_case() != v1::ChangeRecord::kSemaphoreChanged) {
    return CannotApply(record);
  }
  const v1::SemaphoreChanged& changed = record.semaphore_changed();
  // Units are counted against sessions, one holding each; a bounded
  // semaphore's free and held units together are its initial value.
  if (changed.value() < 0 || (bounded() && changed.value() > initial_value_)) {
    return CannotApply(record);
  }
  absl::flat_hash_map<SessionId, Holding> held;
  int64_t total = changed.value();
  for (const v1::SemaphoreUnits& holding : changed.holdings()) {
    if (holding.session() == 0 || holding.units() <= 0 ||
        held.contains(holding.session())) {
      return CannotApply(record);
    }
    if (bounded()) {
      if (holding.units() > initial_value_ - total) return CannotApply(record);
      total += holding.units();
    }
    // Orders 1..n keep the recorded age order.
    const uint64_t order = held.size() + 1;
    held[holding.session()] = Holding{holding.units(), order, holding.left()};
  }
  MutexLock lock(&mu_);
  value_ = changed.value();
  held_ = std::move(held);
  next_order_ = held_.size();
  // Tracked so that a holder's end after recovery releases its units. A
  // holder that is not live has ended: later records release its units, or
  // Engine::FinishRecovery ends it.
  for (const auto& [session, holding] : held_) {
    if (!holding.left) (void)registry_->Track(session, shared_from_this());
  }
  return absl::OkStatus();
}

uint64_t SemaphoreObject::Dump(std::vector<v1::ChangeRecord>* out) const {
  uint64_t revision = 0;
  v1::ChangeRecord created = Created();
  created.mutable_created()->set_semaphore_value(initial_value_);
  out->push_back(std::move(created));
  v1::ChangeRecord state;
  state.set_object(name());
  {
    MutexLock lock(&mu_);
    revision = RevisionLocked();
    *state.mutable_semaphore_changed() = StateRecordLocked();
  }
  out->push_back(std::move(state));
  return revision;
}

}  // namespace statehub
