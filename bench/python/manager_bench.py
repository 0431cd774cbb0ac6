"""statehub.Manager() on the lane and on gRPC against multiprocessing.Manager()
and the raw-socket floor, in one run.

The contenders, side by side:

- **floor**: a framed round trip on a Unix socket to a C echo server
  (bench/floor/echo_server.c; see _floor.py): write a 40-byte
  length-prefixed frame, read it back. What a call costs with no protocol.
- **Manager**: ``multiprocessing.Manager()``.
- **lane**: ``statehub.Manager(transport="lane")`` (api/LANE.md).
- **grpc**: ``statehub.Manager(transport="grpc")``.

Each statehub transport gets its own private server, as Manager does.
``--transports`` picks which statehub columns run (default both).

Measured, rotating the order of the contenders between rounds so that drift
on a noisy machine hits all of them:

1. One-client latency (p50 and p99, microseconds) of dict set, dict get,
   list append, lock acquire+release and queue put+get (each pair timed as
   one op), and of bulk calls that move 1,000 items in one round trip
   (``update``, ``copy``, ``extend`` then ``del l[:]``). Each op is warmed up
   on every contender, then sampled with ``time.perf_counter_ns`` around
   every single call, in ``--rounds`` chunks; round r starts with contender
   r mod n and goes on in order (floor, Manager, lane, grpc, floor, ...).
   The floor column does as many echo round trips as Manager makes for the
   op (two for lock acquire+release and queue put+get); for the bulk calls
   it has no figure, since a 40-byte echo says nothing about moving 1,000
   items.
2. Aggregate dict throughput (ops/s summed over processes) with 1, 2, 4, 8,
   16 client processes, for Manager and each statehub transport. Each
   process alternates a set and a get of its own key in one shared dict.
   The processes are started with ``spawn`` (it works for every manager and
   avoids grpc's fork caveats), connect and warm up, meet at a
   ``multiprocessing.Barrier``, and are then given one window on the shared
   monotonic clock: each sleeps until its start, counts the ops it completes
   before its end, and the sum is divided by the window length. Windows
   rotate which manager goes first; with ``--repeats`` > 1 ops/s is total
   ops over total window time.

The ratio columns are statehub / Manager, one per transport. The targets
(shared/DESIGN.md, "Performance") are printed with the tables and checked
against this run's ratios at the end: p50 <= 1.0x Manager for dict set/get,
list append, lock acquire+release, queue put+get and the 1,000-item
update()/copy(); >= 3x Manager's ops/s with 8 processes. Nothing is asserted:
the script prints its tables and exits 0.

Run from the repository root (statehub-server and the echo server must be
built: ``scripts/build.sh release statehub-server statehub_echo_server``, or
set $STATEHUB_SERVER and $STATEHUB_ECHO_SERVER)::

    .venv/bin/python bench/python/manager_bench.py --quick   # smoke run
    .venv/bin/python bench/python/manager_bench.py           # full size
    .venv/bin/python bench/python/manager_bench.py --transports=lane
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# statehub before anything that loads grpc: it sets GRPC_ENABLE_FORK_SUPPORT.
import statehub

from _floor import EchoClient, EchoServer, EchoServerNotFound, find_echo_server
from _report import (
    environment_lines,
    format_table,
    micros,
    percentile,
    ratio,
    rotated,
)
from _throughput import (
    THROUGHPUT_TARGET,
    THROUGHPUT_TARGET_PROCESSES,
    ThroughputResult,
    measure_throughput,
)

START_METHOD = "spawn"
TRANSPORTS = ("lane", "grpc")
MANAGER = "Manager"

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


@dataclass(frozen=True)
class LatencyOp:
    """One row of the latency table."""

    make: Callable[[Any], Op]
    # Round trips Manager makes for the op; the floor column does as many
    # echoes. None: no floor figure (bulk calls).
    floor_round_trips: int | None
    # Whether the p50 ratio has a target (<= 1.0x Manager).
    targeted: bool


LATENCY_OPS: dict[str, LatencyOp] = {
    "dict set": LatencyOp(_dict_set, 1, targeted=True),
    "dict get": LatencyOp(_dict_get, 1, targeted=True),
    "list append": LatencyOp(_list_append, 1, targeted=True),
    "lock acquire+release": LatencyOp(_lock_acquire_release, 2, targeted=True),
    "queue put+get": LatencyOp(_queue_put_get, 2, targeted=True),
    # Bulk calls: one round trip (two for extend+clear) moves all items.
    f"dict update {BULK_ITEMS} items": LatencyOp(_dict_update_bulk, None, True),
    f"dict copy {BULK_ITEMS} items": LatencyOp(_dict_copy_bulk, None, True),
    f"list extend+clear {BULK_ITEMS}": LatencyOp(_list_extend_bulk, None, False),
}
LATENCY_TARGET = 1.0


def _floor_op(client: EchoClient, round_trips: int) -> Op:
    round_trip = client.round_trip
    if round_trips == 1:
        return round_trip

    def op() -> None:
        for _ in range(round_trips):
            round_trip()

    return op


def _sample(op: Op, count: int) -> list[int]:
    """count latencies of op in nanoseconds, one perf_counter_ns pair each."""
    clock = time.perf_counter_ns
    out = [0] * count
    for i in range(count):
        start = clock()
        op()
        out[i] = clock() - start
    return out


@dataclass
class LatencyResult:
    """The latency table and the p50s behind its ratios."""

    rows: list[list[str]]
    # op name -> p50 in ns per contender (floor first; None where not run).
    p50s: dict[str, list[float | None]]


def measure_latency(
    floor: EchoClient,
    managers: Sequence[Any],
    samples: int,
    rounds: int,
    warmup: int,
) -> LatencyResult:
    """Per op: p50/p99 of the floor and of each manager (Manager first, then
    the statehub transports), and each statehub / Manager p50 ratio."""
    result = LatencyResult([], {})
    per_round = max(samples // rounds, 1)
    for name, spec in LATENCY_OPS.items():
        floor_op = (
            _floor_op(floor, spec.floor_round_trips)
            if spec.floor_round_trips is not None
            else None
        )
        ops = [floor_op, *(spec.make(m) for m in managers)]
        # Contender index -> op, without the floor where it has none.
        active = {i: op for i, op in enumerate(ops) if op is not None}
        for op in active.values():
            _sample(op, warmup)
        collected: list[list[int]] = [[] for _ in ops]
        for r in range(rounds):
            for i in rotated(list(active), r):
                collected[i].extend(_sample(active[i], per_round))
        p50s: list[float | None] = []
        cells = [name]
        for values in collected:
            if not values:
                p50s.append(None)
                cells += ["-", "-"]
                continue
            values.sort()
            p50s.append(percentile(values, 50))
            cells += [micros(p50s[-1]), micros(percentile(values, 99))]
        manager_p50 = p50s[1]
        assert manager_p50 is not None
        cells += [ratio(p, manager_p50) for p in p50s[2:] if p is not None]
        cells.append(f"<= {LATENCY_TARGET:.2f}" if spec.targeted else "none")
        result.rows.append(cells)
        result.p50s[name] = p50s
    return result


# -- targets -----------------------------------------------------------------


def target_rows(
    transports: Sequence[str],
    latency: LatencyResult,
    throughput: ThroughputResult,
) -> list[list[str]]:
    """One row per target: this run's ratio for each transport and whether
    it is met."""
    rows = []
    for name, spec in LATENCY_OPS.items():
        if not spec.targeted:
            continue
        p50s = latency.p50s[name]
        manager_p50 = p50s[1]
        assert manager_p50 is not None
        cells = [f"{name}: p50 <= {LATENCY_TARGET:.1f}x Manager"]
        for p in p50s[2:]:
            assert p is not None
            # Judged on the printed (rounded) figure, so that "1.00" is met.
            value = round(p / manager_p50, 2)
            verdict = "met" if value <= LATENCY_TARGET else "missed"
            cells.append(f"{value:.2f} {verdict}")
        rows.append(cells)
    rates = throughput.rates.get(THROUGHPUT_TARGET_PROCESSES)
    label = (
        f"{THROUGHPUT_TARGET_PROCESSES} processes: ops/s >= "
        f"{THROUGHPUT_TARGET:.0f}x Manager"
    )
    if rates is None:
        rows.append([label, *("not run" for _ in transports)])
    else:
        cells = [label]
        for r in rates[1:]:
            value = round(r / rates[0], 2)
            verdict = "met" if value >= THROUGHPUT_TARGET else "missed"
            cells.append(f"{value:.2f} {verdict}")
        rows.append(cells)
    return rows


# -- main --------------------------------------------------------------------


def _transports(text: str) -> list[str]:
    picked = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in picked if t not in TRANSPORTS]
    if unknown or not picked:
        raise argparse.ArgumentTypeError(
            f"--transports takes a comma-separated subset of {','.join(TRANSPORTS)}"
        )
    return list(dict.fromkeys(picked))


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
        "--transports",
        type=_transports,
        default=list(TRANSPORTS),
        help="statehub transports to measure, comma-separated (default lane,grpc)",
    )
    parser.add_argument(
        "--samples", type=int, default=6000, help="latency samples per op and contender"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="latency chunks per op, rotating which contender goes first "
        "(default: managers x (managers + 1), so that each goes first "
        "equally often with and without the floor: 12 with both transports)",
    )
    parser.add_argument(
        "--warmup", type=int, default=500, help="untimed calls per op and contender"
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
    parser.add_argument(
        "--echo-server",
        default=None,
        help="the floor's echo server binary (default $STATEHUB_ECHO_SERVER, "
        "then build/bench/statehub_echo_server)",
    )
    # --quick changes the defaults; sizes given as flags still win.
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(
            samples=600,
            warmup=100,
            processes=[1, 2],
            duration=0.5,
            repeats=1,
        )
    args = parser.parse_args(argv)
    if args.rounds is None:
        managers = 1 + len(args.transports)
        args.rounds = managers * (managers + 1)
    return args


def _require_transport_option() -> None:
    if "transport" not in inspect.signature(statehub.Manager).parameters:
        sys.exit(
            "manager_bench.py: this statehub has no Manager(transport=...) "
            f"option ({statehub.__file__}); install a client with the lane"
        )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    _require_transport_option()
    try:
        echo_binary = find_echo_server(args.echo_server)
    except EchoServerNotFound as e:
        sys.exit(f"manager_bench.py: {e}")
    ctx = multiprocessing.get_context(START_METHOD)
    names = [MANAGER, *args.transports]
    print(
        "statehub.Manager() on "
        + " and ".join(args.transports)
        + " vs multiprocessing.Manager(), with the raw-socket floor"
    )
    print("\n".join(environment_lines(START_METHOD)))
    print(f"transports:   {', '.join(args.transports)} (one private server each)")
    print(f"floor:        {echo_binary}")
    with contextlib.ExitStack() as stack:
        echo = stack.enter_context(EchoServer(echo_binary))
        floor = echo.connect()
        stack.callback(floor.close)
        managers = [
            stack.enter_context(ctx.Manager()),
            *(
                stack.enter_context(statehub.Manager(transport=t))
                for t in args.transports
            ),
        ]

        per_round = max(args.samples // args.rounds, 1)
        print(
            f"\nOne-client latency, microseconds: {per_round * args.rounds} samples "
            f"per op and contender in {args.rounds} rounds that rotate who goes "
            f"first, after {args.warmup} warm-up calls. floor = a 40-byte "
            "length-prefixed frame echoed by a C server on a Unix socket, as "
            "many round trips as Manager makes (2 for lock and queue; none "
            "for the bulk rows). Ratio = statehub / Manager p50, LOWER is "
            f"better; target: p50 ratio <= {LATENCY_TARGET:.1f} where the last "
            "column says so."
        )
        latency = measure_latency(
            floor, managers, args.samples, args.rounds, args.warmup
        )
        print(
            format_table(
                [
                    "op",
                    "floor p50",
                    "floor p99",
                    *(f"{n} {p}" for n in names for p in ("p50", "p99")),
                    *(f"{t}/Manager p50" for t in args.transports),
                    "target",
                ],
                latency.rows,
            )
        )

        print(
            f"\nAggregate dict set/get throughput, ops/s summed over processes: "
            f"{args.duration:g} s windows x {args.repeats} per manager and count, "
            "rotating who goes first. Ratio = statehub / Manager, HIGHER is "
            f"better; target: ratio >= {THROUGHPUT_TARGET:.1f} at "
            f"{THROUGHPUT_TARGET_PROCESSES} processes."
        )
        throughput = measure_throughput(
            ctx,
            managers,
            names,
            args.processes,
            duration=args.duration,
            repeats=args.repeats,
        )
        print(
            format_table(
                [
                    "processes",
                    *(f"{n} ops/s" for n in names),
                    *(f"{t}/Manager" for t in args.transports),
                    "target",
                ],
                throughput.rows,
            )
        )
        for note in throughput.notes:
            print(f"note: {note}")

        print(
            "\nTargets (shared/DESIGN.md, Performance), as ratios from this run "
            "(statehub / Manager):"
        )
        print(
            format_table(
                ["target", *args.transports],
                target_rows(args.transports, latency, throughput),
            )
        )


if __name__ == "__main__":
    main()
