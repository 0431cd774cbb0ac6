"""statehub.Manager() against multiprocessing.Manager(), in one run.

Measures, for both managers, alternating between them so that drift in a
noisy machine hits both:

1. One-client latency (p50 and p99, microseconds) of dict set, dict get,
   list append, lock acquire+release and queue put+get (each pair timed as
   one op), and of bulk calls that move 1,000 items in one round trip
   (``update``, ``copy``, ``extend`` then ``del l[:]``). Each op is warmed
   up on both managers, then sampled with ``time.perf_counter_ns`` around
   every single call, in ``--rounds``
   chunks whose order flips (Manager first, then statehub first, ...).
2. Aggregate dict throughput (ops/s summed over processes) with 1, 2, 4, 8,
   16 client processes. Each process alternates a set and a get of its own
   key in one shared dict. The processes are started with ``spawn`` (it works
   for both managers; statehub also supports fork, Manager's proxies too, but
   spawn avoids grpc's fork caveats altogether), connect and warm up, meet at
   a ``multiprocessing.Barrier``, and are then given one window on the
   shared monotonic clock: each sleeps until its start, counts the ops it
   completes before its end, and the sum is divided by the window length.
   With ``--repeats`` > 1 the windows alternate which manager goes first and
   ops/s is total ops over total window time.

The ratio columns are statehub / Manager: for latency lower is better
(target <= 1.0), for throughput higher is better (target >= 3 at 8
processes). Nothing is asserted: the script prints its tables and exits 0.

Run from the repository root (statehub-server must be built:
``scripts/build.sh release statehub-server``, or set $STATEHUB_SERVER)::

    .venv/bin/python bench/python/manager_bench.py --quick   # smoke run
    .venv/bin/python bench/python/manager_bench.py           # full size
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.synchronize
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# statehub before anything that loads grpc: it sets GRPC_ENABLE_FORK_SUPPORT.
import statehub

from _report import environment_lines, format_table, micros, percentile, ratio

START_METHOD = "spawn"
# Manager first: every "pair" below is (multiprocessing.Manager, statehub).
MANAGER_NAMES = ("Manager", "statehub")

Op = Callable[[], object]


# -- one-client latency ------------------------------------------------------


def _dict_set(m: Any) -> Op:
    d = m.dict()

    def op() -> None:
        d["key"] = 1

    return op


def _dict_get(m: Any) -> Op:
    d = m.dict({"key": 1})

    def op() -> object:
        return d["key"]

    return op


def _list_append(m: Any) -> Op:
    items = m.list()

    def op() -> None:
        items.append(1)

    return op


def _lock_acquire_release(m: Any) -> Op:
    lock = m.Lock()

    def op() -> None:
        lock.acquire()
        lock.release()

    return op


def _queue_put_get(m: Any) -> Op:
    q = m.Queue()

    def op() -> object:
        q.put(1)
        return q.get()

    return op


BULK_ITEMS = 1000


def _dict_update_bulk(m: Any) -> Op:
    d = m.dict()
    items = {f"key-{i}": i for i in range(BULK_ITEMS)}

    def op() -> None:
        d.update(items)

    return op


def _dict_copy_bulk(m: Any) -> Op:
    d = m.dict({f"key-{i}": i for i in range(BULK_ITEMS)})

    def op() -> object:
        return d.copy()

    return op


def _list_extend_bulk(m: Any) -> Op:
    items = m.list()
    chunk = list(range(BULK_ITEMS))

    def op() -> None:
        items.extend(chunk)
        del items[:]

    return op


LATENCY_OPS: dict[str, Callable[[Any], Op]] = {
    "dict set": _dict_set,
    "dict get": _dict_get,
    "list append": _list_append,
    "lock acquire+release": _lock_acquire_release,
    "queue put+get": _queue_put_get,
    # Bulk calls: one round trip (two for extend+clear) moves all items.
    f"dict update {BULK_ITEMS} items": _dict_update_bulk,
    f"dict copy {BULK_ITEMS} items": _dict_copy_bulk,
    f"list extend+clear {BULK_ITEMS}": _list_extend_bulk,
}


def _sample(op: Op, count: int) -> list[int]:
    """count latencies of op in nanoseconds, one perf_counter_ns pair each."""
    clock = time.perf_counter_ns
    out = [0] * count
    for i in range(count):
        start = clock()
        op()
        out[i] = clock() - start
    return out


def measure_latency(
    managers: Sequence[Any], samples: int, rounds: int, warmup: int
) -> list[list[str]]:
    """The latency table's rows: per op, p50/p99 of each manager and the
    statehub/Manager ratios."""
    rows = []
    per_round = max(samples // rounds, 1)
    for name, make in LATENCY_OPS.items():
        ops = [make(m) for m in managers]
        for op in ops:
            _sample(op, warmup)
        collected: list[list[int]] = [[] for _ in managers]
        for r in range(rounds):
            order = list(range(len(managers)))
            if r % 2:
                order.reverse()
            for i in order:
                collected[i].extend(_sample(ops[i], per_round))
        p50s, p99s = [], []
        for values in collected:
            values.sort()
            p50s.append(percentile(values, 50))
            p99s.append(percentile(values, 99))
        rows.append(
            [
                name,
                micros(p50s[0]),
                micros(p99s[0]),
                micros(p50s[1]),
                micros(p99s[1]),
                ratio(p50s[1], p50s[0]),
                ratio(p99s[1], p99s[0]),
            ]
        )
    return rows


# -- aggregate throughput ----------------------------------------------------


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


def measure_throughput(
    ctx: Any,
    managers: Sequence[Any],
    process_counts: Sequence[int],
    duration: float,
    repeats: int,
) -> tuple[list[list[str]], list[str]]:
    """The throughput table's rows and notes on late-starting windows."""
    dicts = [m.dict() for m in managers]
    rows, notes = [], []
    flip = False
    for n in process_counts:
        ops = [0] * len(managers)
        seconds = [0.0] * len(managers)
        for _ in range(repeats):
            order = list(range(len(managers)))
            if flip:
                order.reverse()
            flip = not flip
            for i in order:
                count, window, late = run_window(ctx, dicts[i], n, duration)
                ops[i] += count
                seconds[i] += window
                if late > 0.1 * duration:
                    notes.append(
                        f"{MANAGER_NAMES[i]}, {n} processes: a process began "
                        f"{late * 1000:.0f} ms into a {duration:g} s window"
                    )
        rates = [o / s for o, s in zip(ops, seconds, strict=True)]
        rows.append(
            [str(n), f"{rates[0]:.0f}", f"{rates[1]:.0f}", ratio(rates[1], rates[0])]
        )
    return rows, notes


# -- main --------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: by default 600 samples, 0.5 s windows, 1 and 2 processes",
    )
    parser.add_argument(
        "--samples", type=int, default=6000, help="latency samples per op and manager"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="latency chunks per op, alternating which manager goes first",
    )
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed calls per op and manager"
    )
    parser.add_argument(
        "--processes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 4, 8, 16],
        help="comma-separated client process counts (default 1,2,4,8,16)",
    )
    parser.add_argument(
        "--duration", type=float, default=3.0, help="seconds per throughput window"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="throughput windows per manager and process count",
    )
    # --quick changes the defaults; sizes given as flags still win.
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(
            samples=600,
            rounds=2,
            warmup=100,
            processes=[1, 2],
            duration=0.5,
            repeats=1,
        )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ctx = multiprocessing.get_context(START_METHOD)
    print("statehub.Manager() vs multiprocessing.Manager()")
    print("\n".join(environment_lines(START_METHOD)))
    with ctx.Manager() as mp_manager, statehub.Manager() as sh_manager:
        managers = (mp_manager, sh_manager)

        per_round = max(args.samples // args.rounds, 1)
        print(
            f"\nOne-client latency, microseconds: {per_round * args.rounds} samples "
            f"per op and manager in {args.rounds} alternating rounds, after "
            f"{args.warmup} warm-up calls. Ratio = statehub / Manager, "
            "LOWER is better (target p50 <= 1.0)."
        )
        rows = measure_latency(managers, args.samples, args.rounds, args.warmup)
        print(
            format_table(
                [
                    "op",
                    "Manager p50",
                    "Manager p99",
                    "statehub p50",
                    "statehub p99",
                    "p50 ratio (lower=better)",
                    "p99 ratio (lower=better)",
                ],
                rows,
            )
        )

        print(
            f"\nAggregate dict set/get throughput, ops/s summed over processes: "
            f"{args.duration:g} s windows x {args.repeats} per manager and count. "
            "Ratio = statehub / Manager, HIGHER is better (target >= 3 at 8 "
            "processes)."
        )
        rows, notes = measure_throughput(
            ctx, managers, args.processes, args.duration, args.repeats
        )
        print(
            format_table(
                [
                    "processes",
                    "Manager ops/s",
                    "statehub ops/s",
                    "ratio (higher=better)",
                ],
                rows,
            )
        )
        for note in notes:
            print(f"note: {note}")


if __name__ == "__main__":
    main()
