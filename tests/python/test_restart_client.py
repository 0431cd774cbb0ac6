"""What a client process sees when its server goes away and comes back
(docs/durability.md, "Clients"): it reconnects in the background at once and
resumes its session, so a lock held across a restart stays held even if the
process makes no call; calls parked or in flight are parked again or
retried when that is safe; and a session that could not be resumed is an
error (SessionLost), never silence. Real servers (SIGKILLed and started
again on the same socket) and real client processes; no mocks."""

from __future__ import annotations

import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import statehub
from statehub._connection import close_all, connection_for
from statehub._proto import session_pb2, session_pb2_grpc

from conftest import LEASE_TTL_SECONDS, REPO, RunningServer, start_server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Restartable:
    """A server that a test SIGKILLs and starts again on the same Unix
    socket (and TCP port), with a data dir unless told otherwise."""

    def __init__(self, *, durable: bool = True) -> None:
        directory = tempfile.mkdtemp(prefix="statehub-test-")
        self.port = _free_port()
        self.flags: tuple[str, ...] = (
            f"--listen=unix://{directory}/s.sock,127.0.0.1:{self.port}",
        )
        if durable:
            data_dir = tempfile.mkdtemp(prefix="statehub-data-")
            self.flags += (f"--data_dir={data_dir}",)
        self.server: RunningServer = start_server(*self.flags, directory=directory)

    def address(self, kind: str = "unix") -> str:
        return self.server.unix if kind == "unix" else self.server.tcp

    def crash_and_restart(self) -> None:
        self.server.kill()
        self.server = start_server(*self.flags, directory=self.server.directory)


@pytest.fixture
def durable() -> Iterator[Restartable]:
    running = Restartable()
    yield running
    close_all()
    running.server.stop()


@pytest.fixture
def volatile() -> Iterator[Restartable]:
    running = Restartable(durable=False)
    yield running
    close_all()
    running.server.stop()


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "STATEHUB_TRANSPORT"}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _line(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    return child.stdout.readline().strip()


def _has_output(child: subprocess.Popen[str]) -> bool:
    assert child.stdout is not None
    return bool(select.select([child.stdout], [], [], 0)[0])


# Tries to take lock "L" without blocking, over and over, until it gets it.
CONTENDER = """
import sys, time, statehub
m = statehub.Manager(sys.argv[1])
lock = m.named.Lock("L")
print("trying", flush=True)
while not lock.acquire(False):
    time.sleep(0.05)
print("got", lock.owner_died, flush=True)
lock.release()
m.shutdown()
"""


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_a_lock_held_across_a_restart_stays_held_without_any_call(
    durable: Restartable, kind: str
) -> None:
    m = statehub.Manager(durable.address(kind))
    lock = m.named.Lock("L")
    assert lock.acquire()
    token = lock.fencing_token

    durable.crash_and_restart()
    contender = _python(CONTENDER, durable.address())
    try:
        assert _line(contender) == "trying"
        # More than twice the lease (2 s) without a call: the client
        # reconnected in the background and resumed its session, which the
        # new server recovered with a fresh lease, now renewed.
        time.sleep(2.5 * LEASE_TTL_SECONDS)
        assert not _has_output(contender), "another process got the lock"
        lock.release()  # still ours
        assert _line(contender) == "got False"
        assert contender.wait(30) == 0
    finally:
        contender.kill()
    assert lock.acquire()
    assert lock.fencing_token > token
    lock.release()
    m.shutdown()


HOLDER = """
import sys, statehub
m = statehub.Manager(sys.argv[1])
lock = m.named.Lock("H")
assert lock.acquire()
print("held", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
m.shutdown()
"""


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_parked_calls_are_parked_again_after_a_restart(
    durable: Restartable, transport: str
) -> None:
    holder = _python(HOLDER, durable.address())
    try:
        assert _line(holder) == "held"
        m = statehub.Manager(durable.address(), transport=transport)
        jobs = m.named.Queue("jobs")
        idle = m.named.Queue("idle")
        go = m.named.Event("go")
        lock = m.named.Lock("H")
        results: dict[str, Any] = {}

        def run(name: str, call: Any) -> None:
            started = time.monotonic()
            try:
                results[name] = call()
            except BaseException as error:  # reported below
                results[name] = error
            results[name + " waited"] = time.monotonic() - started

        calls = {
            "get": lambda: jobs.get(timeout=60),
            "wait": lambda: go.wait(60),
            "acquire": lambda: lock.acquire(timeout=60),
            "empty": lambda: idle.get(timeout=3),
        }
        threads = [
            threading.Thread(target=run, args=item, daemon=True)
            for item in calls.items()
        ]
        for thread in threads:
            thread.start()
        assert _wait_for(lambda: len(lock.state().waiters) == 1)
        time.sleep(0.3)  # the others park too

        durable.crash_and_restart()

        jobs.put("job")
        go.set()
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert _line(holder) == "released"  # the holder resumed its session too
        for thread in threads:
            thread.join(60)
        assert results["get"] == "job"
        assert results["wait"] is True
        assert results["acquire"] is True
        lock.release()
        # A parked call keeps its timeout across the reconnect: the rest of
        # it, not a new one.
        assert isinstance(results["empty"], queue.Empty)
        assert results["empty waited"] >= 3
        m.shutdown()
    finally:
        holder.kill()


def _wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_calls_in_flight_are_retried_and_a_write_is_applied_once(
    durable: Restartable, transport: str
) -> None:
    m = statehub.Manager(durable.address(), transport=transport)
    d = m.named.dict("d")
    d["k"] = 1
    # Two links in the pool (a call made while another waits opens a second
    # one), so that both calls below go out at once, on links already open.
    go = m.named.Event("go")
    parked = threading.Thread(target=go.wait, args=(30,))
    parked.start()
    time.sleep(0.3)
    assert d["k"] == 1
    go.set()
    parked.join(30)

    results: dict[str, Any] = {}

    def read() -> None:
        try:
            results["read"] = d["k"]
        except BaseException as error:
            results["read"] = error

    def write() -> None:
        try:
            d["k"] = 2
            results["write"] = "applied"
        except BaseException as error:
            results["write"] = error

    # A stopped server reads nothing: both calls are sent and unanswered
    # when it is killed.
    os.kill(durable.server.process.pid, signal.SIGSTOP)
    threads = [threading.Thread(target=read), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    durable.crash_and_restart()
    for thread in threads:
        thread.join(60)

    # Both are sent again after the reconnect: the read reads, and the
    # write, numbered, runs once (it never reached the server this time).
    assert results["read"] in (1, 2)
    assert results["write"] == "applied"
    assert d["k"] == 2
    m.shutdown()


def test_a_restart_without_data_dir_raises_session_lost(volatile: Restartable) -> None:
    m = statehub.Manager(volatile.address())
    conn = connection_for(m.address or "")
    lock = m.named.Lock("L")
    d = m.named.dict("d")
    anonymous = m.dict(a=1)
    assert lock.acquire()
    old = conn.session_id()

    volatile.crash_and_restart()

    with pytest.raises(statehub.SessionLost) as caught:
        m.named.dict("d")  # any call, once per thread
    lost = caught.value
    assert isinstance(lost, statehub.SessionError)
    assert lost.session_id == old
    assert lost.new_session_id == conn.session_id() != old
    assert lost.released == ("L",)
    assert lost.objects == (anonymous._token.name,)
    message = str(lost)
    assert f"session {old} ended while the client was away" in message
    assert "restarted without --data_dir" in message
    assert 'lock "L"' in message
    assert anonymous._token.name in message

    # The next calls go on in the new session; proxies of named objects
    # work (once the objects exist on this new server: the call that raised
    # was not sent).
    assert m.named.dict("d").copy() == {}
    d["x"] = 1
    assert d.copy() == {"x": 1}
    with pytest.raises(statehub.ObjectNotFound):
        anonymous["b"] = 2  # gone with the old server

    # Releasing the lost lock raises, and never reaches the server, where
    # another process holds "L" now.
    holder = _python(HOLDER.replace('"H"', '"L"'), volatile.address())
    try:
        assert _line(holder) == "held"
        with pytest.raises(statehub.SessionLost):
            lock.release()
        assert lock.locked()
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert _line(holder) == "released"
    finally:
        holder.kill()
    with pytest.raises(RuntimeError):
        lock.release()  # only once per lost acquisition
    assert lock.acquire(timeout=10)
    lock.release()
    m.shutdown()


def test_a_new_session_that_lost_nothing_is_no_error(volatile: Restartable) -> None:
    m = statehub.Manager(volatile.address())
    lock = m.named.Lock("L")
    assert lock.acquire()
    lock.release()  # nothing held at the restart
    volatile.crash_and_restart()
    d = m.named.dict("d")
    d["x"] = 1
    assert d["x"] == 1
    m.shutdown()


def _end_session(server: RunningServer, session_id: str) -> None:
    """Ends a session behind its client's back, as the server does when the
    lease passes while the client is away (its process stopped, say)."""
    channel = grpc.insecure_channel(server.unix)
    requests = [
        session_pb2.SessionRequest(
            hello=session_pb2.Hello(resume_session_id=session_id)
        ),
        session_pb2.SessionRequest(goodbye=session_pb2.Goodbye()),
    ]
    replies = list(session_pb2_grpc.SessionsStub(channel).Connect(iter(requests)))
    assert replies[0].welcome.resumed
    channel.close()


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_a_session_ended_by_its_lease_raises_session_lost(
    server: RunningServer, transport: str
) -> None:
    close_all()
    m = statehub.Manager(server.unix, transport=transport)
    try:
        conn = connection_for(m.address or "")
        rlock = m.named.RLock("restart-client-R")
        sem = m.named.Semaphore("restart-client-S", 2)
        d = m.named.dict("restart-client-d")
        assert rlock.acquire() and rlock.acquire()
        assert sem.acquire()
        old = conn.session_id()
        _end_session(server, old)
        with pytest.raises(statehub.SessionLost) as caught:
            d["x"] = 1
        assert set(caught.value.released) == {"restart-client-R", "restart-client-S"}
        assert 'rlock "restart-client-R" (2 levels)' in str(caught.value)
        assert '1 unit of semaphore "restart-client-S"' in str(caught.value)
        d["x"] = 1  # told once: the thread goes on
        assert d["x"] == 1
        # Each lost acquisition raises at its release; nothing is released
        # on the server (the units went back when the session ended).
        for _ in range(2):
            with pytest.raises(statehub.SessionLost):
                rlock.release()
        with pytest.raises(statehub.SessionLost):
            sem.release()
        assert sem.get_value() == 2
        assert not rlock.locked()
    finally:
        m.named.delete("restart-client-d")
        m.shutdown()
        close_all()


def test_a_private_manager_with_a_data_dir_keeps_its_state(tmp_path: Path) -> None:
    data_dir = tmp_path / "state"
    with statehub.Manager(data_dir=data_dir) as m:
        m.named.dict("config").update(mode="fast", workers=4)
        m.named.list("log").extend(["started", "stopped"])
        m.named.Queue("jobs").put("j1")
    assert data_dir.is_dir()
    with statehub.Manager(data_dir=str(data_dir)) as m:
        assert m.named.dict("config").copy() == {"mode": "fast", "workers": 4}
        assert list(m.named.list("log")) == ["started", "stopped"]
        assert m.named.Queue("jobs").get(timeout=10) == "j1"
    with pytest.raises(ValueError, match="data_dir"):
        statehub.Manager("unix:///nowhere.sock", data_dir=data_dir)
