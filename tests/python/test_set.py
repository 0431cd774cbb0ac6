"""SetProxy (SyncManager.set(), new in CPython 3.14): every method and
operator against a real set, and across processes."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

import pytest
import statehub

from oracle import check_same
from test_processes import METHODS

OPERATIONS: list[tuple[str, Any]] = [
    ("add", lambda s: s.add("a")),
    ("add again", lambda s: s.add("a")),
    ("add tuple", lambda s: s.add(("t", 1))),
    ("add int", lambda s: s.add(1)),
    ("add unhashable", lambda s: s.add([1])),
    ("len", len),
    ("contains", lambda s: "a" in s),
    ("contains missing", lambda s: "zz" in s),
    ("iter", lambda s: sorted(map(str, s))),
    ("update", lambda s: s.update(["b", "c"], ("d",))),
    ("discard", lambda s: s.discard("d")),
    ("discard missing", lambda s: s.discard("d")),
    ("remove", lambda s: s.remove("c")),
    ("remove missing", lambda s: s.remove("c")),
    ("union", lambda s: s.union({"x"}, ["y"])),
    ("intersection", lambda s: s.intersection({"a", "b", "q"})),
    ("difference", lambda s: s.difference({"a"})),
    ("symmetric difference", lambda s: s.symmetric_difference({"a", "q"})),
    ("isdisjoint", lambda s: s.isdisjoint({"q"})),
    ("issubset", lambda s: s.issubset({"a", "b", 1, ("t", 1), "z"})),
    ("issuperset", lambda s: s.issuperset({"a"})),
    ("or", lambda s: s | {"x"}),
    ("ror", lambda s: {"x"} | s),
    ("and", lambda s: s & {"a", "x"}),
    ("rand", lambda s: {"a", "x"} & s),
    ("sub", lambda s: s - {"a"}),
    ("rsub", lambda s: {"a", "x"} - s),
    ("xor", lambda s: s ^ {"a", "x"}),
    ("rxor", lambda s: {"a", "x"} ^ s),
    ("or bad", lambda s: s | [1]),
    ("le", lambda s: s <= {"a", "b", 1, ("t", 1)}),
    ("lt", lambda s: s < {"a", "b", 1, ("t", 1)}),
    ("ge", lambda s: s >= {"a"}),
    ("gt", lambda s: s > {"a", "b", 1, ("t", 1)}),
    ("ior", lambda s: s.__ior__({"k", "l"}) is s),
    ("ior bad", lambda s: s.__ior__(["k"])),
    ("iand", lambda s: s.__iand__({"a", "b", "k", 1, ("t", 1)}) is s),
    ("isub", lambda s: s.__isub__({"k"}) is s),
    ("ixor", lambda s: s.__ixor__({"a", "n"}) is s),
    ("after in-place", lambda s: sorted(map(str, s))),
    ("intersection update", lambda s: s.intersection_update({"b", "n", 1})),
    ("difference update", lambda s: s.difference_update({"n"}, [7])),
    ("symmetric update", lambda s: s.symmetric_difference_update({"b", "m"})),
    ("copy", lambda s: s.copy()),
    ("pop", lambda s: s.pop() in {1, "m"}),
    ("pop again", lambda s: s.pop() in {1, "m"}),
    ("pop empty", lambda s: s.pop()),
    ("clear", lambda s: s.clear()),
    ("empty len", len),
]


def test_every_method_matches_a_set(manager: statehub.SyncManager) -> None:
    proxy = manager.set()
    plain: set[Any] = set()
    for label, op in OPERATIONS:
        check_same(op, proxy, plain, label)
    assert proxy.copy() == plain


def test_a_set_from_an_iterable_and_its_faces(manager: statehub.SyncManager) -> None:
    s = manager.set([3, 1, 3])
    assert len(s) == 2 and s.copy() == {1, 3}
    assert str(s) == "{1, 3}"
    assert "typeid 'set'" in repr(s)
    assert s._getvalue() == {1, 3}
    # Other clients see a dict of the members.
    members = manager.describe(s)
    assert members.type == "dict"
    with pytest.raises(KeyError, match="pop from an empty set"):
        manager.set().pop()


def test_a_named_set_is_shared_by_name(manager: statehub.SyncManager) -> None:
    first = manager.named.set("test_set/tags", ["x"])
    again = manager.named.set("test_set/tags", ["ignored"])
    again.add("y")
    assert first.copy() == {"x", "y"}
    manager.named.delete("test_set/tags")


def _add_in_child(s: Any, element: Any) -> None:
    s.add(element)


@pytest.mark.parametrize("method", METHODS)
def test_a_set_proxy_travels_to_children(
    manager: statehub.SyncManager, method: str
) -> None:
    s = manager.set()
    assert type(pickle.loads(pickle.dumps(s))) is statehub.SetProxy
    ctx = multiprocessing.get_context(method)
    children = [ctx.Process(target=_add_in_child, args=(s, i)) for i in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert s.copy() == {0, 1, 2}
