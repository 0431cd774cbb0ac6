#include "server/engine/watches.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "server/engine/registry.h"
#include "server/engine/sessions.h"
#include "statehub/internal/value_codec.h"
#include "statehub/status.h"

namespace statehub {
namespace {

// Labels of ended sessions are kept for the records that follow their end
// (the releases of what they held); this many at most.
constexpr size_t kEndedLabels = 1024;

// Watched is true for records a watch can see: changes of an object.
// Session records, holds and remembered answers are the server's
// bookkeeping.
bool Watched(const v1::ChangeRecord& record) {
  switch (record.change_case()) {
    case v1::ChangeRecord::kSessionOpened:
    case v1::ChangeRecord::kSessionEnded:
    case v1::ChangeRecord::kHoldsChanged:
    case v1::ChangeRecord::kCallAnswered:
    case v1::ChangeRecord::CHANGE_NOT_SET:
      return false;
    default:
      return !record.object().empty();
  }
}

bool NameChange(const v1::ChangeRecord& record) {
  return record.has_created() || record.has_deleted();
}

// Follows: a prefix watch sees the creation and deletion of the objects
// under its prefix (anonymous ones only under an "_anon/" prefix).
bool Follows(const WatchSpec& spec, const v1::ChangeRecord& record) {
  if (!spec.by_prefix) return record.object() == spec.name;
  if (!NameChange(record) || !absl::StartsWith(record.object(), spec.name)) {
    return false;
  }
  return absl::StartsWith(spec.name, kAnonymousPrefix) ||
         !absl::StartsWith(record.object(), kAnonymousPrefix);
}

std::string Describe(const WatchSpec& spec) {
  return spec.by_prefix
             ? absl::StrFormat("watch of names under \"%s\"", spec.name)
             : absl::StrFormat("watch of \"%s\"", spec.name);
}

}  // namespace

Watch::Batch Watch::Take(size_t max_changes, size_t max_bytes) {
  const uint64_t seen = hub_->seen_.load(std::memory_order_acquire);
  Batch batch;
  MutexLock lock(&mu_);
  size_t bytes = 0;
  while (!pending_.empty() && batch.changes.size() < max_changes &&
         (batch.changes.empty() || bytes < max_bytes)) {
    bytes += pending_.front()->bytes;
    batch.changes.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  batch.more = !pending_.empty();
  // The hub offers records in order: every record below the last one
  // taken was offered before it.
  batch.revision =
      batch.changes.empty() ? 0 : batch.changes.back()->record.revision();
  if (!batch.more) batch.revision = std::max({batch.revision, seen, floor_});
  batch.progress = progress_;
  progress_ = false;
  if (ended_ && !batch.more) batch.end = end_;
  if (!batch.more) armed_ = true;
  if (!batch.changes.empty() || batch.progress) last_sent_ = absl::Now();
  return batch;
}

void Watch::Cancel() { hub_->Forget(this); }

bool Watch::ended() {
  MutexLock lock(&mu_);
  return ended_;
}

bool Watch::Offer(const std::shared_ptr<const WatchedChange>& change,
                  size_t max_backlog) {
  MutexLock lock(&mu_);
  if (ended_ || change->record.revision() <= floor_) return false;
  if (pending_.size() >= max_backlog) {
    pending_.clear();
    ended_ = true;
    const uint64_t revision = change->record.revision();
    end_ = WatchTooOld(
        absl::StrFormat("%s fell more than %d changes behind (the server is "
                        "at revision %d): its client reads too slowly; watch "
                        "again with since= the last revision it saw",
                        Describe(spec_), max_backlog, revision),
        spec_.by_prefix ? "" : spec_.name, revision, 0);
  } else {
    pending_.push_back(change);
  }
  const bool wake = armed_;
  armed_ = false;
  return wake;
}

bool Watch::End(absl::Status status) {
  MutexLock lock(&mu_);
  if (ended_) return false;
  ended_ = true;
  end_ = std::move(status);
  const bool wake = armed_;
  armed_ = false;
  return wake;
}

bool Watch::Nudge(absl::Time now, absl::Duration interval) {
  MutexLock lock(&mu_);
  if (!armed_ || ended_ || now - last_sent_ < interval) return false;
  progress_ = true;
  armed_ = false;
  return true;
}

void Watch::Raise(uint64_t revision) {
  MutexLock lock(&mu_);
  if (revision <= floor_) return;
  floor_ = revision;
  start_ = revision;
  while (!pending_.empty() && pending_.front()->record.revision() <= floor_) {
    pending_.pop_front();
  }
}

WatchHub::WatchHub(ChangeStream& stream, Registry& registry,
                   SessionTable& sessions)
    : stream_(stream), registry_(registry), sessions_(sessions) {}

WatchHub::~WatchHub() {
  bool listening;
  {
    MutexLock lock(&mu_);
    listening = listening_;
  }
  if (listening) stream_.set_listener(nullptr);
}

void WatchHub::set_options(const Options& options) {
  MutexLock lock(&mu_);
  options_ = options;
}

void WatchHub::Listen() {
  std::call_once(listen_once_, [this] {
    // Neither lock is taken under the hub's: the session table and the
    // stream publish into the hub under theirs.
    std::vector<std::pair<SessionId, std::string>> labels = sessions_.Labels();
    const uint64_t at = stream_.set_listener(this);
    MutexLock lock(&mu_);
    listening_ = true;
    // After a recovery the history holds the log's tail; otherwise (or if
    // records went by that the hub never saw) it starts now.
    if (!recovered_ || at > seen_.load(std::memory_order_relaxed)) {
      floor_ = std::max(floor_, at);
    }
    for (auto& [id, label] : labels) labels_.try_emplace(id, std::move(label));
    if (seen_.load(std::memory_order_relaxed) < at) {
      seen_.store(at, std::memory_order_release);
    }
  });
}

absl::Status WatchHub::TooOld(absl::string_view what,
                              absl::string_view object) const {
  const uint64_t revision = seen_.load(std::memory_order_relaxed);
  return WatchTooOld(
      absl::StrFormat("%s: the changes after that revision are no longer "
                      "retained (the server is at revision %d and keeps "
                      "them from revision %d on); read the current state "
                      "and watch from there",
                      what, revision, floor_),
      object, revision, floor_);
}

absl::StatusOr<std::shared_ptr<Watch>> WatchHub::Start(
    const WatchSpec& spec, std::function<void()> wake) {
  if (!spec.by_prefix || !spec.name.empty()) {
    if (absl::Status s = CheckName(spec.name); !s.ok()) {
      return MakeError(s.code(), ErrorKind::kValueError,
                       absl::StrFormat("%s: %s", Describe(spec), s.message()),
                       spec.name);
    }
  }
  if (spec.initial && spec.since.has_value()) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: initial contents come with a watch from now; "
                        "a watch that resumes (since) has them already",
                        Describe(spec)),
        spec.name);
  }
  Listen();
  if (spec.since.has_value() && *spec.since > stream_.revision()) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
        absl::StrFormat("%s: since %d is after the server's revision %d",
                        Describe(spec), *spec.since, stream_.revision()),
        spec.name);
  }
  std::shared_ptr<Object> object;
  if (!spec.by_prefix) {
    absl::StatusOr<std::shared_ptr<Object>> found =
        registry_.FindObject(spec.name);
    if (!found.ok()) return found.status();
    object = *std::move(found);
  }
  std::shared_ptr<Watch> watch(new Watch(this, spec, std::move(wake)));

  if (spec.by_prefix && spec.initial) {
    // No object is created or deleted while the names are read, and every
    // creation and deletion up to the stream's revision is in them.
    const bool anonymous = absl::StartsWith(spec.name, kAnonymousPrefix);
    registry_.WithNames(
        spec.name, anonymous,
        [&](const std::vector<std::pair<std::string, ObjectType>>& names) {
          const uint64_t start = stream_.revision();
          {
            MutexLock lock(&mu_);
            RegisterLocked(watch, std::nullopt, start);
          }
          watch->initial_.reserve(names.size());
          for (const auto& [name, type] : names) {
            v1::ChangeRecord& record = watch->initial_.emplace_back();
            record.set_object(name);
            record.mutable_created()->set_type(internal::ToWire(type));
          }
        });
    return watch;
  }
  {
    MutexLock lock(&mu_);
    if (spec.since.has_value() && *spec.since < floor_) {
      return TooOld(
          absl::StrFormat("%s since revision %d", Describe(spec), *spec.since),
          spec.by_prefix ? "" : spec.name);
    }
    RegisterLocked(watch, spec.since,
                   spec.since.value_or(seen_.load(std::memory_order_relaxed)));
  }
  if (object != nullptr && spec.initial) {
    // Registered first, dumped second: a change after the dump reaches the
    // watch, and Raise drops those the dump holds.
    const uint64_t at = object->Dump(&watch->initial_);
    watch->Raise(at);
  }
  return watch;
}

void WatchHub::RegisterLocked(const std::shared_ptr<Watch>& watch,
                              std::optional<uint64_t> since, uint64_t start) {
  watch->start_ = start;
  watch->oldest_ = floor_;
  {
    MutexLock lock(&watch->mu_);
    watch->floor_ = start;
    // The transport takes once it has sent the started response; until
    // then nothing wakes it.
    watch->armed_ = false;
    watch->last_sent_ = absl::Now();
  }
  if (since.has_value()) {
    auto first = std::upper_bound(
        history_.begin(), history_.end(), *since,
        [](uint64_t revision, const std::shared_ptr<const WatchedChange>& c) {
          return revision < c->record.revision();
        });
    for (auto it = first; it != history_.end(); ++it) {
      if (Follows(watch->spec_, (*it)->record)) {
        watch->Offer(*it, options_.max_backlog);
      }
    }
  }
  if (watch->spec_.by_prefix) {
    by_prefix_.push_back(watch);
  } else {
    by_name_[watch->spec_.name].push_back(watch);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
}

void WatchHub::Forget(Watch* watch) {
  std::function<void()> wake;  // destroyed after the lock is dropped
  MutexLock lock(&mu_);
  if (watch->cancelled_) return;
  watch->cancelled_ = true;
  wake = std::move(watch->wake_);
  auto drop = [watch](std::vector<std::shared_ptr<Watch>>& list) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [watch](const std::shared_ptr<Watch>& w) {
                                return w.get() == watch;
                              }),
               list.end());
  };
  if (watch->spec_.by_prefix) {
    drop(by_prefix_);
  } else if (auto it = by_name_.find(watch->spec_.name); it != by_name_.end()) {
    drop(it->second);
    if (it->second.empty()) by_name_.erase(it);
  }
  count_.fetch_sub(1, std::memory_order_relaxed);
}

void WatchHub::Recovered(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  if (listening_) return;
  if (!recovered_) {
    recovered_ = true;
    floor_ = record.revision() - 1;
  }
  KeepLocked(record);
  seen_.store(record.revision(), std::memory_order_release);
}

std::shared_ptr<const WatchedChange> WatchHub::KeepLocked(
    const v1::ChangeRecord& record) {
  if (record.has_session_opened()) {
    labels_[record.session_opened().id()] = record.session_opened().label();
  } else if (record.has_session_ended()) {
    ended_.push_back(record.session_ended().id());
    while (ended_.size() > kEndedLabels) {
      labels_.erase(ended_.front());
      ended_.pop_front();
    }
  }
  if (!Watched(record) || record.revision() <= floor_) return nullptr;
  auto change = std::make_shared<WatchedChange>();
  change->record = record;
  if (record.session() != 0) {
    if (auto it = labels_.find(record.session()); it != labels_.end()) {
      change->label = it->second;
    }
  }
  change->bytes = change->record.ByteSizeLong() + change->label.size();
  std::shared_ptr<const WatchedChange> shared = std::move(change);
  history_.push_back(shared);
  history_bytes_ += shared->bytes;
  while (!history_.empty() && (history_.size() > options_.history_records ||
                               history_bytes_ > options_.history_bytes)) {
    floor_ = std::max(floor_, history_.front()->record.revision());
    history_bytes_ -= history_.front()->bytes;
    history_.pop_front();
  }
  return shared;
}

void WatchHub::Write(const v1::ChangeRecord& record) {
  MutexLock lock(&mu_);
  const uint64_t revision = record.revision();
  if (std::shared_ptr<const WatchedChange> shared = KeepLocked(record)) {
    auto offer = [&](const std::shared_ptr<Watch>& watch) {
      events_.fetch_add(1, std::memory_order_relaxed);
      const bool was_ended = watch->ended_for_hub_;
      if (watch->Offer(shared, options_.max_backlog) && watch->wake_) {
        watch->wake_();
      }
      if (!was_ended && watch->ended()) {
        watch->ended_for_hub_ = true;
        overflows_.fetch_add(1, std::memory_order_relaxed);
      }
    };
    if (auto it = by_name_.find(record.object()); it != by_name_.end()) {
      for (const std::shared_ptr<Watch>& watch : it->second) offer(watch);
    }
    if (NameChange(record)) {
      for (const std::shared_ptr<Watch>& watch : by_prefix_) {
        if (Follows(watch->spec_, record)) offer(watch);
      }
    }
  }
  if (revision > seen_.load(std::memory_order_relaxed)) {
    seen_.store(revision, std::memory_order_release);
  }
}

void WatchHub::Tick(absl::Time now) {
  MutexLock lock(&mu_);
  const absl::Duration interval = options_.progress_interval;
  auto nudge = [&](const std::shared_ptr<Watch>& watch) {
    if (watch->Nudge(now, interval) && watch->wake_) watch->wake_();
  };
  for (const auto& [name, watches] : by_name_) {
    for (const std::shared_ptr<Watch>& watch : watches) nudge(watch);
  }
  for (const std::shared_ptr<Watch>& watch : by_prefix_) nudge(watch);
}

size_t WatchHub::watches() const {
  return count_.load(std::memory_order_relaxed);
}

size_t WatchHub::history() const {
  MutexLock lock(&mu_);
  return history_.size();
}

uint64_t WatchHub::oldest_revision() const {
  MutexLock lock(&mu_);
  return floor_;
}

}  // namespace statehub
