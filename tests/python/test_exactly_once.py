"""Numbered calls: a call that changes state, sent again after its
connection broke, is applied once (docs/durability.md, "Exactly once").

The raw lane client sends what the Python client sends on a reconnect, at
moments a test chooses: the same numbered REQUEST again, on the same
connection, on a new one, and after the server was SIGKILLed and started
again on its data dir. The crash loop (test_crash_loop_short.py) checks the
same through the Python client under load: no call fails, none is applied
twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import statehub
from statehub._connection import close_all, connection_for, normalize_address
from statehub._frames import METHODS, NUMBER, NUMBERED
from statehub._proto import dict_pb2, lane_pb2, value_pb2

from conftest import RunningServer
from test_durability import Restartable
from test_lane import ERROR, HEADER, INVALID_ARGUMENT, REQUEST, RESPONSE, Raw

INCREMENT = METHODS[("Dicts", "Increment")][0]


@pytest.fixture(params=["always", "everysec"])
def durable(request: pytest.FixtureRequest) -> Iterator[Restartable]:
    running = Restartable(f"--fsync={request.param}")
    yield running
    close_all()
    running.server.stop()


def _increment(
    raw: Raw, number: int, seen: int, request_id: int = 1, flags: int = NUMBERED
) -> int:
    """Sends a numbered Dicts.Increment of counts["k"]; returns the value
    the server answered."""
    body = dict_pb2.DictIncrementRequest(
        name="counts", key=value_pb2.Value(string_value="k")
    ).SerializeToString()
    raw.send(
        HEADER.pack(16 + len(body), request_id, INCREMENT, REQUEST, flags)
        + NUMBER.pack(number, seen)
        + body
    )
    rid, kind, payload = raw.read()
    assert (rid, kind) == (request_id, RESPONSE), lane_pb2.LaneError.FromString(payload)
    return dict_pb2.DictIncrementResponse.FromString(payload).value.int_value


def _connect(durable: Restartable, session: str = "") -> tuple[Raw, str]:
    """A raw lane connection that opens (or resumes) a session: the
    connection and the session id."""
    raw = Raw(durable.server)
    welcome = raw.hello(resume_session_id=session)
    assert welcome.number_calls, "a server with a data dir advises numbering"
    assert welcome.resumed == bool(session)
    return raw, welcome.session_id


def test_a_numbered_call_sent_again_gets_its_first_answer_across_a_restart(
    durable: Restartable,
) -> None:
    m = statehub.Manager(durable.address)
    counts = m.named.dict("counts")
    raw, session = _connect(durable)
    try:
        assert _increment(raw, number=1, seen=1) == 1
        # The same call again, on the same connection: answered, not run.
        assert _increment(raw, number=1, seen=1, request_id=2) == 1
        assert counts["k"] == 1
        # A new call runs.
        assert _increment(raw, number=2, seen=1, request_id=3) == 2
        # The server dies with both answers remembered (and the connection
        # that owns the session open: its close would end the session);
        # the session comes back with them, and the calls sent again
        # change nothing.
        durable.crash_and_restart()
    finally:
        raw.close()
    raw, _ = _connect(durable, session)
    try:
        assert _increment(raw, number=1, seen=1) == 1
        assert _increment(raw, number=2, seen=1, request_id=2) == 2
        assert _increment(raw, number=3, seen=3, request_id=3) == 3
    finally:
        raw.close()
    assert counts["k"] == 3
    m.shutdown()


def test_numbered_calls_are_advised_only_where_a_session_can_outlive_its_connection(
    server: RunningServer,
) -> None:
    """On a Unix socket to a server without a data dir, the session ends
    with the connection: there is nothing to retry, and numbering would
    only cost the server remembered answers."""
    raw = Raw(server)
    try:
        assert not raw.hello().number_calls
    finally:
        raw.close()


def test_bad_numbered_requests_are_refused_naming_what_is_wrong(
    durable: Restartable,
) -> None:
    raw, _ = _connect(durable)
    try:
        # Shorter than the 16 bytes of number and seen.
        raw.send(HEADER.pack(4, 1, INCREMENT, REQUEST, NUMBERED) + b"\x01\x00\x00\x00")
        request_id, kind, body = raw.read()
        error = lane_pb2.LaneError.FromString(body)
        assert (request_id, kind, error.code) == (1, ERROR, INVALID_ARGUMENT)
        assert "16 bytes" in error.message
        # Number 0.
        raw.send(HEADER.pack(16, 2, INCREMENT, REQUEST, NUMBERED) + NUMBER.pack(0, 0))
        request_id, kind, body = raw.read()
        error = lane_pb2.LaneError.FromString(body)
        assert (request_id, kind, error.code) == (2, ERROR, INVALID_ARGUMENT)
        assert "numbered 0" in error.message
        # The connection goes on.
        m = statehub.Manager(durable.address)
        m.named.dict("counts")
        assert _increment(raw, number=1, seen=1, request_id=3) == 1
        m.shutdown()
        # Number 1 again, with another rpc: refused, not answered with the
        # increment's response.
        body = dict_pb2.DictDeleteRequest(
            name="counts", key=value_pb2.Value(string_value="k")
        ).SerializeToString()
        delete = METHODS[("Dicts", "Delete")][0]
        raw.send(
            HEADER.pack(16 + len(body), 5, delete, REQUEST, NUMBERED)
            + NUMBER.pack(1, 1)
            + body
        )
        request_id, kind, body = raw.read()
        error = lane_pb2.LaneError.FromString(body)
        assert (request_id, kind, error.code) == (5, ERROR, INVALID_ARGUMENT)
        assert "another rpc (lane method id 27)" in error.message
        # A flag that does not exist ends the connection.
        raw.send(HEADER.pack(0, 4, INCREMENT, REQUEST, 0x02))
        request_id, kind, body = raw.read()
        error = lane_pb2.LaneError.FromString(body)
        assert (request_id, kind, error.code) == (0, ERROR, INVALID_ARGUMENT)
        assert "NUMBERED" in error.message
        assert raw.closed()
    finally:
        raw.close()


def test_numbered_calls_over_grpc_are_answered_once(server: RunningServer) -> None:
    """gRPC carries the number in "statehub-call" metadata; a gRPC session
    lives by its lease, so the server always honours it."""
    grpc = pytest.importorskip("grpc")
    close_all()
    m = statehub.Manager(server.unix, transport="grpc")
    try:
        counts = m.named.dict("counts-grpc")
        conn = connection_for(normalize_address(server.unix))
        stub = conn._stubs["Dicts"]  # type: ignore[attr-defined]
        request = dict_pb2.DictIncrementRequest(
            name="counts-grpc", key=value_pb2.Value(string_value="k")
        )

        def increment(call: str) -> int:
            session = conn.session_id()
            metadata = (("statehub-session", session), ("statehub-call", call))
            return int(stub.Increment(request, metadata=metadata).value.int_value)

        # Numbers far past the client's own (it numbers its calls too).
        assert increment("1001 1") == 1
        assert increment("1001 1") == 1
        assert increment("1002 1") == 2
        assert counts["k"] == 2
        with pytest.raises(grpc.RpcError) as refused:
            increment("0 1")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "statehub-call" in refused.value.details()
        assert counts["k"] == 2
    finally:
        m.shutdown()
        close_all()


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_a_write_in_flight_when_the_server_dies_is_applied_once(
    transport: str,
) -> None:
    """What a program sees: a pause, then the increment's answer; the
    counter went up once."""
    if transport == "grpc":
        pytest.importorskip("grpc")
    close_all()
    running = Restartable("--fsync=always")
    try:
        m = statehub.Manager(running.address, transport=transport)
        counts = m.named.dict("counts")
        counts["k"] = 0
        results: dict[str, Any] = {}

        def increment() -> None:
            try:
                results["answer"] = counts.increment("k", 1)
            except BaseException as error:
                results["answer"] = error

        # A stopped server reads nothing: the call is sent and unanswered
        # when the server is killed.
        os.kill(running.server.process.pid, signal.SIGSTOP)
        thread = threading.Thread(target=increment)
        thread.start()
        time.sleep(0.5)
        running.crash_and_restart()
        thread.join(60)
        assert results["answer"] == 1
        assert counts["k"] == 1
        m.shutdown()
    finally:
        close_all()
        running.server.stop()


@pytest.mark.parametrize("transport", ["lane", "grpc"])
def test_a_put_parked_across_a_restart_waits_as_long_as_it_would_have(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A put parked on a full queue when the server dies is sent again
    (numbered) and parks again for as long as it was going to: not only
    for the client's wait for the server to come back."""
    if transport == "grpc":
        pytest.importorskip("grpc")
        import statehub._grpc as grpc_transport

        monkeypatch.setattr(grpc_transport, "RECONNECT_WAIT", 3.0)
    import statehub._reconnect as reconnect

    monkeypatch.setattr(reconnect, "RECONNECT_WAIT", 3.0)
    close_all()
    running = Restartable("--fsync=always")
    try:
        m = statehub.Manager(running.address, transport=transport)
        q = m.named.Queue("full", 1)
        q.put("first")
        results: dict[str, Any] = {}

        def put() -> None:
            try:
                q.put("second")
                results["put"] = "done"
            except BaseException as error:
                results["put"] = error

        thread = threading.Thread(target=put)
        thread.start()
        time.sleep(0.5)  # parked on the full queue
        running.crash_and_restart()
        time.sleep(4.5)  # well past the (shortened) wait for the server
        assert thread.is_alive(), results
        assert q.get(timeout=10) == "first"
        thread.join(30)
        assert results["put"] == "done"
        assert q.get(timeout=10) == "second"
        assert q.qsize() == 0
        m.shutdown()
    finally:
        close_all()
        running.server.stop()
