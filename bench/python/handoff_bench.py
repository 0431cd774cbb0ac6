"""Contended lock hand-off latency, statehub.Manager() against
multiprocessing.Manager(), in one run.

Two processes, A and B, share one manager Lock and play ping-pong with it.
In each round the holder waits for the other process to say (through a
multiprocessing.Pipe) that it is about to call ``acquire()``, sleeps
``--park-ms`` (2 ms by default) so that the acquire reaches the server and
parks there, records ``time.monotonic_ns()`` and releases. The waiter
records ``time.monotonic_ns()`` as soon as ``acquire()`` returns and sends
it back through the pipe; the hand-off latency of the round is
``waiter_after - holder_before`` (CLOCK_MONOTONIC is one clock for all
processes of the machine). Then the roles swap. Timestamps never travel
through the manager being measured.

Whether 2 ms is long enough for the waiter to be parked is checked, for
statehub only, in an untimed pass of ``--check-rounds`` rounds in which the
holder asks the server (``lock.state().waiters``) after the sleep instead of
releasing at once. Manager has no way to show its waiters; its acquire takes
a similar path (a request over a Unix socket to a server thread), so the same
delay is used.

The rounds of each manager are split into ``--chunks`` pairs of processes,
alternating which manager goes first, so that drift hits both. The first
``--warmup`` rounds of each chunk are not counted. Processes are started
with ``spawn``. Nothing is asserted: the script prints a table and exits 0.

Run from the repository root (statehub-server must be built:
``scripts/build.sh release statehub-server``, or set $STATEHUB_SERVER)::

    .venv/bin/python bench/python/handoff_bench.py --quick   # smoke run
    .venv/bin/python bench/python/handoff_bench.py           # full size
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

# statehub before anything that loads grpc: it sets GRPC_ENABLE_FORK_SUPPORT.
import statehub

from _report import environment_lines, format_table, micros, percentile, ratio

START_METHOD = "spawn"
MANAGER_NAMES = ("Manager", "statehub")

# The waiter's message to the holder: "I am about to call acquire()".
_PARKING = "parking"


def _player(
    lock: Any,
    peer: Connection,
    results: Connection,
    *,
    rounds: int,
    holds_first: bool,
    park_s: float,
    check_parked: bool,
) -> None:
    """One side of the ping-pong. Sends to results the latencies (ns) of the
    rounds in which it released the lock, or, when check_parked, how many
    times the waiter was parked on the server after the sleep."""
    holding = holds_first
    if holding:
        lock.acquire()
        peer.send(None)  # "I hold it": the other side may start waiting
    else:
        peer.recv()
    latencies: list[int] = []
    parked = 0
    for _ in range(rounds):
        if holding:
            peer.recv()  # _PARKING
            time.sleep(park_s)
            if check_parked:
                parked += len(lock.state().waiters) > 0
            before = time.monotonic_ns()
            lock.release()
            after: int = peer.recv()
            latencies.append(after - before)
        else:
            peer.send(_PARKING)
            lock.acquire()
            after = time.monotonic_ns()
            peer.send(after)
        holding = not holding
    if holding:
        lock.release()
    results.send(parked if check_parked else latencies)


def run_pair(
    ctx: Any, lock: Any, rounds: int, park_s: float, check_parked: bool = False
) -> list[Any]:
    """Runs A and B for rounds hand-offs; returns what each sent back."""
    a_end, b_end = ctx.Pipe()
    receivers, processes = [], []
    for peer, holds_first in ((a_end, True), (b_end, False)):
        receiver, sender = ctx.Pipe(duplex=False)
        receivers.append(receiver)
        processes.append(
            ctx.Process(
                target=_player,
                args=(lock, peer, sender),
                kwargs={
                    "rounds": rounds,
                    "holds_first": holds_first,
                    "park_s": park_s,
                    "check_parked": check_parked,
                },
                daemon=True,
            )
        )
    for p in processes:
        p.start()
    reports = [r.recv() for r in receivers]
    for p in processes:
        p.join(timeout=30)
        if p.exitcode != 0:
            raise RuntimeError(f"hand-off player exited with {p.exitcode}")
    return reports


def _handoffs(reports: list[Any], warmup: int) -> list[int]:
    """The latencies of one pair in round order, without the first warmup.
    A released in the even rounds, B in the odd ones."""
    a, b = reports
    in_order = [x for pair in zip(a, b, strict=False) for x in pair]
    in_order.extend(a[len(b) :])
    return in_order[warmup:]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: by default 60 counted rounds per manager in 2 chunks",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=800,
        help="counted hand-offs per manager (default 800)",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=4,
        help="process pairs per manager, alternating managers (default 4)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=20,
        help="uncounted hand-offs at the start of each chunk (default 20)",
    )
    parser.add_argument(
        "--park-ms",
        type=float,
        default=2.0,
        help="how long the holder waits after the waiter says it is about "
        "to acquire, before releasing (default 2)",
    )
    parser.add_argument(
        "--check-rounds",
        type=int,
        default=200,
        help="untimed statehub rounds that check the waiter is parked "
        "(0: skip; default 200)",
    )
    # --quick changes the defaults; sizes given as flags still win.
    if parser.parse_known_args(argv)[0].quick:
        parser.set_defaults(rounds=60, chunks=2, warmup=5, check_rounds=20)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ctx = multiprocessing.get_context(START_METHOD)
    park_s = args.park_ms / 1000
    per_chunk = max(args.rounds // args.chunks, 1)
    print("Lock hand-off latency: statehub.Manager() vs multiprocessing.Manager()")
    print("\n".join(environment_lines(START_METHOD)))
    with ctx.Manager() as mp_manager, statehub.Manager() as sh_manager:
        locks = (mp_manager.Lock(), sh_manager.Lock())

        if args.check_rounds > 0:
            parked = sum(
                run_pair(ctx, locks[1], args.check_rounds, park_s, check_parked=True)
            )
            print(
                f"\nparked check (statehub, untimed): the waiter was parked on "
                f"the server {args.park_ms:g} ms after saying so in {parked} of "
                f"{args.check_rounds} rounds"
            )

        samples: list[list[int]] = [[], []]
        for chunk in range(args.chunks):
            order = [0, 1] if chunk % 2 == 0 else [1, 0]
            for i in order:
                reports = run_pair(ctx, locks[i], per_chunk + args.warmup, park_s)
                samples[i].extend(_handoffs(reports, args.warmup))

        print(
            f"\nHand-off latency, microseconds (waiter's acquire() returned - "
            f"holder just before release()): {per_chunk * args.chunks} hand-offs "
            f"per manager in {args.chunks} chunks, {args.park_ms:g} ms park "
            f"delay. Ratio = statehub / Manager, LOWER is better."
        )
        rows = []
        for i, name in enumerate(MANAGER_NAMES):
            values = sorted(samples[i])
            rows.append(
                [
                    name,
                    str(len(values)),
                    micros(percentile(values, 50)),
                    micros(percentile(values, 99)),
                    micros(values[-1]),
                ]
            )
        mp_sorted, sh_sorted = sorted(samples[0]), sorted(samples[1])
        rows.append(
            [
                "statehub/Manager (lower=better)",
                "",
                ratio(percentile(sh_sorted, 50), percentile(mp_sorted, 50)),
                ratio(percentile(sh_sorted, 99), percentile(mp_sorted, 99)),
                ratio(sh_sorted[-1], mp_sorted[-1]),
            ]
        )
        print(format_table(["manager", "hand-offs", "p50", "p99", "max"], rows))


if __name__ == "__main__":
    main()
