"""Requests written straight in wire form (statehub._wire) are the bytes
protobuf would serialize for the same message, and the proxies that use
them behave as before on both transports, including for the values that
must take the ordinary path (subclasses, containers, big ints, strings
with lone surrogates)."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import statehub
from statehub import _codec
from statehub._proto import cell_pb2, dict_pb2, namespace_pb2, value_pb2
from statehub._proxy import Options
from statehub._wire import Encoded, scalar_value, string_field, value_field, varint

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
