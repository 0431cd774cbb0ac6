"""Synchronization objects across processes, with statehub.Manager() (a
private server, as a Manager program would use it) under fork, spawn and
forkserver: the classic Manager programs, robust lock ownership, condition
ping-pong, barriers, events, joinable queues, proxies nested in shared
objects."""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import statehub

import workers
from conftest import LEASE_TTL_SECONDS, server_binary, wait_until
from test_processes import METHODS, _join_all

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def m() -> Iterator[statehub.SyncManager]:
    """statehub.Manager(): a private server, with the suite's short lease."""
    manager = statehub.Manager(
        server=server_binary(), server_args=[f"--lease_ttl={LEASE_TTL_SECONDS}s"]
    )
    yield manager
    manager.shutdown()


@pytest.mark.parametrize("method", METHODS)
def test_seed_program_queue_dict_list_and_value_under_lock(
    m: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    lock, counter = m.Lock(), m.Value("i", 0)
    jobs, results, seen = m.Queue(), m.dict(), m.list()
    children = [
        ctx.Process(
            target=workers.seed_worker, args=(i, lock, counter, jobs, results, seen)
        )
        for i in range(3)
    ]
    for child in children:
        child.start()
    for job in range(30):  # the producer
        jobs.put(job)
    for _ in children:
        jobs.put(None)
    _join_all(children)
    # A read then a write under the lock: exact only if the lock excluded.
    assert counter.value == 3 * workers.SEED_INCREMENTS
    assert sorted(seen) == list(range(30))  # each job consumed exactly once
    assert {job: square for job, (_, square) in results.items()} == {
        job: job * job for job in range(30)
    }
    assert jobs.empty()


def _acquire_in_a_child_that_exits(ctx: Any, lock: Any) -> None:
    """A child of ``ctx`` takes ``lock`` (or a unit) and exits normally."""
    child = ctx.Process(target=workers.acquire_and_exit, args=(lock,))
    child.start()
    child.join(60)
    assert child.exitcode == 0


@pytest.mark.parametrize("method", METHODS)
def test_locks_of_a_child_that_exits_normally_stay_taken(
    m: statehub.SyncManager, method: str
) -> None:
    # As with Manager: a child that exits holding a Lock or semaphore units
    # leaves them taken, and another process may release them.
    ctx = multiprocessing.get_context(method)
    lock, bounded, plain = m.Lock(), m.BoundedSemaphore(1), m.Semaphore(1)
    for held in (lock, bounded, plain):
        _acquire_in_a_child_that_exits(ctx, held)
        if held is lock:
            # The child's session has ended; the lock stays held.
            assert wait_until(lambda: lock.state().holder_left, 30)
        assert held.acquire(False) is False  # still taken, no unit gained
        held.release()  # by another process, as Python allows
        assert held.acquire(False) is True
        held.release()
    assert lock.owner_died is False
    with pytest.raises(ValueError, match="released too many times"):
        bounded.release()


def test_a_grpc_client_leaves_its_locks_taken_at_exit_too() -> None:
    with statehub.Manager(server=server_binary(), transport="grpc") as g:
        ctx = multiprocessing.get_context("spawn")
        lock = g.Lock()
        _acquire_in_a_child_that_exits(ctx, lock)
        assert wait_until(lambda: lock.state().holder_left, 30)
        assert lock.acquire(False) is False
        lock.release()
        assert lock.acquire(False) is True


@pytest.mark.parametrize("method", METHODS)
def test_an_rlock_of_a_child_that_exits_normally_is_released(
    m: statehub.SyncManager, method: str
) -> None:
    # An RLock belongs to a thread of the child: it cannot be released by
    # anyone else, so its owner's exit frees it (told as owner_died).
    ctx = multiprocessing.get_context(method)
    rlock = m.RLock()
    _acquire_in_a_child_that_exits(ctx, rlock)
    assert rlock.acquire(timeout=10) is True
    assert rlock.owner_died is True
    rlock.release()


def test_lock_of_a_killed_worker_passes_on_with_owner_died(
    m: statehub.SyncManager,
) -> None:
    ctx = multiprocessing.get_context("fork")
    lock, held = m.Lock(), ctx.Event()
    child = ctx.Process(target=workers.hold_lock_and_die, args=(lock, held))
    child.start()
    try:
        assert held.wait(60)
        assert lock.acquire(timeout=0.1) is False
        child.kill()  # SIGKILL: no release, no goodbye
        child.join(60)
        # The lease (2 s) passes, the server ends the child's session and
        # releases its lock; we are told its owner died.
        assert lock.acquire(timeout=LEASE_TTL_SECONDS + 10) is True
        assert lock.owner_died is True
        first_token = lock.fencing_token
        lock.release()
        assert lock.acquire(timeout=1) is True
        assert lock.owner_died is False  # told once
        assert lock.fencing_token > first_token
        lock.release()
    finally:
        if child.is_alive():
            child.kill()
            child.join()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_condition_ping_pong_between_processes(
    m: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    cond, turn = m.Condition(), m.Value("i", 0)
    rounds = 20
    child = ctx.Process(target=workers.ping_pong, args=(cond, turn, 1, 0, rounds))
    child.start()
    workers.ping_pong(cond, turn, 0, 1, rounds)
    _join_all([child])
    assert turn.value == 0  # the child had the last word


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_barrier_across_processes_and_abort(
    m: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    marks = m.list()
    # A module-level action, so it travels with the proxy under forkserver.
    barrier = m.Barrier(3, action=_Action(marks), timeout=60)
    out = m.dict()
    children = [
        ctx.Process(target=workers.barrier_rounds, args=(barrier, out, f"c{i}"))
        for i in range(2)
    ]
    for child in children:
        child.start()
    mine = barrier.wait()
    # The second round: both children park, then we abort.
    assert wait_until(lambda: barrier.n_waiting == 2, 60)
    barrier.abort()
    _join_all(children)
    assert sorted([mine, out["c0"], out["c1"]]) == [0, 1, 2]
    assert marks[:] == ["action"]  # run once, by the last arrival
    assert out["c0-2"] == out["c1-2"] == "broken"
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()


class _Action:
    """A picklable barrier action (spawn and forkserver children import it)."""

    def __init__(self, marks: Any, slow: bool = False) -> None:
        self.marks = marks
        self.slow = slow

    def __call__(self) -> None:
        if self.slow:
            workers.slow_barrier_action(self.marks)
        else:
            workers.record_barrier_action(self.marks)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_barrier_action_runs_before_any_party_passes(
    m: statehub.SyncManager, method: str
) -> None:
    # threading.Barrier runs the action in the last party to arrive before
    # it releases any: whichever process arrives last, every party sees the
    # action's effect as soon as its wait() returns (CPython's test_action).
    ctx = multiprocessing.get_context(method)
    marks = m.list()
    barrier = m.Barrier(3, action=_Action(marks, slow=True), timeout=60)
    out = m.dict()
    children = [
        ctx.Process(
            target=workers.wait_then_count, args=(barrier, marks, out, f"c{i}")
        )
        for i in range(2)
    ]
    for child in children:
        child.start()
    workers.wait_then_count(barrier, marks, out, "parent")
    _join_all(children)
    assert sorted(index for index, _ in out.values()) == [0, 1, 2]
    assert [seen for _, seen in out.values()] == [1, 1, 1]
    assert marks[:] == ["action"]


def test_a_party_killed_in_the_action_breaks_the_barrier(
    m: statehub.SyncManager,
) -> None:
    barrier = m.Barrier(2, action=workers.kill_self, timeout=60)
    child = multiprocessing.get_context("fork").Process(
        target=workers.arrive_last, args=(barrier,)
    )
    child.start()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()  # first: held while the child runs the action, then broken
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert barrier.broken


def test_event_wakes_a_waiting_process(m: statehub.SyncManager) -> None:
    ctx = multiprocessing.get_context("spawn")
    ev, out = m.Event(), m.dict()
    child = ctx.Process(target=workers.wait_for_event, args=(ev, out, "seen"))
    child.start()
    # A spawned child takes a while to start: set once it is about to wait
    # (and a little after, so that it is parked rather than racing).
    assert wait_until(lambda: "seen-waiting" in out, 60)
    time.sleep(0.2)
    ev.set()
    _join_all([child])
    assert out["seen"] is True


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_joinable_queue_join_returns_after_task_done(
    m: statehub.SyncManager, method: str
) -> None:
    ctx = multiprocessing.get_context(method)
    jobs, done = m.JoinableQueue(), m.list()
    children = [
        ctx.Process(target=workers.consume_tasks, args=(jobs, done)) for _ in range(2)
    ]
    for child in children:
        child.start()
    for i in range(10):
        jobs.put(i)
    jobs.join()  # every item taken and marked done
    assert sorted(done) == list(range(10))
    for _ in children:
        jobs.put(None)
    jobs.join()
    _join_all(children)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_lock_and_queue_nested_in_a_list(m: statehub.SyncManager, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    jobs = m.Queue()
    holder = m.list([m.Lock(), jobs])
    children = [
        ctx.Process(target=workers.use_nested, args=(holder,)) for _ in range(2)
    ]
    for child in children:
        child.start()
    _join_all(children)
    assert sorted([jobs.get(timeout=10), jobs.get(timeout=10)]) == sorted(
        c.pid for c in children
    )


def test_pool_is_local_and_its_tasks_get_proxies(m: statehub.SyncManager) -> None:
    shared = m.dict()
    with m.Pool(2) as pool:
        results = pool.map(workers.pool_task, [(shared, i) for i in range(4)])
    assert sorted(results) == [1, 2, 3, 4]
    assert shared["task-3"] == 9


def test_forks_while_another_thread_is_parked_keep_the_session(
    m: statehub.SyncManager,
) -> None:
    # grpcio's pre-fork handler waits (about 1 s) for a call in flight;
    # three forks in a row must still keep the parent's lease (2 s here).
    ctx = multiprocessing.get_context("fork")
    ev, shared, items = m.Event(), m.dict(), m.list()
    counter, nested = m.dict(n=0), m.dict(sub=m.list())
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(ev.wait(60)))
    waiter.start()
    try:
        children = [
            ctx.Process(target=workers.fill, args=(i, shared, items, counter, nested))
            for i in range(3)
        ]
        for child in children:
            child.start()
        _join_all(children)
        assert counter["n"] == 3 * workers.INCREMENTS
    finally:
        ev.set()
        waiter.join(60)
    assert waited == [True]


@pytest.mark.parametrize("method", METHODS)
def test_proxies_made_inline_for_a_child_outlive_the_parents_reference(
    m: statehub.SyncManager, method: str
) -> None:
    # Process.start() drops its args in the parent at once; the parent's
    # release of these anonymous objects must not beat the child's adoption
    # (multiprocessing.Manager loses this race: KeyError in the child).
    ctx = multiprocessing.get_context(method)
    result = m.Queue()
    children = [
        ctx.Process(target=workers.fill_and_report, args=(m.list(), m.Lock(), result))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    _join_all(children)
    assert sorted([result.get(timeout=10), result.get(timeout=10)]) == sorted(
        c.pid for c in children
    )
