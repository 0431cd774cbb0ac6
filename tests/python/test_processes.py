"""Proxies in child processes under fork, spawn and forkserver; fork safety;
anonymous objects freed when the last process holding them ends."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest
import statehub

import workers
from conftest import LEASE_TTL_SECONDS, RunningServer, wait_until

METHODS = ["fork", "spawn", "forkserver"]
JOIN_TIMEOUT = 60  # a hang fails the test instead of blocking the run

pytestmark = pytest.mark.processes


def _join_all(processes: list[Any]) -> None:
    for p in processes:
        p.join(JOIN_TIMEOUT)
    hung = [p for p in processes if p.is_alive()]
    for p in hung:
        p.kill()
        p.join()
    assert not hung, f"{len(hung)} child process(es) hung"
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _holders(manager: statehub.SyncManager, name: str) -> int | None:
    try:
        return manager.describe(name).holders
    except statehub.ObjectNotFound:
        return None


@pytest.mark.parametrize("method", METHODS)
def test_children_work_on_shared_objects(
    manager: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    shared = manager.dict()
    items = manager.list()
    counter = manager.dict(n=0)
    nested = manager.dict(sub=manager.list())
    children = [
        ctx.Process(target=workers.fill, args=(i, shared, items, counter, nested))
        for i in range(4)
    ]
    for child in children:
        child.start()
    _join_all(children)
    assert counter["n"] == 4 * workers.INCREMENTS
    assert sorted(shared.keys()) == [0, 1, 2, 3]
    assert set(shared.values()) == {c.pid for c in children}
    assert sorted(items) == [0, 1, 2, 3]
    assert sorted(nested["sub"]) == [0, 1, 2, 3]


@pytest.mark.parametrize("method", METHODS)
def test_pool_tasks_get_proxies(manager: statehub.SyncManager, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    shared = manager.dict()
    with ctx.Pool(2) as pool:
        results = pool.map(
            workers.pool_task, [(shared, i) for i in range(6)], chunksize=1
        )
    assert sorted(results) == [1, 2, 3, 4, 5, 6]
    assert {k: v for k, v in shared.items() if k != "tasks"} == {
        f"task-{i}": i * i for i in range(6)
    }


def test_parent_with_open_session_forks_safely(manager: statehub.SyncManager) -> None:
    counter = manager.dict(n=0)
    counter.increment("n")  # the session stream is up and in use
    pids = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:  # the child: must never touch the parent's channel
            code = 1
            try:
                counter.increment("n")
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
        counter.increment("n")  # the parent keeps working between forks
    deadline = time.monotonic() + JOIN_TIMEOUT
    statuses = {}
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                statuses[pid] = os.waitstatus_to_exitcode(status)
                pids.remove(pid)
        time.sleep(0.02)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not pids, "a forked child hung"
    assert set(statuses.values()) == {0}
    assert counter["n"] == 1 + 8 + 8


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.usefixtures("short_handoff")
def test_anonymous_object_lives_while_a_child_holds_it(
    manager: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    started, release, done = ctx.Event(), ctx.Event(), ctx.Event()
    shared = manager.dict()
    name = shared._token.name
    child = ctx.Process(
        target=workers.hold_until_released, args=(shared, started, release, done)
    )
    child.start()
    try:
        assert started.wait(JOIN_TIMEOUT)
        del shared
        gc.collect()
        # The parent's hold is released; the child's keeps the object alive.
        assert wait_until(lambda: _holders(manager, name) == 1)
        release.set()
        assert done.wait(JOIN_TIMEOUT)
    finally:
        release.set()
        _join_all([child])
    # The child said goodbye at exit: nobody holds the object any more.
    assert wait_until(lambda: _holders(manager, name) is None)


@pytest.mark.usefixtures("short_handoff")
def test_object_of_a_killed_child_is_freed_after_the_lease(
    manager: statehub.SyncManager,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    shared = manager.dict()
    name = shared._token.name
    child = ctx.Process(target=workers.die_holding, args=(shared, started))
    child.start()
    assert started.wait(JOIN_TIMEOUT)
    del shared
    gc.collect()
    assert wait_until(lambda: _holders(manager, name) == 1)
    child.kill()
    child.join(JOIN_TIMEOUT)
    # No goodbye: the server's lease timer ends the child's session.
    assert wait_until(lambda: _holders(manager, name) is None, LEASE_TTL_SECONDS + 5)


def test_named_objects_in_children(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    name = "test-processes-named"
    manager.named.dict(name)
    try:
        ctx = multiprocessing.get_context("spawn")
        children = [
            ctx.Process(target=workers.use_named, args=(server.unix, name))
            for _ in range(2)
        ]
        for child in children:
            child.start()
        _join_all(children)
        assert manager.named.dict(name)["children"] == 2
    finally:
        manager.named.delete(name)


def test_proxies_pickle_with_their_options(
    pickling_manager: statehub.SyncManager,
) -> None:
    import pickle

    d = pickling_manager.dict()
    clone = pickle.loads(pickle.dumps(d))
    assert clone._options == d._options
    assert clone._options.allow_pickle is True
    info = pickling_manager.describe(d)
    assert info.holders == 2  # the original and the clone each hold it
    del clone
    gc.collect()
    assert wait_until(lambda: pickling_manager.describe(d).holders == 1)
