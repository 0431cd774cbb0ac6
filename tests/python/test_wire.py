"""Requests written straight in wire form (statehub._wire) are the bytes
protobuf would serialize for the same message (a parked call's parse to
it), and the proxies that use
them behave as before on both transports, including for the values that
must take the ordinary path (subclasses, containers, big ints, strings
with lone surrogates)."""

from __future__ import annotations

import enum
import math
import threading
from typing import Any

import pytest
import statehub
from statehub import _codec
from statehub._proto import (
    cell_pb2,
    dict_pb2,
    list_pb2,
    namespace_pb2,
    queue_pb2,
    sync_pb2,
    value_pb2,
)
from statehub._proxy import Options
from statehub._waits import caller, duration
from statehub._wire import (
    NOT_SCALAR,
    Encoded,
    scalar_reply,
    scalar_value,
    string_field,
    value_field,
    varint,
)

OPTIONS = Options(allow_pickle=False, timeout=None)


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    127,
    128,
    300,
    2**14 - 1,
    2**14,
    2**21 - 1,
    2**21,
    2**31,
    2**63 - 1,
    -1,
    -128,
    -(2**63),
    0.0,
    -0.0,
    1.5,
    -2.25e300,
    math.inf,
    -math.inf,
    "",
    "k",
    "ключ",
    "x" * 200,
    "🙂" * 50,
    b"",
    b"\x00\xff",
    b"y" * 300,
]

NOT_SCALARS: list[Any] = [
    2**63,
    -(2**63) - 1,
    "\udc80",
    Level.HIGH,
    Text("t"),
    [1],
    (1, 2),
    {"a": 1},
    bytearray(b"b"),
]


def test_varint_is_protobufs() -> None:
    for n in (0, 1, 127, 128, 255, 300, 2**32, 2**63, 2**64 - 1):
        message = value_pb2.Value(int_value=n - 2**64 if n >= 2**63 else n)
        assert b"\x18" + varint(n) == message.SerializeToString()


@pytest.mark.parametrize("obj", SCALARS, ids=repr)
def test_a_scalar_value_is_the_message_serialized(obj: Any) -> None:
    expected = _codec.encode(obj, "unix:///unused", OPTIONS).SerializeToString()
    assert scalar_value(obj) == expected


@pytest.mark.parametrize("obj", SCALARS, ids=repr)
def test_a_request_is_the_message_serialized(obj: Any) -> None:
    key = _codec.encode_key(obj)
    value = _codec.encode(obj, "unix:///unused", OPTIONS)
    name = "jobs/ключ"
    wire_name = string_field(b"\x0a", name)
    assert wire_name is not None
    cases = [
        (
            dict_pb2.DictSetRequest(name=name, key=key, value=value),
            [value_field(b"\x12", obj), value_field(b"\x1a", obj)],
        ),
        (dict_pb2.DictGetRequest(name=name, key=key), [value_field(b"\x12", obj)]),
        (
            dict_pb2.DictGetRequest(name=name, key=key, default=value_pb2.Value()),
            [value_field(b"\x12", obj), b"\x1a\x00"],
        ),
        (cell_pb2.ValueSetRequest(name=name, value=value), [value_field(b"\x12", obj)]),
        (
            list_pb2.ListAppendRequest(name=name, value=value),
            [value_field(b"\x12", obj)],
        ),
        (
            namespace_pb2.NamespaceSetRequest(name=name, attribute="a", value=value),
            [string_field(b"\x12", "a"), value_field(b"\x1a", obj)],
        ),
    ]
    for message, fields in cases:
        assert None not in fields
        body = wire_name + b"".join(fields)  # type: ignore[arg-type]
        assert body == message.SerializeToString(), message
        assert Encoded(type(message), name, body).message() == message


@pytest.mark.parametrize("obj", NOT_SCALARS, ids=repr)
def test_anything_else_is_left_to_the_message(obj: Any) -> None:
    assert scalar_value(obj) is None
    assert value_field(b"\x12", obj) is None


def test_an_empty_or_unencodable_string_field() -> None:
    assert string_field(b"\x12", "") == b""
    assert string_field(b"\x12", "\ud800") is None


@pytest.fixture(params=["lane", "grpc"])
def either(
    request: pytest.FixtureRequest,
    manager: statehub.SyncManager,
    grpc_manager: statehub.SyncManager,
) -> statehub.SyncManager:
    return manager if request.param == "lane" else grpc_manager


def test_proxies_round_trip_every_scalar(either: statehub.SyncManager) -> None:
    d = either.dict()
    local: dict[Any, Any] = {}
    ns = either.Namespace()
    for i, obj in enumerate(SCALARS):
        d[obj] = obj
        local[obj] = obj
        assert obj in d
        got = d[obj]
        assert type(got) is type(obj) and got == obj
        assert d.get(obj) == obj
        setattr(ns, f"a{i}", obj)
        assert getattr(ns, f"a{i}") == obj
        if type(obj) is float:
            v = either.Value("d", 0.0)
        elif type(obj) is int and obj.bit_length() <= 31:
            v = either.Value("i", 0)
        else:
            continue
        v.value = obj
        assert v.value == obj
    # Equal keys (0, 0.0, -0.0, False) are one, as in a dict.
    copy = d.copy()
    assert copy == local
    assert [type(v) for v in copy.values()] == [type(v) for v in local.values()]
    assert math.copysign(1.0, d[0]) == -1.0  # the last value stored: -0.0
    assert d.get("missing", "fallback") == "fallback"
    with pytest.raises(KeyError) as missing:
        d["missing"]
    assert missing.value.args == ("missing",)


def test_values_that_take_the_ordinary_path(either: statehub.SyncManager) -> None:
    d = either.dict()
    d[Level.HIGH] = Level.HIGH  # a key travels as its base kind
    assert d[3] == 3
    d[(1, "a")] = [1, {"x": b"y"}]
    assert d[(1, "a")] == [1, {"x": b"y"}]
    with pytest.raises(OverflowError):
        d["big"] = 2**63
    with pytest.raises(OverflowError):
        d[2**63]
    with pytest.raises(TypeError, match="unhashable"):
        d[[1]] = 1  # type: ignore[index]
    with pytest.raises((ValueError, UnicodeEncodeError)):
        d["\udc80"] = 1
    ns = either.Namespace()
    with pytest.raises((ValueError, UnicodeEncodeError)):
        ns.x = "\udc80"


REPLY_TYPES = [
    dict_pb2.DictGetResponse,
    cell_pb2.ValueGetResponse,
    namespace_pb2.NamespaceGetResponse,
]


@pytest.mark.parametrize("obj", SCALARS, ids=repr)
def test_a_scalar_reply_is_read_as_protobuf_reads_it(obj: Any) -> None:
    value = _codec.encode(obj, "unix:///unused", OPTIONS)
    replies = [t(value=value).SerializeToString() for t in REPLY_TYPES]
    # The fields after the value are not read.
    replies.append(
        dict_pb2.DictGetResponse(
            value=value, found=True, ttl_seconds=2.5
        ).SerializeToString()
    )
    for reply in replies:
        got = scalar_reply(reply)
        assert type(got) is type(obj) and got == obj, reply
        if type(obj) is float:
            assert math.copysign(1.0, got) == math.copysign(1.0, obj)


def test_a_reply_without_a_value_is_none() -> None:
    assert scalar_reply(b"") is None
    assert scalar_reply(dict_pb2.DictGetResponse().SerializeToString()) is None


def test_other_replies_are_left_to_protobuf() -> None:
    ref = value_pb2.Value()
    ref.ref_value.name = "_anon/dict/1"
    blob = value_pb2.Value()
    blob.blob_value.codec = "pickle"
    blob.blob_value.data = b"\x80"
    for value in [
        _codec.encode([1, "a"], "unix:///unused", OPTIONS),
        _codec.encode((1,), "unix:///unused", OPTIONS),
        _codec.encode({"a": 1}, "unix:///unused", OPTIONS),
        ref,
        blob,
    ]:
        reply = dict_pb2.DictGetResponse(value=value).SerializeToString()
        assert scalar_reply(reply) is NOT_SCALAR
    whole = dict_pb2.DictGetResponse(
        value=_codec.encode("ключ" * 100, "unix:///unused", OPTIONS), found=True
    ).SerializeToString()
    for cut in (1, 2, 3, 5, 50, len(whole) - 3):
        assert scalar_reply(whole[:cut]) is NOT_SCALAR, cut
    for n in (300, 2**21 - 1, 2**40):
        whole = dict_pb2.DictGetResponse(
            value=value_pb2.Value(int_value=n)
        ).SerializeToString()
        for cut in range(1, len(whole)):
            assert scalar_reply(whole[:cut]) is NOT_SCALAR, (n, cut)
    # Not the order the server writes: found before the value.
    assert scalar_reply(b"\x10\x01\x0a\x02\x18\x05") is NOT_SCALAR
    # Two kinds in one Value, or a string that is not UTF-8.
    assert scalar_reply(b"\x0a\x04\x18\x05\x18\x06") is NOT_SCALAR
    assert scalar_reply(b"\x0a\x04\x2a\x02\xff\xfe") is NOT_SCALAR
    assert scalar_reply(b"\x0a\x84\x01\x2a\x81\x01" + b"\xff" * 129) is NOT_SCALAR


def test_a_reply_bigger_than_a_links_buffer(either: statehub.SyncManager) -> None:
    # Its first receive holds part of it: the rest is read after.
    d = either.dict()
    big = "ключ" * 100_000
    d["big"] = big
    assert d["big"] == big
    d["small"] = 1
    assert d["small"] == 1


# -- parked calls, list bulk calls ---------------------------------------------


@pytest.mark.parametrize("seconds", [None, 0.0, 0.25, 1.0, 3.000000001, 86400 * 365.0])
def test_a_parked_request_parses_to_the_message(
    manager: statehub.SyncManager, seconds: float | None
) -> None:
    lock, queue, barrier = manager.Lock(), manager.Queue(), manager.Barrier(2)
    thread_id, label = caller()
    # (proxy, request type, the fields in wire form, the same as a message's)
    cases = [
        (lock, sync_pb2.LockAcquireRequest, b"\x10\x01", {"blocking": True}),
        (queue, queue_pb2.QueueGetRequest, b"", {"block": False}),
        (
            queue,
            queue_pb2.QueuePutRequest,
            value_field(b"\x12", "job") + b"\x18\x01",
            {"item": value_pb2.Value(string_value="job"), "block": True},
        ),
        (barrier, sync_pb2.BarrierWaitRequest, b"\x28\x01", {"run_action": True}),
    ]
    for proxy, request_type, wire, fields in cases:
        request = proxy._parked_request(request_type, seconds, wire)
        assert type(request) is Encoded
        expected = request_type(
            name=proxy._token.name, thread_id=thread_id, label=label, **fields
        )
        if seconds is not None:
            expected.timeout.CopyFrom(duration(seconds))
        assert request.message() == expected
        assert request.message().HasField("timeout") == (seconds is not None)
    # In field order where the fields allow it: the bytes are protobuf's.
    request = lock._parked_request(sync_pb2.LockAcquireRequest, seconds, b"\x10\x01")
    assert request.body == request.message().SerializeToString()


def test_a_thread_renamed_sends_its_new_label(manager: statehub.SyncManager) -> None:
    lock = manager.Lock()
    thread = threading.current_thread()
    before = thread.name
    try:
        thread.name = "renamed-for-the-test"
        request = lock._parked_request(sync_pb2.LockAcquireRequest, None, b"")
        assert request.message().label.endswith(":renamed-for-the-test")
    finally:
        thread.name = before
    request = lock._parked_request(sync_pb2.LockAcquireRequest, None, b"")
    assert request.message().label.endswith(f":{before}")


@pytest.mark.parametrize(
    "items",
    [[1, -2, 2**63 - 1], [1.5, -0.0, math.inf], ["a", "ключ", ""], list(range(1000))],
    ids=["ints", "floats", "strs", "1000 ints"],
)
def test_item_columns_in_wire_form_are_the_message_serialized(items: list[Any]) -> None:
    message = list_pb2.ListExtendRequest(name="l")
    assert _codec.encode_item_columns(items, message.columns)
    assert _codec.item_columns_form(items) == message.columns.SerializeToString()


@pytest.mark.parametrize(
    "items", [[], [True, 1], [2**63], ["a\0"], ["\ud800"], [1, "a"], [Text("t")]]
)
def test_items_that_fit_no_column_are_left_to_the_message(items: list[Any]) -> None:
    assert _codec.item_columns_form(items) is None


def test_list_bulk_calls_in_wire_form(either: statehub.SyncManager) -> None:
    items = either.list()
    items.extend(range(1000))
    items.extend(["a", "b"])
    items.extend([0.5])
    items.extend([True, 7, "x"])  # a bool and a mix: the message
    assert len(items) == 1006
    assert items[999] == 999 and items[1000:1003] == ["a", "b", 0.5]
    assert items[1003] is True and items[1004:] == [7, "x"]
    del items[:]
    assert len(items) == 0
    items.extend([1, 2, 3])
    items.clear()
    assert items.copy() == []
