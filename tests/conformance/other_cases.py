"""Conformance cases for namespace, value and array.

Each case is (object type, name suffix, initial contents, steps...); each
step is (op, arg, ...). The expected results are not written here: generate.py
runs every step on Python's own object (oracle.py) and records what it did.
"""

from __future__ import annotations

from oracle import ALL_KINDS, BIG, INT64_MAX, INT64_MIN, CaseList

CASES = CaseList()
case = CASES.add

# --- namespace --------------------------------------------------------------

case(
    "namespace",
    "get_set",
    {"x": 1},
    ("get", "x"),
    ("set", "y", "two"),
    ("get", "y"),
    ("set", "x", [1, 2]),
    ("get", "x"),
    ("items",),
)
case(
    "namespace",
    "missing_attribute",
    {"x": 1},
    ("get", "nope"),
    ("delete", "nope"),
    ("get", "X"),
)
case(
    "namespace",
    "delete",
    {"x": 1, "y": 2},
    ("delete", "x"),
    ("get", "x"),
    ("delete", "x"),
    ("set", "x", 3),
    ("items",),
    note="an attribute deleted and set again goes last, as in vars()",
)
case(
    "namespace",
    "bad_names",
    {"x": 1},
    ("set", "_private", 1),
    ("set", "not-ident", 1),
    ("set", "1abc", 1),
    ("set", "", 1),
    ("get", "_x"),
    ("delete", "a b"),
    note="deviation: attribute names must be identifiers not starting with "
    "'_' (namespace.proto), else VALUE_ERROR; SimpleNamespace takes any str",
)
case("namespace", "items_empty", {}, ("items",), ("set", "a", None), ("items",))
case(
    "namespace",
    "value_kinds",
    {},
    *(("set", f"v{i}", v) for i, v in enumerate(ALL_KINDS)),
    *(("get", f"v{i}") for i in range(len(ALL_KINDS))),
)

# --- value ------------------------------------------------------------------

case(
    "value",
    "get_set",
    5,
    ("get",),
    ("set", "x"),
    ("get",),
    ("set", None),
    ("get",),
    ("set", {"a": [1, (2, 3)], 1: None}),
    ("get",),
)
case("value", "init_null", None, ("get",))
case(
    "value",
    "typecode_informational",
    3,
    ("set", "text"),
    ("get",),
    typecode="i",
    note="Manager's Value does not check its typecode; statehub keeps it for "
    "repr only (objects.proto)",
)
case(
    "value",
    "increment",
    0,
    ("increment",),
    ("increment", 10),
    ("increment", -0.5),
    ("increment", 0.5),
    ("get",),
)
case(
    "value", "increment_bool", True, ("increment",), ("set", False), ("increment", True)
)
case(
    "value",
    "increment_not_a_number",
    "x",
    ("increment",),
    ("increment", "y"),
    ("set", None),
    ("increment",),
    ("set", 1),
    ("increment", "1"),
    ("increment", [1]),
    note="deviation: only numbers increment (cell.proto); Python would "
    "concatenate 'x' + 'y'",
)
case(
    "value",
    "increment_overflow",
    INT64_MAX,
    ("increment",),
    ("set", INT64_MIN),
    ("increment", -1),
    ("increment", -0.5),
    note="deviation: int + int overflows at int64 (VALUE_ERROR)",
)
case(
    "value",
    "compare_and_set",
    1,
    ("compare_and_set", 1, 2),
    ("compare_and_set", 1, 3),
    ("compare_and_set", 2.0, "x"),
    ("compare_and_set", "x", None),
    ("compare_and_set", None, [1]),
    ("compare_and_set", (1,), 0),
    ("compare_and_set", [True], (1,)),
    note="result is (swapped, value after)",
)
case(
    "value",
    "get_and_set",
    "a",
    ("get_and_set", "b"),
    ("get_and_set", [1]),
    ("get_and_set", None),
    ("get",),
)

case(
    "value",
    "int_float_precision",
    BIG + 1,
    ("compare_and_set", float(BIG), "no"),
    ("compare_and_set", BIG + 1.0, "no"),
    ("set", INT64_MAX),
    ("compare_and_set", 2.0**63, "no"),
    ("increment", 0.5),
    note="int and double compare exactly; int + double is a double",
)

# --- array ------------------------------------------------------------------

case(
    "array",
    "i_len_get",
    [1, 2, 3],
    ("len",),
    ("get", 0),
    ("get", -1),
    ("get", -3),
    ("get", 3),
    ("get", -4),
    ("get", INT64_MIN),
    ("get_slice", None, None, INT64_MIN),
    typecode="i",
)
case(
    "array",
    "i_get_slice",
    [0, 1, 2, 3, 4, 5],
    ("get_slice", None, None, None),
    ("get_slice", 1, 4, None),
    ("get_slice", None, None, -1),
    ("get_slice", None, None, 2),
    ("get_slice", -2, None, None),
    ("get_slice", 4, 1, -2),
    ("get_slice", 10, 20, None),
    ("get_slice", None, None, 0),
    typecode="i",
)
case(
    "array",
    "i_set",
    [1, 2, 3],
    ("set", 0, 10),
    ("set", -1, -5),
    ("set", 3, 1),
    ("set", -4, 1),
    ("set", 0, "x"),
    ("set", 0, 1.5),
    ("set", 0, 2.0),
    ("set", 0, None),
    ("set", 0, [1]),
    ("set", 1, True),
    ("set", 0, 2**31),
    ("set", 0, -(2**31) - 1),
    ("set", 0, 2**31 - 1),
    ("set", 2, -(2**31)),
    typecode="i",
    note="a wrong kind is TYPE_ERROR; an int outside C int is VALUE_ERROR "
    "(OverflowError); True stores 1",
)
case(
    "array",
    "i_set_slice",
    [0, 1, 2, 3],
    ("set_slice", 0, 2, None, [7, 8]),
    ("set_slice", None, None, -1, [1, 2, 3, 4]),
    ("set_slice", None, None, 2, [0, 0]),
    ("set_slice", 0, 2, None, [1]),
    ("set_slice", 0, 1, None, [1, 2]),
    ("set_slice", None, None, 2, [1]),
    ("set_slice", 0, 2, None, ["x", "y"]),
    ("set_slice", 0, 2, None, [1, 2**40]),
    ("set_slice", None, None, 0, [1]),
    ("set_slice", 2, 2, None, []),
    typecode="i",
    note="deviation: arrays are fixed-length, so a slice assignment that "
    "changes the length is VALUE_ERROR (cell.proto); array.array would resize",
)
case(
    "array",
    "d_get_set",
    [0.0, 1.5, -2.0],
    ("get", 1),
    ("set", 0, 2),
    ("set", 1, True),
    ("set", 2, "x"),
    ("set", 2, None),
    ("get_slice", None, None, -1),
    ("set_slice", 0, 2, None, [5, 6.5]),
    ("set_slice", 0, 2, None, [5]),
    ("get", 0),
    ("set", 2, INT64_MAX),
    ("get", 2),
    typecode="d",
    note="a 'd' cell holds doubles: ints and bools stored there read back as doubles",
)
case(
    "array",
    "b_range",
    [0, 0, 0],
    ("set", 0, 127),
    ("set", 1, -128),
    ("set", 2, 128),
    ("set", 2, 300),
    ("set", 2, -129),
    ("set_slice", 0, 2, None, [300, 1]),
    ("set_slice", 1, 3, None, [5, 6]),
    typecode="b",
    note="300 does not fit a signed char: VALUE_ERROR (OverflowError), array unchanged",
)
case(
    "array",
    "i_empty",
    [],
    ("len",),
    ("get", 0),
    ("get_slice", None, None, None),
    ("set_slice", None, None, None, []),
    ("set_slice", None, None, None, [1]),
    typecode="i",
)
