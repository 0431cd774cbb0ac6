"""CPU per call, client and server, for one Python client doing dict set
and get: multiprocessing.Manager(), statehub.Manager() on the lane and on
gRPC, in one run.

For each manager the client does ``--calls`` pairs of ``d["k"] = i`` and
``d["k"]`` after 500 warm-up pairs, and reports per call (a set or a get):
the wall time, the client's CPU (``time.process_time()``) and the server
process's CPU (utime + stime from ``/proc/<pid>/stat``). Run it pinned to
one CPU (``taskset -c 0``) to see the cost of the calls themselves; unpinned
on a small VM the figures also carry the cost of waking a process on the
other CPU, for every manager alike. Nothing is asserted: it prints a table
and exits 0.

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


def measure(name: str, manager: Any, server_pid: int, calls: int) -> None:
    d = manager.dict()
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
    print(f"{name:8s} {wall * per:10.1f} {client * per:16.1f} {server * per:16.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    print(
        f"CPU per call (a dict set or get), {2 * args.calls} calls each, "
        f"one client; cpus usable: {len(os.sched_getaffinity(0))}"
    )
    print(
        f"{'manager':8s} {'wall us':>10s} {'client CPU us':>16s} {'server CPU us':>16s}"
    )
    mp = multiprocessing.Manager()
    assert isinstance(mp, multiprocessing.managers.SyncManager)
    measure("Manager", mp, mp._process.pid, args.calls)  # type: ignore[attr-defined]
    mp.shutdown()
    for transport, calls in (("lane", args.calls), ("grpc", args.calls // 4)):
        m = statehub.Manager(transport=transport)
        measure(transport, m, m._server.process.pid, calls)
        m.shutdown()


if __name__ == "__main__":
    main()
