"""The lane, the default transport: no grpcio on its path, one session per
process shared by its threads and links, robust locks freed the moment a
killed holder's socket closes, Ctrl-C cancelling parked calls, children of
every start method, and a server that survives bad input from raw sockets.
gRPC stays available as an option."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import statehub
from statehub import _connection, _lane_cancel
from statehub._connection import connection_for, normalize_address
from statehub._proto import lane_pb2, queue_pb2, session_pb2, sync_pb2, value_pb2
from statehub._proxy import Options

import workers
from conftest import REPO, RunningServer, start_server, wait_until

HEADER = struct.Struct("<IIHBB")
HELLO, WELCOME, REQUEST, RESPONSE, ERROR, CANCEL, PING, PONG = range(1, 9)
# google.rpc.Code numbers.
INVALID_ARGUMENT, FAILED_PRECONDITION, RESOURCE_EXHAUSTED = 3, 9, 8
CANCELLED, UNIMPLEMENTED = 1, 12
LOCKS_ACQUIRE = 80


# A child started from a process that ignores SIGINT (anything run in the
# background by a non-interactive shell) inherits that, and Python then
# installs no KeyboardInterrupt handler: the Ctrl-C tests would wait forever.
_CTRL_C_RAISES = (
    "import signal\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
)


def _child_python(code: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("STATEHUB_TRANSPORT", None)
    return subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_RAISES + code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
        **kwargs,
    )


def _expect_line(child: subprocess.Popen[str], expected: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != expected:
        child.kill()
        _, err = child.communicate(timeout=30)
        pytest.fail(f"child said {line!r}, not {expected!r}; stderr:\n{err}")


# -- a raw lane client ------------------------------------------------------


class Raw:
    """A lane connection by hand, to send what no statehub client would."""

    def __init__(self, server: RunningServer) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(server.unix[len("unix://") :])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frame(
        self, kind: int, body: bytes = b"", request_id: int = 0, method: int = 0
    ) -> None:
        self.send(HEADER.pack(len(body), request_id, method, kind, 0) + body)

    def hello(self, **fields: Any) -> session_pb2.Welcome:
        fields.setdefault("protocol_version", 1)
        self.send(b"SHLN")
        self.frame(HELLO, lane_pb2.LaneHello(**fields).SerializeToString())
        request_id, kind, body = self.read()
        assert (request_id, kind) == (0, WELCOME), lane_pb2.LaneError.FromString(body)
        return session_pb2.Welcome.FromString(body)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def read(self) -> tuple[int, int, bytes]:
        length, request_id, _, kind, _ = HEADER.unpack(self._exactly(HEADER.size))
        return request_id, kind, self._exactly(length)

    def error(self) -> tuple[int, lane_pb2.LaneError]:
        request_id, kind, body = self.read()
        assert kind == ERROR, (kind, body)
        return request_id, lane_pb2.LaneError.FromString(body)

    def closed(self) -> bool:
        """True once the server has closed the connection."""
        try:
            while self.sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(server: RunningServer) -> Iterator[Raw]:
    connection = Raw(server)
    yield connection
    connection.close()


def _still_serving(manager: statehub.SyncManager) -> None:
    d = manager.dict(ok=1)
    d["more"] = 2
    assert d.copy() == {"ok": 1, "more": 2}


# -- the transport ------------------------------------------------------------


def test_the_lane_is_the_default(manager: statehub.SyncManager) -> None:
    conn = connection_for(manager.address or "")
    assert type(conn).__name__ == "LaneConnection"
    assert conn.credentials.transport == "lane"


def test_no_grpc_on_the_lane_path(server: RunningServer) -> None:
    child = _child_python(
        "import statehub, sys\n"
        f"m = statehub.Manager({server.unix!r})\n"
        "d = m.dict(); d[1] = 2; assert d[1] == 2\n"
        "lock = m.Lock()\n"
        "with lock: pass\n"
        "q = m.Queue(); q.put('x'); assert q.get(timeout=5) == 'x'\n"
        "m.shutdown()\n"
        "assert 'grpc' not in sys.modules, 'grpc was imported'\n"
        "print('ok')\n"
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.strip() == "ok"


def test_the_grpc_transport_still_works(
    grpc_manager: statehub.SyncManager,
) -> None:
    conn = connection_for(grpc_manager.address or "")
    assert type(conn).__name__ == "GrpcConnection"
    d = grpc_manager.dict(a=1)
    d["b"] = 2
    assert d.copy() == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        d["missing"]
    lock = grpc_manager.Lock()
    assert lock.acquire(timeout=5)
    assert lock.acquire(timeout=0.05) is False
    lock.release()
    q = grpc_manager.Queue()
    q.put([1, 2])
    assert q.get(timeout=5) == [1, 2]


def test_transport_choice_and_its_errors(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert statehub.SyncManager(server.unix)._credentials.transport == "lane"
    grpc = statehub.SyncManager(server.unix, transport="grpc")
    assert grpc._credentials.transport == "grpc"
    monkeypatch.setenv("STATEHUB_TRANSPORT", "grpc")
    assert statehub.SyncManager(server.unix)._credentials.transport == "grpc"
    # The argument wins over the environment.
    lane = statehub.SyncManager(server.unix, transport="lane")
    assert lane._credentials.transport == "lane"
    monkeypatch.setenv("STATEHUB_TRANSPORT", "carrier-pigeon")
    with pytest.raises(ValueError, match="STATEHUB_TRANSPORT"):
        statehub.SyncManager(server.unix)
    monkeypatch.delenv("STATEHUB_TRANSPORT")
    with pytest.raises(ValueError, match="'lane' or 'grpc'"):
        statehub.SyncManager(server.unix, transport="http")
    # TLS is served only over gRPC.
    assert statehub.SyncManager("127.0.0.1:1", tls=True)._credentials.transport == (
        "grpc"
    )
    with pytest.raises(ValueError, match="no lane on its TLS listeners"):
        statehub.SyncManager("127.0.0.1:1", tls=True, transport="lane")


def test_the_transport_travels_with_pickled_proxies() -> None:
    credentials = _connection.make_credentials(
        None, False, None, None, None, transport="grpc"
    )
    options = Options(allow_pickle=False, timeout=5.0, credentials=credentials)
    assert pickle.loads(pickle.dumps(options)).credentials.transport == "grpc"


def test_a_second_manager_on_another_transport_is_refused(
    manager: statehub.SyncManager,
) -> None:
    with pytest.raises(ValueError, match="other credentials"):
        statehub.Manager(manager.address, transport="grpc")


def test_large_values_cross_in_many_reads(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    big = "x" * 3_000_000
    d["big"] = big
    assert d["big"] == big
    d["small"] = 1  # the link's buffer is back to its usual size, in step
    assert d["small"] == 1


# -- sessions -------------------------------------------------------------------


def test_threads_share_the_session(manager: statehub.SyncManager) -> None:
    conn = connection_for(manager.address or "")
    lock, rlock = manager.Lock(), manager.RLock()
    acquired, go = threading.Event(), threading.Event()
    seen: list[Any] = []

    def hold() -> None:
        lock.acquire()
        rlock.acquire()
        seen.append(conn.session_id())
        acquired.set()
        go.wait(30)
        rlock.release()
        lock.release()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert acquired.wait(30)
        state = lock.state()
        assert state.holder is not None
        # Held by this process's one session, from another thread.
        assert state.holder.session_id == conn.session_id() == seen[0]
        assert state.holder.thread_id == holder.ident
        assert lock.acquire(blocking=False) is False
        # An RLock belongs to (session, thread): not this thread's to release.
        with pytest.raises(RuntimeError):
            rlock.release()
    finally:
        go.set()
        holder.join(30)
    assert not lock.locked()


def test_keepalives_hold_the_lease_over_tcp(server: RunningServer) -> None:
    m = statehub.Manager(server.tcp)
    try:
        d = m.dict(a=1)
        conn = connection_for(m.address or "")
        before = conn.session_id()
        time.sleep(2.5)  # longer than the server's 2 s lease: PINGs renew it
        assert d["a"] == 1
        assert conn.session_id() == before
        assert m.describe(d).holders == 1
    finally:
        m.shutdown()


def test_a_broken_tcp_connection_resumes_the_session(server: RunningServer) -> None:
    m = statehub.Manager(server.tcp)
    try:
        d = m.dict(a=1)
        conn: Any = connection_for(m.address or "")
        before = conn.session_id()
        for link in list(conn._links):
            link.shutdown()  # every connection breaks, as on a network blip
        assert wait_until(lambda: conn.session.primary is not None and d["a"] == 1)
        assert conn.session_id() == before
        assert m.describe(d).holders == 1
    finally:
        m.shutdown()


# -- robust locks -----------------------------------------------------------------


def test_a_killed_holder_frees_its_lock_at_once(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    lock = manager.named.Lock("test-lane-killed-holder")
    child = _child_python(
        "import statehub, time\n"
        f"m = statehub.Manager({server.unix!r})\n"
        "lock = m.named.Lock('test-lane-killed-holder')\n"
        "assert lock.acquire(timeout=10)\n"
        "print('holding', flush=True)\n"
        "time.sleep(120)\n"
    )
    try:
        _expect_line(child, "holding")
        assert lock.locked()
        started = time.monotonic()
        child.send_signal(signal.SIGKILL)
        # The lease is 2 s: getting in well before it shows the closed
        # socket ended the session (typically within milliseconds; see
        # docs/python.md).
        assert lock.acquire(timeout=10)
        waited = time.monotonic() - started
        assert lock.owner_died
        assert waited < 1.0, waited
        lock.release()
    finally:
        child.kill()
        child.communicate(timeout=30)
        manager.named.delete("test-lane-killed-holder")


# -- Ctrl-C -------------------------------------------------------------------------


def test_ctrl_c_cancels_a_parked_acquire(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    lock = manager.named.Lock("test-lane-ctrl-c")
    assert lock.acquire(timeout=5)
    child = _child_python(
        "import statehub, sys\n"
        f"m = statehub.Manager({server.unix!r})\n"
        "lock = m.named.Lock('test-lane-ctrl-c')\n"
        "print('parking', flush=True)\n"
        "try:\n"
        "    lock.acquire()\n"
        "    print('acquired?!', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "assert not lock.state().waiters, 'the waiter is still parked'\n"
        "print('cancelled', flush=True)\n"
        "sys.stdin.readline()\n"
        "assert lock.acquire(timeout=10)\n"
        "lock.release()\n"
        "print('usable', flush=True)\n",
        stdin=subprocess.PIPE,
    )
    try:
        _expect_line(child, "parking")
        assert wait_until(lambda: len(lock.state().waiters) == 1)
        child.send_signal(signal.SIGINT)
        _expect_line(child, "interrupted")
        _expect_line(child, "cancelled")
        assert lock.state().holder is not None  # still ours, never granted
        lock.release()
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        _expect_line(child, "usable")
        assert child.wait(30) == 0
        assert not lock.locked()
    finally:
        child.kill()
        child.communicate(timeout=30)
        manager.named.delete("test-lane-ctrl-c")


def test_ctrl_c_cancels_a_parked_get(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    q = manager.named.Queue("test-lane-ctrl-c-queue")
    child = _child_python(
        "import statehub, sys\n"
        f"m = statehub.Manager({server.unix!r})\n"
        "q = m.named.Queue('test-lane-ctrl-c-queue')\n"
        "print('parking', flush=True)\n"
        "try:\n"
        "    q.get()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "sys.stdin.readline()\n"
        "print(q.get(timeout=10), flush=True)\n",
        stdin=subprocess.PIPE,
    )
    try:
        _expect_line(child, "parking")

        def getters() -> int:
            conn = connection_for(manager.address or "")
            state = conn.call(
                "Queues", "State", queue_pb2.QueueStateRequest(name=q._token.name)
            )
            return len(state.getters)

        assert wait_until(lambda: getters() == 1)
        child.send_signal(signal.SIGINT)
        _expect_line(child, "interrupted")
        assert wait_until(lambda: getters() == 0)
        # The cancelled get took nothing: the item goes to the next get.
        q.put("item")
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        _expect_line(child, "item")
        assert child.wait(30) == 0
    finally:
        child.kill()
        child.communicate(timeout=30)
        manager.named.delete("test-lane-ctrl-c-queue")


def test_a_served_wait_given_back_after_an_interrupt(
    manager: statehub.SyncManager,
) -> None:
    """What an interrupted call gives back when the server had served it
    before the CANCEL arrived (_lane_cancel._undo): a lock acquired is
    released; a barrier wait told to run the action breaks the barrier,
    so that the other parties do not wait for an action that never runs."""
    conn = connection_for(manager.address or "")
    lock = manager.Lock()
    request = lock._parked_request(sync_pb2.LockAcquireRequest, None, b"\x10\x01")
    response = conn.call("Locks", "Acquire", request, parked=True)
    assert response.acquired and lock.locked()
    _lane_cancel._undo(conn, ("Locks", "Acquire"), request, response)
    assert not lock.locked()

    barrier = manager.Barrier(2)
    outcome: list[BaseException | int] = []

    def other_party() -> None:
        try:
            outcome.append(barrier.wait(timeout=60))
        except BaseException as e:
            outcome.append(e)

    waiter = threading.Thread(target=other_party)
    waiter.start()
    assert wait_until(lambda: barrier.n_waiting == 1)
    request = barrier._parked_request(sync_pb2.BarrierWaitRequest, None, b"\x28\x01")
    response = conn.call("Barriers", "Wait", request, parked=True)
    assert response.run_action
    _lane_cancel._undo(conn, ("Barriers", "Wait"), request, response)
    waiter.join(30)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], threading.BrokenBarrierError)
    assert barrier.broken


# -- children -----------------------------------------------------------------------


@pytest.mark.processes
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_children_use_the_lane(manager: statehub.SyncManager, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    counter, lock, results = manager.dict(n=0), manager.Lock(), manager.list()
    children = [
        ctx.Process(target=workers.lane_child, args=(counter, lock, results))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert counter["n"] == 2
    mine = connection_for(manager.address or "").session_id()
    seen = list(results)
    assert sorted(pid for pid, _, _ in seen) == sorted(c.pid for c in children)
    assert {kind for _, kind, _ in seen} == {"LaneConnection"}
    sessions = {session for _, _, session in seen}
    assert len(sessions) == 2 and mine not in sessions  # one each, their own
    assert not lock.locked()


def test_a_forked_child_does_not_keep_its_parents_session_alive(
    server: RunningServer,
) -> None:
    # The parent dies while its forked child lives on: the parent's lock is
    # freed at once, since the child closed its copies of the sockets.
    parent = _child_python(
        "import os, statehub, time\n"
        f"m = statehub.Manager({server.unix!r})\n"
        "lock = m.named.Lock('test-lane-fork-parent')\n"
        "assert lock.acquire(timeout=10)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    m = statehub.Manager(server.unix)
    grandchild = 0
    try:
        assert parent.stdout is not None
        grandchild = int(parent.stdout.readline())
        lock = m.named.Lock("test-lane-fork-parent")
        assert wait_until(lock.locked)
        parent.send_signal(signal.SIGKILL)
        started = time.monotonic()
        assert lock.acquire(timeout=10)
        assert lock.owner_died
        assert time.monotonic() - started < 1.0  # not the 2 s lease
        lock.release()
    finally:
        # The grandchild first: it holds the parent's stdout pipe open.
        if grandchild:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)
        parent.kill()
        parent.communicate(timeout=30)
        m.named.delete("test-lane-fork-parent")
        m.shutdown()


# -- bad input from raw sockets -------------------------------------------------------


def test_a_wrong_preface_is_refused(manager: statehub.SyncManager, raw: Raw) -> None:
    raw.send(b"XYZW" + b"\x00" * 12)
    request_id, error = raw.error()
    assert (request_id, error.code) == (0, INVALID_ARGUMENT)
    assert error.detail.kind == value_pb2.ERROR_KIND_UNSPECIFIED
    assert raw.closed()
    _still_serving(manager)


def test_garbage_is_refused(manager: statehub.SyncManager, raw: Raw) -> None:
    raw.send(bytes(range(7, 256)) * 4)
    try:
        request_id, _ = raw.error()
        assert request_id == 0
    except (EOFError, ConnectionResetError):
        pass  # closed without a word is fine too
    assert raw.closed()
    _still_serving(manager)


def test_a_first_frame_other_than_hello_is_refused(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.send(b"SHLN")
    raw.frame(PING, request_id=1)
    request_id, error = raw.error()
    assert (request_id, error.code) == (0, INVALID_ARGUMENT)
    assert raw.closed()
    _still_serving(manager)


def test_a_wrong_protocol_version_is_refused(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.send(b"SHLN")
    raw.frame(HELLO, lane_pb2.LaneHello(protocol_version=2).SerializeToString())
    request_id, error = raw.error()
    assert (request_id, error.code) == (0, FAILED_PRECONDITION)
    assert raw.closed()
    _still_serving(manager)


def test_joining_a_session_that_is_not_live_is_refused(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.send(b"SHLN")
    raw.frame(
        HELLO,
        lane_pb2.LaneHello(
            protocol_version=1, join_session_id="00000000000000ab"
        ).SerializeToString(),
    )
    request_id, error = raw.error()
    assert request_id == 0
    assert error.detail.kind == value_pb2.SESSION_ERROR
    assert raw.closed()
    _still_serving(manager)


def test_a_truncated_frame_then_a_close(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.hello()
    raw.send(HEADER.pack(100, 1, 16, REQUEST, 0) + b"\x0a\x03ab")  # 5 of 100
    raw.close()
    _still_serving(manager)


def test_an_oversized_length_is_refused(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.hello()
    raw.send(HEADER.pack(0xFFFFFFFF, 7, 16, REQUEST, 0))
    request_id, error = raw.error()
    assert (request_id, error.code) == (7, RESOURCE_EXHAUSTED)
    assert raw.closed()
    _still_serving(manager)


def test_nonzero_flags_and_unknown_kinds_are_refused(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    for header in (HEADER.pack(0, 1, 0, PING, 1), HEADER.pack(0, 1, 0, 99, 0)):
        raw = Raw(server)
        try:
            raw.hello()
            raw.send(header)
            request_id, error = raw.error()
            assert (request_id, error.code) == (0, INVALID_ARGUMENT)
            assert raw.closed()
        finally:
            raw.close()
    _still_serving(manager)


def test_an_unknown_method_or_a_bad_body_leaves_the_connection_going(
    manager: statehub.SyncManager, raw: Raw
) -> None:
    raw.hello()
    raw.frame(REQUEST, b"", request_id=1, method=999)
    request_id, error = raw.error()
    assert (request_id, error.code) == (1, UNIMPLEMENTED)
    raw.frame(REQUEST, b"\xff\xff\xff", request_id=2, method=16)  # not a request
    request_id, error = raw.error()
    assert (request_id, error.code) == (2, INVALID_ARGUMENT)
    raw.frame(PING, request_id=3)
    assert raw.read()[:2] == (3, PONG)
    _still_serving(manager)


def test_a_client_that_vanishes_with_calls_parked(
    manager: statehub.SyncManager, server: RunningServer
) -> None:
    lock = manager.named.Lock("test-lane-vanish")
    assert lock.acquire(timeout=5)
    try:
        raws = [Raw(server) for _ in range(3)]
        for index, raw in enumerate(raws):
            raw.hello()
            for request_id in (1, 2):
                request = sync_pb2.LockAcquireRequest(
                    name="test-lane-vanish", blocking=True, thread_id=request_id
                )
                raw.frame(
                    REQUEST,
                    request.SerializeToString(),
                    request_id=request_id,
                    method=LOCKS_ACQUIRE,
                )
            if index == 0:
                raw.frame(CANCEL, request_id=1)
                assert raw.error()[1].code == CANCELLED
        assert wait_until(lambda: len(lock.state().waiters) == 5)
        for raw in raws:
            raw.close()
        assert wait_until(lambda: not lock.state().waiters)
        lock.release()
        # Nobody was granted it on the way out.
        assert lock.acquire(timeout=5)
        assert not lock.owner_died
        lock.release()
    finally:
        manager.named.delete("test-lane-vanish")
    _still_serving(manager)


def test_a_second_hello_is_refused(manager: statehub.SyncManager, raw: Raw) -> None:
    raw.hello()
    raw.frame(HELLO, lane_pb2.LaneHello(protocol_version=1).SerializeToString())
    request_id, error = raw.error()
    assert (request_id, error.code) == (0, INVALID_ARGUMENT)
    assert raw.closed()
    _still_serving(manager)


def test_the_normalized_address_is_the_servers(server: RunningServer) -> None:
    # A socket path and unix:// reach the same server over the lane.
    path = server.unix[len("unix://") :]
    assert normalize_address(path) == server.unix
    m = statehub.Manager(path)
    try:
        assert m.dict(a=1)["a"] == 1
    finally:
        m.shutdown()


def test_the_main_thread_waits_out_a_slow_reply_in_slices() -> None:
    # The main thread reads a reply in 0.1 s slices (so that Ctrl-C is
    # seen); a reply that takes several slices is still its call's.
    running = start_server()
    try:
        m = statehub.Manager(running.unix, transport="lane")
        d = m.dict()
        d["k"] = 1
        os.kill(running.process.pid, signal.SIGSTOP)
        waker = threading.Timer(
            0.45, os.kill, args=(running.process.pid, signal.SIGCONT)
        )
        waker.start()
        started = time.monotonic()
        assert d["k"] == 1
        d["k"] = 2
        assert time.monotonic() - started >= 0.4
        waker.join()
        assert d["k"] == 2
        m.shutdown()
    finally:
        os.kill(running.process.pid, signal.SIGCONT)
        running.stop()


def test_a_parked_call_on_the_main_thread_waits_in_slices(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    held = threading.Event()
    let_go = threading.Event()

    def holder() -> None:
        lock.acquire()
        held.set()
        let_go.wait(10)
        lock.release()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    # A timeout of several slices runs out as the acquire's own: False.
    started = time.monotonic()
    assert lock.acquire(timeout=0.35) is False
    assert time.monotonic() - started >= 0.3
    # No timeout: it waits as long as it takes.
    threading.Timer(0.45, let_go.set).start()
    assert lock.acquire() is True
    assert time.monotonic() - started >= 0.7
    lock.release()
    thread.join(10)


def test_a_pooled_link_taken_by_another_thread_meanwhile(
    manager: statehub.SyncManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between a call's look at the pool and its pop, another thread may take
    # the last link: the call then opens one of its own.
    d = manager.dict()
    d["k"] = 1
    conn = connection_for(d._token.address)
    assert conn._pool
    taken: list[Any] = []
    check = type(conn.held).check

    def another_thread_takes_the_links(self: Any) -> None:
        while conn._pool:
            taken.append(conn._pool.pop())
        check(self)

    monkeypatch.setattr(type(conn.held), "check", another_thread_takes_the_links)
    assert d["k"] == 1
    d["k"] = 2
    monkeypatch.undo()
    conn._pool.extend(taken)
    assert taken
    assert d["k"] == 2
