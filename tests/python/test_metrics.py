"""statehub.enable_metrics(): client-side histograms and counters in a
prometheus_client registry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import statehub
from prometheus_client import CollectorRegistry
from statehub import _metrics
from statehub._connection import connection_for

from conftest import RunningServer, wait_until


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    statehub.enable_metrics(registry)
    yield registry
    statehub.disable_metrics()


def test_metrics_are_off_unless_enabled(manager: statehub.SyncManager) -> None:
    assert _metrics.current is None
    manager.dict()["a"] = 1  # the funnel works without prometheus_client state


def test_call_latency_and_lock_wait_histograms(
    manager: statehub.SyncManager, registry: CollectorRegistry
) -> None:
    d = manager.dict()
    for i in range(3):
        d[i] = i
    assert d[0] == 0
    lock = manager.Lock()
    with lock:
        assert lock.acquire(timeout=0.05) is False
    statehub.enable_metrics(registry)  # again, same registry: no change

    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    calls = "statehub_client_call_duration_seconds_count"
    assert sample(calls, rpc="Dicts/Set") == 3
    assert sample(calls, rpc="Dicts/Get") == 1
    assert sample(calls, rpc="Locks/Acquire") == 2
    assert sample(calls, rpc="Locks/Release") == 1
    waits = "statehub_client_lock_wait_seconds"
    assert sample(f"{waits}_count", type="lock", result="acquired") == 1
    assert sample(f"{waits}_count", type="lock", result="timeout") == 1
    assert sample(f"{waits}_sum", type="lock", result="timeout") >= 0.05 - 0.005


def test_reconnects_are_counted(
    grpc_manager: statehub.SyncManager, registry: CollectorRegistry
) -> None:
    d = grpc_manager.dict()
    d["a"] = 1
    assert grpc_manager.address is not None
    # Break the session stream as a network fault would: it reconnects and
    # resumes the same session within the lease.
    connection_for(grpc_manager.address)._session._cancel()  # type: ignore[attr-defined]
    name = "statehub_client_reconnects_total"
    assert wait_until(
        lambda: (registry.get_sample_value(name, {"session": "resumed"}) or 0) >= 1
    )
    assert d["a"] == 1


def test_lane_reconnects_over_tcp_are_counted(
    server: RunningServer, registry: CollectorRegistry
) -> None:
    m = statehub.Manager(server.tcp)
    try:
        d = m.dict(a=1)
        conn = connection_for(m.address or "")
        # The connection that owns the session breaks (over TCP that ends
        # no session): the keepalive notices and resumes it.
        conn.session.primary.shutdown()  # type: ignore[attr-defined]
        name = "statehub_client_reconnects_total"
        assert wait_until(
            lambda: (registry.get_sample_value(name, {"session": "resumed"}) or 0) >= 1
        )
        assert d["a"] == 1
    finally:
        m.shutdown()


def test_metrics_can_be_disabled(manager: statehub.SyncManager) -> None:
    registry = CollectorRegistry()
    statehub.enable_metrics(registry)
    statehub.disable_metrics()
    statehub.disable_metrics()  # idempotent
    manager.dict()["a"] = 1
    assert (
        registry.get_sample_value(
            "statehub_client_call_duration_seconds_count", {"rpc": "Dicts/Set"}
        )
        is None
    )


def test_near_cache_counters_are_scraped(
    manager: statehub.SyncManager, registry: CollectorRegistry
) -> None:
    d = manager.named.dict("metrics-cached", {"a": 1}, cache=True)
    assert wait_until(lambda: (d["a"], d.cache_info().size)[1] == 1, 10)
    for _ in range(10):
        assert d["a"] == 1
    d["a"] = 2  # an invalidation
    info = d.cache_info()

    def sample(name: str) -> float:
        value = registry.get_sample_value(name, {"object": "metrics-cached"})
        return 0.0 if value is None else value

    assert sample("statehub_client_cache_hits_total") >= info.hits >= 10
    assert sample("statehub_client_cache_misses_total") >= 1
    assert sample("statehub_client_cache_invalidations_total") >= 1
    assert sample("statehub_client_cache_entries") <= info.max_entries
