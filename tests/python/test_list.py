"""ListProxy: every method of docs/methods.md against a real list."""

from __future__ import annotations

import collections.abc
import re
from typing import Any

import pytest
import statehub
from statehub._connection import connection_for
from statehub._proto import list_pb2, objects_pb2, value_pb2

from conftest import start_server
from oracle import check_same


def _iadd(seq: Any, items: Any) -> Any:
    seq += items
    return None


def _imul(seq: Any, times: int) -> Any:
    seq *= times
    return None


OPERATIONS: list[tuple[str, Any]] = [
    ("append", lambda lst: lst.append(1)),
    (
        "append more",
        lambda lst: [lst.append(x) for x in (2.5, "s", b"b", None, (1, 2), [3])],
    ),
    ("len", len),
    ("getitem", lambda lst: lst[0]),
    ("getitem negative", lambda lst: lst[-1]),
    ("getitem out of range", lambda lst: lst[100]),
    ("getitem negative out of range", lambda lst: lst[-100]),
    ("getitem bad type", lambda lst: lst["x"]),
    ("slice", lambda lst: lst[1:4]),
    ("slice open", lambda lst: lst[2:]),
    ("slice step", lambda lst: lst[::2]),
    ("slice negative step", lambda lst: lst[::-1]),
    ("slice clamps", lambda lst: lst[-100:100]),
    ("slice huge", lambda lst: lst[: 2**70]),
    ("slice step zero", lambda lst: lst[::0]),
    ("slice bad bound", lambda lst: lst["a":]),
    ("contains", lambda lst: 2.5 in lst),
    ("contains numeric equality", lambda lst: 1.0 in lst),
    ("contains missing", lambda lst: "nope" in lst),
    ("list is not tuple", lambda lst: (3,) in lst),
    ("iter", lambda lst: list(iter(lst))),
    ("reversed", lambda lst: reversed(lst)),
    ("setitem", lambda lst: lst.__setitem__(0, "first")),
    ("setitem out of range", lambda lst: lst.__setitem__(99, 0)),
    ("setitem slice grow", lambda lst: lst.__setitem__(slice(1, 2), ["a", "b", "c"])),
    ("setitem slice shrink", lambda lst: lst.__setitem__(slice(0, 3), ["z"])),
    (
        "setitem extended",
        lambda lst: lst.__setitem__(slice(0, None, 2), list(range(len(lst[::2])))),
    ),
    (
        "setitem extended bad length",
        lambda lst: lst.__setitem__(slice(0, None, 2), [1]),
    ),
    ("setitem slice non-iterable", lambda lst: lst.__setitem__(slice(0, 1), 5)),
    ("setitem slice tuple", lambda lst: lst.__setitem__(slice(0, 1), (7, 8))),
    ("delitem", lambda lst: lst.__delitem__(0)),
    ("delitem out of range", lambda lst: lst.__delitem__(99)),
    ("delitem slice", lambda lst: lst.__delitem__(slice(0, 2))),
    ("delitem extended", lambda lst: lst.__delitem__(slice(None, None, -2))),
    ("extend", lambda lst: lst.extend([4, 5, 6, 5])),
    ("extend generator", lambda lst: lst.extend(x * 10 for x in range(3))),
    ("extend non-iterable", lambda lst: lst.extend(5)),
    ("iadd", lambda lst: _iadd(lst, [7, 7])),
    ("insert", lambda lst: lst.insert(1, "ins")),
    ("insert negative", lambda lst: lst.insert(-1, "neg")),
    ("insert clamps", lambda lst: lst.insert(1000, "end")),
    ("index", lambda lst: lst.index(5)),
    ("index start", lambda lst: lst.index(5, 5)),
    ("index range", lambda lst: lst.index(5, 0, 2)),
    ("index missing", lambda lst: lst.index("absent")),
    ("count", lambda lst: lst.count(5)),
    ("count none", lambda lst: lst.count("absent")),
    ("remove", lambda lst: lst.remove(5)),
    ("remove missing", lambda lst: lst.remove("absent")),
    ("pop", lambda lst: lst.pop()),
    ("pop index", lambda lst: lst.pop(0)),
    ("pop negative", lambda lst: lst.pop(-2)),
    ("pop out of range", lambda lst: lst.pop(100)),
    ("reverse", lambda lst: lst.reverse()),
    ("copy", lambda lst: lst.copy()),
    ("add", lambda lst: lst + [1]),
    ("add tuple", lambda lst: lst + (1,)),
    ("mul", lambda lst: lst * 2),
    ("rmul", lambda lst: 2 * lst),
    ("imul", lambda lst: _imul(lst, 2)),
    ("after imul", lambda lst: lst[:]),
    ("sort mixed fails", lambda lst: lst.sort()),
    ("clear", lambda lst: lst.clear()),
    ("refill", lambda lst: lst.extend([3, 1.5, 2, True, 0, -1])),
    ("sort", lambda lst: lst.sort()),
    ("sorted", lambda lst: lst[:]),
    ("sort reverse", lambda lst: lst.sort(reverse=True)),
    ("sorted reverse", lambda lst: lst[:]),
    ("sort key", lambda lst: lst.sort(key=lambda x: -abs(x))),
    ("sorted key", lambda lst: lst[:]),
    ("imul zero", lambda lst: _imul(lst, 0)),
    ("empty", lambda lst: lst[:]),
    ("pop empty", lambda lst: lst.pop()),
]


def test_every_method_matches_a_list(manager: statehub.SyncManager) -> None:
    proxy = manager.list()
    plain: list[Any] = []
    for label, op in OPERATIONS:
        check_same(op, proxy, plain, label)
    assert proxy.copy() == plain


def test_sort_is_stable_and_leaves_list_unchanged_on_failure(
    manager: statehub.SyncManager,
) -> None:
    pairs = [(1, "b"), (0, "a"), (1, "a"), (0, "b")]
    proxy = manager.list(pairs)
    proxy.sort(key=lambda p: p[0])
    assert proxy.copy() == sorted(pairs, key=lambda p: p[0])
    mixed = manager.list([3, "x", 1])
    with pytest.raises(TypeError):
        mixed.sort()
    assert mixed.copy() == [3, "x", 1]
    strings = manager.list(["b", "a", "c"])
    strings.sort(reverse=True)
    assert strings.copy() == ["c", "b", "a"]


def test_in_place_operators_return_the_proxy(manager: statehub.SyncManager) -> None:
    lst = manager.list([1])
    alias = lst
    lst += [2]
    lst *= 2
    assert lst is alias
    assert lst.copy() == [1, 2, 1, 2]


def test_manager_argument_conventions(manager: statehub.SyncManager) -> None:
    assert manager.list().copy() == []
    assert manager.list(range(3)).copy() == [0, 1, 2]
    assert manager.list("ab").copy() == ["a", "b"]
    assert manager.list(manager.list([1, 2])).copy() == [1, 2]


def test_repr_str_and_abc(manager: statehub.SyncManager) -> None:
    lst = manager.list([1, "a"])
    assert re.fullmatch(r"<ListProxy object, typeid 'list' at 0x[0-9a-f]+>", repr(lst))
    assert str(lst) == "[1, 'a']"
    assert isinstance(lst, collections.abc.MutableSequence)
    assert statehub.ListProxy[int] is not None
    assert lst._getvalue() == [1, "a"]


def test_index_error_message(manager: statehub.SyncManager) -> None:
    lst = manager.list()
    with pytest.raises(IndexError) as caught:
        lst[3]
    assert isinstance(caught.value, statehub.StatehubIndexError)
    assert caught.value.object == lst._token.name
    with pytest.raises(ValueError) as absent:
        lst.remove(1)
    assert isinstance(absent.value, statehub.StatehubValueError)


def _read_then_change(seq: Any) -> Any:
    it = iter(seq)
    seq[0] = 100
    return next(it)


def _pop_while_iterating(seq: Any) -> list[Any]:
    seen = []
    for item in seq:
        seen.append(item)
        seq.pop()
    return seen


def _grow_while_iterating(seq: Any) -> list[Any]:
    seen = []
    for item in seq:
        seen.append(item)
        if item < 3:
            seq.append(item + 10)
    return seen


def _delete_ahead(seq: Any) -> list[Any]:
    seen = []
    for item in seq:
        seen.append(item)
        if item == 1:
            del seq[:3]
    return seen


def _exhausted_stays_exhausted(seq: Any) -> tuple[list[Any], list[Any]]:
    it = iter(seq)
    first = list(it)
    seq.append("late")
    return first, list(it)


@pytest.mark.parametrize(
    "op",
    [
        _read_then_change,
        _pop_while_iterating,
        _grow_while_iterating,
        _delete_ahead,
        _exhausted_stays_exhausted,
    ],
)
def test_iterator_sees_changes_made_while_it_runs(
    manager: statehub.SyncManager, op: Any
) -> None:
    # As Python's list iterator (and Manager's proxy): by index, live.
    items = [0, 1, 2, 3, 4, 5]
    check_same(op, manager.list(items), list(items), op.__name__)


@pytest.mark.parametrize(
    "items",
    [
        list(range(1000)),
        [-(2**63), 2**63 - 1, 0],
        [0.5, -0.0, float("inf"), 1e300],
        ["a", "", "ключ", "x" * 300],
        ["a\0b", "", "\0"],  # U+0000 ends a str in a column: one Value each
        [1, 2.5, "three"],  # a mix: one Value each
        [True, 1, False],  # bools are not ints here
        [2**63, 1],  # beyond int64
    ],
    ids=[
        "ints",
        "int64 bounds",
        "floats",
        "strs",
        "strs holding U+0000",
        "mixed",
        "bools",
        "big int",
    ],
)
def test_extend_keeps_every_item_and_its_type(
    manager: statehub.SyncManager, items: list[Any]
) -> None:
    """Homogeneous ints, floats or strs travel in one column
    (ItemColumns); anything else one Value per item; either way the list
    ends as a list would."""
    lst = manager.list(["before"])
    if items[0] == 2**63:
        with pytest.raises(OverflowError):
            lst.extend(items)
        assert lst[:] == ["before"]
        return
    lst.extend(items)
    got = lst[:]
    assert got == ["before", *items]
    assert [type(x) for x in got] == [str] + [type(x) for x in items]


@pytest.mark.parametrize(
    "columns",
    [{"ints": b"\1" * 7}, {"doubles": b"\0" * 9}, {"strings": "a\0b"}],
    ids=["ints not 8 bytes each", "doubles not 8 bytes each", "unterminated str"],
)
def test_malformed_item_columns_are_a_value_error_and_change_nothing(
    manager: statehub.SyncManager, columns: dict[str, Any]
) -> None:
    lst = manager.list([0])
    request = list_pb2.ListExtendRequest(
        name=lst._token.name, columns=value_pb2.ItemColumns(**columns)
    )
    with pytest.raises(statehub.StatehubValueError) as caught:
        connection_for(lst._token.address).call("Lists", "Extend", request)
    assert "item column" in str(caught.value)
    assert lst._token.name in str(caught.value)
    assert lst[:] == [0]


def test_item_columns_count_against_max_value_bytes() -> None:
    running = start_server("--max_value_bytes=256")
    m = statehub.Manager(running.unix)
    try:
        lst = m.list()
        with pytest.raises(statehub.LimitExceeded) as caught:
            lst.extend(["x" * 1000, "y"])
        assert caught.value.limit == "max_value_bytes"
        assert lst[:] == []
        lst.extend(["x" * 200, "y"])
        assert lst[:] == ["x" * 200, "y"]
    finally:
        m.shutdown()
        running.stop()


@pytest.mark.parametrize(
    "items",
    [
        list(range(-5, 1000)),
        [0.5, -0.0, float("inf")],
        ["a", "", "ключ"],
        ["a", "b\0"],  # U+0000: one Value each
        [True, False],  # bools: not ints, one Value each
        [1, 2.5, "three", None, b"x", (1, 2)],
    ],
    ids=["ints", "floats", "strs", "strs holding U+0000", "bools", "mixed"],
)
def test_reads_of_a_slice_keep_every_item_and_its_type(
    manager: statehub.SyncManager, items: list[Any]
) -> None:
    """A slice of all ints, floats or strs comes back in one column
    (ItemColumns); any other one Value per item; either way as a list's."""
    lst = manager.list(items)
    for got, want in (
        (lst.copy(), items),
        (lst[:], items[:]),
        (lst[1::2], items[1::2]),
        (list(reversed(lst)), list(reversed(items))),
    ):
        assert got == want
        assert [type(x) for x in got] == [type(x) for x in want]


def test_a_slice_of_proxies_holds_what_it_returns(
    manager: statehub.SyncManager,
) -> None:
    """Proxies in a slice come back as Values, not in a column, with a
    hold each: what the slice returned outlives the list's refs; what it
    did not return goes with them."""
    kept = manager.dict({"k": 1})
    dropped = manager.dict({"k": 2})
    dropped_name = dropped._token.name
    lst = manager.list([kept, dropped])
    got = lst[:1]
    del kept, dropped
    lst.clear()
    assert [d["k"] for d in got] == [1]
    with pytest.raises(statehub.ObjectNotFound):
        connection_for(lst._token.address).call(
            "Objects", "Describe", objects_pb2.DescribeRequest(name=dropped_name)
        )
