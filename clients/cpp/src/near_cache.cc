#include "near_cache.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core.h"
#include "statehub/status.h"

namespace statehub::client_internal {
namespace {

// The pause between attempts to watch again grows from the first to the
// last (as a Watch's own resume does).
constexpr absl::Duration kFirstPause = absl::Milliseconds(50);
constexpr absl::Duration kLastPause = absl::Seconds(1);
// How long the thread's attempt to start a watch may wait for the server:
// a destructor waits for it at most this long.
constexpr absl::Duration kAttempt = absl::Seconds(1);
// A longer ttl is kept for this long: sooner is always safe, and it keeps
// the deadline's arithmetic far from overflowing.
constexpr double kLongestTtlSeconds = 1e9;

// The cache handles a broken watch itself (it must go dark at once: the
// changes missed while away were never invalidated), so its watch does not
// resume on its own.
WatchOptions CacheWatchOptions() {
  WatchOptions options;
  options.resume_for = absl::ZeroDuration();
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<NearCache>> NearCache::Start(
    std::shared_ptr<Core> core, std::string name, CachedObject type,
    const CacheOptions& options) {
  if (core == nullptr) return MovedFromError();
  if (options.max_entries < 1) {
    return MakeError(absl::StatusCode::kInvalidArgument, ErrorKind::kValueError,
                     absl::StrCat("max_entries must be at least 1, not ",
                                  options.max_entries),
                     name);
  }
  std::unique_ptr<NearCache> cache(
      new NearCache(core, std::move(name), type, options));
  STATEHUB_ASSIGN_OR_RETURN(
      Watch watch,
      StartWatch(core, cache->name_, /*by_prefix=*/false, CacheWatchOptions()));
  // Live from here: a read sent from now on is sent after the watch
  // started, so any change that makes its reply stale is an event to come.
  {
    absl::MutexLock lock(&cache->mu_);
    cache->live_ = true;
  }
  cache->thread_ =
      std::thread([cache = cache.get(), watch = std::move(watch)]() mutable {
        cache->Run(std::move(watch));
      });
  return cache;
}

NearCache::NearCache(std::shared_ptr<Core> core, std::string name,
                     CachedObject type, const CacheOptions& options)
    : core_(std::move(core)),
      name_(std::move(name)),
      type_(type),
      max_entries_(options.max_entries),
      observer_(core_->options().observer
                    ? core_->options().observer->CacheOpened(name_)
                    : nullptr) {}

NearCache::~NearCache() {
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    live_ = false;
    DropAllLocked();
    // Wakes the thread if it waits for an event; Close does not block.
    if (watch_ != nullptr) watch_->Close();
  }
  if (thread_.joinable()) thread_.join();
}

void NearCache::Run(Watch first) {
  pthread_setname_np(pthread_self(), "statehub-cache");
  std::optional<Watch> watch(std::move(first));
  bool started_here = false;
  absl::Duration pause = kFirstPause;
  while (true) {
    if (!watch.has_value()) {
      // From now, not from where the last one broke: what changed meanwhile
      // was dropped with everything else.
      absl::StatusOr<Watch> started =
          StartWatch(core_, name_, /*by_prefix=*/false, CacheWatchOptions(),
                     absl::Now() + kAttempt);
      if (!started.ok()) {
        if (!Pause(pause)) return;
        pause = std::min(pause * 2, kLastPause);
        continue;
      }
      watch.emplace(*std::move(started));
      started_here = true;
    }
    if (!Adopt(&*watch, /*go_live=*/started_here)) return;
    Follow(*watch);
    GoDark();
    // Destroyed out of the lock: a gRPC stream joins its reader thread.
    watch.reset();
    pause = kFirstPause;
    if (!Pause(pause)) return;
  }
}

bool NearCache::Adopt(Watch* watch, bool go_live) {
  absl::MutexLock lock(&mu_);
  if (closed_) return false;
  watch_ = watch;
  if (go_live) {
    DropAllLocked();
    live_ = true;
  }
  return true;
}

void NearCache::Follow(Watch& watch) {
  while (true) {
    absl::StatusOr<std::optional<WatchEvent>> event =
        watch.Next(absl::InfiniteDuration());
    // Broken, too old, or closed: the caller starts over.
    if (!event.ok()) return;
    if (!event->has_value()) continue;
    if (!type_.keyed) {
      Flush();
      continue;
    }
    switch ((*event)->op) {
      case WatchOp::kSet:
      case WatchOp::kDelete:
      case WatchOp::kExpire:
        Invalidate((*event)->key);
        break;
      default:  // a clear, a deletion, a new object of the name: everything
        Flush();
        break;
    }
  }
}

void NearCache::GoDark() {
  absl::MutexLock lock(&mu_);
  watch_ = nullptr;
  live_ = false;
  DropAllLocked();
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->Invalidated();
}

bool NearCache::Pause(absl::Duration pause) {
  mu_.LockWhenWithTimeout(absl::Condition(&closed_), pause);
  const bool open = !closed_;
  mu_.Unlock();
  return open;
}

absl::StatusOr<Value> NearCache::Read(NearCache* cache, const Value& key,
                                      Fetch fetch) {
  std::optional<double> ttl;
  if (cache == nullptr) return fetch(&ttl);
  if (std::optional<absl::StatusOr<Value>> kept = cache->Lookup(key)) {
    return *std::move(kept);
  }
  Placeholder read;
  const bool keep = cache->Begin(key, &read);
  absl::StatusOr<Value> reply = fetch(&ttl);
  if (keep) {
    cache->RunReplyHook(key);
    cache->Finish(key, &read, reply, ttl);
  }
  return reply;
}

CacheSlot::CacheSlot() = default;
CacheSlot::CacheSlot(CacheSlot&&) noexcept = default;
CacheSlot& CacheSlot::operator=(CacheSlot&&) noexcept = default;
CacheSlot::~CacheSlot() = default;

absl::Status CacheSlot::Start(const HandleState& state,
                              const CachedObject& type,
                              const CacheOptions& options) {
  STATEHUB_ASSIGN_OR_RETURN(
      cache_, NearCache::Start(state.core, state.name, type, options));
  return absl::OkStatus();
}

std::optional<CacheInfo> CacheSlot::Info() const {
  if (cache_ == nullptr) return std::nullopt;
  return cache_->Info();
}

void CacheSlot::Clear() const {
  if (cache_ != nullptr) cache_->Flush();
}

std::optional<absl::StatusOr<Value>> NearCache::Lookup(const Value& key) const {
  if (!CheckKey(key).ok()) return std::nullopt;  // the server says why
  absl::ReaderMutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  // An expired entry is left for the read that misses (or the server's
  // expire event) to replace or drop.
  if (it->second.deadline.has_value() && Clock::now() >= *it->second.deadline) {
    return std::nullopt;
  }
  hits_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->Hit();
  return it->second.reply;
}

bool NearCache::Begin(const Value& key, Placeholder* read) {
  misses_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->Miss();
  if (!CheckKey(key).ok()) return false;
  absl::MutexLock lock(&mu_);
  if (!live_) return false;
  read->valid = true;
  read->sent = Clock::now();
  inflight_[key].push_back(read);
  return true;
}

void NearCache::Finish(const Value& key, Placeholder* read,
                       const absl::StatusOr<Value>& reply,
                       std::optional<double> ttl) {
  absl::MutexLock lock(&mu_);
  if (auto it = inflight_.find(key); it != inflight_.end()) {
    std::vector<Placeholder*>& reads = it->second;
    reads.erase(std::remove(reads.begin(), reads.end(), read), reads.end());
    if (reads.empty()) inflight_.erase(it);
  }
  if (!read->valid || !live_) return;
  if (reply.ok() ? reply->HasRefs()
                 : GetErrorKind(reply.status()) != type_.missing) {
    return;
  }
  std::optional<Clock::time_point> deadline;
  if (ttl.has_value()) {
    if (!(*ttl > 0)) return;
    deadline =
        read->sent +
        std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(std::min(*ttl, kLongestTtlSeconds)));
  }
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (static_cast<int64_t>(entries_.size()) >= max_entries_) {
      Erase(entries_.find(order_.front()));
    }
    it = entries_.try_emplace(key).first;
    it->second.order = order_.insert(order_.end(), key);
    if (observer_ != nullptr) observer_->EntriesChanged(1);
  }
  it->second.reply = reply;
  it->second.deadline = deadline;
}

void NearCache::Invalidate(const Value& key) {
  if (!CheckKey(key).ok()) return;
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(key); it != entries_.end()) Erase(it);
  SpoilLocked(key);
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->Invalidated();
}

void NearCache::Flush() {
  absl::MutexLock lock(&mu_);
  DropAllLocked();
  invalidations_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->Invalidated();
}

CacheInfo NearCache::Info() const {
  CacheInfo info;
  info.hits = hits_.load(std::memory_order_relaxed);
  info.misses = misses_.load(std::memory_order_relaxed);
  info.invalidations = invalidations_.load(std::memory_order_relaxed);
  info.max_entries = max_entries_;
  absl::ReaderMutexLock lock(&mu_);
  info.entries = static_cast<int64_t>(entries_.size());
  return info;
}

void NearCache::SetReplyHook(std::function<void(const Value&)> hook) {
  absl::MutexLock lock(&mu_);
  reply_hook_ = std::move(hook);
}

void NearCache::RunReplyHook(const Value& key) const {
  std::function<void(const Value&)> hook;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!reply_hook_) return;
    hook = reply_hook_;
  }
  hook(key);
}

void NearCache::Erase(
    absl::flat_hash_map<Value, Entry, KeyHash, KeyEq>::iterator it) {
  order_.erase(it->second.order);
  entries_.erase(it);
  if (observer_ != nullptr) observer_->EntriesChanged(-1);
}

void NearCache::SpoilLocked(const Value& key) {
  if (auto it = inflight_.find(key); it != inflight_.end()) {
    for (Placeholder* read : it->second) read->valid = false;
  }
}

void NearCache::DropAllLocked() {
  const int64_t dropped = static_cast<int64_t>(entries_.size());
  entries_.clear();
  order_.clear();
  for (auto& [key, reads] : inflight_) {
    for (Placeholder* read : reads) read->valid = false;
  }
  if (observer_ != nullptr && dropped > 0) observer_->EntriesChanged(-dropped);
}

}  // namespace statehub::client_internal
