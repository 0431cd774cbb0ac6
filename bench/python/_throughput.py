"""The aggregate dict throughput half of manager_bench.py: client processes
that alternate a set and a get of their own key in one shared dict, counted
inside one window on the shared monotonic clock (manager_bench.py's header
explains the method).
It works the same for every manager whose dict proxies pickle into spawned
processes.
"""

from __future__ import annotations

import multiprocessing.synchronize
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from _report import ratio, rotated


@dataclass(frozen=True)
class WorkerResult:
    """What one throughput process reports."""

    ops: int
    # How long after the window's start the process began its first op.
    late_start_s: float


def _throughput_worker(
    shared: Any,
    index: int,
    *,
    ready: multiprocessing.synchronize.Barrier,
    go: multiprocessing.synchronize.Event,
    window: Any,
    results: Any,
) -> None:
    """One client process: warm up, meet the others, then alternate set and
    get of its own key during the window [window[0], window[1]] (monotonic
    seconds) and report the ops it completed inside it."""
    key = f"worker-{index}"
    for i in range(20):  # connect (statehub) / open the connection (Manager)
        shared[key] = i
        _ = shared[key]
    ready.wait(timeout=120)
    go.wait(timeout=120)
    start_at, end_at = window[0], window[1]
    delay = start_at - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    late = time.monotonic() - start_at
    ops = 0
    while True:
        if ops & 1:
            _ = shared[key]
        else:
            shared[key] = ops
        if time.monotonic() > end_at:
            break
        ops += 1
    results.put(WorkerResult(ops, late))


def run_window(
    ctx: Any, shared: Any, processes: int, duration: float
) -> tuple[int, float, float]:
    """Runs processes clients on shared for one window of duration seconds.
    Returns (ops, window seconds, latest start in seconds)."""
    ready = ctx.Barrier(processes + 1)
    go = ctx.Event()
    window = ctx.RawArray("d", 2)
    results = ctx.SimpleQueue()
    workers = [
        ctx.Process(
            target=_throughput_worker,
            args=(shared, i),
            kwargs={"ready": ready, "go": go, "window": window, "results": results},
            daemon=True,
        )
        for i in range(processes)
    ]
    for w in workers:
        w.start()
    ready.wait(timeout=120)
    # Time for every process to wake from go before the window opens.
    start_at = time.monotonic() + 0.1
    window[0], window[1] = start_at, start_at + duration
    go.set()
    reports = [results.get() for _ in workers]
    for w in workers:
        w.join(timeout=30)
        if w.exitcode != 0:
            raise RuntimeError(f"throughput worker exited with {w.exitcode}")
    return (
        sum(r.ops for r in reports),
        duration,
        max(r.late_start_s for r in reports),
    )


THROUGHPUT_TARGET = 3.0
THROUGHPUT_TARGET_PROCESSES = 8


@dataclass
class ThroughputResult:
    """The throughput table, its rates and notes on late-starting windows."""

    rows: list[list[str]]
    # process count -> ops/s per manager (Manager first).
    rates: dict[int, list[float]]
    notes: list[str]


def measure_throughput(
    ctx: Any,
    managers: Sequence[Any],
    names: Sequence[str],
    process_counts: Sequence[int],
    *,
    duration: float,
    repeats: int,
) -> ThroughputResult:
    """Per process count: ops/s of each manager and statehub / Manager."""
    dicts = [m.dict() for m in managers]
    result = ThroughputResult([], {}, [])
    turn = 0
    everyone = list(range(len(managers)))
    for n in process_counts:
        ops = [0] * len(managers)
        seconds = [0.0] * len(managers)
        for _ in range(repeats):
            for i in rotated(everyone, turn):
                count, window, late = run_window(ctx, dicts[i], n, duration)
                ops[i] += count
                seconds[i] += window
                if late > 0.1 * duration:
                    result.notes.append(
                        f"{names[i]}, {n} processes: a process began "
                        f"{late * 1000:.0f} ms into a {duration:g} s window"
                    )
            turn += 1
        rates = [o / s for o, s in zip(ops, seconds, strict=True)]
        result.rates[n] = rates
        target = (
            f">= {THROUGHPUT_TARGET:.2f}"
            if n == THROUGHPUT_TARGET_PROCESSES
            else "none"
        )
        result.rows.append(
            [
                str(n),
                *(f"{r:.0f}" for r in rates),
                *(ratio(r, rates[0]) for r in rates[1:]),
                target,
            ]
        )
    return result
