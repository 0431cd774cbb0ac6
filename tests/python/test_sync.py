"""Semaphore, BoundedSemaphore, Event, Barrier, Queue and JoinableQueue
proxies in one process (threads): Manager's behaviour, timeouts, errors."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import pytest
import statehub

from conftest import wait_until

EARLY = 0.005  # see test_locks.py


# -- semaphores ---------------------------------------------------------------


def test_semaphore_counts_units(manager: statehub.SyncManager) -> None:
    sem = manager.Semaphore(2)
    assert repr(sem).startswith("<AcquirerProxy object, typeid 'Semaphore'")
    assert sem.acquire() and sem.acquire()
    assert sem.acquire(False) is False
    started = time.monotonic()
    assert sem.acquire(timeout=0.2) is False
    assert time.monotonic() - started >= 0.2 - EARLY
    assert sem.acquire(timeout=-5) is False  # negative is 0, as in threading
    sem.release(2)
    assert sem.get_value() == 2
    with sem:
        assert sem.get_value() == 1
    with pytest.raises(ValueError, match="non-blocking"):
        sem.acquire(False, 1)
    with pytest.raises(ValueError):
        manager.Semaphore(-1)


def test_semaphore_release_wakes_a_waiter(manager: statehub.SyncManager) -> None:
    sem = manager.Semaphore(0)
    got: list[bool] = []
    t = threading.Thread(target=lambda: got.append(sem.acquire(timeout=10)))
    t.start()
    time.sleep(0.1)
    sem.release()
    t.join(10)
    assert got == [True]


def test_bounded_semaphore_over_release_is_value_error(
    manager: statehub.SyncManager,
) -> None:
    sem = manager.BoundedSemaphore(1)
    assert repr(sem).startswith("<AcquirerProxy object, typeid 'BoundedSemaphore'")
    with pytest.raises(ValueError, match="released too many times") as caught:
        sem.release()
    assert isinstance(caught.value, statehub.StatehubValueError)
    with sem:
        pass
    assert sem.get_value() == 1
    plain = manager.Semaphore(1)
    plain.release()  # an unbounded one may grow
    assert plain.get_value() == 2


# -- events -------------------------------------------------------------------


def test_event_set_clear_wait(manager: statehub.SyncManager) -> None:
    ev = manager.Event()
    assert repr(ev).startswith("<EventProxy object, typeid 'Event'")
    assert ev.is_set() is False
    started = time.monotonic()
    assert ev.wait(0.2) is False
    assert time.monotonic() - started >= 0.2 - EARLY
    assert ev.wait(-1) is False
    t = threading.Timer(0.1, ev.set)
    t.start()
    assert ev.wait(10) is True
    t.join()
    assert ev.is_set() and ev.wait() is True
    ev.clear()
    assert not ev.is_set()


# -- barriers -----------------------------------------------------------------


def test_barrier_passes_parties_and_runs_the_action_once(
    manager: statehub.SyncManager,
) -> None:
    actions: list[str] = []
    barrier = manager.Barrier(3, action=lambda: actions.append("ran"), timeout=10)
    assert repr(barrier).startswith("<BarrierProxy object, typeid 'Barrier'")
    assert (barrier.parties, barrier.n_waiting, barrier.broken) == (3, 0, False)
    indexes: list[int] = []
    threads = [
        threading.Thread(target=lambda: indexes.append(barrier.wait()))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(indexes) == [0, 1, 2]
    assert actions == ["ran"]


def test_barrier_action_needs_no_state_call(
    manager: statehub.SyncManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    states: list[str] = []
    state = statehub.BarrierProxy._state

    def counted(self: statehub.BarrierProxy) -> Any:
        states.append(self._token.name)
        return state(self)

    monkeypatch.setattr(statehub.BarrierProxy, "_state", counted)
    actions: list[str] = []
    barrier = manager.Barrier(1, action=lambda: actions.append("ran"))
    assert [barrier.wait() for _ in range(3)] == [0, 0, 0]
    assert actions == ["ran"] * 3
    assert states == []  # the server says who runs the action


def _wait_in_thread(barrier: Any) -> tuple[threading.Thread, list[object]]:
    """A party waiting in another thread; its outcome list gets the index,
    or the BrokenBarrierError."""
    outcome: list[object] = []

    def waiter() -> None:
        try:
            outcome.append(barrier.wait())
        except threading.BrokenBarrierError as e:
            outcome.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    assert wait_until(lambda: barrier.n_waiting == 1)
    return t, outcome


def test_barrier_abort_and_timeout_break_it(manager: statehub.SyncManager) -> None:
    barrier = manager.Barrier(2)
    t, outcome = _wait_in_thread(barrier)
    barrier.abort()
    t.join(10)
    assert isinstance(outcome[0], statehub.BrokenBarrierError)
    assert outcome[0].kind == "BROKEN_BARRIER"
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert not barrier.broken
    started = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.2)  # nobody else comes: the timeout breaks it
    assert time.monotonic() - started >= 0.2 - EARLY
    assert barrier.broken


def test_barrier_action_that_raises_breaks_the_barrier(
    manager: statehub.SyncManager,
) -> None:
    def fail() -> None:
        raise OSError("action failed")

    barrier = manager.Barrier(1, action=fail)
    with pytest.raises(OSError, match="action failed"):
        barrier.wait()
    assert barrier.broken


def test_a_failed_action_breaks_the_barrier_for_the_held_parties(
    manager: statehub.SyncManager,
) -> None:
    def fail() -> None:
        raise OSError("action failed")

    barrier = manager.Barrier(2, action=fail, timeout=30)
    waiter, outcome = _wait_in_thread(barrier)
    with pytest.raises(OSError, match="action failed"):
        barrier.wait()  # the last to arrive runs the action
    waiter.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], threading.BrokenBarrierError)
    assert barrier.broken


# -- queues -------------------------------------------------------------------


def test_queue_put_get_in_order(manager: statehub.SyncManager) -> None:
    q = manager.Queue()
    assert repr(q).startswith("<AutoProxy[Queue] object, typeid 'Queue'")
    assert q.empty() and q.qsize() == 0 and not q.full()
    for item in (1, "two", (3,), {"four": [4]}, None):
        q.put(item)
    assert q.qsize() == 5
    assert [q.get() for _ in range(5)] == [1, "two", (3,), {"four": [4]}, None]
    with pytest.raises(queue.Empty):
        q.get_nowait()


def test_bounded_queue_full_and_timeouts(manager: statehub.SyncManager) -> None:
    q = manager.Queue(maxsize=1)
    q.put_nowait("a")
    assert q.full()
    with pytest.raises(queue.Full):
        q.put_nowait("b")
    started = time.monotonic()
    with pytest.raises(queue.Full):
        q.put("b", timeout=0.2)
    assert time.monotonic() - started >= 0.2 - EARLY
    assert q.get() == "a"
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.2)
    assert time.monotonic() - started >= 0.2 - EARLY
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)
    q.put(1, False, -1)  # not blocking: the timeout is ignored, as in Python
    assert q.get(False, -1) == 1


def test_blocked_get_is_served_by_a_put(manager: statehub.SyncManager) -> None:
    q = manager.Queue()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    t.start()
    time.sleep(0.1)
    q.put("x")
    t.join(10)
    assert got == ["x"]


def test_joinable_queue_join_after_task_done(manager: statehub.SyncManager) -> None:
    q = manager.JoinableQueue()
    assert repr(q).startswith("<AutoProxy[JoinableQueue] object")
    for i in range(3):
        q.put(i)
    assert q.join(0.05) is False  # statehub's join takes an optional timeout

    def worker() -> None:
        for _ in range(3):
            q.get()
            q.task_done()

    t = threading.Thread(target=worker)
    t.start()
    q.join()
    t.join()
    with pytest.raises(ValueError, match="too many times"):
        q.task_done()


def test_queue_carries_proxies(manager: statehub.SyncManager) -> None:
    q = manager.Queue()
    d = manager.dict(a=1)
    name = d._token.name
    q.put(d)
    del d
    # The release is asynchronous: wait until only the queued ref holds it.
    assert wait_until(lambda: manager.describe(name).holders == 0)
    assert manager.describe(name).referrers == 1
    got = q.get()
    assert isinstance(got, statehub.DictProxy) and got["a"] == 1


def test_named_sync_objects(manager: statehub.SyncManager) -> None:
    names = ["t-sync-sem", "t-sync-ev", "t-sync-bar", "t-sync-q", "t-sync-jq"]
    try:
        assert manager.named.Semaphore("t-sync-sem", 3).get_value() == 3
        assert manager.named.Semaphore("t-sync-sem").get_value() == 3
        manager.named.Event("t-sync-ev").set()
        assert manager.named.Event("t-sync-ev").is_set()
        assert manager.named.Barrier("t-sync-bar", 4).parties == 4
        assert manager.named.Barrier("t-sync-bar").parties == 4
        manager.named.Queue("t-sync-q", 2).put(1)
        assert manager.named.Queue("t-sync-q").get() == 1
        assert manager.named.JoinableQueue("t-sync-jq").maxsize == 0
        with pytest.raises(TypeError):
            manager.named.Queue("t-sync-jq")
    finally:
        for name in names:
            manager.named.delete(name)
