"""Deadlock detection among locks and rlocks (issue 15): the server's
wait-for graph finds a cycle of waits the moment it closes, counts it in
``statehub_deadlocks_total``, lists it (``Manager.deadlocks()``,
``LockState.deadlocks``, ``statehub-cli deadlocks``) while every wait in it
lasts, and under ``--deadlock=fail`` refuses the acquire that would close
it with :class:`statehub.DeadlockError`.

Each test starts its own server (metrics on), so the counter is exact.
Python, C++ (tests/interop/interop_peer.cc, ``lock-pair``) and child
processes under fork, spawn and forkserver make the cycles."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import statehub
from statehub._connection import connection_for

import workers
from conftest import RunningServer, server_binary, start_server, wait_until
from test_interop import Peer
from test_processes import METHODS, _join_all

FOUND = "statehub_deadlocks_total"
PRESENT = "statehub_deadlocks"


@dataclasses.dataclass
class Hub:
    """A server of this test's own, a manager on it, and its log."""

    server: RunningServer
    manager: statehub.SyncManager
    log: IO[bytes]

    def found(self) -> float:
        return self.server.metric(FOUND)

    def present(self) -> float:
        return self.server.metric(PRESENT)

    def session_id(self) -> str:
        return connection_for(self.server.unix).session_id()

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def peer(self, *args: str) -> Peer:
        peer = Peer(self.server, *args)
        self._peers.append(peer)
        return peer

    _peers: list[Peer] = dataclasses.field(default_factory=list)


@pytest.fixture
def hub() -> Iterator[Callable[..., Hub]]:
    """Starts a server with metrics on and the given flags, and a manager
    on it; stops both (and any peers left) afterwards."""
    started: list[Hub] = []

    def start(*flags: str, transport: str = "lane") -> Hub:
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed at teardown
        server = start_server("--metrics_listen=127.0.0.1:0", *flags, stderr=log)
        made = Hub(server, statehub.Manager(server.unix, transport=transport), log)
        started.append(made)
        return made

    yield start
    for made in started:
        made.manager.shutdown()
        for peer in made._peers:
            if peer.process.poll() is None:
                peer.process.kill()
                peer.process.wait()
        assert made.server.stop() == 0
        made.log.close()


def cli_binary() -> str:
    binary = os.environ.get("STATEHUB_CLI") or str(
        Path(server_binary()).parent / "statehub-cli"
    )
    if not os.access(binary, os.X_OK):
        pytest.fail(f"statehub-cli not found at {binary}: ninja -C build statehub-cli")
    return binary


def cli(server: RunningServer, *args: str) -> str:
    """What `statehub-cli ARGS...` prints (it must exit 0)."""
    result = subprocess.run(
        [cli_binary(), f"--address={server.unix}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def cli_deadlocks(server: RunningServer) -> list[int]:
    """The ids of the deadlocks `statehub-cli deadlocks` lists: each starts
    a line ``deadlock <id>``."""
    return [
        int(match.group(1))
        for line in cli(server, "deadlocks").splitlines()
        if (match := re.match(r"deadlock (\d+)\b", line))
    ]


def parked_on(lock: Any, n: int = 1) -> bool:
    """Waits until `n` calls are parked on `lock`."""
    return wait_until(lambda: len(lock.state().waiters) >= n, timeout=30)


# --- a. Python and C++ in opposite order, --deadlock=fail ---------------------


def test_python_and_cpp_in_opposite_order_fail_with_deadlock_error(
    hub: Callable[..., Hub],
) -> None:
    h = hub("--deadlock=fail")
    a, b = h.manager.named.Lock("dl/a"), h.manager.named.Lock("dl/b")
    assert a.acquire()
    peer = h.peer("lock-pair", "dl/b", "dl/a")
    assert peer.line() == "held dl/b"
    peer.send("go")  # C++ now acquires dl/a, which Python holds: it parks
    assert parked_on(a)
    assert h.manager.deadlocks() == []  # a wait, not yet a cycle

    with pytest.raises(statehub.DeadlockError) as caught:
        b.acquire(timeout=60)  # would close the cycle: refused at once
    e = caught.value
    assert isinstance(e, RuntimeError) and isinstance(e, statehub.StatehubError)
    assert (e.kind, e.code, e.object) == ("DEADLOCK", "ABORTED", "dl/b")
    assert 'lock "dl/a"' in e.message and 'lock "dl/b"' in e.message
    assert "would deadlock" in str(e)
    assert "interop_peer" in e.message  # the C++ side's label names it
    # Refused, not parked: the lock is not ours, and no cycle stays.
    assert b.state().holder is not None
    assert "interop_peer" in b.state().holder.label
    assert b.state().waiters == ()
    assert h.manager.deadlocks() == []

    a.release()  # the C++ side goes on
    assert peer.line() == "acquired dl/a"
    assert peer.finish() == 0
    assert not a.locked() and not b.locked()
    assert h.found() == 1
    assert h.present() == 0
    assert re.search(r'deadlock 1: .*lock "dl/(a|b)"', h.log_text())


def test_the_cpp_side_is_refused_when_it_closes_the_cycle(
    hub: Callable[..., Hub],
) -> None:
    h = hub("--deadlock=fail")
    a, b = h.manager.named.Lock("dl/a"), h.manager.named.Lock("dl/b")
    got_b: list[bool] = []
    holds_a, go = threading.Event(), threading.Event()

    def python_side() -> None:
        with a:
            holds_a.set()
            go.wait(60)
            got_b.append(b.acquire(timeout=60))  # parks behind C++
            b.release()

    thread = threading.Thread(target=python_side)
    thread.start()
    try:
        assert holds_a.wait(60)
        peer = h.peer("lock-pair", "dl/b", "dl/a", "60")
        assert peer.line() == "held dl/b"
        go.set()
        assert parked_on(b)
        peer.send("go")  # C++ acquires dl/a: that closes the cycle
        word, _, message = peer.line().partition(" ")
        assert word == "deadlock"
        assert message.startswith('lock "dl/a": acquiring it would deadlock')
        assert 'lock "dl/b"' in message
        assert peer.finish() == 0  # it released dl/b: Python goes on
        thread.join(60)
        assert got_b == [True]
    finally:
        go.set()
        thread.join(60)
    assert h.found() == 1
    assert not a.locked() and not b.locked()

    # Only a wait, no cycle: the C++ side's timeout passes.
    assert a.acquire()
    peer = h.peer("lock-pair", "dl/b", "dl/a", "0.2")
    assert peer.line() == "held dl/b"
    peer.send("go")
    assert peer.line() == "timeout dl/a"
    assert peer.finish() == 0
    a.release()
    assert h.found() == 1


# --- b. the same under --deadlock=report: listed while it lasts ---------------


def test_report_lists_the_cycle_until_a_timeout_ends_it(
    hub: Callable[..., Hub],
) -> None:
    h = hub()  # --deadlock=report, the default
    a, b = h.manager.named.Lock("dl/a"), h.manager.named.Lock("dl/b")
    holds_a = threading.Event()
    result: list[bool] = []
    go = threading.Event()
    release_a = threading.Event()
    me: list[int] = []

    def python_side() -> None:
        # One thread holds dl/a and waits for dl/b: the cycle's Python half.
        me.append(threading.get_ident())
        with a:
            holds_a.set()
            go.wait(60)
            result.append(b.acquire(timeout=5))
            release_a.wait(60)

    thread = threading.Thread(target=python_side)
    thread.start()
    try:
        assert holds_a.wait(60)
        peer = h.peer("lock-pair", "dl/b", "dl/a")
        assert peer.line() == "held dl/b"
        peer.send("go")
        assert parked_on(a)
        go.set()  # Python's thread now waits for dl/b: the cycle closes

        assert wait_until(lambda: len(h.manager.deadlocks()) == 1, timeout=30)
        (cycle,) = h.manager.deadlocks()
        assert cycle.id == 1 and cycle.age >= 0
        assert sorted(cycle.locks) == ["dl/a", "dl/b"]
        by_lock = {edge.lock: edge for edge in cycle.edges}
        mine = (h.session_id(), me[0])
        on_b, on_a = by_lock["dl/b"], by_lock["dl/a"]
        assert (on_b.waiter.session_id, on_b.waiter.thread_id) == mine
        assert "interop_peer" in on_b.holder.label
        assert "interop_peer" in on_a.waiter.label
        assert (on_a.holder.session_id, on_a.holder.thread_id) == mine
        assert on_a.waiter == on_b.holder  # one C++ thread, both roles
        assert not any(e.reentrant or e.condition for e in cycle.edges)
        # Each lock's state shows the cycle through it.
        for lock in (a, b):
            (through,) = lock.state().deadlocks
            assert (through.id, through.edges) == (cycle.id, cycle.edges)
        assert cli_deadlocks(h.server) == [1]
        listed = cli(h.server, "deadlocks")
        assert 'lock "dl/a"' in listed and 'lock "dl/b"' in listed
        assert "in deadlock 1" in cli(h.server, "locks", "dl/")
        assert h.found() == 1
        assert h.present() == 1

        thread_done = wait_until(lambda: bool(result), timeout=60)
        assert thread_done and result == [False]  # the timeout ended it
        assert h.manager.deadlocks() == []
        assert a.state().deadlocks == () and b.state().deadlocks == ()
        assert cli_deadlocks(h.server) == []
        assert "in deadlock" not in cli(h.server, "locks", "dl/")
        assert h.found() == 1
        assert h.present() == 0
    finally:
        release_a.set()
        thread.join(60)
    assert peer.line() == "acquired dl/a"
    assert peer.finish() == 0
    assert h.found() == 1
    assert re.search(r'deadlock 1: .*lock "dl/(a|b)"', h.log_text())


# --- c. three processes in a ring, --deadlock=fail ------------------------------


@pytest.mark.processes
@pytest.mark.parametrize("method", METHODS)
def test_a_ring_of_three_processes_fails_exactly_one(
    hub: Callable[..., Hub], method: str
) -> None:
    h = hub("--deadlock=fail")
    m = h.manager
    ctx = multiprocessing.get_context(method)
    locks = [m.named.Lock(f"dl/ring/{i}") for i in range(3)]
    everyone, out = m.Barrier(3), m.dict()
    children = [
        ctx.Process(
            target=workers.lock_ring_member,
            args=(locks[i], locks[(i + 1) % 3], everyone, out, str(i)),
        )
        for i in range(3)
    ]
    for child in children:
        child.start()
    _join_all(children)
    outcomes = [out[str(i)][0] for i in range(3)]
    assert sorted(outcomes) == ["acquired", "acquired", "deadlock"]
    message = next(out[str(i)][1] for i in range(3) if outcomes[i] == "deadlock")
    for i in range(3):
        assert f'lock "dl/ring/{i}"' in message
    assert h.found() == 1
    assert h.present() == 0
    assert m.deadlocks() == []
    assert not any(lock.locked() for lock in locks)


# --- d. not cycles ------------------------------------------------------------


def test_rlock_reentry_and_condition_waits_are_not_cycles(
    hub: Callable[..., Hub],
) -> None:
    h = hub("--deadlock=fail")
    m = h.manager

    # An RLock re-entered by its holder while another thread waits for it.
    rlock = m.RLock()
    holding, waiter_parked, got = threading.Event(), threading.Event(), []

    def holder() -> None:
        with rlock:
            holding.set()
            waiter_parked.wait(60)
            with rlock:  # re-entry never parks: no wait, no cycle
                got.append(rlock.state().recursion)

    def waiter() -> None:
        with rlock:
            got.append(-1)

    first = threading.Thread(target=holder)
    first.start()
    assert holding.wait(60)
    second = threading.Thread(target=waiter)
    second.start()
    assert parked_on(rlock)
    waiter_parked.set()
    first.join(60)
    second.join(60)
    assert got == [2, -1]

    # A condition: the notifier holds the lock while the woken waiter
    # reacquires it, which is a wait but no cycle.
    lock = m.Lock()
    cond, state = m.Condition(lock), m.dict(go=False)
    woke: list[bool] = []
    inside = threading.Event()

    def cond_waiter() -> None:
        with cond:
            inside.set()
            woke.append(bool(cond.wait_for(lambda: state["go"], timeout=60)))

    thread = threading.Thread(target=cond_waiter)
    thread.start()
    # It held the lock, and let it go only by waiting.
    assert inside.wait(60)
    assert wait_until(lambda: not lock.locked(), timeout=30)
    with cond:
        state["go"] = True
        cond.notify()
        assert parked_on(lock)  # the waiter reacquires: behind us
        assert m.deadlocks() == []
    thread.join(60)
    assert woke == [True]

    assert h.found() == 0
    assert h.present() == 0
    assert m.deadlocks() == []


def test_condition_ping_pong_between_processes_is_no_cycle(
    hub: Callable[..., Hub],
) -> None:
    h = hub("--deadlock=fail")
    m = h.manager
    ctx = multiprocessing.get_context("spawn")
    cond, turn = m.Condition(m.Lock()), m.Value("i", 0)
    rounds = 20
    children = [
        ctx.Process(target=workers.ping_pong, args=(cond, turn, me, 1 - me, rounds))
        for me in (0, 1)
    ]
    for child in children:
        child.start()
    _join_all(children)
    assert h.found() == 0
    assert m.deadlocks() == []


# --- e. a plain Lock acquired twice by one thread ------------------------------


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_a_lock_acquired_twice_by_one_thread_is_a_cycle_of_one(
    hub: Callable[..., Hub], transport: str
) -> None:
    h = hub(transport=transport)  # report
    m = h.manager
    lock = m.Lock()
    assert lock.acquire()
    assert lock.acquire(timeout=0.5) is False  # as threading.Lock
    assert h.found() == 1
    assert m.deadlocks() == []  # the timeout ended it
    lock.release()

    # While it lasts it is listed: one edge, waiter and holder the same.
    acquired: list[bool] = []
    me: list[int] = []

    def twice() -> None:
        me.append(threading.get_ident())
        lock.acquire()
        acquired.append(lock.acquire())  # parks until someone releases

    thread = threading.Thread(target=twice)
    thread.start()
    assert wait_until(lambda: len(m.deadlocks()) == 1, timeout=30)
    (cycle,) = m.deadlocks()
    (edge,) = cycle.edges
    assert cycle.id == 2
    assert edge.lock == lock._token.name
    assert edge.waiter.thread_id == me[0]
    assert edge.waiter == edge.holder
    (through,) = lock.state().deadlocks
    assert (through.id, through.edges) == (cycle.id, cycle.edges)
    assert h.present() == 1
    lock.release()  # any thread may release a Lock: the wait is served
    thread.join(60)
    assert acquired == [True]
    lock.release()
    assert m.deadlocks() == []
    assert h.found() == 2
    assert h.present() == 0


def test_a_lock_acquired_twice_fails_at_once_under_fail(
    hub: Callable[..., Hub],
) -> None:
    h = hub("--deadlock=fail")
    lock = h.manager.named.Lock("dl/self")
    assert lock.acquire()
    with pytest.raises(statehub.DeadlockError) as caught:
        lock.acquire(timeout=60)
    assert caught.value.object == "dl/self"
    assert 'lock "dl/self"' in caught.value.message
    # The first acquisition stands.
    holder = lock.state().holder
    assert holder is not None
    assert (holder.session_id, holder.thread_id) == (
        h.session_id(),
        threading.get_ident(),
    )
    assert lock.state().waiters == ()
    lock.release()
    assert not lock.locked()
    assert h.found() == 1
    assert h.manager.deadlocks() == []


# --- a condition waiter's reacquire in a cycle ----------------------------------


@pytest.mark.parametrize("closer", ["acquire", "condition"])
def test_a_cycle_through_a_condition_reacquire_fails_the_plain_acquire(
    hub: Callable[..., Hub], closer: str
) -> None:
    """X holds L2 and waits on a condition of L1; Y takes L1, then wants L2.
    X reacquiring L1 (after a notify, or after its timeout) waits for Y,
    which waits for X: under fail, Y's plain acquire is the one refused,
    whichever wait closed the cycle, and X goes on once Y lets go."""
    h = hub("--deadlock=fail")
    m = h.manager
    l1, l2 = m.named.Lock("dl/c/l1"), m.named.Lock("dl/c/l2")
    cond = m.named.Condition("dl/c/cond", l1)
    x_waits, x_done = threading.Event(), []

    def x() -> None:
        with l2, cond:
            x_waits.set()
            # Notified, or (closer == "condition") a timeout long enough for
            # Y to take L1 first: either way it then reacquires L1.
            x_done.append(cond.wait(timeout=60 if closer == "acquire" else 3))

    thread = threading.Thread(target=x)
    thread.start()
    try:
        assert x_waits.wait(60)
        assert wait_until(lambda: not l1.locked(), timeout=30)  # X waits
        assert l1.acquire()
        if closer == "acquire":
            cond.notify()  # X now reacquires L1, which we hold
            assert parked_on(l1)
        with pytest.raises(statehub.DeadlockError) as caught:
            l2.acquire(timeout=60)
        message = caught.value.message
        assert caught.value.object == "dl/c/l2"
        assert 'lock "dl/c/l1"' in message and 'lock "dl/c/l2"' in message
        assert "reacquiring" in message  # X's edge is a condition wait
        l1.release()  # X reacquires and finishes
        thread.join(60)
        assert x_done == [closer == "acquire"]
    finally:
        thread.join(60)
    assert not l1.locked() and not l2.locked()
    assert h.found() == 1
    assert m.deadlocks() == []


def test_cli_says_a_lock_was_left_held_by_a_process_that_exited(
    server: RunningServer,
) -> None:
    # A child that exits normally holding a Lock leaves it held (as with
    # Manager); `statehub-cli locks` says so beside the holder.
    m = statehub.Manager(server.unix)
    try:
        lock = m.named.Lock("test_deadlocks/left")
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=workers.acquire_and_exit, args=(lock,))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        assert wait_until(lambda: lock.state().holder_left, 30)
        line = next(
            line
            for line in cli(server, "locks").splitlines()
            if "test_deadlocks/left" in line
        )
        assert "held by session" in line
        assert "(exited, leaving it held)" in line
        lock.release()
        assert "free" in next(
            line
            for line in cli(server, "locks").splitlines()
            if "test_deadlocks/left" in line
        )
        m.named.delete("test_deadlocks/left")
    finally:
        m.shutdown()
