"""Client-side metrics through prometheus_client, off unless enabled.

:func:`enable_metrics` (exported as ``statehub.enable_metrics``) registers
three metrics in a prometheus_client registry; from then on the call funnel,
the session stream and the acquiring proxies of this process report to them:

``statehub_client_call_duration_seconds`` (histogram, label ``rpc``)
    Each rpc as this client sees it, e.g. ``rpc="Dicts/Get"``: the round
    trip including, for blocking calls, the time parked on the server.
``statehub_client_lock_wait_seconds`` (histogram, labels ``type``, ``result``)
    How long a blocking acquire took, by object type (``lock``, ``rlock``,
    ``semaphore``, ``bounded_semaphore``) and result (``acquired`` or
    ``timeout``).
``statehub_client_cache_hits_total``, ``..._misses_total``,
``..._invalidations_total`` (counters) and ``statehub_client_cache_entries``
(gauge), label ``object``
    The near caches of this process (statehub._cache), read when scraped:
    reads served from memory, reads that went to the server, entries
    dropped because the server said they changed, and entries kept.
``statehub_client_reconnects_total`` (counter, label ``session``)
    Session streams re-established after breaking: ``resumed`` kept the
    session, ``new`` got a new one (the lease had passed). The planned
    reconnect after a fork is not counted.

prometheus_client is an optional dependency (``pip install
'statehub[metrics]'``). With metrics off, the funnel's only cost is one
module attribute read per call.

Example::

    import prometheus_client, statehub

    statehub.enable_metrics()              # the default REGISTRY
    prometheus_client.start_http_server(9100)

Metrics are per process: a child started by spawn or forkserver must call
:func:`enable_metrics` itself (a forked child inherits the parent's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["disable_metrics", "enable_metrics"]

_CALL_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


#: Sources of near-cache counters: each returns (object name, hits,
#: misses, invalidations, entries) per cache (statehub._cache adds one).
cache_counters: list[Callable[[], Iterable[tuple[str, int, int, int, int]]]] = []


class _CacheCollector:
    """Reads the near caches' counters at scrape time, so that a cache hit
    costs no call into prometheus_client."""

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        totals: dict[str, list[int]] = {}
        for source in cache_counters:
            for name, *counts in source():
                sums = totals.setdefault(name, [0, 0, 0, 0])
                for i, n in enumerate(counts):
                    sums[i] += n
        families: list[Any] = [
            CounterMetricFamily(
                "statehub_client_cache_hits",
                "Reads served from a near cache",
                labels=["object"],
            ),
            CounterMetricFamily(
                "statehub_client_cache_misses",
                "Reads of a near-cached object that went to the server",
                labels=["object"],
            ),
            CounterMetricFamily(
                "statehub_client_cache_invalidations",
                "Near-cache entries dropped because the server said they changed",
                labels=["object"],
            ),
            GaugeMetricFamily(
                "statehub_client_cache_entries",
                "Entries a near cache keeps",
                labels=["object"],
            ),
        ]
        for name, counts in sorted(totals.items()):
            for family, n in zip(families, counts, strict=True):
                family.add_metric([name], n)
        yield from families


class Metrics:
    """The metric handles of one registry. Label children are cached so a
    call looks nothing up in prometheus_client after its first use."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Histogram

        self.registry = registry
        self._calls = Histogram(
            "statehub_client_call_duration_seconds",
            "statehub rpcs as the client sees them (blocking calls include "
            "their wait), by rpc",
            ["rpc"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self._lock_waits = Histogram(
            "statehub_client_lock_wait_seconds",
            "How long blocking acquires of locks and semaphores took, by "
            "object type and result",
            ["type", "result"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self._reconnects = Counter(
            "statehub_client_reconnects_total",
            "Session streams re-established after breaking, by whether the "
            "session was resumed or new",
            ["session"],
            registry=registry,
        )
        self._children: dict[tuple[str, ...], Any] = {}
        self._caches = _CacheCollector()
        registry.register(self._caches)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            self._children[key] = child
        return child

    def observe_call(self, service: str, method: str, seconds: float) -> None:
        self._child(self._calls, f"{service}/{method}").observe(seconds)

    def observe_lock_wait(self, type_name: str, acquired: bool, seconds: float) -> None:
        result = "acquired" if acquired else "timeout"
        self._child(self._lock_waits, type_name, result).observe(seconds)

    def reconnected(self, *, resumed: bool) -> None:
        self._child(self._reconnects, "resumed" if resumed else "new").inc()

    def unregister(self) -> None:
        for metric in (self._calls, self._lock_waits, self._reconnects, self._caches):
            self.registry.unregister(metric)


#: The enabled metrics of this process, or None (read by the funnel).
current: Metrics | None = None
_lock = threading.Lock()


def enable_metrics(registry: Any = None) -> None:
    """Reports this process's statehub client metrics to ``registry`` (a
    ``prometheus_client.CollectorRegistry``; default: prometheus_client's
    global ``REGISTRY``). Calling it again with the same registry does
    nothing; with another, the metrics move there.

    Raises ImportError if prometheus_client is not installed (``pip install
    'statehub[metrics]'``).
    """
    global current
    try:
        import prometheus_client
    except ImportError as e:
        raise ImportError(
            "statehub.enable_metrics() needs prometheus_client: "
            "pip install 'statehub[metrics]'"
        ) from e
    target = prometheus_client.REGISTRY if registry is None else registry
    with _lock:
        if current is not None:
            if current.registry is target:
                return
            current.unregister()
            current = None
        current = Metrics(target)


def disable_metrics() -> None:
    """Stops reporting and unregisters the metrics. Idempotent."""
    global current
    with _lock:
        if current is not None:
            current.unregister()
            current = None
