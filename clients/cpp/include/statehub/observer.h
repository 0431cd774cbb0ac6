// File: statehub/observer.h
//
// `statehub::CallObserver` sees every call a Client makes, for client-side
// metrics: the latency of each rpc as this process sees it (network and
// queueing included) and how long acquires waited. Install one with
// ClientOptions::observer; statehub/prometheus.h has one that records into
// a prometheus-cpp registry.
//
// Thread safety: implementations are called from every thread that makes
// calls, concurrently, after each call returns; they must be thread-safe and
// quick.

#ifndef STATEHUB_OBSERVER_H_
#define STATEHUB_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace statehub {

class CallObserver {
 public:
  virtual ~CallObserver() = default;

  // CallDone: rpc `rpc` (e.g. "DictGet", "LockAcquire": the request
  // message's name without "Request") took `latency` and ended with `code`.
  virtual void CallDone(absl::string_view rpc, absl::Duration latency,
                        absl::StatusCode code) = 0;

  // AcquireDone: a lock or semaphore acquire ("LockAcquire",
  // "SemaphoreAcquire") that succeeded as a call waited `waited` and got
  // (`acquired`) or did not get the lock or unit. Called after CallDone.
  virtual void AcquireDone(absl::string_view rpc, absl::Duration waited,
                           bool acquired) = 0;
};

}  // namespace statehub

#endif  // STATEHUB_OBSERVER_H_
