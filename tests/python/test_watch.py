"""Watches against the real server: proxy.watch() and manager.watch(), on
the lane and on gRPC; their order, their start, their resumption across a
restart, and what ends them (docs/watches.md)."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import statehub
from statehub._connection import close_all

from conftest import RunningServer, start_server, wait_until


@pytest.fixture(params=["lane", "grpc"])
def any_manager(
    request: pytest.FixtureRequest, server: RunningServer
) -> Iterator[statehub.SyncManager]:
    """A manager on the shared server, over each transport."""
    close_all()
    m = statehub.Manager(server.unix, transport=request.param)
    yield m
    m.shutdown()
    close_all()


def drain(watch: statehub.Watch, quiet: float = 0.3) -> list[statehub.WatchEvent]:
    """The events until none comes for ``quiet`` seconds."""
    events = []
    while (event := watch.next(quiet)) is not None:
        events.append(event)
    return events


def test_a_dict_watch_sees_each_change_in_order(
    any_manager: statehub.SyncManager,
) -> None:
    d = any_manager.dict()
    with d.watch() as watch:
        d["a"] = 1
        d.update({"b": 2, "c": 3})
        del d["a"]
        d.clear()
        events = drain(watch)
    assert [(e.op, e.key, e.value) for e in events] == [
        ("set", "a", 1),
        ("set", "b", 2),
        ("set", "c", 3),
        ("delete", "a", None),
        ("clear", None, None),
    ]
    revisions = [e.revision for e in events]
    assert revisions == sorted(revisions)
    assert revisions[1] == revisions[2]  # one update(), one change
    assert all(str(os.getpid()) in e.session for e in events)
    assert watch.revision >= revisions[-1]


def test_every_type_reports_what_changed(manager: statehub.SyncManager) -> None:
    items = manager.list([3, 1])
    lock = manager.Lock()
    q = manager.Queue()
    v = manager.Value("i", 0)
    with items.watch() as lw, lock.watch() as kw, q.watch() as qw, v.watch() as vw:
        items.append(2)
        items[0] = 9
        del items[0]
        items.reverse()
        lock.acquire()
        lock.release()
        q.put("job")
        q.get()
        v.value = 5
        assert [(e.op, e.key, e.value, e.removed) for e in drain(lw)] == [
            ("insert", 2, [2], 0),
            ("set", 0, 9, 0),
            ("remove", 0, None, 1),
            ("splice", 0, [2, 1], 2),
        ]
        acquire, release = drain(kw)
        assert (acquire.op, release.op) == ("acquire", "release")
        assert str(os.getpid()) in acquire.value  # the holder's label
        # Manager's Queue is joinable: a put adds an unfinished task.
        assert [(e.op, e.value) for e in drain(qw)] == [
            ("put", "job"),
            ("tasks", 1),
            ("get", None),
        ]
        assert [(e.op, e.value) for e in drain(vw)] == [("set", 5)]


def _write_keys(address: str, name: str, count: int) -> None:
    with statehub.Manager(address) as m:
        d = m.named.dict(name)
        for i in range(count):
            d[f"k{i}"] = i


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_initial_contents_and_events_meet_with_no_gap_and_no_repeat(
    server: RunningServer, manager: statehub.SyncManager, method: str
) -> None:
    name = f"watch-race-{method}"
    d = manager.named.dict(name)
    d["before"] = 0
    writer = multiprocessing.get_context(method).Process(
        target=_write_keys, args=(server.unix, name, 400)
    )
    writer.start()
    # Starts while the other process writes: every key is in exactly one of
    # the initial contents and the events.
    assert wait_until(lambda: len(d) > 20)
    with d.watch(initial=True) as watch:
        writer.join(60)
        assert writer.exitcode == 0
        events = drain(watch)
    initial = set(watch.initial)
    seen = [e.key for e in events if e.op == "set"]
    assert "before" in initial
    assert not initial & set(seen)
    assert len(seen) == len(set(seen))
    assert initial | set(seen) == set(d.keys())
    assert all(e.revision > watch.start_revision for e in events)


def test_a_prefix_watch_sees_names_created_and_deleted_under_it(
    any_manager: statehub.SyncManager,
) -> None:
    named = any_manager.named
    top = f"wcfg-{uuid.uuid4().hex[:8]}"
    named.dict(f"{top}/a")
    with any_manager.watch(f"{top}/", initial=True) as watch:
        assert watch.initial == {f"{top}/a": "dict"}
        named.list(f"{top}/b")
        named.dict(f"{top}-other")
        named.delete(f"{top}/a")
        events = drain(watch)
    assert [(e.op, e.object, e.value) for e in events] == [
        ("created", f"{top}/b", "list"),
        ("deleted", f"{top}/a", None),
    ]


def test_a_watch_resumes_after_a_revision(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    with d.watch() as first:
        d["a"] = 1
        assert first.next(5).key == "a"
        stopped_at = first.revision
    d["b"] = 2
    d["c"] = 3
    with d.watch(since=stopped_at) as resumed:
        assert [e.key for e in drain(resumed)] == ["b", "c"]


def test_a_resume_from_further_back_than_the_server_keeps_says_so() -> None:
    running = start_server("--watch_history=5")
    try:
        with statehub.Manager(running.unix) as m:
            d = m.dict()
            with d.watch() as watch:
                d["x"] = 0
                assert watch.next(5) is not None
                old = watch.revision
            for i in range(20):
                d["x"] = i
            with pytest.raises(statehub.WatchTooOld) as raised:
                d.watch(since=old)
            assert raised.value.revision >= old + 20
            assert raised.value.oldest_revision > old
            assert "no longer retained" in str(raised.value)
            # Starting over from the current state always works.
            with d.watch(initial=True) as again:
                assert again.initial == {"x": 19}
    finally:
        close_all()
        running.stop()


def test_a_watcher_that_stops_reading_is_ended_and_may_start_over() -> None:
    running = start_server("--watch_backlog=20")
    try:
        with statehub.Manager(running.unix) as m:
            d = m.dict()
            watch = d.watch()
            block = {f"key-{i}": "x" * 200 for i in range(1000)}
            for _ in range(300):  # about 60 MB of events nobody reads
                d.update(block)
            with pytest.raises(statehub.WatchTooOld, match="behind"):
                for _ in watch:
                    pass
            watch.close()
            # The server is fine, and a new watch starts from the state.
            with d.watch(initial=True) as fresh:
                assert len(fresh.initial) == 1000
    finally:
        close_all()
        running.stop()


def test_bad_watches_get_clear_errors(manager: statehub.SyncManager) -> None:
    with pytest.raises(statehub.ObjectNotFound, match="no-such-dict"):
        manager.watch(name="no-such-dict")
    with pytest.raises(ValueError, match="name"):
        manager.watch("bad prefix!")
    d = manager.dict()
    with pytest.raises(ValueError, match="after the server's revision"):
        d.watch(since=2**62)
    with pytest.raises(ValueError, match="since"):
        d.watch(since=-1)
    with pytest.raises(ValueError, match="initial"):
        d.watch(since=0, initial=True)


def test_close_from_another_thread_ends_a_blocked_iteration(
    any_manager: statehub.SyncManager,
) -> None:
    d = any_manager.dict()
    watch = d.watch()
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            for _ in watch:
                pass
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=read)
    reader.start()
    threading.Event().wait(0.2)
    watch.close()
    reader.join(10)
    assert not reader.is_alive()
    assert isinstance(outcome[0], ValueError)


def test_a_watch_rides_through_a_server_restart_on_its_data_dir() -> None:
    data_dir = tempfile.mkdtemp(prefix="statehub-watch-data-")
    running = start_server(f"--data_dir={data_dir}")
    try:
        with statehub.Manager(running.unix) as m:
            d = m.named.dict("restart-watched")
            watch = d.watch()
            for i in range(5):
                d[f"before{i}"] = i
            assert [e.key for e in drain(watch)] == [f"before{i}" for i in range(5)]
            d["unseen"] = 1  # logged, not yet read by the watcher
            running.kill()
            running = start_server(
                f"--data_dir={data_dir}", directory=running.directory
            )
            d["after"] = 2  # the client rides through the restart too
            keys = [e.key for e in drain(watch, quiet=2.0)]
            assert keys == ["unseen", "after"]
            watch.close()
    finally:
        close_all()
        running.stop()


def _watch_forever(address: str, name: str, started: Any, cached: bool) -> None:
    with statehub.Manager(address) as m:
        if cached:  # a near cache watches too
            d = m.named.dict(name, cache=True)
            while d.cache_info().size == 0:
                d.get("x")
                time.sleep(0.01)
            started.set()
            while True:
                d.get("x")
                time.sleep(0.001)
        watch = m.named.dict(name).watch()
        started.set()
        for _ in watch:
            pass


@pytest.mark.parametrize("address", ["unix", "tcp"])
def test_killed_watchers_and_caches_leave_no_watch_behind(address: str) -> None:
    running = start_server("--metrics_listen=127.0.0.1:0")
    try:
        target = running.unix if address == "unix" else running.tcp
        with statehub.Manager(target) as m:
            d = m.named.dict("watched-by-a-victim")
            ctx = multiprocessing.get_context("spawn")
            started = ctx.Event()
            victims = [
                ctx.Process(
                    target=_watch_forever,
                    args=(target, d._token.name, started, i == 2),
                )
                for i in range(3)
            ]
            for victim in victims:
                started.clear()
                victim.start()
                assert started.wait(30)
            assert wait_until(lambda: running.metric("statehub_watches") == 3)
            d["x"] = 1
            events = "statehub_watch_events_total"
            assert wait_until(lambda: running.metric(events) >= 3)
            for victim in victims:
                victim.kill()
                victim.join(10)
            # Their connections closed with them: the server forgot the
            # watches, and goes on serving.
            assert wait_until(lambda: running.metric("statehub_watches") == 0)
            d["x"] = 2
            with d.watch(initial=True) as watch:
                assert watch.initial == {"x": 2}
    finally:
        close_all()
        running.stop()


def _write_sequence(address: str, name: str, count: int) -> None:
    with statehub.Manager(address) as m:
        d = m.named.dict(name)
        for i in range(count):
            d["seq"] = i
            time.sleep(0.001)


def _record_events(address: str, name: str, since: int | None, path: str) -> None:
    """Appends "revision seq" per event to path, flushed line by line, so
    that what it wrote survives its SIGKILL."""
    with statehub.Manager(address) as m, open(path, "a") as out:
        watch = m.named.dict(name).watch(since=since)
        for event in watch:
            out.write(f"{event.revision} {event.value}\n")
            out.flush()


def test_killed_watchers_resume_with_nothing_lost_twice_or_out_of_order(
    server: RunningServer, manager: statehub.SyncManager, tmp_path: Any
) -> None:
    name = f"resumed-{uuid.uuid4().hex[:8]}"
    manager.named.dict(name)["seq"] = -1
    ctx = multiprocessing.get_context("spawn")
    count = 1500
    writer = ctx.Process(target=_write_sequence, args=(server.unix, name, count))
    log = tmp_path / "events"
    log.touch()
    start = manager.named.dict(name).watch()
    since = start.revision
    start.close()
    writer.start()
    for _ in range(3):  # three watchers killed in turn, each resuming
        watcher = ctx.Process(
            target=_record_events, args=(server.unix, name, since, str(log))
        )
        watcher.start()
        time.sleep(0.4)
        watcher.kill()
        watcher.join(10)
        lines = log.read_text().splitlines()
        if lines:
            since = int(lines[-1].split()[0])
    writer.join(60)
    assert writer.exitcode == 0
    last = ctx.Process(target=_record_events, args=(server.unix, name, since, str(log)))
    last.start()
    assert wait_until(lambda: log.read_text().endswith(f" {count - 1}\n"), 30)
    last.kill()
    last.join(10)
    # A killed watcher may die between an event and its line: the next one
    # resumes after the last line, so a line is never written twice.
    pairs = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    revisions = [r for r, _ in pairs]
    assert revisions == sorted(set(revisions))
    assert [seq for _, seq in pairs] == list(range(count))
