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
//       "acquired" or "not_acquired" (timed out or would block);
//   statehub_client_cache_hits_total{object}, _misses_total{object} and
//   _invalidations_total{object}   counters: near caches' reads served from
//       memory, reads sent to the server, and drops (Cached() of a Dict,
//       ValueCell or Namespace);
//   statehub_client_cache_entries{object}   gauge: the keys near caches
//       keep (summed over this client's cached handles of one object).
//
// The names are the Python client's (docs/metrics.md).
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
// created the first time it is seen and kept in one entry per rpc; each
// callback then costs one hash lookup under a mutex, no allocation, and its
// observations. A near cache's handles are looked up once, as it starts: a
// hit then costs one counter increment.
//
// Thread safety: thread-safe. The registry must outlive the observer.

#ifndef STATEHUB_PROMETHEUS_H_
#define STATEHUB_PROMETHEUS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
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
                          .Register(registry)),
        cache_hits_(prometheus::BuildCounter()
                        .Name("statehub_client_cache_hits_total")
                        .Help("Reads served from a near cache.")
                        .Register(registry)),
        cache_misses_(prometheus::BuildCounter()
                          .Name("statehub_client_cache_misses_total")
                          .Help("Reads of a near-cached object that went to "
                                "the server.")
                          .Register(registry)),
        cache_invalidations_(
            prometheus::BuildCounter()
                .Name("statehub_client_cache_invalidations_total")
                .Help("Near-cache entries dropped because the server said "
                      "they changed.")
                .Register(registry)),
        cache_entries_(prometheus::BuildGauge()
                           .Name("statehub_client_cache_entries")
                           .Help("Entries a near cache keeps.")
                           .Register(registry)) {}

  void CallDone(absl::string_view rpc, absl::Duration latency,
                absl::StatusCode code) override {
    int index = static_cast<int>(code);
    // gRPC has no other codes; should one appear, count it as UNKNOWN.
    if (index < 0 || index >= kCodes) {
      index = static_cast<int>(absl::StatusCode::kUnknown);
    }
    prometheus::Histogram* duration;
    prometheus::Counter* calls;
    {
      absl::MutexLock lock(&mu_);
      Rpc& series = SeriesFor(rpc);
      if (series.calls_by_code[index] == nullptr) {
        series.calls_by_code[index] = &calls_.Add(
            {{"rpc", std::string(rpc)},
             {"code",
              absl::StatusCodeToString(static_cast<absl::StatusCode>(index))}});
      }
      duration = series.duration;
      calls = series.calls_by_code[index];
    }
    duration->Observe(absl::ToDoubleSeconds(latency));
    calls->Increment();
  }

  void AcquireDone(absl::string_view rpc, absl::Duration waited,
                   bool acquired) override {
    prometheus::Histogram* wait;
    {
      absl::MutexLock lock(&mu_);
      prometheus::Histogram*& slot = SeriesFor(rpc).acquire_wait[acquired];
      if (slot == nullptr) {
        slot = &acquire_wait_.Add(
            {{"rpc", std::string(rpc)},
             {"result", acquired ? "acquired" : "not_acquired"}},
            Buckets());
      }
      wait = slot;
    }
    wait->Observe(absl::ToDoubleSeconds(waited));
  }

  std::shared_ptr<CacheObserver> CacheOpened(
      absl::string_view object) override {
    const prometheus::Labels labels = {{"object", std::string(object)}};
    // Family::Add returns the series these labels already have, if any:
    // two cached handles of one object count into the same series.
    return std::make_shared<CacheSeries>(
        cache_hits_.Add(labels), cache_misses_.Add(labels),
        cache_invalidations_.Add(labels), cache_entries_.Add(labels));
  }

 private:
  // CacheSeries is one near cache's series.
  class CacheSeries final : public CacheObserver {
   public:
    CacheSeries(prometheus::Counter& hits, prometheus::Counter& misses,
                prometheus::Counter& invalidations, prometheus::Gauge& entries)
        : hits_(hits),
          misses_(misses),
          invalidations_(invalidations),
          entries_(entries) {}
    void Hit() override { hits_.Increment(); }
    void Miss() override { misses_.Increment(); }
    void Invalidated() override { invalidations_.Increment(); }
    void EntriesChanged(int64_t delta) override {
      entries_.Increment(static_cast<double>(delta));
    }

   private:
    prometheus::Counter& hits_;
    prometheus::Counter& misses_;
    prometheus::Counter& invalidations_;
    prometheus::Gauge& entries_;
  };

  // kCodes is the number of status codes (OK = 0 to UNAUTHENTICATED = 16).
  static constexpr int kCodes = 17;

  // Rpc holds one rpc's handles; each is created on first use.
  struct Rpc {
    prometheus::Histogram* duration = nullptr;
    // calls_by_code is indexed by absl::StatusCode.
    prometheus::Counter* calls_by_code[kCodes] = {};
    // acquire_wait is indexed by `acquired` (0: not acquired, 1: acquired).
    prometheus::Histogram* acquire_wait[2] = {};
  };

  // SeriesFor returns the entry of `rpc`, adding it (and its duration
  // histogram) the first time. The entry stays valid while mu_ is held.
  Rpc& SeriesFor(absl::string_view rpc) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = rpcs_.find(rpc);
    if (it == rpcs_.end()) {
      it = rpcs_.try_emplace(std::string(rpc)).first;
      it->second.duration =
          &duration_.Add({{"rpc", std::string(rpc)}}, Buckets());
    }
    return it->second;
  }

  // The server's buckets (docs/metrics.md): 10 µs to 5 minutes.
  static prometheus::Histogram::BucketBoundaries Buckets() {
    return {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
            5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1,
            2.5,   5,     10,    30,     60,     120,    300};
  }

  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& acquire_wait_;
  prometheus::Family<prometheus::Counter>& cache_hits_;
  prometheus::Family<prometheus::Counter>& cache_misses_;
  prometheus::Family<prometheus::Counter>& cache_invalidations_;
  prometheus::Family<prometheus::Gauge>& cache_entries_;
  absl::Mutex mu_;
  // rpcs_ is keyed by rpc name; a lookup by string_view allocates nothing.
  absl::flat_hash_map<std::string, Rpc> rpcs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace statehub

#endif  // STATEHUB_PROMETHEUS_H_
