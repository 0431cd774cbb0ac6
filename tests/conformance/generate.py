#!/usr/bin/env python3
"""Writes cases.json: statehub's conformance cases, with Python as the oracle.

Each case names an object type, its initial contents and a sequence of steps
(dict_cases.py, list_cases.py, other_cases.py). This script runs every step on
the real Python object (oracle.py) and records what Python returned or raised,
and the whole object after the step, in the protobuf JSON mapping of
conformance.proto. conformance_test.cc replays the same steps against a real
server and expects the same.

Where statehub documents a deviation from Python (api/statehub/v1/*.proto),
the oracle emulates it in one marked place and the case's note says so.

Usage:
    python3 tests/conformance/generate.py          # rewrite cases.json
    python3 tests/conformance/generate.py --check  # fail if it is stale

Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import copy
import difflib
import json
import math
import pathlib
import re
import sys
from collections.abc import Sequence
from typing import Any

import dict_cases
import list_cases
import other_cases
from oracle import (
    INT64_MAX,
    INT64_MIN,
    ORACLES,
    CaseDef,
    GeneratorError,
    call_text,
)

HERE = pathlib.Path(__file__).resolve().parent
CASES_PATH = HERE / "cases.json"
CASES: list[CaseDef] = [*dict_cases.CASES, *list_cases.CASES, *other_cases.CASES]

# Python exception -> statehub.v1.ErrorKind. Order matters: the first match
# wins (KeyError and IndexError are both LookupErrors; OverflowError is an
# ArithmeticError, which statehub reports as a bad value).
ERROR_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (KeyError, "KEY_ERROR"),
    (IndexError, "INDEX_ERROR"),
    (OverflowError, "VALUE_ERROR"),
    (ValueError, "VALUE_ERROR"),
    (TypeError, "TYPE_ERROR"),
    (AttributeError, "ATTRIBUTE_ERROR"),
    (RuntimeError, "RUNTIME_ERROR"),
)


# ---------------------------------------------------------------------------
# Python values -> protobuf JSON of statehub.v1.Value
# ---------------------------------------------------------------------------


def to_value(x: Any) -> dict[str, Any]:
    """Returns the proto3 JSON mapping of statehub.v1.Value for `x`."""
    if x is None:
        return {}
    if isinstance(x, bool):  # before int: bool is an int in Python
        return {"boolValue": x}
    if isinstance(x, int):
        if not INT64_MIN <= x <= INT64_MAX:
            raise GeneratorError(f"{x} does not fit in int64")
        return {"intValue": str(x)}
    if isinstance(x, float):
        if not math.isfinite(x):
            raise GeneratorError(f"{x} has no JSON spelling here")
        return {"doubleValue": x}
    if isinstance(x, str):
        return {"stringValue": x}
    if isinstance(x, bytes):
        return {"bytesValue": base64.b64encode(x).decode("ascii")}
    if isinstance(x, list):
        return {"listValue": {"items": [to_value(i) for i in x]}}
    if isinstance(x, tuple):
        return {"tupleValue": {"items": [to_value(i) for i in x]}}
    if isinstance(x, dict):
        entries = [{"key": to_value(k), "value": to_value(v)} for k, v in x.items()]
        return {"mapValue": {"entries": entries}}
    raise GeneratorError(f"no statehub value for {type(x).__name__}: {x!r}")


# ---------------------------------------------------------------------------
# Running the cases
# ---------------------------------------------------------------------------


def error_kind(exc: BaseException) -> str:
    for exc_type, kind in ERROR_KINDS:
        if isinstance(exc, exc_type):
            return kind
    raise GeneratorError(f"no error kind for {type(exc).__name__}: {exc}")


class Placeholders:
    """Keeps Values on one line inside the indented file.

    json.dumps(indent=1) would spread {"intValue": "1"} over three lines; a
    Value is swapped for a placeholder string and spliced back compactly.
    """

    def __init__(self) -> None:
        self.compact: list[str] = []

    def add(self, obj: Any) -> str:
        self.compact.append(
            json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
        )
        return f"@@value{len(self.compact) - 1}@@"

    def splice(self, text: str) -> str:
        for i, compact in enumerate(self.compact):
            text = text.replace(f'"@@value{i}@@"', compact, 1)
        return text


def run_case(c: CaseDef, values: Placeholders) -> dict[str, Any]:
    oracle_type = ORACLES[c.object_type]
    oracle = oracle_type(copy.deepcopy(c.init), c.typecode)
    if c.object_type == "array" and not c.typecode:
        raise GeneratorError(f"{c.name}: an array needs a typecode")
    out: dict[str, Any] = {
        "name": c.name,
        "objectType": c.object_type,
        "init": values.add(to_value(c.init)),
    }
    if c.typecode:
        out["typecode"] = c.typecode
    out["contentsInitial"] = values.add(to_value(oracle.contents()))
    if c.note:
        out["note"] = c.note
    steps = []
    for op_name, *args in c.steps:
        op = oracle_type.OPS.get(op_name)
        if op is None or len(args) not in op.arities:
            raise GeneratorError(f"{c.name}: no op {op_name}/{len(args)}")
        if op.text is not None:
            python = op.text(*args)
        else:
            python = call_text(oracle_type.VAR, op_name, args)
        step: dict[str, Any] = {
            "op": op_name,
            "python": python,
            "args": values.add([to_value(a) for a in args]),
        }
        try:
            result = op.run(oracle, *copy.deepcopy(args))
        except GeneratorError:
            raise
        except Exception as exc:  # noqa: BLE001 -- every raise is an outcome
            # Only the type: messages change between Python versions.
            step["python"] += f"  # raises {type(exc).__name__}"
            step["errorKind"] = error_kind(exc)
        else:
            step["result"] = values.add(to_value(result))
        step["contentsAfter"] = values.add(to_value(oracle.contents()))
        steps.append(step)
    out["steps"] = steps
    return out


def generate() -> str:
    names = [c.name for c in CASES]
    bad = [n for n in names if not re.fullmatch(r"[A-Za-z0-9_]+", n)]
    if bad:
        raise GeneratorError(f"case names must be [A-Za-z0-9_]+: {bad}")
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise GeneratorError(f"duplicate case names: {sorted(duplicates)}")
    values = Placeholders()
    cases = [run_case(c, values) for c in sorted(CASES, key=lambda c: c.name)]
    text = json.dumps({"cases": cases}, indent=1, ensure_ascii=False)
    return values.splice(text) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 with a diff if cases.json differs from what Python says",
    )
    parser.add_argument("--output", type=pathlib.Path, default=CASES_PATH)
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        try:
            old = args.output.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        if old != text:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True),
                text.splitlines(keepends=True),
                str(args.output),
                "generated",
            )
            sys.stdout.writelines(diff)
            print(
                f"{args.output} is stale: run python3 {pathlib.Path(__file__).name}",
                file=sys.stderr,
            )
            return 1
        print(f"{args.output}: {len(CASES)} cases, up to date")
        return 0
    args.output.write_text(text, encoding="utf-8")
    steps = sum(len(c.steps) for c in CASES)
    print(f"wrote {args.output}: {len(CASES)} cases, {steps} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
