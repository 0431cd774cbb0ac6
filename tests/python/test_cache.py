"""The near cache (``m.dict(cache=True)``) against the real server: hits,
invalidations pushed by the server when other processes write, a
process's own writes, races of writes, reads and a server restart, and
fork (docs/watches.md, "The near cache")."""

from __future__ import annotations

import multiprocessing
import random
import tempfile
import threading
import time
import uuid
from typing import Any

import pytest
import statehub
from statehub._connection import close_all, connections

from conftest import RunningServer, start_server, wait_until


def _name() -> str:
    return f"cached-{uuid.uuid4().hex[:8]}"


def _set(address: str, name: str, key: str, value: Any) -> None:
    with statehub.Manager(address) as m:
        m.named.dict(name)[key] = value


def _in_a_spawned_child(target: Any, *args: Any) -> None:
    """Runs target(*args) in a spawned process, to its end."""
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join(30)
    assert child.exitcode == 0


def _live(d: Any) -> None:
    """Waits until the cache's watch runs (before it, nothing is kept)."""
    d["_warm"] = 0
    assert wait_until(lambda: (d.get("_warm"), d.cache_info().size > 0)[1], 10)


def test_reads_are_served_from_memory_after_the_first(
    server: RunningServer, manager: statehub.SyncManager
) -> None:
    d = manager.named.dict(_name(), {"a": 1, "b": [1, 2]}, cache=True)
    _live(d)
    assert d["a"] == 1
    before = d.cache_info()
    assert [d["a"] for _ in range(100)] == [1] * 100
    assert d.get("missing", "dflt") == "dflt"
    assert "missing" not in d
    assert "a" in d
    after = d.cache_info()
    assert after.hits >= before.hits + 100
    # A container comes back as a copy: changing it changes nothing shared.
    b = d["b"]
    b.append(3)
    assert d["b"] == [1, 2]
    with pytest.raises(KeyError):
        d["missing"]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_another_processs_write_is_seen(
    server: RunningServer, manager: statehub.SyncManager, method: str
) -> None:
    name = _name()
    d = manager.named.dict(name, {"a": 1}, cache=True)
    _live(d)
    assert d["a"] == 1
    child = multiprocessing.get_context(method).Process(
        target=_set, args=(server.unix, name, "a", 2)
    )
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert wait_until(lambda: d["a"] == 2, 5)
    assert d.cache_info().invalidations > 0


def test_a_process_reads_its_own_writes_at_once(manager: statehub.SyncManager) -> None:
    d = manager.dict(cache=True)
    _live(d)
    rng = random.Random(7)
    model: dict[str, int] = {}
    for i in range(500):
        key = f"k{rng.randrange(5)}"
        op = rng.random()
        if op < 0.4:
            d[key] = i
            model[key] = i
        elif op < 0.5:
            d.pop(key, None)
            model.pop(key, None)
        elif op < 0.55:
            d.update({key: -i})
            model[key] = -i
        elif op < 0.6:
            assert d.increment("n", 1) == model.get("n", 0) + 1
            model["n"] = model.get("n", 0) + 1
        assert d.get(key) == model.get(key), (i, key)
        assert (key in d) == (key in model)


def _writer(address: str, name: str, seed: int, stop: Any) -> None:
    rng = random.Random(seed)
    with statehub.Manager(address) as m:
        d = m.named.dict(name)
        i = 0
        while not stop.is_set():
            i += 1
            key = f"k{rng.randrange(8)}"
            op = rng.random()
            try:
                if op < 0.6:
                    d[key] = (seed, i)
                elif op < 0.8:
                    d.pop(key, None)
                elif op < 0.95:
                    d.update({key: [seed, i], f"k{rng.randrange(8)}": i})
                else:
                    d.clear()
            except statehub.StatehubError:
                time.sleep(0.05)  # the server is restarting: a pause


def test_no_stale_read_survives_races_and_a_server_restart() -> None:
    data_dir = tempfile.mkdtemp(prefix="statehub-cache-data-")
    running = start_server(f"--data_dir={data_dir}")
    name = _name()
    try:
        with statehub.Manager(running.unix) as m:
            d = m.named.dict(name, cache=True)
            _live(d)
            ctx = multiprocessing.get_context("fork")
            stop_writing = ctx.Event()
            writers = [
                ctx.Process(
                    target=_writer, args=(running.unix, name, seed, stop_writing)
                )
                for seed in range(3)
            ]
            for w in writers:
                w.start()
            stop = threading.Event()
            failures: list[BaseException] = []

            def read() -> None:
                rng = random.Random(threading.get_ident())
                while not stop.is_set():
                    try:
                        d.get(f"k{rng.randrange(8)}")
                    except statehub.StatehubError:
                        time.sleep(0.01)
                    except BaseException as e:
                        failures.append(e)
                        return

            readers = [threading.Thread(target=read) for _ in range(2)]
            for r in readers:
                r.start()
            time.sleep(0.5)
            running.kill()
            running = start_server(
                f"--data_dir={data_dir}", directory=running.directory
            )
            time.sleep(1.0)
            stop_writing.set()
            for w in writers:
                w.join(120)
                assert w.exitcode == 0
            stop.set()
            for r in readers:
                r.join(30)
            assert not failures
            # Quiescence: once the last invalidations arrive, every cached
            # read agrees with the server, and stays so.
            truth = m.named.dict(name).copy()

            def agrees() -> bool:
                return all(d.get(f"k{i}") == truth.get(f"k{i}") for i in range(8))

            assert wait_until(agrees, 10)
            time.sleep(0.3)
            assert agrees()
            assert d.cache_info().hits > 0
    finally:
        close_all()
        running.stop()


def test_the_cache_is_bounded(manager: statehub.SyncManager) -> None:
    d = manager.dict({f"k{i}": i for i in range(50)}, cache=10)
    _live(d)
    for i in range(50):
        assert d[f"k{i}"] == i
    assert d.cache_info().size <= 10
    assert d.cache_info().max_entries == 10


def test_bad_cache_options_are_refused(manager: statehub.SyncManager) -> None:
    for bad in (0, -1, "yes", 2.5):
        with pytest.raises(ValueError, match="cache"):
            manager.dict(cache=bad)
    # A dict with a key "cache" comes from a mapping.
    assert manager.dict({"cache": 1}).copy() == {"cache": 1}


def _read_in_child(d: Any, out: Any, written: Any) -> None:
    # The parent's entries came along in memory; none may be served here,
    # and a cache of this process's own starts.
    out.put(d.cache_info().size)
    out.put(d["a"])
    _live(d)
    assert d["a"] == 1  # now kept by this process's cache
    out.put("live")
    written.wait(30)
    # The parent's write reaches this process's cache as an invalidation.
    wait_until(lambda: d["a"] == 2, 10)
    out.put(d["a"])


def test_a_forked_child_does_not_trust_its_parents_cache(
    manager: statehub.SyncManager,
) -> None:
    d = manager.named.dict(_name(), {"a": 1}, cache=True)
    _live(d)
    assert d["a"] == 1
    assert d.cache_info().size > 0
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    written = ctx.Event()
    child = ctx.Process(target=_read_in_child, args=(d, out, written))
    child.start()
    assert out.get(timeout=30) == 0
    assert out.get(timeout=30) == 1
    assert out.get(timeout=30) == "live"
    d["a"] = 2
    written.set()
    assert out.get(timeout=30) == 2
    child.join(30)
    assert child.exitcode == 0


def test_a_reply_older_than_an_invalidation_is_not_kept(
    server: RunningServer, manager: statehub.SyncManager
) -> None:
    """The race the placeholders close, made to happen: a read's reply
    (holding the old value) is processed after the invalidation of a write
    that the server made after that read."""
    name = _name()
    d = manager.named.dict(name, {"k": "old"}, cache=True)
    _live(d)
    near = d._near
    cell = near.begin("k")  # a read of "k" goes out...
    assert cell is not None
    stale = "old"  # ...and the server answers it before the write below
    _in_a_spawned_child(_set, server.unix, name, "k", "new")
    assert wait_until(lambda: not cell.valid, 5)  # its invalidation came
    near.finish("k", cell, stale)  # the old reply arrives last
    assert d["k"] == "new"
    assert d.get("k") == "new"


def _set_value(address: str, name: str, value: Any) -> None:
    with statehub.Manager(address) as m:
        m.named.Value(name).value = value


def _set_attribute(address: str, name: str, value: Any) -> None:
    with statehub.Manager(address) as m:
        m.named.Namespace(name).x = value


def test_a_cached_value(server: RunningServer, manager: statehub.SyncManager) -> None:
    name = _name()
    v = manager.named.Value(name, "i", 1, cache=True)
    assert wait_until(lambda: (v.value, v.cache_info().size)[1] == 1, 10)
    hits = v.cache_info().hits
    assert [v.value for _ in range(50)] == [1] * 50
    assert v.cache_info().hits >= hits + 50
    v.value = 2  # read-your-writes
    assert v.value == 2
    assert v.increment(3) == 5
    assert v.get() == 5
    _in_a_spawned_child(_set_value, server.unix, name, 9)
    assert wait_until(lambda: v.value == 9, 5)


def test_a_cached_namespace(
    server: RunningServer, manager: statehub.SyncManager
) -> None:
    name = _name()
    ns = statehub.cached(manager.named.Namespace(name, x=1))
    assert statehub.cached(ns) is ns
    assert wait_until(lambda: (ns.x, ns.cache_info().size)[1] == 1, 10)
    with pytest.raises(AttributeError):
        _ = ns.missing
    with pytest.raises(AttributeError):
        _ = ns.missing  # from memory now, with the server's message
    ns.y = 2
    assert ns.y == 2
    del ns.y
    assert not hasattr(ns, "y")
    ns._local_only = 3  # the proxy's own attribute, never sent
    assert ns._local_only == 3
    _in_a_spawned_child(_set_attribute, server.unix, name, 7)
    assert wait_until(lambda: ns.x == 7, 5)


def test_only_dicts_values_and_namespaces_are_cached(
    manager: statehub.SyncManager,
) -> None:
    with pytest.raises(TypeError, match="ListProxy"):
        statehub.cached(manager.list())


def test_closing_the_connection_stops_the_watch_until_the_next_read(
    server: RunningServer,
) -> None:
    """close_all() (or a program's last manager shutting down) leaves no
    connection behind: the cache's watch does not open a new one; the next
    read does, and the cache follows the dict again."""
    close_all()
    m = statehub.Manager(server.unix)
    d = m.named.dict(_name(), {"a": 1}, cache=True)
    _live(d)
    close_all()
    assert wait_until(lambda: not d._near._running, 10)
    assert connections() == []
    assert d["a"] == 1  # a new connection, and the watch starts again
    _live(d)
    assert d["a"] == 1 and d.cache_info().size > 0
    m.shutdown()
    close_all()


def _delete(address: str, name: str) -> None:
    with statehub.Manager(address) as m:
        m.named.delete(name)


def test_a_cached_key_goes_with_its_dict(
    server: RunningServer, manager: statehub.SyncManager
) -> None:
    name = _name()
    d = manager.named.dict(name, {"a": 1}, cache=True)
    _live(d)
    assert d["a"] == 1
    _in_a_spawned_child(_delete, server.unix, name)
    # The deletion drops every kept entry: the reads go to the server, which
    # says the dict is gone.
    assert wait_until(lambda: d.cache_info().size == 0, 10)
    with pytest.raises(statehub.ObjectNotFound, match=name):
        d["a"]
    assert d.cache_info().size == 0
    # A new dict under the name is followed as the watch follows the name.
    manager.named.dict(name, {"a": 2})
    assert d["a"] == 2
