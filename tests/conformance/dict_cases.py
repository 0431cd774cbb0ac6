"""Conformance cases for dict.

Each case is (object type, name suffix, initial contents, steps...); each
step is (op, arg, ...). The expected results are not written here: generate.py
runs every step on Python's own object (oracle.py) and records what it did.
"""

from __future__ import annotations

from oracle import ALL_KINDS, BIG, INT64_MAX, INT64_MIN, CaseList

CASES = CaseList()
case = CASES.add

case("dict", "get_present", {"a": 1, "b": 2}, ("get", "a"), ("get", "b"))
case("dict", "get_missing", {"a": 1}, ("get", "x"), ("get", "A"), ("get", None))
case(
    "dict",
    "get_default",
    {"a": 1},
    ("get", "x", 0),
    ("get", "a", 0),
    ("get", "x", None),
    ("get", "x", [1, 2]),
    note="get(key, None) is d.get(key): a set but null default",
)
case(
    "dict",
    "set_keeps_position",
    {"a": 1, "b": 2},
    ("set", "a", 10),
    ("set", "c", 3),
    ("set", "b", None),
    ("keys",),
)
case(
    "dict",
    "delete",
    {"a": 1, "b": 2},
    ("delete", "a"),
    ("delete", "a"),
    ("delete", "zz"),
    ("set", "a", 5),
    ("keys",),
    note="a deleted key set again goes to the end",
)
case(
    "dict",
    "contains",
    {"a": 1, 1: "one", (1, 2): "t"},
    ("contains", "a"),
    ("contains", "x"),
    ("contains", 1),
    ("contains", 1.0),
    ("contains", True),
    ("contains", (1, 2)),
    ("contains", (1.0, 2)),
    ("contains", [1, 2]),
    ("contains", b"a"),
)
case(
    "dict",
    "len",
    {"a": 1, "b": 2, "c": 3},
    ("len",),
    ("set", "d", 4),
    ("len",),
    ("delete", "a"),
    ("len",),
    ("set", "b", 0),
    ("len",),
)
case(
    "dict",
    "items_keys_values",
    {"b": 1, "a": [2], 3: None},
    ("items",),
    ("keys",),
    ("values",),
    ("set", "b", "again"),
    ("items",),
)
case("dict", "items_empty", {}, ("items",), ("keys",), ("values",), ("len",))
case(
    "dict",
    "pop",
    {"a": 1, "b": 2},
    ("pop", "a"),
    ("pop", "a"),
    ("pop", "a", "dflt"),
    ("pop", "b", "dflt"),
    ("pop", "x", None),
    ("len",),
)
case(
    "dict",
    "popitem",
    {"a": 1, "b": 2, "c": 3},
    ("set", "a", 10),
    ("popitem",),
    ("delete", "b"),
    ("set", "b", 20),
    ("popitem",),
    ("popitem",),
    ("popitem",),
    note="popitem takes the last inserted entry; empty is KEY_ERROR",
)
case(
    "dict",
    "setdefault",
    {"a": 1},
    ("setdefault", "a", 5),
    ("setdefault", "n", []),
    ("setdefault", "n", "other"),
    ("setdefault", "z"),
    ("setdefault", "z", 3),
    ("items",),
)
case(
    "dict",
    "update",
    {"a": 1, "b": 2},
    ("update", [("a", 10), ("c", 3)]),
    ("update", []),
    ("update", [("x", 1), ("x", 2)]),
    ("update", [(5, "int"), (5.0, "float"), (False, "f"), (0, "zero")]),
    note="entries apply in order; a later duplicate key wins, keeping the "
    "first spelling",
)
case(
    "dict",
    "update_bad_key_is_atomic",
    {"a": 1},
    ("update", [("ok", 1), ([1], 2)]),
    ("update", [("ok", 1), ((1, [2]), 2)]),
    ("update", [({"k": 1}, 1)]),
    note="deviation: statehub's update is atomic, so an unhashable key leaves "
    "the dict unchanged (Python would keep the entries before it)",
)
case(
    "dict",
    "fromkeys",
    {"a": 1},
    ("fromkeys", ["a", "b", "c"], 0),
    ("fromkeys", [], 1),
    ("fromkeys", ["d", "d", 1], None),
    ("fromkeys", [[1]], 0),
    note="fromkeys is an update of the keys with one value",
)
case(
    "dict",
    "ior",
    {"a": 1},
    ("ior", [("b", 2), ("a", 3)]),
    ("ior", []),
    ("ior", [((1, 2), "t")]),
)
case(
    "dict",
    "clear",
    {"a": 1, "b": {"c": 2}},
    ("clear",),
    ("len",),
    ("clear",),
    ("set", "a", 1),
    ("items",),
)
case(
    "dict",
    "copy",
    {"a": 1, 2: [3], (4,): {"x": None}},
    ("copy",),
    ("set", 9, 9),
    ("copy",),
)
case(
    "dict",
    "numeric_keys_unify",
    {},
    ("set", 1, "int"),
    ("get", 1.0),
    ("get", True),
    ("set", True, "bool"),
    ("set", 1.0, "float"),
    ("keys",),
    ("set", 2.0, "two"),
    ("get", 2),
    ("contains", 2),
    ("set", 0, "zero"),
    ("get", False),
    ("get", 0.0),
    ("delete", True),
    ("items",),
    ("pop", 2),
    ("items",),
    note="1, 1.0 and True are one key; the first spelling stored is kept",
)
case(
    "dict",
    "float_key_spelling_kept",
    {},
    ("set", 1.0, "a"),
    ("set", 1, "b"),
    ("set", 1.5, "c"),
    ("get", 1.5),
    ("get", 1),
    ("set", False, "f"),
    ("set", 0.0, "z"),
    ("keys",),
)
case(
    "dict",
    "tuple_keys",
    {},
    ("set", (1, "a"), "x"),
    ("get", (1.0, "a")),
    ("get", (True, "a")),
    ("set", (), "empty"),
    ("set", ((1, 2), 3), "nested"),
    ("get", ((1, 2), 3)),
    ("get", ((1, 2),)),
    ("contains", (1, "a")),
    ("contains", ("a", 1)),
    ("set", (None, b"x", 2.5), "scalars"),
    ("keys",),
)
case(
    "dict",
    "unhashable_keys",
    {"a": 1},
    ("set", [1], "x"),
    ("get", [1]),
    ("get", [1], "default"),
    ("get", {"a": 1}),
    ("delete", [1]),
    ("contains", [1]),
    ("contains", {}),
    ("pop", [1]),
    ("pop", [1], None),
    ("setdefault", [1]),
    ("set", (1, [2]), "x"),
    ("set", ({},), "x"),
    ("increment", [1]),
    ("get_and_set", [1], 2),
    ("compare_and_set", [1], 1, 2),
    ("compare_and_set_absent", [1], 2),
    note="lists and dicts (also inside tuples) are unhashable: TYPE_ERROR",
)
case(
    "dict",
    "scalar_keys",
    {},
    ("set", None, "none"),
    ("set", "a", "str"),
    ("set", b"a", "bytes"),
    ("set", "", "empty str"),
    ("set", b"", "empty bytes"),
    ("set", -7, "neg"),
    ("set", INT64_MAX, "max"),
    ("set", INT64_MIN, "min"),
    ("set", -0.5, "float"),
    ("len",),
    ("get", None),
    ("get", b"a"),
    ("get", "a"),
    ("get", -0.5),
    ("get", INT64_MIN),
    ("items",),
    note="str and bytes never equal each other",
)
case(
    "dict",
    "value_kinds",
    {},
    *(("set", i, v) for i, v in enumerate(ALL_KINDS)),
    *(("get", i) for i in range(len(ALL_KINDS))),
    ("values",),
)
case(
    "dict",
    "nested_values",
    {},
    (
        "set",
        "cfg",
        {"hosts": ["a", "b"], "ports": (80, 443), "limits": {1: None, "x": 1.5}},
    ),
    ("get", "cfg"),
    ("set", "deep", [[1, [2, [3, [4]]]], {"a": {"b": {"c": ()}}}]),
    ("get", "deep"),
    ("items",),
)
case(
    "dict",
    "increment_missing_is_zero",
    {},
    ("increment", "n"),
    ("increment", "n"),
    ("increment", "n", 5),
    ("increment", "n", -10),
    ("increment", "m", 0),
    ("items",),
    note="statehub counts a missing key as 0 (dict.proto); the oracle is "
    "d[k] = d.get(k, 0) + delta",
)
case(
    "dict",
    "increment_float",
    {"x": 1, "y": 2.0},
    ("increment", "x", 0.5),
    ("increment", "y"),
    ("increment", "y", -4),
    ("increment", "z", 2.5),
    ("increment", "w", 1.0),
    ("items",),
    note="with a double either side the sum is a double",
)
case(
    "dict",
    "increment_bool",
    {"t": True, "f": False},
    ("increment", "t"),
    ("increment", "f", False),
    ("increment", "c", True),
    ("increment", "c", True),
    ("increment", "t", 0.5),
    ("items",),
    note="bools count as 0 and 1 and the sum is an int, as True + 1 == 2",
)
case(
    "dict",
    "increment_not_a_number",
    {"s": "x", "n": None, "l": [1], "i": 1},
    ("increment", "s"),
    ("increment", "s", "y"),
    ("increment", "n"),
    ("increment", "l", [2]),
    ("increment", "i", "1"),
    ("increment", "i", None),
    ("increment", "missing", "x"),
    ("items",),
    note="deviation: only numbers increment (dict.proto), so str + str and "
    "list + list, which Python concatenates, are TYPE_ERROR here",
)
case(
    "dict",
    "increment_overflow",
    {"big": INT64_MAX, "small": INT64_MIN},
    ("increment", "big"),
    ("increment", "small", -1),
    ("increment", "big", -1),
    ("increment", "small", INT64_MAX),
    ("increment", "big", 0.5),
    note="deviation: int + int overflows at int64 (VALUE_ERROR, dict.proto); "
    "Python ints do not",
)
case(
    "dict",
    "increment_numeric_key",
    {1: 10},
    ("increment", 1.0),
    ("increment", True, 2),
    ("increment", 2.0),
    ("items",),
)
case(
    "dict",
    "compare_and_set",
    {"a": 1, "n": None},
    ("compare_and_set", "a", 1, 2),
    ("compare_and_set", "a", 1, 3),
    ("compare_and_set", "a", 2.0, "two"),
    ("compare_and_set", "missing", None, 1),
    ("compare_and_set", "n", None, "was none"),
    ("compare_and_set", 1, 1, 2),
    ("items",),
    note="result is (swapped, d.get(key)); a missing key never equals "
    "expected, not even None",
)
case(
    "dict",
    "compare_and_set_equality",
    {"l": [1, 2], "m": {"a": 1, "b": 2}, "t": (1, "x")},
    ("compare_and_set", "l", (1, 2), "x"),
    ("compare_and_set", "l", [1.0, True + 1], "list"),
    ("compare_and_set", "m", {"b": 2, "a": 1}, "map"),
    ("compare_and_set", "t", (True, "x"), "tuple"),
    ("compare_and_set", "t", ("x", 1), "no"),
    ("items",),
    note="Python equality: a list never equals a tuple, maps ignore order, "
    "numbers compare by value",
)
case(
    "dict",
    "compare_and_set_absent",
    {"a": 1},
    ("compare_and_set_absent", "b", 2),
    ("compare_and_set_absent", "b", 3),
    ("compare_and_set_absent", "a", 3),
    ("compare_and_set_absent", 1.0, "float"),
    ("compare_and_set_absent", True, "bool"),
    ("items",),
    note="compare_and_set with expected unset: swaps only if the key is "
    "missing; result is (swapped, d[key])",
)
case(
    "dict",
    "get_and_set",
    {1: "one"},
    ("get_and_set", "a", 5),
    ("get_and_set", "a", 6),
    ("get_and_set", "n", None),
    ("get_and_set", "n", 1),
    ("get_and_set", 1.0, "float"),
    ("items",),
    note="result is [] if the key was missing, else [previous]",
)
case(
    "dict",
    "empty",
    {},
    ("len",),
    ("popitem",),
    ("pop", "a"),
    ("get", "a"),
    ("delete", "a"),
    ("clear",),
    ("copy",),
)

case(
    "dict",
    "int_float_precision",
    {},
    ("set", BIG + 1, "odd"),
    ("get", float(BIG)),
    ("contains", float(BIG + 2)),
    ("set", float(BIG), "even"),
    ("len",),
    ("set", 2.0**63, "two63"),
    ("get", INT64_MAX),
    ("contains", INT64_MAX),
    ("set", -(2.0**63), "neg"),
    ("get", INT64_MIN),
    ("set", INT64_MAX, "max"),
    ("items",),
    note="ints and doubles compare exactly, as Python's: 2**53 + 1 != "
    "2.0**53 and 2**63 - 1 != 2.0**63, though a cast to double says they are "
    "equal",
)
case(
    "dict",
    "negative_zero_and_nul",
    {},
    ("set", 0, "zero"),
    ("get", -0.0),
    ("set", -0.0, "negzero"),
    ("set", "a\x00b", "nul"),
    ("get", "a"),
    ("get", "a\x00b"),
    ("set", b"a\x00", "bnul"),
    ("get", b"a"),
    ("items",),
    note="-0.0 == 0 is one key; strings and bytes may hold NUL",
)
case(
    "dict",
    "nested_tuple_keys_unify",
    {((1, 2.0), "x"): "first"},
    ("get", ((1.0, 2), "x")),
    ("get", ((True, 2), "x")),
    ("set", ((1.0, 2), "x"), "second"),
    ("setdefault", ((1, 2), "x"), "third"),
    ("contains", ((1, 2), b"x")),
    ("items",),
)
