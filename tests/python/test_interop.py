"""Python and C++ on the same named objects: a dict, a lock (C++ holds,
Python waits, and the reverse), a condition ping-pong and a joinable queue.

The C++ side is tests/interop/interop_peer.cc, built next to the server
(its path follows $STATEHUB_SERVER, else <repo>/build). Real processes,
real server."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import statehub
from statehub._locks import LockProxy

from conftest import RunningServer, server_binary, wait_until


def peer_binary() -> str:
    binary = os.environ.get("STATEHUB_INTEROP_PEER") or str(
        Path(server_binary()).parents[1] / "tests" / "interop_peer"
    )
    if not os.access(binary, os.X_OK):
        pytest.fail(f"interop_peer not found at {binary}: ninja -C build interop_peer")
    return binary


class Peer:
    """One interop_peer process; lines of its stdout are read on demand."""

    def __init__(self, server: RunningServer, *args: str) -> None:
        self.process = subprocess.Popen(
            [peer_binary(), server.unix, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def finish(self) -> int:
        return self.process.wait(timeout=60)


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for peer in started:
        if peer.process.poll() is None:
            peer.process.kill()
            peer.process.wait()


def test_named_dict_is_shared(
    manager: statehub.SyncManager, server: RunningServer, peers: list[Peer]
) -> None:
    d = manager.named.dict("interop/dict")
    d["from_python"] = 1
    peers.append(Peer(server, "dict-set", "interop/dict", "from_cpp", "2"))
    assert peers[-1].line() == "ok"
    assert d["from_cpp"] == 2
    peers.append(Peer(server, "dict-get", "interop/dict", "from_python"))
    assert peers[-1].line() == "1"
    assert all(p.finish() == 0 for p in peers)


def test_cpp_holds_the_lock_python_waits(
    manager: statehub.SyncManager, server: RunningServer, peers: list[Peer]
) -> None:
    lock = manager.named.Lock("interop/lock-cpp")
    peer = Peer(server, "lock-hold", "interop/lock-cpp")
    peers.append(peer)
    word, token = peer.line().split()
    assert word == "held"
    assert not lock.acquire(timeout=0.2)
    assert lock.state().holder is not None
    assert "interop_peer" in lock.state().holder.label

    got = threading.Event()
    tokens: list[int] = []

    def wait_for_it() -> None:
        if lock.acquire():
            tokens.append(lock.fencing_token)  # this thread's acquisition
            got.set()

    waiter = threading.Thread(target=wait_for_it)
    waiter.start()
    assert not got.wait(0.3)  # parked behind the C++ holder
    peer.send("release")
    assert peer.line() == "released"
    waiter.join(30)
    assert got.is_set()
    assert tokens[0] > int(token)
    lock.release()
    assert peer.finish() == 0


def test_python_holds_the_lock_cpp_waits(
    manager: statehub.SyncManager, server: RunningServer, peers: list[Peer]
) -> None:
    lock = manager.named.Lock("interop/lock-py")
    assert lock.acquire()
    mine = lock.fencing_token
    peer = Peer(server, "lock-acquire", "interop/lock-py")
    peers.append(peer)
    assert statehub_waiters(lock) == 1
    lock.release()
    word, token, owner_died = peer.line().split()
    assert (word, owner_died) == ("acquired", "0")
    assert int(token) > mine
    assert peer.finish() == 0


def statehub_waiters(lock: LockProxy, timeout: float = 10.0) -> int:
    """Waits until someone waits for `lock`; returns how many."""
    wait_until(lambda: len(lock.state().waiters) > 0, timeout)
    return len(lock.state().waiters)


def test_condition_ping_pong_with_cpp(
    manager: statehub.SyncManager, server: RunningServer, peers: list[Peer]
) -> None:
    rounds = 200
    lock = manager.named.Lock("interop/pp-lock")
    cond = manager.named.Condition("interop/pp", lock)
    state = manager.named.dict("interop/pp-state", turn="cpp")
    peer = Peer(
        server, "pong", "interop/pp", "interop/pp-lock", "interop/pp-state", str(rounds)
    )
    peers.append(peer)
    for _ in range(rounds):
        with cond:
            assert cond.wait_for(lambda: state["turn"] == "py", timeout=30)
            state["turn"] = "cpp"
            cond.notify()
    assert peer.line() == f"rounds {rounds}"
    assert peer.finish() == 0
    assert state["turn"] == "cpp"


def test_joinable_queue_between_python_and_cpp(
    manager: statehub.SyncManager, server: RunningServer, peers: list[Peer]
) -> None:
    jobs = manager.named.JoinableQueue("interop/jobs")
    consumer = Peer(server, "consume", "interop/jobs", "50")
    peers.append(consumer)
    for i in range(50):
        jobs.put(i)
    jobs.join()  # returns once the C++ consumer marked every item done
    assert consumer.line() == f"sum {sum(range(50))}"
    assert consumer.finish() == 0

    producer = Peer(server, "produce", "interop/jobs", "20")
    peers.append(producer)
    assert producer.line() == "put 20"
    assert [jobs.get(timeout=10) for _ in range(20)] == list(range(20))
    assert producer.finish() == 0
