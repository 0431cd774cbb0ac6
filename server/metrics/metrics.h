// File: server/metrics/metrics.h
//
// `Metrics` is the server's Prometheus instrumentation (prometheus-cpp):
//
//   - per lock (label `name`): wait and hold histograms, acquisitions by
//     result, contended and uncontended acquisitions (event time, through
//     the engine's AcquireObserver); waiters and held now (scrape time);
//   - per semaphore: the same without hold times; waiters and value now;
//   - per rpc method and transport (grpc, lane): requests by status code
//     and latency (an RpcObserver, on the handlers' shared path);
//   - objects by type, sessions, parked calls by object type, lease
//     expiries, the server-wide revision;
//   - with --data_dir (AttachDurability): bytes written to the log and
//     fdatasync latency (a storage::LogObserver, on the log's writing
//     thread), whether the log takes changes, what recovery replayed at
//     start, and the last snapshot's duration and size.
//
// Cardinality: lock names get their own series up to `max_lock_names`, and
// semaphore names as many again; the rest fold into name="_other", and
// every anonymous one into name="_anonymous".
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
//   metrics.ObserveMethods({"statehub.v1.Dicts.Get", ...});  // table order
//   DurabilityOptions durable{.data_dir = dir, .observer = &metrics};
//   auto durability = Durability::Open(engine, durable);
//   metrics.AttachDurability(durability->get());  // detach before it goes
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
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/durability/durability.h"
#include "server/engine/engine.h"
#include "server/engine/mutex.h"
#include "server/engine/observer.h"
#include "server/handlers/call.h"
#include "server/storage/log.h"

namespace statehub::metrics {

struct MetricsOptions {
  // max_lock_names caps the distinct `name` labels of lock series, and
  // separately of semaphore series.
  int max_lock_names = 100;
};

class Metrics final : public Observers,
                      public handlers::RpcObserver,
                      public storage::LogObserver {
 public:
  explicit Metrics(MetricsOptions options);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics() override;

  // ServeOn makes `exposer` serve these metrics.
  void ServeOn(prometheus::Exposer& exposer);

  // AttachEngine lets scrapes read the engine's gauges (objects, sessions,
  // lock waiters, revision). `engine` must outlive this object or be
  // detached with AttachEngine(nullptr).
  void AttachEngine(const Engine* engine);

  // AttachDurability exposes the durability series (statehub_log_*,
  // statehub_recovery_*, statehub_snapshot_*): until it is called, and
  // after AttachDurability(nullptr), a scrape shows none of them, so a
  // server without --data_dir shows no log. Recovery's figures are read
  // here, once; the log's health at each scrape. `durability` must stay
  // alive until it is detached (a scrape may run at any moment).
  void AttachDurability(const Durability* durability);

  // SnapshotTaken records the last snapshot: how long taking it took and
  // the size of its file (statehub_snapshot_seconds, _bytes; 0 until the
  // first).
  void SnapshotTaken(absl::Duration took, int64_t bytes);

  // storage::LogObserver, called by the log's writer under its mutex: each
  // is one update of a kept handle, no lookup, no lock of ours.
  void Synced(absl::Duration latency) override;
  void Wrote(int64_t bytes) override;

  // ObserveMethods names the methods RpcDone's method_index refers to (the
  // method table's order) and creates their series. Call once, before
  // serving.
  void ObserveMethods(const std::vector<std::string>& methods);
  // RpcObserver:
  void RpcDone(int method_index, handlers::Transport transport,
               absl::StatusCode code, double seconds) override;

  // LeaseExpired counts sessions ended because their lease ran out.
  void LeaseExpired(int64_t n);
  // DeadlockFound counts a cycle of waits found (WaitForGraph's observer).
  void DeadlockFound();

  // Observers:
  std::shared_ptr<AcquireObserver> ForLock(const std::string& name) override;
  std::shared_ptr<AcquireObserver> ForSemaphore(
      const std::string& name) override;
  void Parked(ObjectType type, int delta) override;

 private:
  class AcquireSeries;
  // The families of one kind of object that is acquired (locks,
  // semaphores) and its series by `name` label.
  struct AcquireFamilies {
    prometheus::Family<prometheus::Histogram>* wait = nullptr;
    // hold is null for semaphores.
    prometheus::Family<prometheus::Histogram>* hold = nullptr;
    prometheus::Family<prometheus::Counter>* acquisitions = nullptr;
    prometheus::Family<prometheus::Counter>* contended = nullptr;
    prometheus::Family<prometheus::Counter>* uncontended = nullptr;
    absl::flat_hash_map<std::string, std::shared_ptr<AcquireSeries>> series;
  };
  class EngineCollector;
  class DurabilityCollector;
  struct MethodSeries;

  const MetricsOptions options_;
  const std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>& rpc_requests_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
  prometheus::Counter& lease_expiries_;
  prometheus::Counter& deadlocks_;
  // parked_ is indexed by ObjectType.
  std::vector<prometheus::Gauge*> parked_;

  // The durability series live in a registry of their own, which
  // durability_collector_ shows only while a Durability is attached.
  const std::shared_ptr<prometheus::Registry> durability_registry_;
  prometheus::Counter& log_bytes_;
  prometheus::Histogram& log_fsync_;
  prometheus::Family<prometheus::Gauge>& recovery_records_;
  prometheus::Gauge& recovery_snapshot_records_;
  prometheus::Gauge& recovery_log_records_;
  prometheus::Gauge& recovery_seconds_;
  prometheus::Gauge& recovery_bytes_;
  prometheus::Gauge& snapshot_seconds_;
  prometheus::Gauge& snapshot_bytes_;
  std::shared_ptr<DurabilityCollector> durability_collector_;

  // Label is the `name` label the object `name` of `kind` reports under.
  std::string Label(const AcquireFamilies& kind, const std::string& name);
  // SeriesFor returns (creating it on first use) the series `name` of
  // `kind` reports under.
  std::shared_ptr<AcquireObserver> SeriesFor(AcquireFamilies& kind,
                                             const std::string& name);

  Mutex mu_;
  // Series are shared by every object reporting under the same label.
  AcquireFamilies locks_ ABSL_GUARDED_BY(mu_);
  AcquireFamilies semaphores_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<EngineCollector> collector_;
  // methods_[method_index * kTransportCount + transport]; set before
  // serving, then read without a lock.
  std::vector<std::unique_ptr<MethodSeries>> methods_;
};

// Buckets of every latency histogram, in seconds: 10 µs to 5 minutes in
// 1-2.5-5 steps (see docs/metrics.md for why).
const std::vector<double>& LatencyBuckets();

// Buckets of statehub_log_fsync_seconds: 50 µs (a write cache that
// acknowledges at once) to 1 s (a disk in trouble) in 1-2.5-5 steps.
const std::vector<double>& FsyncBuckets();

}  // namespace statehub::metrics

#endif  // STATEHUB_SERVER_METRICS_METRICS_H_
