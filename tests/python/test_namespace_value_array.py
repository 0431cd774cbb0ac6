"""NamespaceProxy, ValueProxy and ArrayProxy against Manager's behaviour."""

from __future__ import annotations

import array
import multiprocessing.managers
import re
from typing import Any

import pytest
import statehub

from oracle import check_same


def test_namespace_attributes(manager: statehub.SyncManager) -> None:
    ns = manager.Namespace(b=2, a=1)
    plain = multiprocessing.managers.Namespace(b=2, a=1)
    operations: list[tuple[str, Any]] = [
        ("get", lambda n: n.a),
        ("set", lambda n: setattr(n, "c", [1, {"x": 2}])),
        ("get set", lambda n: n.c),
        ("overwrite", lambda n: setattr(n, "a", "one")),
        ("get missing", lambda n: n.missing),
        ("hasattr", lambda n: hasattr(n, "missing")),
        ("getattr default", lambda n: getattr(n, "missing", 0)),
        ("delete", lambda n: delattr(n, "b")),
        ("delete missing", lambda n: delattr(n, "b")),
        ("after delete", lambda n: hasattr(n, "b")),
        ("str", str),
    ]
    for label, op in operations:
        check_same(op, ns, plain, label)
    assert vars(ns) == {"a": "one", "c": [1, {"x": 2}]}
    assert re.fullmatch(
        r"<NamespaceProxy object, typeid 'Namespace' at 0x[0-9a-f]+>", repr(ns)
    )
    value = ns._getvalue()
    assert isinstance(value, multiprocessing.managers.Namespace)
    assert repr(value) == str(ns)


def test_namespace_attribute_error(manager: statehub.SyncManager) -> None:
    ns = manager.Namespace()
    with pytest.raises(AttributeError) as caught:
        ns.nothing
    assert isinstance(caught.value, statehub.StatehubAttributeError)
    assert caught.value.name == "nothing"
    assert caught.value.object == ns._token.name
    # Underscore names are the proxy's own, as with Manager.
    with pytest.raises(AttributeError):
        ns._nothing
    ns.value = 1  # no proxy method shadows an attribute
    ns.get = 2
    assert (ns.value, ns.get) == (1, 2)


def test_namespace_underscore_attributes_stay_on_the_proxy(
    manager: statehub.SyncManager,
) -> None:
    name = "test-namespace-hidden"
    ns = manager.named.Namespace(name, shown=1)
    try:
        ns._hidden = "hidden"
        assert ns._hidden == "hidden"
        assert getattr(ns, "_hidden", None) == "hidden"
        # Never sent: not in str(), vars() or another proxy of the object,
        # as with Manager's NamespaceProxy.
        assert str(ns) == "Namespace(shown=1)"
        assert vars(ns) == {"shown": 1}
        assert manager.describe(ns).size == 1
        other = manager.named.Namespace(name)
        assert not hasattr(other, "_hidden")
        with pytest.raises(AttributeError):
            other._hidden
        del ns._hidden
        assert not hasattr(ns, "_hidden")
        with pytest.raises(AttributeError):
            del ns._hidden
        # The proxy's own machinery is not an attribute to overwrite.
        with pytest.raises(AttributeError):
            ns._call = None
    finally:
        manager.named.delete(name)


def test_namespace_str_sorts_like_managers(manager: statehub.SyncManager) -> None:
    attrs = {"a1": 1, "a": 2, "B": 3, "a_b": 4}
    assert str(manager.Namespace(**attrs)) == repr(
        multiprocessing.managers.Namespace(**attrs)
    )


def test_value(manager: statehub.SyncManager) -> None:
    v = manager.Value("i", 3)
    assert v.value == 3 and v.get() == 3
    v.value = 4
    assert v.get() == 4
    v.set(5)
    assert v.value == 5
    assert str(v) == "Value('i', 5)" == repr(multiprocessing.managers.Value("i", 5))
    assert re.fullmatch(r"<ValueProxy object, typeid 'Value' at 0x[0-9a-f]+>", repr(v))
    # Like Manager, the typecode does not constrain the value.
    v.value = "text"
    assert v.value == "text"
    assert statehub.ValueProxy[int] is not None
    got = v._getvalue()
    assert isinstance(got, multiprocessing.managers.Value) and got.value == "text"


def test_value_atomic_extras(manager: statehub.SyncManager) -> None:
    v = manager.Value("i", 0)
    assert v.increment() == 1
    assert v.increment(10) == 11
    assert v.increment(0.5) == 11.5
    assert v.compare_and_set(11.5, 20) is True
    assert v.compare_and_set(11.5, 30) is False
    assert v.value == 20
    assert v.get_and_set(7) == 20
    assert v.value == 7
    v.value = "s"
    with pytest.raises(TypeError):
        v.increment()


def test_array_matches_array_module(manager: statehub.SyncManager) -> None:
    a = manager.Array("i", [1, 2, 3, 4])
    plain = array.array("i", [1, 2, 3, 4])
    operations: list[tuple[str, Any]] = [
        ("len", len),
        ("getitem", lambda x: x[1]),
        ("negative", lambda x: x[-1]),
        ("out of range", lambda x: x[10]),
        ("slice", lambda x: x[1:3]),
        ("extended slice", lambda x: x[::-2]),
        ("setitem", lambda x: x.__setitem__(0, 10)),
        ("setitem out of range", lambda x: x.__setitem__(10, 1)),
        ("setitem wrong type", lambda x: x.__setitem__(0, "s")),
        ("iter", lambda x: list(x)),
        ("after", lambda x: x[:]),
    ]
    for label, op in operations:
        check_same(op, a, plain, label)
    a[1:3] = [20, 30]
    assert a[:] == array.array("i", [10, 20, 30, 4])
    a[::2] = (0, 0)
    assert list(a) == [0, 20, 0, 4]
    with pytest.raises(ValueError):
        a[0:2] = [1]  # an array's length is fixed
    with pytest.raises(ValueError):
        a[0] = 2**40  # out of the C int's range
    assert str(a) == "array('i', [0, 20, 0, 4])"
    assert re.fullmatch(r"<ArrayProxy object, typeid 'Array' at 0x[0-9a-f]+>", repr(a))
    assert a._getvalue() == array.array("i", [0, 20, 0, 4])


def test_array_typecodes(manager: statehub.SyncManager) -> None:
    d = manager.Array("d", 3)
    assert list(d) == [0.0, 0.0, 0.0]
    f = manager.Array("f", [0.1])
    assert f[0] == array.array("f", [0.1])[0]  # rounded through float32
    c = manager.Array("c", b"ab")
    assert c[0] == b"a"
    assert c[:] == b"ab"
    c[0:2] = b"xy"
    assert c[:] == b"xy"
    u = manager.Array("u", "hi")
    assert u[1] == "i"
    with pytest.raises((TypeError, ValueError)):
        manager.Array("?", [1])


def test_named_array_and_value_learn_their_typecode(
    manager: statehub.SyncManager,
) -> None:
    manager.named.Array("test-cells-arr", "b", [1, 2])
    manager.named.Value("test-cells-val", "d", 1.5)
    try:
        other = statehub.Manager(manager.address)
        a = other.named.Array("test-cells-arr")
        v = other.named.Value("test-cells-val")
        # From the Open reply, before any Describe.
        assert (a._token.typecode, v._token.typecode) == ("b", "d")
        assert str(a) == "array('b', [1, 2])"
        assert a[0:1] == array.array("b", [1])
        assert str(v) == "Value('d', 1.5)"
        other.shutdown()
    finally:
        manager.named.delete("test-cells-arr")
        manager.named.delete("test-cells-val")
