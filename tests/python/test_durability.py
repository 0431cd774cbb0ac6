"""--data_dir: the state outlives the server. Each test SIGKILLs a real
statehub-server and starts it again on the same socket and data dir, with
real client processes, and checks what a user would: what was acknowledged
is there, what was held is still held, and what a dead process held passes
on with owner_died.

The crash loop is tests/soak/crash_loop.py (docs/reliability.md); its short
run is test_crash_loop_short.py."""

from __future__ import annotations

import glob
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import pytest
import statehub
from statehub._connection import close_all

from conftest import RunningServer, run_server_to_exit, start_server, wait_until


class Restartable:
    """A server on a data dir that a test kills and starts again on the
    same Unix socket."""

    def __init__(self, *flags: str) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="statehub-data-")
        self.flags = (f"--data_dir={self.data_dir}", *flags)
        self.server: RunningServer = start_server(*self.flags)

    @property
    def address(self) -> str:
        return self.server.unix

    def crash_and_restart(self) -> None:
        self.server.kill()
        self.server = start_server(*self.flags, directory=self.server.directory)

    def segments(self) -> list[str]:
        return sorted(glob.glob(os.path.join(self.data_dir, "log-*.log")))


@pytest.fixture(params=["always", "everysec", "no"])
def durable(request: pytest.FixtureRequest) -> Iterator[Restartable]:
    running = Restartable(f"--fsync={request.param}")
    yield running
    close_all()
    running.server.stop()


def test_everything_acknowledged_survives_sigkill(durable: Restartable) -> None:
    m = statehub.Manager(durable.address)
    jobs = m.named.dict("jobs")
    jobs.update({"a": 1, "b": [1, 2], "c": {"x": (1, 2.5)}})
    del jobs["a"]
    items = m.named.list("items")
    items.extend([1, 2, 3])
    items.insert(0, "first")
    items.sort(key=str)
    q = m.named.JoinableQueue("work")
    for job in ("j1", "j2", "j3"):
        q.put(job)
    assert q.get() == "j1"
    ns = m.named.Namespace("cfg")
    ns.mode = "fast"
    cell = m.named.Value("count", "i", 0)
    cell.value = 41
    arr = m.named.Array("arr", "d", [0.0, 0.0, 0.0])
    arr[1] = 2.5
    sem = m.named.BoundedSemaphore("slots", 3)
    assert sem.acquire()
    ev = m.named.Event("go")
    ev.set()
    anon = m.dict({"nested": m.list([1, 2])})
    lock = m.named.Lock("L")
    assert lock.acquire()
    token = lock.fencing_token
    rlock = m.named.RLock("R")
    assert rlock.acquire() and rlock.acquire()

    durable.crash_and_restart()

    assert jobs.copy() == {"b": [1, 2], "c": {"x": (1, 2.5)}}
    assert list(items) == [1, 2, 3, "first"]
    assert q.qsize() == 2 and q.get() == "j2"
    ns2 = m.named.Namespace("cfg")
    assert ns2.mode == "fast"
    assert cell.value == 41
    assert list(arr) == [0.0, 2.5, 0.0]
    assert m.named.BoundedSemaphore("slots", 3).get_value() == 2
    assert ev.is_set()
    assert list(anon["nested"]) == [1, 2]
    # What this process held, it still holds: its session was resumed.
    lock.release()
    rlock.release()
    rlock.release()
    with pytest.raises(RuntimeError):
        rlock.release()
    # Fencing tokens never go back.
    assert lock.acquire()
    assert lock.fencing_token > token
    lock.release()
    q.task_done()
    q.task_done()
    assert q.get() == "j3"
    q.task_done()
    m.shutdown()


HOLDER = """
import sys, time, statehub
m = statehub.Manager(sys.argv[1])
lock = m.named.Lock("held")
assert lock.acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_holder_dying_while_the_server_is_down_frees_its_lock() -> None:
    running = Restartable()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, running.address],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        running.server.kill()
        holder.kill()
        holder.wait()
        running.server = start_server(
            *running.flags, directory=running.server.directory
        )
        m = statehub.Manager(running.address)
        lock = m.named.Lock("held")
        # Held still: its session was recovered with a fresh lease (2 s).
        assert not lock.acquire(False)
        started = time.monotonic()
        assert lock.acquire(timeout=10)
        assert time.monotonic() - started > 0.5
        assert lock.owner_died
        lock.release()
        m.shutdown()
    finally:
        holder.kill()
        close_all()
        running.server.stop()


def test_a_second_server_on_the_same_data_dir_is_refused() -> None:
    running = Restartable()
    try:
        second = run_server_to_exit(
            f"--data_dir={running.data_dir}", socket_dir=running.data_dir
        )
        assert second.returncode != 0
        assert "in use by" in second.stderr
        assert f"pid {running.server.process.pid}" in second.stderr
    finally:
        running.server.stop()


def test_a_torn_last_record_is_cut_off_and_logged() -> None:
    running = Restartable()
    m = statehub.Manager(running.address)
    d = m.named.dict("d")
    d["kept"] = 1
    running.server.kill()
    # Half a record at the end, as a crash in the middle of a write leaves.
    with open(running.segments()[-1], "ab") as f:
        f.write(b"\x07\x00\x00\x00\x30\x00\x00\x00partial")
    with tempfile.TemporaryFile() as log:
        running.server = start_server(
            *running.flags, directory=running.server.directory, stderr=log
        )
        try:
            assert d.copy() == {"kept": 1}
            log.seek(0)
            assert "torn tail" in log.read().decode()
        finally:
            close_all()
            running.server.stop()


def test_a_corrupt_record_in_the_middle_stops_the_start() -> None:
    running = Restartable()
    m = statehub.Manager(running.address)
    d = m.named.dict("d")
    for i in range(20):
        d[f"k{i}"] = "x" * 100
    running.server.kill()
    close_all()
    segment = running.segments()[-1]
    size = os.path.getsize(segment)
    with open(segment, "r+b") as f:
        f.seek(size // 2)
        byte = f.read(1)
        f.seek(size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    started = run_server_to_exit(*running.flags, socket_dir=running.data_dir)
    assert started.returncode != 0
    assert segment in started.stderr
    assert "offset" in started.stderr


def test_revision_and_state_survive_a_clean_restart() -> None:
    """SIGTERM is a restart too (an upgrade, a drained node): the sessions
    the shutdown closes come back."""
    running = Restartable()
    m = statehub.Manager(running.address)
    lock = m.named.Lock("L")
    assert lock.acquire()
    assert running.server.stop() == 0
    running.server = start_server(*running.flags, directory=running.server.directory)
    try:
        assert wait_until(lambda: not m.named.Lock("probe").locked())
        lock.release()  # still ours
    finally:
        close_all()
        running.server.stop()


def test_snapshots_compact_the_log_and_a_restart_starts_from_them() -> None:
    running = Restartable(
        "--snapshot_log_bytes=20000", "--log_segment_bytes=8192", "--fsync=no"
    )
    try:
        m = statehub.Manager(running.address)
        counts = m.named.dict("counts")
        items = m.named.list("items")
        q = m.named.Queue("q")
        for i in range(600):
            counts.increment(f"k{i % 7}", 1)
            items.append(i)
            q.put(i)
            if i % 3 == 0:
                q.get()

        def snapshotted() -> bool:
            return bool(glob.glob(os.path.join(running.data_dir, "snap-*.snap")))

        assert wait_until(snapshotted, timeout=20)
        # The snapshot deleted the segments it covers: the log stays short.
        assert wait_until(lambda: len(running.segments()) < 6, timeout=20)
        expected = (counts.copy(), list(items), q.qsize())
        running.crash_and_restart()
        assert (counts.copy(), list(items), q.qsize()) == expected
        assert q.get() == 200  # 0..199 were taken, in order
        m.shutdown()
    finally:
        close_all()
        running.server.stop()


def test_a_full_disk_refuses_changes_and_serves_reads() -> None:
    """The log cannot grow (RLIMIT_FSIZE on the server stands in for a full
    disk): changes are refused with an error naming the log, never
    acknowledged; reads go on; once the log can grow again, so do changes,
    and nothing acknowledged is lost."""
    running = Restartable("--fsync=always")
    try:
        m = statehub.Manager(running.address)
        d = m.named.dict("d")
        d["before"] = 1
        pid = running.server.process.pid
        size = os.path.getsize(running.segments()[-1])
        # The soft limit only: lifting it again needs no privilege.
        resource.prlimit(
            pid, resource.RLIMIT_FSIZE, (size + 2048, resource.RLIM_INFINITY)
        )
        acknowledged = []
        refused = None
        for i in range(200):
            try:
                d[f"k{i}"] = "x" * 100
                acknowledged.append(f"k{i}")
            except statehub.errors.StatehubError as e:
                refused = e
                break
        assert refused is not None, "the log never filled up"
        assert "cannot write the log" in str(refused)
        assert d["before"] == 1  # reads are served
        with pytest.raises(statehub.errors.StatehubError, match="log"):
            d["refused"] = 1
        resource.prlimit(
            pid,
            resource.RLIMIT_FSIZE,
            (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
        )

        def writable() -> bool:
            try:
                d["after"] = 2
            except statehub.errors.StatehubError:
                return False
            return True

        assert wait_until(writable, timeout=10)
        running.crash_and_restart()
        contents = d.copy()
        for key in ["before", *acknowledged, "after"]:
            assert key in contents
        assert "refused" not in contents
        m.shutdown()
    finally:
        close_all()
        running.server.stop()
