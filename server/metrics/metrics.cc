#include "server/metrics/metrics.h"

#include <atomic>
#include <chrono>
#include <deque>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "google/protobuf/descriptor.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "server/engine/lock.h"
#include "server/engine/registry.h"
#include "server/engine/semaphore.h"

namespace statehub::metrics {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr char kAnonymousLabel[] = "_anonymous";
constexpr char kOtherLabel[] = "_other";
// The gRPC status codes, by value, as Prometheus labels.
constexpr std::array<const char*, 17> kCodeNames = {"OK",
                                                    "CANCELLED",
                                                    "UNKNOWN",
                                                    "INVALID_ARGUMENT",
                                                    "DEADLINE_EXCEEDED",
                                                    "NOT_FOUND",
                                                    "ALREADY_EXISTS",
                                                    "PERMISSION_DENIED",
                                                    "RESOURCE_EXHAUSTED",
                                                    "FAILED_PRECONDITION",
                                                    "ABORTED",
                                                    "OUT_OF_RANGE",
                                                    "UNIMPLEMENTED",
                                                    "INTERNAL",
                                                    "UNAVAILABLE",
                                                    "DATA_LOSS",
                                                    "UNAUTHENTICATED"};
constexpr int kObjectTypes = static_cast<int>(ObjectType::kJoinableQueue) + 1;

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

const std::vector<double>& LatencyBuckets() {
  static const auto* buckets = new std::vector<double>{
      10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
      5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1,
      2.5,   5,     10,    30,     60,     120,    300};
  return *buckets;
}

const std::vector<double>& FsyncBuckets() {
  static const auto* buckets = new std::vector<double>{
      50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3, 5e-3,
      10e-3, 25e-3,  50e-3,  100e-3, 250e-3, 500e-3, 1};
  return *buckets;
}

// The series of one lock or semaphore label.
class Metrics::AcquireSeries final : public AcquireObserver {
 public:
  AcquireSeries(const AcquireFamilies& f, const std::string& label)
      : wait_(f.wait->Add({{"name", label}}, LatencyBuckets())),
        hold_(f.hold == nullptr
                  ? nullptr
                  : &f.hold->Add({{"name", label}}, LatencyBuckets())),
        acquired_(
            f.acquisitions->Add({{"name", label}, {"result", "acquired"}})),
        owner_died_(f.hold == nullptr
                        ? nullptr
                        : &f.acquisitions->Add(
                              {{"name", label}, {"result", "owner_died"}})),
        timed_out_(
            f.acquisitions->Add({{"name", label}, {"result", "timed_out"}})),
        cancelled_(
            f.acquisitions->Add({{"name", label}, {"result", "cancelled"}})),
        contended_(f.contended->Add({{"name", label}})),
        uncontended_(f.uncontended->Add({{"name", label}})) {}

  void Acquired(absl::Duration waited, bool contended,
                bool owner_died) override {
    wait_.Observe(Seconds(waited));
    (owner_died && owner_died_ != nullptr ? *owner_died_ : acquired_)
        .Increment();
    (contended ? contended_ : uncontended_).Increment();
  }
  void NotAcquired(bool timed_out) override {
    (timed_out ? timed_out_ : cancelled_).Increment();
    // A call that did not get it at once met contention.
    contended_.Increment();
  }
  void Released(absl::Duration held) override {
    if (hold_ != nullptr) hold_->Observe(Seconds(held));
  }

 private:
  Histogram& wait_;
  Histogram* const hold_;
  Counter& acquired_;
  Counter* const owner_died_;
  Counter& timed_out_;
  Counter& cancelled_;
  Counter& contended_;
  Counter& uncontended_;
};

// Gauges read from the engine at scrape time.
class Metrics::EngineCollector final : public prometheus::Collectable {
 public:
  explicit EngineCollector(Metrics& metrics) : metrics_(metrics) {}

  void Attach(const Engine* engine) {
    MutexLock lock(&mu_);
    engine_ = engine;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    MutexLock lock(&mu_);
    if (engine_ == nullptr) return {};
    std::array<int64_t, kObjectTypes> objects{};
    // Per label: waiters, and locks held or semaphore units free.
    absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> locks;
    absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> semaphores;
    for (const std::shared_ptr<Object>& object :
         engine_->registry().Snapshot()) {
      const int type = static_cast<int>(object->type());
      if (type >= 0 && type < kObjectTypes) ++objects[type];
      if (LockObject::Accepts(object->type())) {
        const LockObject::Load load =
            static_cast<const LockObject&>(*object).CurrentLoad();
        auto& [waiters, held] =
            locks[metrics_.Label(metrics_.locks_, object->name())];
        waiters += load.waiters;
        held += load.held ? 1 : 0;
      } else if (SemaphoreObject::Accepts(object->type())) {
        const SemaphoreObject::Load load =
            static_cast<const SemaphoreObject&>(*object).CurrentLoad();
        auto& [waiters, value] =
            semaphores[metrics_.Label(metrics_.semaphores_, object->name())];
        waiters += load.waiters;
        value += load.value;
      }
    }

    // A deque, so that a family stays put while later ones are added.
    std::deque<prometheus::MetricFamily> out;
    prometheus::MetricFamily& by_type =
        Gauges("statehub_objects", "Shared objects by type.", &out);
    for (int type = 1; type < kObjectTypes; ++type) {
      AddGauge(&by_type,
               {{"type",
                 std::string(ObjectTypeName(static_cast<ObjectType>(type)))}},
               objects[type]);
    }
    AddGauge(&Gauges("statehub_sessions", "Live client sessions.", &out), {},
             engine_->sessions().Count());
    // Read without the stream's mutex: a scrape may be a record behind.
    AddGauge(&Gauges("statehub_revision",
                     "The server-wide revision: the last change record "
                     "published (0 until something records: --data_dir, or "
                     "the first watch).",
                     &out),
             {}, static_cast<int64_t>(engine_->changes().revision()));
    const WatchHub& hub = engine_->watches();
    AddGauge(&Gauges("statehub_watches", "Watches running now.", &out), {},
             static_cast<int64_t>(hub.watches()));
    AddGauge(&Gauges("statehub_watch_history",
                     "Changes kept for watches that resume (--watch_history).",
                     &out),
             {}, static_cast<int64_t>(hub.history()));
    AddCounter(&Counters("statehub_watch_events_total",
                         "Changes queued for watches (one per watch a change "
                         "reaches).",
                         &out),
               static_cast<double>(hub.events()));
    AddCounter(&Counters("statehub_watch_overflows_total",
                         "Watches ended with WATCH_TOO_OLD because their "
                         "reader fell more than --watch_backlog changes "
                         "behind.",
                         &out),
               static_cast<double>(hub.overflows()));
    AddGauge(&Gauges("statehub_deadlocks",
                     "Cycles of waits among locks present now "
                     "(statehub-cli deadlocks lists them).",
                     &out),
             {}, engine_->registry().wait_for_graph().PresentCount());
    prometheus::MetricFamily& waiters = Gauges(
        "statehub_lock_waiters", "Acquire calls parked on the lock now.", &out);
    prometheus::MetricFamily& held =
        Gauges("statehub_lock_held",
               "Locks held now (1 or 0 for a lock with its own name).", &out);
    for (const auto& [label, load] : locks) {
      AddGauge(&waiters, {{"name", label}}, load.first);
      AddGauge(&held, {{"name", label}}, load.second);
    }
    prometheus::MetricFamily& sem_waiters =
        Gauges("statehub_semaphore_waiters",
               "Acquire calls parked on the semaphore now.", &out);
    prometheus::MetricFamily& sem_value = Gauges(
        "statehub_semaphore_value", "Units free in the semaphore now.", &out);
    for (const auto& [label, load] : semaphores) {
      AddGauge(&sem_waiters, {{"name", label}}, load.first);
      AddGauge(&sem_value, {{"name", label}}, load.second);
    }
    return {std::make_move_iterator(out.begin()),
            std::make_move_iterator(out.end())};
  }

 private:
  static prometheus::MetricFamily& Gauges(
      std::string name, std::string help,
      std::deque<prometheus::MetricFamily>* out) {
    prometheus::MetricFamily& family = out->emplace_back();
    family.name = std::move(name);
    family.help = std::move(help);
    family.type = prometheus::MetricType::Gauge;
    return family;
  }
  static prometheus::MetricFamily& Counters(
      std::string name, std::string help,
      std::deque<prometheus::MetricFamily>* out) {
    prometheus::MetricFamily& family =
        Gauges(std::move(name), std::move(help), out);
    family.type = prometheus::MetricType::Counter;
    return family;
  }
  static void AddCounter(prometheus::MetricFamily* family, double value) {
    family->metric.emplace_back().counter.value = value;
  }
  static void AddGauge(prometheus::MetricFamily* family,
                       std::vector<prometheus::ClientMetric::Label> labels,
                       int64_t value) {
    prometheus::ClientMetric& metric = family->metric.emplace_back();
    metric.label = std::move(labels);
    metric.gauge.value = static_cast<double>(value);
  }

  Metrics& metrics_;
  mutable Mutex mu_;
  const Engine* engine_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// The durability series: those of durability_registry_ and the log's
// health, read at scrape time; nothing while no Durability is attached.
class Metrics::DurabilityCollector final : public prometheus::Collectable {
 public:
  explicit DurabilityCollector(std::shared_ptr<prometheus::Registry> series)
      : series_(std::move(series)) {}

  void Attach(const Durability* durability) {
    MutexLock lock(&mu_);
    durability_ = durability;
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    MutexLock lock(&mu_);
    if (durability_ == nullptr) return {};
    std::vector<prometheus::MetricFamily> out = series_->Collect();
    prometheus::MetricFamily& healthy = out.emplace_back();
    healthy.name = "statehub_log_healthy";
    healthy.help =
        "1 while the log takes changes; 0 while a write or fdatasync fails "
        "(disk full, I/O error): changes are then refused and the server "
        "logs why.";
    healthy.type = prometheus::MetricType::Gauge;
    healthy.metric.emplace_back().gauge.value =
        durability_->health().ok() ? 1 : 0;
    return out;
  }

 private:
  const std::shared_ptr<prometheus::Registry> series_;
  mutable Mutex mu_;
  const Durability* durability_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// The series of one rpc method over one transport. Counters per status
// code are created on first use of that code and kept.
struct Metrics::MethodSeries {
  std::string method;
  std::string transport;
  Histogram* duration = nullptr;
  std::array<std::atomic<Counter*>, kCodeNames.size()> requests{};
};

Metrics::Metrics(MetricsOptions options)
    : options_(options),
      registry_(std::make_shared<prometheus::Registry>()),
      rpc_requests_(BuildCounter()
                        .Name("statehub_rpc_requests_total")
                        .Help("Finished rpcs by method and status code.")
                        .Register(*registry_)),
      rpc_duration_(BuildHistogram()
                        .Name("statehub_rpc_duration_seconds")
                        .Help("Rpc latency in the server, from arrival to "
                              "status; blocking calls include their wait.")
                        .Register(*registry_)),
      lease_expiries_(BuildCounter()
                          .Name("statehub_lease_expiries_total")
                          .Help("Sessions ended because their lease ran out "
                                "(client gone without a goodbye).")
                          .Register(*registry_)
                          .Add({})),
      deadlocks_(BuildCounter()
                     .Name("statehub_deadlocks_total")
                     .Help("Cycles of waits among locks found (each counted "
                           "once, when it closed), failed or not.")
                     .Register(*registry_)
                     .Add({})),
      durability_registry_(std::make_shared<prometheus::Registry>()),
      log_bytes_(BuildCounter()
                     .Name("statehub_log_bytes_total")
                     .Help("Bytes of change records written to the "
                           "log's segments (frames, not segment headers).")
                     .Register(*durability_registry_)
                     .Add({})),
      log_fsync_(BuildHistogram()
                     .Name("statehub_log_fsync_seconds")
                     .Help("Latency of each fdatasync of the log: per group "
                           "of replies under --fsync=always, about once a "
                           "second under everysec, at rolls and shutdown.")
                     .Register(*durability_registry_)
                     .Add({}, FsyncBuckets())),
      recovery_records_(prometheus::BuildGauge()
                            .Name("statehub_recovery_records")
                            .Help("Change records replayed at start, by "
                                  "source: the snapshot's and the log's "
                                  "after it.")
                            .Register(*durability_registry_)),
      recovery_snapshot_records_(
          recovery_records_.Add({{"source", "snapshot"}})),
      recovery_log_records_(recovery_records_.Add({{"source", "log"}})),
      recovery_seconds_(prometheus::BuildGauge()
                            .Name("statehub_recovery_seconds")
                            .Help("Time recovery took at start.")
                            .Register(*durability_registry_)
                            .Add({})),
      recovery_bytes_(prometheus::BuildGauge()
                          .Name("statehub_recovery_bytes")
                          .Help("Bytes of snapshot and log read at start.")
                          .Register(*durability_registry_)
                          .Add({})),
      snapshot_seconds_(prometheus::BuildGauge()
                            .Name("statehub_snapshot_seconds")
                            .Help("Time the last snapshot took; 0 before "
                                  "the first.")
                            .Register(*durability_registry_)
                            .Add({})),
      snapshot_bytes_(prometheus::BuildGauge()
                          .Name("statehub_snapshot_bytes")
                          .Help("Size of the last snapshot's file; 0 before "
                                "the first.")
                          .Register(*durability_registry_)
                          .Add({})),
      durability_collector_(
          std::make_shared<DurabilityCollector>(durability_registry_)),
      collector_(std::make_shared<EngineCollector>(*this)) {
  {
    MutexLock lock(&mu_);
    locks_.wait = &BuildHistogram()
                       .Name("statehub_lock_wait_seconds")
                       .Help(
                           "Time acquire calls waited for the lock, from "
                           "the call's arrival to the grant.")
                       .Register(*registry_);
    locks_.hold = &BuildHistogram()
                       .Name("statehub_lock_hold_seconds")
                       .Help(
                           "Time the lock was held, from grant to release "
                           "(or condition wait, or the holder's session "
                           "end).")
                       .Register(*registry_);
    locks_.acquisitions =
        &BuildCounter()
             .Name("statehub_lock_acquisitions_total")
             .Help(
                 "Acquire calls by result: acquired, owner_died (acquired "
                 "after the holder's session ended), timed_out (including "
                 "failed non-blocking tries), cancelled (call cancelled, "
                 "session ended, lock deleted).")
             .Register(*registry_);
    locks_.contended = &BuildCounter()
                            .Name("statehub_lock_contended_acquisitions_total")
                            .Help("Acquire calls that found the lock taken.")
                            .Register(*registry_);
    locks_.uncontended =
        &BuildCounter()
             .Name("statehub_lock_uncontended_acquisitions_total")
             .Help("Acquire calls that took a free lock at once.")
             .Register(*registry_);
    semaphores_.wait = &BuildHistogram()
                            .Name("statehub_semaphore_wait_seconds")
                            .Help(
                                "Time acquire calls waited for a unit, "
                                "from the call's arrival to the grant.")
                            .Register(*registry_);
    semaphores_.acquisitions =
        &BuildCounter()
             .Name("statehub_semaphore_acquisitions_total")
             .Help(
                 "Acquire calls by result: acquired, timed_out (including "
                 "failed non-blocking tries), cancelled.")
             .Register(*registry_);
    semaphores_.contended =
        &BuildCounter()
             .Name("statehub_semaphore_contended_acquisitions_total")
             .Help("Acquire calls that found no unit free.")
             .Register(*registry_);
    semaphores_.uncontended =
        &BuildCounter()
             .Name("statehub_semaphore_uncontended_acquisitions_total")
             .Help("Acquire calls that took a free unit at once.")
             .Register(*registry_);
  }
  prometheus::Family<Gauge>& parked =
      prometheus::BuildGauge()
          .Name("statehub_parked_calls")
          .Help("Blocking calls parked on the server now, by object type.")
          .Register(*registry_);
  parked_.resize(kObjectTypes, nullptr);
  for (ObjectType type :
       {ObjectType::kLock, ObjectType::kRLock, ObjectType::kCondition,
        ObjectType::kSemaphore, ObjectType::kBoundedSemaphore,
        ObjectType::kEvent, ObjectType::kBarrier, ObjectType::kQueue,
        ObjectType::kJoinableQueue}) {
    parked_[static_cast<int>(type)] =
        &parked.Add({{"type", std::string(ObjectTypeName(type))}});
  }
}

void Metrics::ServeOn(prometheus::Exposer& exposer) {
  exposer.RegisterCollectable(registry_);
  exposer.RegisterCollectable(collector_);
  exposer.RegisterCollectable(durability_collector_);
}

Metrics::~Metrics() {
  collector_->Attach(nullptr);
  durability_collector_->Attach(nullptr);
}

void Metrics::AttachEngine(const Engine* engine) { collector_->Attach(engine); }

void Metrics::AttachDurability(const Durability* durability) {
  if (durability != nullptr) {
    const RecoveryStats& r = durability->recovered();
    recovery_snapshot_records_.Set(static_cast<double>(r.snapshot_records));
    recovery_log_records_.Set(static_cast<double>(r.log_records));
    recovery_seconds_.Set(Seconds(r.took));
    recovery_bytes_.Set(static_cast<double>(r.bytes));
  }
  durability_collector_->Attach(durability);
}

void Metrics::SnapshotTaken(absl::Duration took, int64_t bytes) {
  snapshot_seconds_.Set(Seconds(took));
  snapshot_bytes_.Set(static_cast<double>(bytes));
}

void Metrics::Synced(absl::Duration latency) {
  log_fsync_.Observe(Seconds(latency));
}

void Metrics::Wrote(int64_t bytes) {
  log_bytes_.Increment(static_cast<double>(bytes));
}

void Metrics::ObserveMethods(const std::vector<std::string>& methods) {
  std::vector<std::unique_ptr<MethodSeries>> series;
  for (const std::string& method : methods) {
    for (int t = 0; t < handlers::kTransportCount; ++t) {
      auto one = std::make_unique<MethodSeries>();
      one->method = method;
      one->transport = std::string(
          handlers::TransportName(static_cast<handlers::Transport>(t)));
      one->duration = &rpc_duration_.Add(
          {{"method", method}, {"transport", one->transport}},
          LatencyBuckets());
      series.push_back(std::move(one));
    }
  }
  methods_ = std::move(series);
}

void Metrics::RpcDone(int method_index, handlers::Transport transport,
                      absl::StatusCode code, double seconds) {
  const size_t at =
      static_cast<size_t>(method_index) * handlers::kTransportCount +
      static_cast<size_t>(transport);
  if (at >= methods_.size()) return;
  MethodSeries& series = *methods_[at];
  series.duration->Observe(seconds);
  size_t i = static_cast<size_t>(code);
  if (i >= kCodeNames.size())
    i = static_cast<size_t>(absl::StatusCode::kUnknown);
  Counter* c = series.requests[i].load(std::memory_order_acquire);
  if (c == nullptr) {
    MutexLock lock(&mu_);
    c = series.requests[i].load(std::memory_order_relaxed);
    if (c == nullptr) {
      c = &rpc_requests_.Add({{"method", series.method},
                              {"transport", series.transport},
                              {"code", kCodeNames[i]}});
      series.requests[i].store(c, std::memory_order_release);
    }
  }
  c->Increment();
}

void Metrics::LeaseExpired(int64_t n) {
  lease_expiries_.Increment(static_cast<double>(n));
}

void Metrics::DeadlockFound() { deadlocks_.Increment(); }

std::string Metrics::Label(const AcquireFamilies& kind,
                           const std::string& name) {
  if (absl::StartsWith(name, kAnonymousPrefix)) return kAnonymousLabel;
  MutexLock lock(&mu_);
  return kind.series.contains(name) ? name : kOtherLabel;
}

std::shared_ptr<AcquireObserver> Metrics::SeriesFor(AcquireFamilies& kind,
                                                    const std::string& name) {
  std::string label = kAnonymousLabel;
  if (!absl::StartsWith(name, kAnonymousPrefix)) label = name;
  MutexLock lock(&mu_);
  auto it = kind.series.find(label);
  if (it != kind.series.end()) return it->second;
  // The two fold labels do not count against the cap.
  const int named = static_cast<int>(kind.series.size()) -
                    static_cast<int>(kind.series.contains(kAnonymousLabel)) -
                    static_cast<int>(kind.series.contains(kOtherLabel));
  if (label != kAnonymousLabel && named >= options_.max_lock_names) {
    label = kOtherLabel;
    it = kind.series.find(label);
    if (it != kind.series.end()) return it->second;
  }
  auto series = std::make_shared<AcquireSeries>(kind, label);
  kind.series.emplace(label, series);
  return series;
}

std::shared_ptr<AcquireObserver> Metrics::ForLock(const std::string& name) {
  return SeriesFor(locks_, name);
}

std::shared_ptr<AcquireObserver> Metrics::ForSemaphore(
    const std::string& name) {
  return SeriesFor(semaphores_, name);
}

void Metrics::Parked(ObjectType type, int delta) {
  const int i = static_cast<int>(type);
  if (i < 0 || i >= kObjectTypes || parked_[i] == nullptr) return;
  parked_[i]->Increment(delta);
}

}  // namespace statehub::metrics
