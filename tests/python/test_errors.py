"""Error mapping: each server error kind raises its statehub exception, which
is also the builtin a Manager proxy raises."""

from __future__ import annotations

import builtins
import multiprocessing
import os
import threading
from collections.abc import Iterator

import grpc
import pytest
import statehub
from statehub import errors
from statehub._connection import connection_for, normalize_address
from statehub._grpc import translate_rpc_error
from statehub._proto import (
    dict_pb2,
    dict_pb2_grpc,
    objects_pb2,
    session_pb2,
    session_pb2_grpc,
    value_pb2,
)

from conftest import RunningServer, start_server, wait_until


@pytest.fixture(scope="module")
def small_server() -> Iterator[RunningServer]:
    """A server with tiny limits, to hit them."""
    running = start_server("--max_elements=4", "--max_value_bytes=256", "--max_depth=4")
    yield running
    running.stop()


def test_key_error(manager: statehub.SyncManager) -> None:
    with pytest.raises(statehub.StatehubKeyError) as caught:
        manager.dict().pop("k")
    assert isinstance(caught.value, KeyError) and caught.value.args == ("k",)
    with pytest.raises(KeyError, match="dictionary is empty"):
        manager.dict().popitem()


def test_index_error(manager: statehub.SyncManager) -> None:
    with pytest.raises(statehub.StatehubIndexError) as caught:
        manager.list().pop()
    assert isinstance(caught.value, IndexError)
    assert caught.value.code == "OUT_OF_RANGE"


def test_value_error(manager: statehub.SyncManager) -> None:
    with pytest.raises(statehub.StatehubValueError) as caught:
        manager.list([1]).index(2)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError):
        manager.named.dict("bad name with spaces")


def test_type_error_names_both_types(manager: statehub.SyncManager) -> None:
    manager.named.dict("test-errors-typed")
    try:
        with pytest.raises(statehub.StatehubTypeError) as caught:
            manager.named.list("test-errors-typed")
        assert isinstance(caught.value, TypeError)
        assert "dict" in str(caught.value) and "list" in str(caught.value)
        assert caught.value.object == "test-errors-typed"
    finally:
        manager.named.delete("test-errors-typed")


def test_attribute_error(manager: statehub.SyncManager) -> None:
    with pytest.raises(statehub.StatehubAttributeError) as caught:
        del manager.Namespace().gone
    assert isinstance(caught.value, AttributeError)


def test_runtime_error(manager: statehub.SyncManager) -> None:
    d = manager.dict(a=1, b=2)
    with pytest.raises(statehub.StatehubRuntimeError) as caught:
        for key in d:
            del d[key]
    assert isinstance(caught.value, RuntimeError)


def test_object_not_found(manager: statehub.SyncManager) -> None:
    d = manager.named.dict("test-errors-deleted")
    manager.named.delete("test-errors-deleted")
    with pytest.raises(statehub.ObjectNotFound) as caught:
        d["x"] = 1
    assert caught.value.object == "test-errors-deleted"
    with pytest.raises(statehub.ObjectNotFound):
        manager.named.delete("test-errors-deleted")
    with pytest.raises(statehub.ObjectNotFound):
        manager.describe("test-errors-never")
    with pytest.raises(statehub.ObjectNotFound):
        manager.named.Array("test-errors-never")


def test_limit_exceeded_names_the_limit(small_server: RunningServer) -> None:
    m = statehub.Manager(small_server.unix)
    try:
        lst = m.list([1, 2, 3, 4])
        with pytest.raises(statehub.LimitExceeded) as caught:
            lst.append(5)
        assert caught.value.limit == "max_elements"
        assert caught.value.code == "RESOURCE_EXHAUSTED"
        with pytest.raises(statehub.LimitExceeded) as big:
            lst[0] = "x" * 1000
        assert big.value.limit == "max_value_bytes"
        with pytest.raises(statehub.LimitExceeded) as deep:
            lst[0] = [[[[[[1]]]]]]
        assert deep.value.limit == "max_depth"
        assert lst.copy() == [1, 2, 3, 4]
    finally:
        m.shutdown()


def test_session_error_from_the_server(server: RunningServer) -> None:
    # A call naming a session that is not live: the funnel's translation of
    # the server's real reply. (The funnel itself renews and retries.)
    channel = grpc.insecure_channel(server.unix)
    stub = dict_pb2_grpc.DictsStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Len(
            dict_pb2.DictLenRequest(name="x"),
            metadata=(("statehub-session", "00000000000000ab"),),
            timeout=5,
        )
    error = translate_rpc_error(
        caught.value, normalize_address(server.unix), key=object()
    )
    assert type(error) is statehub.SessionError
    assert error.kind == "SESSION_ERROR"
    channel.close()


def test_expired_session_is_renewed_transparently(server: RunningServer) -> None:
    m = statehub.Manager(server.unix)
    try:
        d = m.named.dict("test-errors-renew")
        kept = m.list([1])
        d["kept"] = kept  # a ref keeps it alive while no session holds it
        conn = connection_for(m.address or "")
        old = conn.session_id()
        # The session ends behind the client's back (as when a paused
        # process outlives its lease): another stream resumes it and says
        # Goodbye. The next call is refused with SESSION_ERROR, and the
        # funnel gets a new session and retries once.
        _end_session(server, old)
        d["x"] = 1
        assert d["x"] == 1
        assert conn.session_id() != old
        # The new session took this process's hold on the list again.
        assert wait_until(lambda: m.describe(kept).holders == 1)
        assert kept[0] == 1
    finally:
        m.named.delete("test-errors-renew")
        m.shutdown()


def _end_session(server: RunningServer, session_id: str) -> None:
    channel = grpc.insecure_channel(server.unix)
    requests = [
        session_pb2.SessionRequest(
            hello=session_pb2.Hello(resume_session_id=session_id)
        ),
        session_pb2.SessionRequest(goodbye=session_pb2.Goodbye()),
    ]
    replies = list(session_pb2_grpc.SessionsStub(channel).Connect(iter(requests)))
    assert replies[0].welcome.session_id == session_id
    assert replies[0].welcome.resumed
    channel.close()


def test_every_kind_has_its_class() -> None:
    expected = {
        "KEY_ERROR": (statehub.StatehubKeyError, KeyError),
        "INDEX_ERROR": (statehub.StatehubIndexError, IndexError),
        "VALUE_ERROR": (statehub.StatehubValueError, ValueError),
        "TYPE_ERROR": (statehub.StatehubTypeError, TypeError),
        "ATTRIBUTE_ERROR": (statehub.StatehubAttributeError, AttributeError),
        "RUNTIME_ERROR": (statehub.StatehubRuntimeError, RuntimeError),
        "OBJECT_NOT_FOUND": (statehub.ObjectNotFound, statehub.StatehubError),
        "LIMIT_EXCEEDED": (statehub.LimitExceeded, statehub.StatehubError),
        "SESSION_ERROR": (statehub.SessionError, statehub.StatehubError),
        "BROKEN_BARRIER": (statehub.BrokenBarrierError, threading.BrokenBarrierError),
        "UNAUTHENTICATED": (
            statehub.AuthenticationError,
            multiprocessing.AuthenticationError,
        ),
        "DEADLOCK": (statehub.DeadlockError, RuntimeError),
        "WATCH_TOO_OLD": (statehub.WatchTooOld, statehub.StatehubError),
    }
    names = {value_pb2.ErrorKind.Name(k) for k in value_pb2.ErrorKind.values()}
    assert names - {"ERROR_KIND_UNSPECIFIED"} == set(expected)
    for kind, (cls, builtin) in expected.items():
        error = errors.error_for_kind(kind, "message", object="o", limit="lst")
        assert type(error) is cls
        assert isinstance(error, builtin) and isinstance(error, statehub.StatehubError)
        assert error.object == "o"


def test_connection_errors_are_builtin_connection_errors(
    tmp_path: os.PathLike[str],
) -> None:
    with pytest.raises(statehub.ConnectionError) as caught:
        statehub.Manager(f"unix://{tmp_path}/nobody.sock")
    assert isinstance(caught.value, builtins.ConnectionError)
    assert isinstance(caught.value, OSError)


def test_deadline_exceeded(server: RunningServer) -> None:
    m = statehub.Manager(server.unix, timeout=-1)  # already past
    try:
        with pytest.raises(statehub.DeadlineExceeded) as caught:
            m.dict()
        assert isinstance(caught.value, TimeoutError)
        assert isinstance(caught.value, statehub.ConnectionError)
    finally:
        m.shutdown()


def test_server_gone_is_a_connection_error() -> None:
    m = statehub.Manager()
    d = m.dict()
    m.shutdown()
    with pytest.raises(statehub.ConnectionError):
        d["x"] = 1


def test_unknown_kind_request_rpc_check(server: RunningServer) -> None:
    # Objects.Open without a type is refused by the server, not the client.
    m = statehub.Manager(server.unix)
    try:
        conn = connection_for(m.address or "")
        with pytest.raises(statehub.StatehubError):
            conn.call("Objects", "Open", objects_pb2.OpenRequest(name="x"))
    finally:
        m.shutdown()


def test_synchronization_error_kinds(manager: statehub.SyncManager) -> None:
    """BROKEN_BARRIER, RUNTIME_ERROR (release unheld, wait without the lock)
    and VALUE_ERROR (bounded over-release) raise what threading raises."""
    barrier = manager.Barrier(2)
    barrier.abort()
    with pytest.raises(threading.BrokenBarrierError) as broken:
        barrier.wait()
    assert isinstance(broken.value, statehub.StatehubError)
    assert (broken.value.kind, broken.value.code) == ("BROKEN_BARRIER", "ABORTED")
    with pytest.raises(RuntimeError) as unheld:
        manager.Lock().release()
    assert (unheld.value.kind, unheld.value.code) == (  # type: ignore[attr-defined]
        "RUNTIME_ERROR",
        "FAILED_PRECONDITION",
    )
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        manager.Condition().wait(0)
    with pytest.raises(ValueError, match="Semaphore released too many times"):
        manager.BoundedSemaphore(2).release()
