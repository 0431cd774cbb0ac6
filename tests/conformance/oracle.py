"""The oracle: Python's own objects, and how cases are written down.

Each object type has an Oracle holding the real Python object -- a dict, a
list, a types.SimpleNamespace, a one-slot holder (Manager's Value) or an
array.array (Manager's Array) -- and a table of the ops a case may run on
it. Where statehub documents a deviation from Python (api/statehub/v1/
*.proto), the oracle emulates it in one marked place; look for "Deviation".

Standard library only.
"""

from __future__ import annotations

import array
import dataclasses
import types
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
BIG = 2**53  # the first int a double cannot tell from its successor


class GeneratorError(Exception):
    """A mistake in a case definition (not an outcome of a step)."""


def slice_text(start: Any, stop: Any, step: Any) -> str:
    """Returns `start:stop:step` as Python spells it, dropping Nones."""
    text = ("" if start is None else repr(start)) + ":"
    text += "" if stop is None else repr(stop)
    if step is not None:
        text += ":" + repr(step)
    return text


def call_text(var: str, op: str, args: Sequence[Any]) -> str:
    return f"{var}.{op}({', '.join(repr(a) for a in args)})"


def check_int64(x: Any) -> Any:
    """statehub ints are int64: an int sum out of range is OverflowError."""
    is_int = isinstance(x, int) and not isinstance(x, bool)
    if is_int and not INT64_MIN <= x <= INT64_MAX:
        raise OverflowError("int64 overflow")
    return x


def add_numbers(current: Any, delta: Any) -> Any:
    """The oracle of Increment: current + delta, for numbers only.

    Deviation (documented in dict.proto and cell.proto): statehub increments
    numbers only, so 'a' + 'b' or [1] + [2], which Python would concatenate,
    are TypeError here; int sums overflow at int64.
    """
    for x in (current, delta):
        if not isinstance(x, (bool, int, float)):
            raise TypeError(f"unsupported operand type: {type(x).__name__}")
    return check_int64(current + delta)


# ---------------------------------------------------------------------------
# Oracles: one per object type. OPS maps an op name to its arities, the
# Python it runs, and how to print that Python.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Op:
    arities: tuple[int, ...]
    run: Callable[..., Any]
    text: Callable[..., str] | None = None  # None: var.op(args)


class Oracle:
    VAR: ClassVar[str]
    OPS: ClassVar[dict[str, Op]]

    def __init__(self, init: Any, typecode: str) -> None:
        raise NotImplementedError

    def contents(self) -> Any:
        raise NotImplementedError


class DictOracle(Oracle):
    VAR = "d"

    def __init__(self, init: dict[Any, Any], typecode: str) -> None:
        del typecode
        self.d = dict(init)

    def contents(self) -> Any:
        return self.d

    def update(self, pairs: list[tuple[Any, Any]]) -> None:
        # Deviation: statehub's Update is atomic, so a bad entry leaves the
        # dict unchanged; Python's update would keep the entries before it.
        new = dict(self.d)
        new.update(pairs)
        self.d = new

    def ior(self, pairs: list[tuple[Any, Any]]) -> None:
        new = dict(self.d)
        new |= pairs
        self.d = new

    def increment(self, key: Any, delta: Any = 1) -> Any:
        total = add_numbers(self.d.get(key, 0), delta)
        self.d[key] = total
        return total

    def compare_and_set(self, key: Any, expected: Any, desired: Any) -> Any:
        swapped = key in self.d and self.d[key] == expected
        if swapped:
            self.d[key] = desired
        return (swapped, self.d.get(key))

    def compare_and_set_absent(self, key: Any, desired: Any) -> Any:
        swapped = key not in self.d
        if swapped:
            self.d[key] = desired
        return (swapped, self.d[key])

    def get_and_set(self, key: Any, value: Any) -> Any:
        previous = [self.d[key]] if key in self.d else []
        self.d[key] = value
        return previous

    def set(self, key: Any, value: Any) -> None:
        self.d[key] = value

    def delete(self, key: Any) -> None:
        del self.d[key]

    OPS: ClassVar[dict[str, Op]] = {
        "get": Op(
            (1, 2),
            lambda o, *a: o.d[a[0]] if len(a) == 1 else o.d.get(*a),
            lambda *a: f"d[{a[0]!r}]" if len(a) == 1 else call_text("d", "get", a),
        ),
        "set": Op((2,), lambda o, k, v: o.set(k, v), lambda k, v: f"d[{k!r}] = {v!r}"),
        "delete": Op((1,), lambda o, k: o.delete(k), lambda k: f"del d[{k!r}]"),
        "contains": Op((1,), lambda o, k: k in o.d, lambda k: f"{k!r} in d"),
        "len": Op((0,), lambda o: len(o.d), lambda: "len(d)"),
        "items": Op((0,), lambda o: list(o.d.items()), lambda: "list(d.items())"),
        "keys": Op((0,), lambda o: list(o.d.keys()), lambda: "list(d.keys())"),
        "values": Op((0,), lambda o: list(o.d.values()), lambda: "list(d.values())"),
        "pop": Op((1, 2), lambda o, *a: o.d.pop(*a)),
        "popitem": Op((0,), lambda o: o.d.popitem()),
        "setdefault": Op((1, 2), lambda o, *a: o.d.setdefault(*a)),
        "update": Op((1,), lambda o, pairs: o.update(pairs)),
        "fromkeys": Op(
            (2,),
            lambda o, keys, v: o.update(list(dict.fromkeys(keys, v).items())),
            lambda keys, v: f"d.update(dict.fromkeys({keys!r}, {v!r}))",
        ),
        "ior": Op((1,), lambda o, pairs: o.ior(pairs), lambda p: f"d |= {p!r}"),
        "clear": Op((0,), lambda o: o.d.clear()),
        "copy": Op((0,), lambda o: dict(o.d)),
        "increment": Op(
            (1, 2),
            lambda o, *a: o.increment(*a),
            lambda k, *delta: (
                f"d[{k!r}] = d.get({k!r}, 0) + " + (repr(delta[0]) if delta else "1")
            ),
        ),
        "compare_and_set": Op((3,), lambda o, k, e, x: o.compare_and_set(k, e, x)),
        "compare_and_set_absent": Op(
            (2,), lambda o, k, x: o.compare_and_set_absent(k, x)
        ),
        "get_and_set": Op((2,), lambda o, k, v: o.get_and_set(k, v)),
    }


class ListOracle(Oracle):
    VAR = "l"

    def __init__(self, init: list[Any], typecode: str) -> None:
        del typecode
        self.l = list(init)

    def contents(self) -> Any:
        return self.l

    def set(self, i: int, v: Any) -> None:
        self.l[i] = v

    def set_slice(self, start: Any, stop: Any, step: Any, items: list[Any]) -> None:
        self.l[start:stop:step] = items

    def delete(self, i: int) -> None:
        del self.l[i]

    def delete_slice(self, start: Any, stop: Any, step: Any) -> None:
        del self.l[start:stop:step]

    def extend(self, items: list[Any]) -> int:
        self.l.extend(items)
        return len(self.l)

    def iadd(self, items: list[Any]) -> int:
        self.l += items
        return len(self.l)

    def repeat(self, times: int) -> int:
        self.l *= times
        return len(self.l)

    def sort(self, reverse: bool = False) -> None:
        # Deviation: CPython may leave a list partly sorted when a comparison
        # raises; statehub's Sort leaves it unchanged (list.proto). So sort a
        # copy and keep it only if the sort succeeded.
        new = list(self.l)
        new.sort(reverse=reverse)
        self.l[:] = new

    OPS: ClassVar[dict[str, Op]] = {
        "len": Op((0,), lambda o: len(o.l), lambda: "len(l)"),
        "get": Op((1,), lambda o, i: o.l[i], lambda i: f"l[{i!r}]"),
        "get_slice": Op(
            (3,),
            lambda o, a, b, c: o.l[a:b:c],
            lambda a, b, c: f"l[{slice_text(a, b, c)}]",
        ),
        "set": Op((2,), lambda o, i, v: o.set(i, v), lambda i, v: f"l[{i!r}] = {v!r}"),
        "set_slice": Op(
            (4,),
            lambda o, a, b, c, items: o.set_slice(a, b, c, items),
            lambda a, b, c, items: f"l[{slice_text(a, b, c)}] = {items!r}",
        ),
        "delete": Op((1,), lambda o, i: o.delete(i), lambda i: f"del l[{i!r}]"),
        "delete_slice": Op(
            (3,),
            lambda o, a, b, c: o.delete_slice(a, b, c),
            lambda a, b, c: f"del l[{slice_text(a, b, c)}]",
        ),
        "append": Op(
            (1,),
            lambda o, v: (o.l.append(v), len(o.l))[1],
            lambda v: f"l.append({v!r}); len(l)",
        ),
        "extend": Op(
            (1,), lambda o, i: o.extend(i), lambda i: f"l.extend({i!r}); len(l)"
        ),
        "iadd": Op((1,), lambda o, i: o.iadd(i), lambda i: f"l += {i!r}; len(l)"),
        "insert": Op((2,), lambda o, i, v: o.l.insert(i, v)),
        "pop": Op((0, 1), lambda o, *a: o.l.pop(*a)),
        "remove": Op((1,), lambda o, v: o.l.remove(v)),
        "index": Op((1, 2, 3), lambda o, *a: o.l.index(*a)),
        "count": Op((1,), lambda o, v: o.l.count(v)),
        "contains": Op((1,), lambda o, v: v in o.l, lambda v: f"{v!r} in l"),
        "reverse": Op((0,), lambda o: o.l.reverse()),
        "sort": Op(
            (0, 1),
            lambda o, *a: o.sort(*a),
            lambda *a: "l.sort()" if not a else f"l.sort(reverse={a[0]!r})",
        ),
        "clear": Op((0,), lambda o: o.l.clear()),
        "repeat": Op((1,), lambda o, n: o.repeat(n), lambda n: f"l *= {n!r}; len(l)"),
    }


def check_attribute(name: Any) -> str:
    # Deviation: SimpleNamespace takes any string; statehub takes identifiers
    # not starting with "_" (Manager keeps those for the proxy), else
    # VALUE_ERROR (namespace.proto).
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"bad attribute name {name!r}")
    return name


class NamespaceOracle(Oracle):
    VAR = "ns"

    def __init__(self, init: dict[str, Any], typecode: str) -> None:
        del typecode
        self.ns = types.SimpleNamespace(**init)

    def contents(self) -> Any:
        return dict(vars(self.ns))

    OPS: ClassVar[dict[str, Op]] = {
        "get": Op(
            (1,), lambda o, a: getattr(o.ns, check_attribute(a)), lambda a: f"ns.{a}"
        ),
        "set": Op(
            (2,),
            lambda o, a, v: setattr(o.ns, check_attribute(a), v),
            lambda a, v: f"ns.{a} = {v!r}",
        ),
        "delete": Op(
            (1,),
            lambda o, a: delattr(o.ns, check_attribute(a)),
            lambda a: f"del ns.{a}",
        ),
        "items": Op((0,), lambda o: dict(vars(o.ns)), lambda: "vars(ns)"),
    }


class ValueOracle(Oracle):
    """Manager's Value: one cell; its typecode is informational."""

    VAR = "v"

    def __init__(self, init: Any, typecode: str) -> None:
        del typecode
        self.value = init

    def contents(self) -> Any:
        return self.value

    def set(self, x: Any) -> None:
        self.value = x

    def increment(self, delta: Any = 1) -> Any:
        self.value = add_numbers(self.value, delta)
        return self.value

    def compare_and_set(self, expected: Any, desired: Any) -> Any:
        swapped = self.value == expected
        if swapped:
            self.value = desired
        return (swapped, self.value)

    def get_and_set(self, x: Any) -> Any:
        previous, self.value = self.value, x
        return previous

    OPS: ClassVar[dict[str, Op]] = {
        "get": Op((0,), lambda o: o.value, lambda: "v.value"),
        "set": Op((1,), lambda o, x: o.set(x), lambda x: f"v.value = {x!r}"),
        "increment": Op(
            (0, 1),
            lambda o, *a: o.increment(*a),
            lambda *a: "v.value += " + (repr(a[0]) if a else "1"),
        ),
        "compare_and_set": Op((2,), lambda o, e, x: o.compare_and_set(e, x)),
        "get_and_set": Op((1,), lambda o, x: o.get_and_set(x)),
    }


class ArrayOracle(Oracle):
    VAR = "a"

    def __init__(self, init: list[Any], typecode: str) -> None:
        self.a = array.array(typecode, init)

    def contents(self) -> Any:
        return self.a.tolist()

    def set(self, i: int, v: Any) -> None:
        self.a[i] = v

    def set_slice(self, start: Any, stop: Any, step: Any, items: list[Any]) -> None:
        target = slice(start, stop, step)
        length = len(range(*target.indices(len(self.a))))  # ValueError on step 0
        new = array.array(self.a.typecode, items)  # TypeError, OverflowError
        # Deviation: statehub arrays are fixed-length (Manager's Array is a
        # ctypes array), so a slice assignment must keep the length; Python's
        # array.array would grow or shrink (cell.proto: VALUE_ERROR).
        if len(new) != length:
            raise ValueError("an array slice assignment must keep the length")
        self.a[target] = new

    OPS: ClassVar[dict[str, Op]] = {
        "len": Op((0,), lambda o: len(o.a), lambda: "len(a)"),
        "get": Op((1,), lambda o, i: o.a[i], lambda i: f"a[{i!r}]"),
        "get_slice": Op(
            (3,),
            lambda o, a, b, c: o.a[a:b:c].tolist(),
            lambda a, b, c: f"a[{slice_text(a, b, c)}].tolist()",
        ),
        "set": Op((2,), lambda o, i, v: o.set(i, v), lambda i, v: f"a[{i!r}] = {v!r}"),
        "set_slice": Op(
            (4,),
            lambda o, a, b, c, items: o.set_slice(a, b, c, items),
            lambda a, b, c, items: f"a[{slice_text(a, b, c)}] = {items!r}",
        ),
    }


ORACLES: dict[str, type[Oracle]] = {
    "dict": DictOracle,
    "list": ListOracle,
    "namespace": NamespaceOracle,
    "value": ValueOracle,
    "array": ArrayOracle,
}


# ---------------------------------------------------------------------------
# Case definitions
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CaseDef:
    object_type: str
    suffix: str
    init: Any
    steps: tuple[tuple[Any, ...], ...]
    typecode: str = ""
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.object_type}_{self.suffix}"


class CaseList(list[CaseDef]):
    """The cases of one file, in the order written."""

    def add(
        self,
        object_type: str,
        suffix: str,
        init: Any,
        *steps: tuple[Any, ...],
        typecode: str = "",
        note: str = "",
    ) -> None:
        """Adds a case. Each step is (op, arg, ...)."""
        self.append(CaseDef(object_type, suffix, init, steps, typecode, note))


# ALL_KINDS has one value of every kind a case may store, nested ones too.
ALL_KINDS = [
    None,
    True,
    False,
    0,
    -1,
    INT64_MAX,
    INT64_MIN,
    0.0,
    -2.5,
    1e300,
    "",
    "ünïcødé ✓",
    b"",
    b"\x00\xff",
    [],
    (),
    {},
    [1, [2, [3]]],
    (1, ("a", b"b")),
    {"k": [1, {"n": None}], 2: (3.5,)},
]
