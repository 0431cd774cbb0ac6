"""Forking while other threads wait in calls: every child starts, uses a
proxy and exits, on both transports (issue 16). Under fork a child is a copy
of a process whose threads are parked in acquire, Condition.wait, Queue.get
and Event.wait; spawn and forkserver are the controls."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterator

import pytest
import statehub
from statehub._connection import close_all
from statehub._reconnect import RECONNECT_WAIT

import workers
from conftest import RunningServer, start_server

# A child that has not exited by then is hung: the test fails instead of
# blocking the run.
JOIN_TIMEOUT = 30
FORKS = {"fork": 200, "spawn": 10, "forkserver": 10}

pytestmark = pytest.mark.processes


@contextlib.contextmanager
def _threads_waiting_in_calls(m: statehub.SyncManager) -> Iterator[None]:
    """Four threads that keep a call parked on the server until the block
    ends: an acquire of a held lock, a Condition.wait, a Queue.get on an
    empty queue and an Event.wait. Short timeouts make them come and go, so
    a fork meets calls both parked and on their way."""
    lock = m.Lock()
    lock.acquire()
    cond = m.Condition()
    jobs = m.Queue()
    event = m.Event()
    stop = threading.Event()

    def wait_on_condition() -> None:
        with cond:
            cond.wait(0.2)

    def get_from_queue() -> None:
        with contextlib.suppress(queue.Empty):
            jobs.get(timeout=0.2)

    waits: list[Callable[[], object]] = [
        lambda: lock.acquire(timeout=0.2),
        wait_on_condition,
        get_from_queue,
        lambda: event.wait(0.2),
    ]

    def loop(wait: Callable[[], object]) -> None:
        while not stop.is_set():
            wait()

    threads = [threading.Thread(target=loop, args=(w,)) for w in waits]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        lock.release()
        assert not any(t.is_alive() for t in threads)


@pytest.mark.parametrize("method", list(FORKS))
@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_children_start_while_threads_wait_in_calls(
    server: RunningServer, transport: str, method: str
) -> None:
    if transport == "grpc":
        pytest.importorskip("grpc")
    close_all()  # one process has one connection (one transport) per server
    m = statehub.Manager(server.unix, transport=transport)
    try:
        ctx = multiprocessing.get_context(method)
        done = m.dict()
        with _threads_waiting_in_calls(m):
            for i in range(FORKS[method]):
                child = ctx.Process(target=workers.record_pid, args=(done, i))
                child.start()
                child.join(JOIN_TIMEOUT)
                if child.is_alive():
                    child.kill()
                    child.join()
                    pytest.fail(f"{method} child {i} hung ({transport} transport)")
                assert child.exitcode == 0, f"{method} child {i}"
        assert sorted(done.keys()) == list(range(FORKS[method]))
    finally:
        m.shutdown()
        close_all()


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_children_are_not_held_up_by_proxies_of_a_server_that_is_gone(
    server: RunningServer, transport: str
) -> None:
    """A forked child adopts every proxy alive in its parent (as Manager's
    incref after fork). One whose server was killed must not make the
    child wait for that server to come back: the child starts, uses a proxy
    of the live server and exits, well within the reconnect window."""
    if transport == "grpc":
        pytest.importorskip("grpc")
    close_all()
    gone = start_server()
    stranded = statehub.Manager(gone.unix, transport=transport).dict()
    gone.kill()
    m = statehub.Manager(server.unix)
    try:
        done = m.dict()
        ctx = multiprocessing.get_context("fork")
        for i in range(3):
            child = ctx.Process(target=workers.record_pid, args=(done, i))
            child.start()
            child.join(RECONNECT_WAIT / 3)
            if child.is_alive():
                child.kill()
                child.join()
                pytest.fail(f"child {i} waited for the server that is gone")
            assert child.exitcode == 0
        assert sorted(done.keys()) == [0, 1, 2]
        del stranded  # alive in this process until now, so in every child
    finally:
        m.shutdown()
        close_all()
