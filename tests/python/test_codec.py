"""Values on the wire: every neutral kind round-trips; pickling rules."""

from __future__ import annotations

import collections
import enum
import fractions
import pickle
from typing import Any, NamedTuple

import pytest
import statehub
from statehub import _codec
from statehub._proto import value_pb2


class Color(enum.IntEnum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: int


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


NEUTRAL = [
    None,
    True,
    False,
    0,
    -(2**63),
    2**63 - 1,
    1.5,
    float("inf"),
    -0.0,
    "",
    "text é 漢",
    b"",
    b"\x00\xff",
    [],
    (),
    {},
    [1, [2, [3, (4, {"k": None})]]],
    (1, "a", b"b", None, 2.5, True),
    {None: 1, True: 2, 3: 3, 2.5: 4, "s": 5, b"b": 6, (1, ("n",)): 7},
]


@pytest.mark.parametrize("value", NEUTRAL, ids=repr)
def test_neutral_values_round_trip_exactly(
    manager: statehub.SyncManager, value: Any
) -> None:
    v = manager.Value("x", value)
    got = v.value
    assert got == value
    assert type(got) is type(value)
    assert repr(got) == repr(value)  # -0.0, key spellings and nesting types too


def test_ints_outside_int64_are_overflow_errors(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    with pytest.raises(OverflowError):
        d["a"] = 2**63
    with pytest.raises(OverflowError):
        d[-(2**63) - 1] = 1
    with pytest.raises(OverflowError):
        manager.list([[2**64]])


def test_wire_encoding_is_the_documented_one() -> None:
    options = statehub._proxy.Options(allow_pickle=False, timeout=1)
    assert _codec.encode(None, "a", options) == value_pb2.Value()
    empty_list = _codec.encode([], "a", options)
    assert empty_list.WhichOneof("kind") == "list_value"
    assert _codec.encode((), "a", options).WhichOneof("kind") == "tuple_value"
    assert _codec.encode({}, "a", options).WhichOneof("kind") == "map_value"
    assert _codec.encode(True, "a", options).WhichOneof("kind") == "bool_value"


def test_keys_must_be_scalars_or_tuples(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    for bad in ([1], {"a": 1}, {1}, bytearray(b"x"), (1, [2])):
        with pytest.raises(TypeError, match="unhashable type"):
            d[bad] = 1
    with pytest.raises(TypeError, match="keys are None, bool, int"):
        d[Opaque(1)] = 1
    with pytest.raises(TypeError, match="unhashable type: 'DictProxy'"):
        d[manager.dict()] = 1
    with pytest.raises(TypeError):
        d[float("nan")] = 1  # refused by the server (docs/decisions.md)
    d[Color.RED] = "red"  # an int subclass key travels as an int
    assert d.copy() == {1: "red"}


def test_refused_without_pickling_says_how_to_enable(
    manager: statehub.SyncManager,
) -> None:
    d = manager.dict()
    with pytest.raises(TypeError) as caught:
        d["x"] = Opaque(1)
    message = str(caught.value)
    assert "'Opaque'" in message
    assert "statehub.Manager(address, allow_pickle=True)" in message
    with pytest.raises(TypeError, match="allow_pickle=True"):
        manager.list([fractions.Fraction(1, 3)])
    # Subclasses of the neutral kinds travel as their base kind.
    d["enum"] = Color.RED
    d["point"] = Point(1, 2)
    d["ordered"] = collections.OrderedDict(a=1)
    assert d["enum"] == 1 and type(d["enum"]) is int
    assert d["point"] == (1, 2) and type(d["point"]) is tuple
    assert type(d["ordered"]) is dict


def test_pickling_enabled_keeps_types(pickling_manager: statehub.SyncManager) -> None:
    d = pickling_manager.dict()
    d["x"] = Opaque(7)
    d["enum"] = Color.RED
    d["point"] = Point(1, 2)
    d["nested"] = [Opaque(1), {"k": fractions.Fraction(1, 3)}]
    assert d["x"] == Opaque(7)
    assert d["enum"] is Color.RED
    assert d["point"] == Point(1, 2) and type(d["point"]) is Point
    assert d["nested"] == [Opaque(1), {"k": fractions.Fraction(1, 3)}]
    assert (
        d.compare_and_set("x", Opaque(7), Opaque(8)) is True
    )  # blobs compare as bytes


def test_pickle_blob_read_without_pickling_is_a_blob(
    pickling_manager: statehub.SyncManager, manager: statehub.SyncManager
) -> None:
    writer = pickling_manager.named.dict("test-codec-blob")
    try:
        writer["x"] = Opaque(3)
        reader = manager.named.dict("test-codec-blob")
        blob = reader["x"]
        assert isinstance(blob, statehub.Blob)
        assert blob.codec == "pickle"
        assert pickle.loads(blob.data) == Opaque(3)
        # A Blob written back is stored unchanged.
        reader["y"] = blob
        assert writer["y"] == Opaque(3)
        reader["other"] = statehub.Blob("cbor", b"\xa0")
        assert writer["other"] == statehub.Blob("cbor", b"\xa0")
    finally:
        manager.named.delete("test-codec-blob")


def test_private_manager_pickles_by_default() -> None:
    with statehub.Manager() as m:
        d = m.dict()
        d["x"] = Opaque(1)
        assert d["x"] == Opaque(1)


def test_self_referencing_value_is_refused(manager: statehub.SyncManager) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested too deeply"):
        manager.list([loop])


def test_missing_sentinel() -> None:
    assert repr(statehub.MISSING) == "statehub.MISSING"
    assert pickle.loads(pickle.dumps(statehub.MISSING)) is statehub.MISSING
    assert not statehub.MISSING
