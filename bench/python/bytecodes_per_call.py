"""Python bytecodes per call: statehub.Manager() on the lane against
multiprocessing.Manager(), for the small calls of manager_bench.py.

Between a request and its reply the client blocks and the server runs, so
each call's Python runs with cold caches and its CPU follows how many
bytecodes it runs (docs/decisions.md, "The Python client's hot path").
Unlike a timing, the count holds still from run to run and machine to
machine: it is counted with ``sys.settrace`` opcode events over one call
after warm-up calls. Nothing is asserted: it prints a table and exits 0.

Run from the repository root (statehub-server must be built, or set
$STATEHUB_SERVER)::

    .venv/bin/python bench/python/bytecodes_per_call.py
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault(
    "STATEHUB_SERVER", str(REPO / "build" / "server" / "statehub-server")
)

import statehub  # noqa: E402


def ops(manager: Any) -> dict[str, Callable[[], object]]:
    """The calls to count, on objects of ``manager``."""
    d = manager.dict()
    d["k"] = 0
    lst = manager.list()
    lock = manager.Lock()
    q = manager.Queue()
    ns = manager.Namespace()
    ns.a = 0

    def lock_pair() -> None:
        lock.acquire()
        lock.release()

    def queue_pair() -> None:
        q.put(1)
        q.get()

    def ns_set() -> None:
        ns.a = 5

    return {
        "dict set": lambda: d.__setitem__("k", 5),
        "dict get": lambda: d["k"],
        "list append": lambda: lst.append(1),
        "lock acquire+release": lock_pair,
        "queue put+get": queue_pair,
        "namespace set": ns_set,
        "namespace get": lambda: ns.a,
    }


def count(call: Callable[[], object]) -> tuple[int, collections.Counter[str]]:
    """Bytecodes run by one ``call`` (after 50 untimed ones), and by
    function."""
    for _ in range(50):
        call()
    where: collections.Counter[str] = collections.Counter()
    total = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal total
        frame.f_trace_opcodes = True
        if event == "opcode":
            total += 1
            code = frame.f_code
            where[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return tracer

    sys.settrace(tracer)
    try:
        call()
    finally:
        sys.settrace(None)
    return total - 1, where  # less the lambda's own return


def main() -> None:
    verbose = "-v" in sys.argv[1:]
    mp = multiprocessing.Manager()
    m = statehub.Manager()
    theirs = ops(mp)
    ours = ops(m)
    print("Python bytecodes per call (sys.settrace opcode events, one call)")
    print(f"{'op':22s} {'Manager':>8s} {'lane':>8s} {'lane/Manager':>13s}")
    for name, call in ours.items():
        mine, where = count(call)
        base, _ = count(theirs[name])
        print(f"{name:22s} {base:8d} {mine:8d} {mine / base:13.2f}")
        if verbose:
            for function, n in where.most_common(8):
                print(f"    {n:6d}  {function}")
    m.shutdown()
    mp.shutdown()


if __name__ == "__main__":
    main()
