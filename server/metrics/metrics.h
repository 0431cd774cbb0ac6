// File: server/metrics/metrics.h
//
// `Metrics` is the server's Prometheus instrumentation (prometheus-cpp):
//
//   - per lock (label `name`): wait and hold histograms, acquisitions by
//     result, contended and uncontended acquisitions (event time, through
//     the engine's LockObserver); waiters and held now (scrape time);
//   - per rpc method: requests by status code and latency (a gRPC server
//     interceptor);
//   - objects by type, sessions, parked calls by object type, lease
//     expiries.
//
// Cardinality: lock names get their own series up to `max_lock_names`; the
// rest fold into name="_other", and every anonymous lock into
// name="_anonymous".
//
// Hot path: every handle is created once (per lock label when the first lock
// with that label is created, per method at startup) and kept; no request
// looks a label up in prometheus-cpp (Family::Add allocates and locks).
//
// Example:
//
//   Metrics metrics({.max_lock_names = 100});
//   engine.registry().set_observers(&metrics);
//   metrics.AttachEngine(&engine);
//   builder.experimental().SetInterceptorCreators(...metrics.Interceptors(...));
//   prometheus::Exposer exposer("127.0.0.1:9420");
//   metrics.ServeOn(exposer);
//
// Thread safety: all methods are thread-safe.

#ifndef STATEHUB_SERVER_METRICS_METRICS_H_
#define STATEHUB_SERVER_METRICS_METRICS_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/support/server_interceptor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/engine/engine.h"
#include "server/engine/observer.h"

namespace statehub::metrics {

struct MetricsOptions {
  // max_lock_names caps the distinct `name` labels of lock series.
  int max_lock_names = 100;
};

class Metrics final : public Observers {
 public:
  explicit Metrics(MetricsOptions options);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics() override;

  // ServeOn makes `exposer` serve these metrics.
  void ServeOn(prometheus::Exposer& exposer);

  // AttachEngine lets scrapes read the engine's gauges (objects, sessions,
  // lock waiters). `engine` must outlive this object or be detached with
  // AttachEngine(nullptr).
  void AttachEngine(const Engine* engine);

  // Interceptors returns the interceptor factory that counts and times
  // every call of the given services' methods (full service names, e.g.
  // "statehub.v1.Dicts"). Calls of other methods are not recorded.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  Interceptors(const std::vector<std::string>& services);

  // LeaseExpired counts sessions ended because their lease ran out.
  void LeaseExpired(int64_t n);

  // Observers:
  std::shared_ptr<LockObserver> ForLock(const std::string& name) override;
  void Parked(ObjectType type, int delta) override;

  // LockLabel is the `name` label the lock called `name` reports under.
  std::string LockLabel(const std::string& name);

 private:
  class LockSeries;
  class EngineCollector;
  struct MethodSeries;
  class Interceptor;
  class InterceptorFactory;

  const MetricsOptions options_;
  const std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Histogram>& lock_wait_;
  prometheus::Family<prometheus::Histogram>& lock_hold_;
  prometheus::Family<prometheus::Counter>& lock_acquisitions_;
  prometheus::Family<prometheus::Counter>& lock_contended_;
  prometheus::Family<prometheus::Counter>& lock_uncontended_;
  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Counter& lease_expiries_;
  // parked_ is indexed by ObjectType.
  std::vector<prometheus::Gauge*> parked_;

  absl::Mutex mu_;
  // One series set per lock label, shared by the locks reporting under it.
  absl::flat_hash_map<std::string, std::shared_ptr<LockSeries>> locks_
      ABSL_GUARDED_BY(mu_);
  std::shared_ptr<EngineCollector> collector_;
};

// Buckets of every latency histogram, in seconds: 10 µs to 5 minutes in
// 1-2.5-5 steps (see docs/metrics.md for why).
const std::vector<double>& LatencyBuckets();

}  // namespace statehub::metrics

#endif  // STATEHUB_SERVER_METRICS_METRICS_H_
