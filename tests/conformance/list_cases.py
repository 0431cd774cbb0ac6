"""Conformance cases for list.

Each case is (object type, name suffix, initial contents, steps...); each
step is (op, arg, ...). The expected results are not written here: generate.py
runs every step on Python's own object (oracle.py) and records what it did.
"""

from __future__ import annotations

from oracle import ALL_KINDS, BIG, INT64_MAX, INT64_MIN, CaseList

CASES = CaseList()
case = CASES.add

TEN = list(range(10))
case("list", "len", [], ("len",), ("append", 1), ("len",), ("extend", [2, 3]), ("len",))
case(
    "list",
    "get_index",
    [10, 20, 30],
    ("get", 0),
    ("get", 2),
    ("get", -1),
    ("get", -3),
    ("get", 3),
    ("get", -4),
    ("get", 100),
)
case("list", "get_index_empty", [], ("get", 0), ("get", -1))
case(
    "list",
    "get_slice",
    TEN,
    ("get_slice", None, None, None),
    ("get_slice", 2, 5, None),
    ("get_slice", None, 3, None),
    ("get_slice", 7, None, None),
    ("get_slice", -3, None, None),
    ("get_slice", None, -3, None),
    ("get_slice", -100, 100, None),
    ("get_slice", 5, 2, None),
    ("get_slice", 100, None, None),
    ("get_slice", -2, -5, None),
    ("get_slice", 3, 3, None),
)
case(
    "list",
    "get_slice_step",
    TEN,
    ("get_slice", None, None, 2),
    ("get_slice", 1, None, 3),
    ("get_slice", None, None, -1),
    ("get_slice", None, None, -2),
    ("get_slice", 8, 2, -2),
    ("get_slice", -1, -5, -1),
    ("get_slice", 2, 8, -1),
    ("get_slice", 100, None, -3),
    ("get_slice", None, -100, -1),
    ("get_slice", -100, None, -1),
    ("get_slice", 3, None, 100),
    ("get_slice", None, None, INT64_MAX),
    ("get_slice", None, None, INT64_MIN + 1),
    ("get_slice", None, None, INT64_MIN),
    ("get_slice", INT64_MIN, INT64_MAX, None),
    ("get_slice", INT64_MAX, INT64_MIN, -1),
    ("get_slice", None, None, 0),
    ("get_slice", 1, 2, 0),
)
case(
    "list", "get_slice_empty", [], ("get_slice", None, None, -1), ("get_slice", 1, 5, 2)
)
case(
    "list",
    "set_index",
    ["a", "b", "c"],
    ("set", 0, "x"),
    ("set", -1, "z"),
    ("set", 1, [1, (2,)]),
    ("set", 3, "out"),
    ("set", -4, "out"),
)
case(
    "list",
    "set_slice_resize",
    [1, 2, 3, 4, 5],
    ("set_slice", 1, 3, None, ["a"]),
    ("set_slice", 0, 0, None, ["x", "y"]),
    ("set_slice", 100, None, None, [7]),
    ("set_slice", 5, 2, None, ["q"]),
    ("set_slice", -2, None, None, [9, 9, 9]),
    ("set_slice", -100, 1, None, []),
    ("set_slice", None, None, None, []),
    ("set_slice", None, None, None, [1, 2]),
)
case(
    "list",
    "set_slice_step_one_resizes",
    [1, 2, 3, 4],
    ("set_slice", 0, 2, 1, ["only"]),
    ("set_slice", 1, None, 1, ["a", "b", "c", "d"]),
    note="an explicit step of 1 is not an extended slice: it may resize",
)
case(
    "list",
    "set_slice_extended",
    [0, 1, 2, 3, 4, 5],
    ("set_slice", None, None, 2, ["a", "b", "c"]),
    ("set_slice", None, None, -1, [5, 4, 3, 2, 1, 0]),
    ("set_slice", 4, 0, -2, ["x", "y"]),
    ("set_slice", None, None, 2, ["a"]),
    ("set_slice", 1, None, 2, []),
    ("set_slice", None, None, -1, [1, 2, 3, 4, 5, 6, 7]),
    ("set_slice", 10, 20, 2, []),
    ("set_slice", None, None, 0, [1]),
    note="an extended slice needs the same length (VALUE_ERROR)",
)
case(
    "list",
    "delete_index",
    ["a", "b", "c", "d"],
    ("delete", 0),
    ("delete", -1),
    ("delete", 2),
    ("delete", -3),
    ("delete", 1),
    ("delete", 0),
    ("delete", 0),
)
case(
    "list",
    "delete_slice",
    TEN,
    ("delete_slice", 1, 3, None),
    ("delete_slice", None, None, 2),
    ("delete_slice", 5, 2, None),
    ("delete_slice", None, None, -2),
    ("delete_slice", None, None, 0),
    ("delete_slice", -100, 100, 1),
    ("delete_slice", None, None, None),
)
case(
    "list",
    "append",
    [],
    ("append", 1),
    ("append", None),
    ("append", [1, [2]]),
    ("append", {"a": (1,)}),
    ("append", ()),
    ("get", -2),
)
case(
    "list",
    "extend_iadd",
    [1],
    ("extend", [2, 3]),
    ("extend", []),
    ("iadd", ["x"]),
    ("iadd", [[4], (5,)]),
    ("iadd", []),
)
case(
    "list",
    "insert",
    [1, 2, 3],
    ("insert", 0, "a"),
    ("insert", 100, "end"),
    ("insert", -1, "before last"),
    ("insert", -100, "front"),
    ("insert", 2, "middle"),
    ("insert", INT64_MAX, "far end"),
    ("insert", INT64_MIN, "far front"),
)
case("list", "insert_empty", [], ("insert", 5, "a"), ("insert", -5, "b"))
case(
    "list",
    "pop",
    [1, 2, 3, 4, 5],
    ("pop",),
    ("pop", 0),
    ("pop", -1),
    ("pop", 10),
    ("pop", -10),
    ("pop", 1),
    ("pop",),
    ("pop",),
    ("pop", 0),
)
case("list", "pop_empty", [], ("pop", 0), ("pop", -1))
case(
    "list",
    "remove",
    [1, 2, 3, 2, True, [1, 2]],
    ("remove", 2),
    ("remove", 99),
    ("remove", 1.0),
    ("remove", 1.0),
    ("remove", (1, 2)),
    ("remove", [1, 2]),
    ("remove", "2"),
    note="remove takes the first equal item (1.0 == 1 == True)",
)
case(
    "list",
    "index",
    ["a", "b", "c", "b", True, 1.0],
    ("index", "b"),
    ("index", "b", 2),
    ("index", "b", 2, 3),
    ("index", "b", 2, 4),
    ("index", "b", -3),
    ("index", "b", -100, 100),
    ("index", "a", 1),
    ("index", "z"),
    ("index", 1),
    ("index", 1, 5),
    ("index", True, -1),
    ("index", "c", 10),
    ("index", "c", 3, 1),
)
case(
    "list",
    "count",
    [1, 1.0, True, "1", b"1", [1], (1,), None, {"a": 1, "b": 2}, None],
    ("count", 1),
    ("count", "1"),
    ("count", b"1"),
    ("count", [1]),
    ("count", (1,)),
    ("count", None),
    ("count", {"b": 2, "a": 1}),
    ("count", 2),
    ("count", 0),
)
case(
    "list",
    "contains",
    [True, [1], {"a": (1, 2)}, b"x"],
    ("contains", 1.0),
    ("contains", 1),
    ("contains", [1]),
    ("contains", (1,)),
    ("contains", {"a": (1, 2)}),
    ("contains", {"a": [1, 2]}),
    ("contains", "x"),
    ("contains", b"x"),
    ("contains", 0),
)
case("list", "reverse", [1, 2, 3], ("reverse",), ("append", 0), ("reverse",))
case("list", "reverse_empty", [], ("reverse",))
case(
    "list",
    "sort_ints",
    [3, -1, 2, 10, 0],
    ("sort",),
    ("sort", True),
    ("sort", False),
)
case(
    "list",
    "sort_mixed_numbers",
    [2.5, 1, True, 0, -1.5, 3, False, 1.0],
    ("sort",),
    ("sort", True),
    note="sort is stable: 1, True and 1.0 keep their order, also in reverse",
)
case(
    "list",
    "sort_stable_reverse",
    [1.0, 2, 1, True, 0],
    ("sort", True),
    ("sort",),
)
case(
    "list",
    "sort_strings_bytes",
    ["b", "A", "a", "B", "", "ab", "é"],
    ("sort",),
    ("set_slice", None, None, None, [b"b", b"", b"\xff", b"a\x00", b"a"]),
    ("sort",),
    ("sort", True),
)
case(
    "list",
    "sort_sequences",
    [(2, "a"), (1, "b"), (1, "a"), (), (1,), (1, "a", 0)],
    ("sort",),
    ("set_slice", None, None, None, [[2], [1, 5], [1], [], [0, 9, 9]]),
    ("sort",),
    ("sort", True),
)
case(
    "list",
    "sort_tuples_compare_only_what_differs",
    [(2, 3), (1, "a")],
    ("sort",),
    note="tuples compare item by item up to the first difference, so 3 and "
    "'a' are never compared",
)
case(
    "list",
    "sort_incomparable_unchanged",
    [3, "a", 1],
    ("sort",),
    ("sort", True),
    ("set_slice", None, None, None, [None, None]),
    ("sort",),
    ("set_slice", None, None, None, [(1, "a"), (1, 2)]),
    ("sort",),
    ("set_slice", None, None, None, [[1], (1,)]),
    ("sort",),
    ("set_slice", None, None, None, [{"a": 1}, {"b": 2}]),
    ("sort",),
    ("set_slice", None, None, None, [2, 1, b"x"]),
    ("sort",),
    note="deviation: CPython may leave a list partly sorted when a comparison "
    "fails; statehub leaves it unchanged (list.proto), so contents_after is "
    "the list as it was before the failed sort",
)
case(
    "list",
    "sort_trivial",
    [None],
    ("sort",),
    ("set_slice", None, None, None, []),
    ("sort",),
    note="a list of one item sorts without comparing anything",
)
case("list", "clear", [1, [2], {"3": 4}], ("clear",), ("len",), ("clear",))
case(
    "list",
    "repeat",
    [1, "a"],
    ("repeat", 3),
    ("repeat", 1),
    ("repeat", 0),
    ("append", "x"),
    ("repeat", -1),
    ("append", "y"),
    ("repeat", INT64_MIN),
    ("repeat", 5),
)
case(
    "list",
    "value_kinds",
    ALL_KINDS,
    *(("get", i) for i in range(len(ALL_KINDS))),
    ("get_slice", None, None, -4),
)
case(
    "list",
    "nested_values",
    [[1, [2, 3]], {"a": [1]}],
    ("get", 0),
    ("get", 1),
    ("append", {"k": {"n": ([1], (2,))}}),
    ("get_slice", 1, None, None),
    ("index", {"k": {"n": ([1], (2,))}}),
)

case(
    "list",
    "int64_extremes",
    ["a", "b", "c"],
    ("get", INT64_MIN),
    ("get", INT64_MAX),
    ("set", INT64_MIN, "x"),
    ("delete", INT64_MIN),
    ("pop", INT64_MIN),
    ("pop", INT64_MAX),
    ("index", "b", INT64_MIN, INT64_MAX),
    ("index", "b", INT64_MAX),
    ("delete_slice", None, None, INT64_MIN),
    ("set_slice", None, None, INT64_MIN, ["z"]),
    ("set_slice", INT64_MAX, INT64_MIN, -1, ["p", "q"]),
    ("get_slice", INT64_MIN, None, INT64_MAX),
    note="indices and steps at the ends of int64 must clamp or fail as in "
    "Python, never overflow",
)
case(
    "list",
    "int_float_precision",
    [BIG + 1, float(BIG), INT64_MAX, 2.0**63],
    ("count", float(BIG)),
    ("count", BIG),
    ("index", BIG + 1.0),
    ("index", 2.0**63),
    ("contains", INT64_MAX - 1),
    ("remove", float(INT64_MAX)),
    ("sort",),
    ("sort", True),
    note="ints and doubles compare exactly, as Python's (2**53 + 1 > 2.0**53, "
    "2**63 - 1 < 2.0**63), also when sorting",
)
case(
    "list",
    "sort_nested_incomparable",
    [[1, "a"], [1, 2]],
    ("sort",),
    ("set_slice", None, None, None, [(1, "b"), (1.0, "a"), (True, "c")]),
    ("sort",),
    ("set_slice", None, None, None, ["\uff5a", "😀", "z", "é", "a\x00", "a"]),
    ("sort",),
    note="strings sort by code point (not UTF-16 units); nested items compare "
    "item by item",
)
