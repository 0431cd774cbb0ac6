"""Functions that run in child processes (importable under spawn and
forkserver, which import them by module name)."""

from __future__ import annotations

import os
import time
from typing import Any

import statehub

INCREMENTS = 500


def fill(index: int, shared: Any, items: Any, counter: Any, nested: Any) -> None:
    """Real work on objects the parent created: a dict, a list, a counter
    and a list nested in a dict."""
    for _ in range(INCREMENTS):
        counter.increment("n")
    shared[index] = os.getpid()
    items.append(index)
    nested["sub"].append(index)


def pool_task(args: tuple[Any, int]) -> int:
    shared, index = args
    shared[f"task-{index}"] = index * index
    return shared.increment("tasks")


def hold_until_released(proxy: Any, started: Any, release: Any, done: Any) -> None:
    """Keeps a proxy alive until told, then uses it and ends."""
    started.set()
    release.wait(30)
    proxy["child"] = os.getpid()
    done.set()


def die_holding(proxy: Any, started: Any) -> None:
    """Uses a proxy, then dies without a goodbye."""
    proxy["dying"] = True
    started.set()
    time.sleep(60)


def use_named(address: str, name: str) -> None:
    m = statehub.Manager(address)
    m.named.dict(name).increment("children")
    m.shutdown()


# -- synchronization objects ------------------------------------------------

SEED_INCREMENTS = 50


def seed_worker(  # noqa: PLR0917 - the objects a Manager program passes
    index: int, lock: Any, counter: Any, jobs: Any, results: Any, seen: Any
) -> None:
    """The classic Manager program in one child: a Value incremented under a
    Lock (a read, then a write: exact only if the lock excludes), then jobs
    consumed from a Queue until a None sentinel, results into a dict and a
    list."""
    for _ in range(SEED_INCREMENTS):
        with lock:
            counter.value = counter.value + 1
    while True:
        job = jobs.get(timeout=30)
        if job is None:
            break
        results[job] = (index, job * job)
        seen.append(job)


def hold_lock_and_die(lock: Any, held: Any) -> None:
    """Acquires the lock and then hangs until killed (no release, no
    goodbye)."""
    lock.acquire()
    held.set()
    time.sleep(60)


def ping_pong(cond: Any, turn: Any, me: int, other: int, rounds: int) -> None:
    """Waits for its turn on a condition, hands the turn over, `rounds` times."""
    for _ in range(rounds):
        with cond:
            assert cond.wait_for(lambda: turn.value == me, 30)
            turn.value = other
            cond.notify()


def record_barrier_action(marks: Any) -> None:
    marks.append("action")


def barrier_rounds(barrier: Any, out: Any, key: str) -> None:
    """One pass of the barrier, then a second wait that the parent aborts."""
    import threading

    out[key] = barrier.wait(30)
    try:
        barrier.wait(30)
        out[key + "-2"] = "passed"
    except threading.BrokenBarrierError:
        out[key + "-2"] = "broken"


def wait_for_event(event: Any, out: Any, key: str) -> None:
    out[f"{key}-waiting"] = True  # the parent sets the event after this
    out[key] = event.wait(30)


def consume_tasks(jobs: Any, done: Any) -> None:
    """Takes items until None, marking each done (JoinableQueue.join)."""
    while True:
        item = jobs.get(timeout=30)
        try:
            if item is None:
                return
            done.append(item)
        finally:
            jobs.task_done()


def use_nested(holder: Any) -> None:
    """Finds a Lock and a Queue inside a shared list and uses them."""
    lock, jobs = holder[0], holder[1]
    with lock:
        jobs.put(os.getpid())


def fill_and_report(items: Any, lock: Any, result: Any) -> None:
    """Uses objects only this child still refers to, then reports."""
    with lock:
        items.append(os.getpid())
    result.put(items[0])


def count_in_child(counts: Any, key: str) -> None:
    """Adds one under ``key``: the child must reach the server with the
    credentials its parent's proxy carried."""
    counts.increment(key)


def lane_child(counter: Any, lock: Any, results: Any) -> None:
    """Uses proxies under the lock; reports (pid, connection class, session)."""
    from statehub._connection import connection_for

    conn = connection_for(counter._token.address)
    with lock:
        counter.increment("n")
    results.append((os.getpid(), type(conn).__name__, conn.session_id()))


def record_pid(done: Any, index: int) -> None:
    """A forked or spawned child that uses a proxy once and exits."""
    done[index] = os.getpid()


def slow_barrier_action(marks: Any) -> None:
    """An action that takes a while: a party released before it ends would
    see no mark."""
    time.sleep(0.3)
    marks.append("action")


def wait_then_count(barrier: Any, marks: Any, out: Any, key: str) -> None:
    """Passes the barrier, then records how many times its action had run."""
    out[key] = (barrier.wait(60), len(marks))


def kill_self() -> None:
    """A barrier action whose process dies while running it."""
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def arrive_last(barrier: Any) -> None:
    """Waits until another party is parked, then arrives (last)."""
    while barrier.n_waiting < barrier.parties - 1:
        time.sleep(0.01)
    barrier.wait(60)


def lock_ring_member(
    mine: Any, next_lock: Any, everyone: Any, out: Any, key: str
) -> None:
    """One process of a ring of lock waits: holds its own lock, waits until
    every member holds theirs, then acquires the next member's. Records
    "acquired", or "deadlock" when the server refused the acquire that
    closed the ring (--deadlock=fail); releases what it holds either way,
    which lets the others go on."""
    with mine:
        everyone.wait(60)
        try:
            got = next_lock.acquire(timeout=60)
        except statehub.DeadlockError as e:
            out[key] = ("deadlock", e.message)
            return
        out[key] = ("acquired" if got else "timeout", "")
        if got:
            next_lock.release()


def acquire_and_exit(lock: Any) -> None:
    """Takes a Lock, RLock or semaphore unit and exits normally, holding it
    (CPython's manager tests do this; the parent then releases it)."""
    lock.acquire()
