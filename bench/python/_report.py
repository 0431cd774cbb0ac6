"""What the Python benches share: the environment header, percentiles and
plain-text tables. Nothing here is timed.

The benches import it as a sibling module (``python bench/python/X.py``
puts ``bench/python`` on ``sys.path``, and spawned children inherit it).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import sys
from collections.abc import Sequence


def environment_lines(start_method: str) -> list[str]:
    """The lines every bench prints first: date, versions, CPUs, load and
    the multiprocessing start method of its child processes."""
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date:         {now}",
        f"python:       {sys.version.split()[0]} ({platform.python_implementation()})",
        f"grpcio:       {_version('grpcio')}",
        f"statehub:     {_version('statehub')} (Python client)",
        f"cpus:         {os.cpu_count()} (usable by this process: "
        f"{len(os.sched_getaffinity(0))})",
        f"load average: {load}",
        f"start method: {start_method} (child processes of every manager)",
    ]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def percentile(sorted_samples: Sequence[int], p: float) -> int:
    """The nearest-rank p-th percentile (0 < p <= 100) of ascending samples:
    the smallest sample with at least p% of the samples at or below it."""
    if not sorted_samples:
        raise ValueError("percentile of no samples")
    rank = math.ceil(p / 100 * len(sorted_samples))
    return sorted_samples[max(rank, 1) - 1]


def micros(nanoseconds: float) -> str:
    """Nanoseconds as microseconds with one decimal."""
    return f"{nanoseconds / 1000:.1f}"


def ratio(numerator: float, denominator: float) -> str:
    """numerator / denominator with two decimals, or "n/a" for a zero
    denominator."""
    if denominator == 0:
        return "n/a"
    return f"{numerator / denominator:.2f}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others
    right-aligned, a dashed line under the header."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(w) for cell, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def rotated(items: Sequence[int], turn: int) -> list[int]:
    """items in order, starting at items[turn mod len]."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]
