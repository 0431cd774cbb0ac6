"""DictProxy: every method of docs/methods.md against a real dict."""

from __future__ import annotations

import collections.abc
import copy
import pickle
import re
from typing import Any

import pytest
import statehub
from statehub._connection import connection_for
from statehub._proto import dict_pb2, value_pb2

from conftest import start_server
from oracle import check_same

OPERATIONS: list[tuple[str, Any]] = [
    ("setitem", lambda d: d.__setitem__("a", 1)),
    ("setitem tuple key", lambda d: d.__setitem__(("t", 1), [1, 2])),
    ("setitem int key", lambda d: d.__setitem__(1, "one")),
    ("float key unifies", lambda d: d.__setitem__(1.0, "uno")),
    ("bool key unifies", lambda d: d.__setitem__(True, "vero")),
    ("getitem", lambda d: d["a"]),
    ("getitem unified", lambda d: d[1]),
    ("getitem missing", lambda d: d["zz"]),
    ("get", lambda d: d.get("a")),
    ("get missing", lambda d: d.get("zz")),
    ("get default", lambda d: d.get("zz", 5)),
    ("get None default", lambda d: d.get("a", None)),
    ("contains", lambda d: "a" in d),
    ("contains missing", lambda d: "zz" in d),
    ("contains unhashable", lambda d: [1] in d),
    ("len", len),
    ("iter", lambda d: list(iter(d))),
    ("keys", lambda d: d.keys()),
    ("values", lambda d: d.values()),
    ("items", lambda d: d.items()),
    ("copy", lambda d: d.copy()),
    ("setdefault existing", lambda d: d.setdefault("a", 9)),
    ("setdefault new", lambda d: d.setdefault("b", 2)),
    ("setdefault None", lambda d: d.setdefault("n")),
    ("pop", lambda d: d.pop("n")),
    ("pop missing", lambda d: d.pop("n")),
    ("pop default", lambda d: d.pop("n", "dflt")),
    ("update mapping", lambda d: d.update({"c": 3, "a": 10})),
    ("update pairs", lambda d: d.update([("d", 4), ("e", 5)])),
    ("update kwargs", lambda d: d.update(f=6, g=7)),
    ("update both", lambda d: d.update({"h": 8}, i=9)),
    ("update bad pairs", lambda d: d.update([(1, 2, 3)])),
    ("update fromkeys", lambda d: d.update(dict.fromkeys(["x", "y"], 0))),
    ("after updates", lambda d: d.items()),
    ("or", lambda d: d | {"z": 26}),
    ("ror", lambda d: {"z": 26, "a": 0} | d),
    ("or bad", lambda d: d | [1]),
    ("ior", lambda d: d.__ior__({"y": 25}) is d),
    ("reversed", lambda d: list(reversed(d))),
    ("fromkeys", lambda d: d.fromkeys(["p", "q"], 0)),
    ("fromkeys leaves it", lambda d: d.items()),
    ("delitem", lambda d: d.__delitem__("c")),
    ("delitem missing", lambda d: d.__delitem__("c")),
    ("popitem", lambda d: d.popitem()),
    ("popitem again", lambda d: d.popitem()),
    ("setitem unhashable", lambda d: d.__setitem__([1], 1)),
    (
        "nested values",
        lambda d: d.__setitem__("nest", {"k": (1, 2.5, None), "l": [b"x"]}),
    ),
    ("read nested", lambda d: d["nest"]),
    ("order", lambda d: list(d)),
    ("clear", lambda d: d.clear()),
    ("empty len", len),
    ("popitem empty", lambda d: d.popitem()),
    ("empty copy", lambda d: d.copy()),
]


def test_every_method_matches_a_dict(manager: statehub.SyncManager) -> None:
    proxy = manager.dict()
    plain: dict[Any, Any] = {}
    for label, op in OPERATIONS:
        check_same(op, proxy, plain, label)
    assert proxy.copy() == plain


def test_ior(manager: statehub.SyncManager) -> None:
    d = manager.dict(a=1)
    alias = d
    d |= {"b": 2}
    assert d is alias
    assert d.copy() == {"a": 1, "b": 2}


def test_manager_argument_conventions(manager: statehub.SyncManager) -> None:
    assert manager.dict().copy() == {}
    assert manager.dict({"a": 1}).copy() == {"a": 1}
    assert manager.dict(a=1).copy() == {"a": 1}
    assert manager.dict([("a", 1)]).copy() == {"a": 1}
    assert manager.dict({"a": 1}, b=2).copy() == {"a": 1, "b": 2}
    # A keyword is contents, never an option (named objects use m.named).
    assert manager.dict(name=1).copy() == {"name": 1}
    assert manager.dict(manager.dict(x=1)).copy() == {"x": 1}


def test_key_error_looks_like_pythons(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    with pytest.raises(KeyError) as caught:
        d[("a", 1)]
    error = caught.value
    assert isinstance(error, statehub.StatehubKeyError)
    assert isinstance(error, statehub.StatehubError)
    assert error.args == (("a", 1),)
    assert str(error) == str(KeyError(("a", 1)))
    assert "not found" in error.message and d._token.name in error.message
    assert error.object == d._token.name
    assert error.kind == "KEY_ERROR" and error.code == "NOT_FOUND"


def test_iteration_pages_and_detects_size_change(manager: statehub.SyncManager) -> None:
    from statehub import _dict

    d = manager.dict({i: i for i in range(2 * _dict.ITER_PAGE + 5)})
    assert list(d) == list(range(2 * _dict.ITER_PAGE + 5))
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        for key in d:
            if key == 3:
                d["new"] = 1
    # Python notices a size change after the last key too.
    small = manager.dict(a=1)
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        for _ in small:
            small["b"] = 2
    # Changing a value (not the size) is allowed, as in Python.
    for key in small:
        small[key] = 0


def test_atomic_extras(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    assert d.increment("n") == 1
    assert d.increment("n", 5) == 6
    assert d.increment("n", -2) == 4
    assert d.increment("f", 0.5) == 0.5
    assert d.increment("n", 0.5) == 4.5
    d["s"] = "text"
    with pytest.raises(TypeError):
        d.increment("s")
    d["big"] = 2**63 - 1
    with pytest.raises(ValueError):
        d.increment("big")
    assert d["big"] == 2**63 - 1

    assert d.compare_and_set("k", statehub.MISSING, "first") is True
    assert d.compare_and_set("k", statehub.MISSING, "second") is False
    assert d.compare_and_set("k", "wrong", "second") is False
    assert d.compare_and_set("k", "first", "second") is True
    assert d["k"] == "second"
    assert d.compare_and_set("none", None, 1) is False  # missing is not None
    d["none"] = None
    assert d.compare_and_set("none", None, 1) is True

    assert d.get_and_set("k", "third") == "second"
    assert d.get_and_set("fresh", 1) is None
    assert d.get_and_set("fresh2", 1, statehub.MISSING) is statehub.MISSING
    assert d["k"] == "third"


def test_repr_and_str_like_managers(manager: statehub.SyncManager) -> None:
    d = manager.dict({"a": 1})
    assert re.fullmatch(r"<DictProxy object, typeid 'dict' at 0x[0-9a-f]+>", repr(d))
    assert str(d) == "{'a': 1}"


def test_is_a_generic_mutable_mapping(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    assert isinstance(d, collections.abc.MutableMapping)
    assert statehub.DictProxy[str, int] is not None
    assert copy.deepcopy(manager.dict(a=[1])) == {"a": [1]}
    assert d._getvalue() == {}


def test_pickled_proxy_is_the_same_object(manager: statehub.SyncManager) -> None:
    d = manager.dict(a=1)
    clone = pickle.loads(pickle.dumps(d))
    assert type(clone) is statehub.DictProxy
    clone["b"] = 2
    assert d.copy() == {"a": 1, "b": 2}


def test_defaults_are_returned_as_given(manager: statehub.SyncManager) -> None:
    d = manager.dict()
    sentinel = object()  # not even encodable: it never goes to the server
    assert d.get("x", sentinel) is sentinel
    assert d.pop("x", sentinel) is sentinel
    inner = manager.list()
    assert d.get("x", inner) is inner
    assert manager.describe(inner).holders == 1


def _change_size_before_first_next(change: Any) -> Any:
    def op(d: Any) -> Any:
        it = iter(d)
        change(d)
        return next(it)

    op.__name__ = change.__name__
    return op


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.clear(),
        lambda d: d.__setitem__("new", 1),
        lambda d: d.pop("a"),
        lambda d: d.update(x=1, y=2),
    ],
    ids=["clear", "add", "pop", "update"],
)
def test_iterator_notices_a_size_change_before_its_first_key(
    manager: statehub.SyncManager, change: Any
) -> None:
    # As a dict's iterator: the size is taken at iter(d), not at next().
    plain = {"a": 1, "b": 2}
    error = check_same(
        _change_size_before_first_next(change), manager.dict(plain), dict(plain)
    )
    assert isinstance(error, RuntimeError)
    assert str(error).endswith("dictionary changed size during iteration")


def test_iterator_keeps_raising_and_keeps_stopping(
    manager: statehub.SyncManager,
) -> None:
    d = manager.dict(a=1)
    it = iter(d)
    d["b"] = 2
    for _ in range(2):
        with pytest.raises(RuntimeError, match="changed size during iteration"):
            next(it)
    done = iter(d)
    assert list(done) == ["a", "b"]
    d["c"] = 3  # after StopIteration the iterator stays exhausted
    assert list(done) == []
    # A value changed before the first key is fine, as in a dict.
    it = iter(d)
    d["a"] = 10
    assert list(it) == ["a", "b", "c"]


def test_iterating_a_thousand_keys_is_a_few_round_trips(
    manager: statehub.SyncManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = manager.dict({i: None for i in range(1000)})
    calls: list[str] = []
    real_call = statehub.DictProxy._call

    def counting_call(self: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(method)
        return real_call(self, method, *args, **kwargs)

    monkeypatch.setattr(statehub.DictProxy, "_call", counting_call)
    assert [key for key in d] == list(range(1000))
    # iter(d) takes the size, the first next() reads every key, and the
    # next() after the last key checks the size again.
    assert calls == ["Items", "Items", "Items"]
    calls.clear()
    assert list(d) == list(range(1000))
    assert len(calls) <= 4  # list() also asks len(d), for a size hint


# Bulk calls travel as entry columns (value.proto EntryColumns) when every
# key is a str and the values share one of int, float and str; as MapEntry
# messages otherwise. Either way the dict must come back the same, types
# included, on both transports.
_BULK_CONTENTS = {
    "ints": {f"k{i}": i for i in range(1000)} | {"min": -(2**63), "max": 2**63 - 1},
    "floats": {f"k{i}": i / 7 for i in range(100)} | {"inf": float("inf")},
    "strs": {f"k{i}": f"v{i}é" for i in range(100)} | {"": ""},
    "a key holding U+0000": {"a\0": 1, "b": 2},
    "a str holding U+0000": {"a": "x\0", "b": ""},
    "mixed values": {"a": 1, "b": 2.5, "c": "x"},
    "bools are not ints": {"a": True, "b": 1},
    "a non-str key": {1: "x", "b": "y"},
    "nested": {"a": [1], "b": [2]},
}


@pytest.mark.parametrize("contents", _BULK_CONTENTS.values(), ids=_BULK_CONTENTS)
@pytest.mark.parametrize("which", ["manager", "grpc_manager"])
def test_bulk_update_and_copy_keep_every_type(
    which: str, contents: dict[Any, Any], request: pytest.FixtureRequest
) -> None:
    m: statehub.SyncManager = request.getfixturevalue(which)
    d = m.dict({"before": 0})
    d.update(contents)
    expected = {"before": 0} | contents
    copied = d.copy()
    assert copied == expected
    typed = [(type(k), type(v)) for k, v in copied.items()]
    assert typed == [(type(k), type(v)) for k, v in expected.items()]
    assert d.items() == list(expected.items())
    assert d.keys() == list(expected)
    assert d.values() == list(expected.values())


def test_bulk_update_beyond_int64_is_overflow_error(
    manager: statehub.SyncManager,
) -> None:
    d = manager.dict({"a": 1})
    with pytest.raises(OverflowError):
        d.update({"b": 2**63, "c": 1})
    assert d.copy() == {"a": 1}


@pytest.mark.parametrize(
    "columns",
    [
        {"keys": "a\0b\0", "ints": bytes(8)},
        {"keys": "a\0", "ints": bytes(7)},
        {"keys": "a\0", "doubles": bytes(16)},
        {"keys": "a\0", "strings": "x"},
        {"keys": "a", "ints": bytes(8)},
        {"keys": "a\0b\0"},
        {"ints": bytes(8)},
    ],
    ids=[
        "short value column",
        "ints not 8 bytes each",
        "long value column",
        "unterminated value",
        "unterminated key",
        "no values",
        "no keys",
    ],
)
def test_malformed_entry_columns_are_a_value_error_and_change_nothing(
    manager: statehub.SyncManager, columns: dict[str, Any]
) -> None:
    d = manager.dict({"a": 0})
    request = dict_pb2.DictUpdateRequest(
        name=d._token.name, columns=value_pb2.EntryColumns(**columns)
    )
    with pytest.raises(statehub.StatehubValueError) as caught:
        connection_for(d._token.address).call("Dicts", "Update", request)
    assert "entry columns" in str(caught.value)
    assert d._token.name in str(caught.value)
    assert d.copy() == {"a": 0}


def test_entry_columns_count_against_max_value_bytes() -> None:
    running = start_server("--max_value_bytes=256")
    m = statehub.Manager(running.unix)
    try:
        d = m.dict({"a": 0})
        for big in ({"b": "x" * 1000}, {"x" * 1000: "b"}):
            with pytest.raises(statehub.LimitExceeded) as caught:
                d.update(big)
            assert caught.value.limit == "max_value_bytes"
        d.update({"b": "x" * 200})
        assert d.copy() == {"a": 0, "b": "x" * 200}
    finally:
        m.shutdown()
        running.stop()
