"""CPU per call, client and server, for one Python client doing dict set
and get (or, with ``--op``, a dict ``update()`` or ``copy()`` of 1,000
str -> int entries): multiprocessing.Manager(), statehub.Manager() on the
lane and on gRPC, in one run.

The three managers run side by side; in each of ``--rounds`` rounds, which
rotate who goes first, the client makes ``--calls`` calls on each (a
quarter of that on gRPC; by default 40,000, half ``d["k"] = i`` and half
``d["k"]``, or 1,000 bulk calls) after a fortieth as many to warm up, and
takes per call: the wall time, the client's CPU
(``time.process_time()``) and the server process's CPU (utime + stime from
``/proc/<pid>/stat``). It prints each contender's medians over the rounds
and the medians of the per-round ratios to Manager. Run it pinned to one
CPU (``taskset -c 0``) to see the cost of the calls themselves; unpinned on
a small VM the figures also carry the cost of waking a process on the other
CPU, for every manager alike. Nothing is asserted: it prints a table and
exits 0.

Run from the repository root (statehub-server must be built, or set
$STATEHUB_SERVER)::

    .venv/bin/python bench/python/cpu_per_call.py
    taskset -c 0 .venv/bin/python bench/python/cpu_per_call.py
    taskset -c 0 .venv/bin/python bench/python/cpu_per_call.py --op update
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.managers
import os
import statistics
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault(
    "STATEHUB_SERVER", str(REPO / "build" / "server" / "statehub-server")
)

import statehub  # noqa: E402


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process `pid` has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BULK = {f"key-{i:05d}": i for i in range(1000)}


def set_get(d: Any, calls: int) -> None:
    """``calls`` calls: half ``d["k"] = i``, half ``d["k"]``."""
    for i in range(calls // 2):
        d["k"] = i
        d["k"]


def update(d: Any, calls: int) -> None:
    for _ in range(calls):
        d.update(BULK)


def copy(d: Any, calls: int) -> None:
    for _ in range(calls):
        d.copy()


OPS = {"setget": set_get, "update": update, "copy": copy}


def measure(
    manager: Any, server_pid: int, calls: int, op: Any
) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) per call, in microseconds, over
    ``calls`` calls of ``op`` on a dict of ``manager`` (made once per
    manager and kept: see main)."""
    d = manager._bench_dict
    op(d, max(calls // 40, 2))  # warm-up
    server0 = process_cpu(server_pid)
    client0 = time.process_time()
    wall0 = time.perf_counter()
    op(d, calls)
    wall = time.perf_counter() - wall0
    client = time.process_time() - client0
    server = process_cpu(server_pid) - server0
    per = 1e6 / calls
    return wall * per, client * per, server * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", choices=sorted(OPS), default="setget")
    parser.add_argument(
        "--calls", type=int, help="calls each a round (default 40000; 1000 bulk)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    op = OPS[args.op]
    calls = args.calls or (40000 if args.op == "setget" else 1000)
    what = {
        "setget": "a dict set or get",
        "update": "a dict update() of 1,000 entries",
        "copy": "a dict copy() of 1,000 entries",
    }[args.op]
    print(
        f"CPU per call ({what}), {calls} calls each a round "
        f"(gRPC {calls // 4}), {args.rounds} rounds rotating who goes first, "
        f"one client; cpus usable: {len(os.sched_getaffinity(0))}"
    )
    mp = multiprocessing.Manager()
    assert isinstance(mp, multiprocessing.managers.SyncManager)
    contenders: list[tuple[str, Any, int, int]] = [
        ("Manager", mp, mp._process.pid, calls)  # type: ignore[attr-defined]
    ]
    for transport, n in (("lane", calls), ("grpc", calls // 4)):
        m = statehub.Manager(transport=transport)
        contenders.append((transport, m, m._server.process.pid, n))
    for _, manager, _, _ in contenders:
        # A proxy attribute would reach the server; the manager's is local.
        manager._bench_dict = manager.dict(BULK)
    figures: dict[str, list[tuple[float, float, float]]] = {
        name: [] for name, *_ in contenders
    }
    for r in range(args.rounds):
        turn = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for name, manager, pid, n in turn:
            figures[name].append(measure(manager, pid, n, op))
    print(
        f"{'manager':8s} {'wall us':>9s} {'client CPU us':>14s} {'server CPU us':>14s}"
        f" {'wall/M':>7s} {'client/M':>9s} {'server/M':>9s}"
    )
    base = figures["Manager"]
    for name, rows in figures.items():
        medians = [statistics.median(row[k] for row in rows) for k in range(3)]
        ratios = [
            statistics.median(row[k] / b[k] for row, b in zip(rows, base, strict=True))
            for k in range(3)
        ]
        print(
            f"{name:8s} {medians[0]:9.1f} {medians[1]:14.1f} {medians[2]:14.1f}"
            f" {ratios[0]:7.2f} {ratios[1]:9.2f} {ratios[2]:9.2f}"
        )
    for _, manager, _, _ in contenders:
        manager.shutdown()


if __name__ == "__main__":
    main()
