"""CPU per call, client and server, for one Python client doing dict set
and get: multiprocessing.Manager(), statehub.Manager() on the lane and on
gRPC, in one run.

The three managers run side by side; in each of ``--rounds`` rounds, which
rotate who goes first, the client does ``--calls`` pairs of ``d["k"] = i``
and ``d["k"]`` on each (a quarter of that on gRPC) after 500 warm-up pairs,
and takes per call (a set or a get): the wall time, the client's CPU
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


def measure(manager: Any, server_pid: int, calls: int) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) per call, in microseconds, over
    ``calls`` set/get pairs on a dict of ``manager`` (made once per
    manager and kept: see main)."""
    d = manager._bench_dict
    for i in range(500):
        d["k"] = i
        d["k"]
    server0 = process_cpu(server_pid)
    client0 = time.process_time()
    wall0 = time.perf_counter()
    for i in range(calls):
        d["k"] = i
        d["k"]
    wall = time.perf_counter() - wall0
    client = time.process_time() - client0
    server = process_cpu(server_pid) - server0
    per = 1e6 / (2 * calls)
    return wall * per, client * per, server * per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"CPU per call (a dict set or get), {2 * args.calls} calls each a round "
        f"(gRPC {args.calls // 2}), {args.rounds} rounds rotating who goes first, "
        f"one client; cpus usable: {len(os.sched_getaffinity(0))}"
    )
    mp = multiprocessing.Manager()
    assert isinstance(mp, multiprocessing.managers.SyncManager)
    contenders: list[tuple[str, Any, int, int]] = [
        ("Manager", mp, mp._process.pid, args.calls)  # type: ignore[attr-defined]
    ]
    for transport, calls in (("lane", args.calls), ("grpc", args.calls // 4)):
        m = statehub.Manager(transport=transport)
        contenders.append((transport, m, m._server.process.pid, calls))
    for _, manager, _, _ in contenders:
        # A proxy attribute would reach the server; the manager's is local.
        manager._bench_dict = manager.dict()
    figures: dict[str, list[tuple[float, float, float]]] = {
        name: [] for name, *_ in contenders
    }
    for r in range(args.rounds):
        turn = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for name, manager, pid, calls in turn:
            figures[name].append(measure(manager, pid, calls))
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
