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

import workers
from conftest import RunningServer

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
