// File: statehub/prometheus.h
//
// `statehub::PrometheusObserver` records a Client's calls into the
// application's prometheus-cpp registry (client-side metrics, off unless
// installed):
//
//   statehub_client_call_duration_seconds{rpc}   histogram: rpc latency as
//       this process sees it, network included;
//   statehub_client_calls_total{rpc, code}       counter: calls by status;
//   statehub_client_acquire_wait_seconds{rpc, result}
//       histogram: how long lock and semaphore acquires waited, result
//       "acquired" or "not_acquired" (timed out or would block).
//
// Header-only, so the statehub client library does not depend on
// prometheus-cpp: a program that includes this links prometheus-cpp::core
// itself.
//
// Example:
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   statehub::ClientOptions options;
//   options.observer =
//   std::make_shared<statehub::PrometheusObserver>(*registry); auto client =
//   statehub::Client::Connect(address, options);
//   exposer.RegisterCollectable(registry);  // the application's exposer
//
// Handles: one per rpc (and per status code, and per acquire result),
// created the first time it is seen and kept; a call then costs a map
// lookup under a mutex and one observation.
//
// Thread safety: thread-safe. The registry must outlive the observer.

#ifndef STATEHUB_PROMETHEUS_H_
#define STATEHUB_PROMETHEUS_H_

#include <string>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "statehub/observer.h"

namespace statehub {

class PrometheusObserver final : public CallObserver {
 public:
  explicit PrometheusObserver(prometheus::Registry& registry)
      : duration_(prometheus::BuildHistogram()
                      .Name("statehub_client_call_duration_seconds")
                      .Help("statehub rpc latency as the client sees it.")
                      .Register(registry)),
        calls_(prometheus::BuildCounter()
                   .Name("statehub_client_calls_total")
                   .Help("statehub rpcs made, by status code.")
                   .Register(registry)),
        acquire_wait_(prometheus::BuildHistogram()
                          .Name("statehub_client_acquire_wait_seconds")
                          .Help("How long lock and semaphore acquires "
                                "waited, as the client sees it.")
                          .Register(registry)) {}

  void CallDone(absl::string_view rpc, absl::Duration latency,
                absl::StatusCode code) override {
    prometheus::Histogram* duration;
    prometheus::Counter* calls;
    {
      absl::MutexLock lock(&mu_);
      auto [it, added] = durations_.try_emplace(rpc, nullptr);
      if (added) {
        it->second = &duration_.Add({{"rpc", std::string(rpc)}}, Buckets());
      }
      duration = it->second;
      const std::string key = absl::StrCat(rpc, "/", static_cast<int>(code));
      auto [c, new_code] = calls_by_code_.try_emplace(key, nullptr);
      if (new_code) {
        c->second = &calls_.Add({{"rpc", std::string(rpc)},
                                 {"code", absl::StatusCodeToString(code)}});
      }
      calls = c->second;
    }
    duration->Observe(absl::ToDoubleSeconds(latency));
    calls->Increment();
  }

  void AcquireDone(absl::string_view rpc, absl::Duration waited,
                   bool acquired) override {
    prometheus::Histogram* wait;
    {
      absl::MutexLock lock(&mu_);
      const std::string key = absl::StrCat(rpc, acquired ? "/1" : "/0");
      auto [it, added] = waits_.try_emplace(key, nullptr);
      if (added) {
        it->second = &acquire_wait_.Add(
            {{"rpc", std::string(rpc)},
             {"result", acquired ? "acquired" : "not_acquired"}},
            Buckets());
      }
      wait = it->second;
    }
    wait->Observe(absl::ToDoubleSeconds(waited));
  }

 private:
  // The server's buckets (docs/metrics.md): 10 µs to 5 minutes.
  static prometheus::Histogram::BucketBoundaries Buckets() {
    return {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
            5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1,
            2.5,   5,     10,    30,     60,     120,    300};
  }

  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& acquire_wait_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, prometheus::Histogram*> durations_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Counter*> calls_by_code_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Histogram*> waits_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_PROMETHEUS_H_
