// File: server/engine/mutex.h
//
// The engine's mutex: Mutex, except in ThreadSanitizer builds.
//
// Why: Debian's Abseil is a prebuilt library not compiled with TSan, so TSan
// cannot see Mutex lock and unlock and reports every access guarded
// by one as a race (hundreds of false reports in the engine tests). In TSan
// builds `Mutex` is therefore a std::shared_mutex, whose operations TSan
// intercepts, with the same interface and thread-safety annotations, so TSan
// checks the engine's own locking for real. Release builds keep Mutex
// at no cost.
//
// Use `Mutex`, `MutexLock` and `ReaderMutexLock` as their absl namesakes
// (no conditions: the engine never waits on its own mutexes).

#ifndef STATEHUB_SERVER_ENGINE_MUTEX_H_
#define STATEHUB_SERVER_ENGINE_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#if defined(__SANITIZE_THREAD__)
#define STATEHUB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STATEHUB_TSAN 1
#endif
#endif

#ifdef STATEHUB_TSAN
#include <shared_mutex>
#endif

namespace statehub {

#ifndef STATEHUB_TSAN

using Mutex = absl::Mutex;
using MutexLock = absl::MutexLock;
using ReaderMutexLock = absl::ReaderMutexLock;

#else

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

 private:
  Mutex* const mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->ReaderLock();
  }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }

 private:
  Mutex* const mu_;
};

#endif  // STATEHUB_TSAN

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_MUTEX_H_
