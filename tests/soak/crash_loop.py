"""Crash loop: SIGKILL a durable server again and again under load.

    .venv/bin/python tests/soak/crash_loop.py [--cycles 50] [--workers 4]

Starts a real statehub-server with ``--data_dir`` (a temporary directory),
``--fsync`` (``always`` unless told), a small ``--snapshot_log_bytes`` and
``--log_segment_bytes`` (so crashes also land in snapshots and segment
rolls) and a 10 s lease, on a Unix socket. ``--workers`` worker processes,
each with its own session, take a lock each and then keep the server busy:
increments of their own counter in a named dict, appends to a named list,
puts on a named queue, each acknowledged outcome written down at once. The
supervisor SIGKILLs the server ``--cycles`` times, each after a random 0.2
to 1.0 s, and starts it again on the same data dir and socket. The workers
ride through: their sessions are resumed, and a call in flight when the
server died is sent again and applied once (a numbered call: the server
remembers its answer). Should one fail all the same, the worker writes that
down and reads its counter again, and the run fails.

Then it stops the workers (a named event), and checks:

- each counter's trace: every acknowledged increment is one more than the
  value before it; after a failed increment the counter reads either the
  last acknowledged value or one more (the increment in flight applied at
  most once, nothing acknowledged lost); the counter ends at its last value;
- every acknowledged append and put is in the list, or the queue, exactly
  once, in order; a failed one at most once; nothing else is there;
- every worker still held its lock after the last crash and released it
  (its session, and the lock, survived every crash);
- every restart recovered every worker's session, and a revision no
  lower than the one before;
- no call failed at all (a program sees a pause, never an error), and
  every worker exited 0;
- the server's log has no error and no damage, only torn-tail warnings;
- one more SIGKILL after the workers finished changes nothing read before
  it, and the server exits 0 on SIGTERM.

Prints a table and the figures, then "crash loop: OK", or exits 1 naming
every violation and keeping the temporary directory (data dir, server log,
worker outputs). Worker mode (``--worker``) is how the supervisor starts
its workers.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LEASE_TTL = 10.0
SNAPSHOT_LOG_BYTES = 16384
LOG_SEGMENT_BYTES = 8192
COUNTERS, APPENDED, QUEUE, STOP = "counters", "appended", "q", "stop"
# How often a worker looks at the stop event.
STOP_POLL = 0.1
READY_TIMEOUT = 30.0


# --- the worker ---------------------------------------------------------------


def worker(address: str, index: int, seed: int) -> int:
    """Mixed load until the stop event is set. One line on stdout per
    outcome the supervisor checks:

    ``ack V``          an increment of counters[wI] answered V;
    ``resync V``       an increment failed; the counter then read V;
    ``append S``       (I, S) was appended to the list (acknowledged);
    ``appendlost S``   appending (I, S) failed: it may or may not be there;
    ``put S`` / ``putlost S``  the same for the queue;
    ``unexpected ...`` a call raised something other than ConnectionError;
    ``released``       the lock taken at the start was released at the end.
    """
    import statehub

    rng = random.Random(seed)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def until_answered(what: str, call: Any) -> Any:
        """call() again every 50 ms until the server answers."""
        while True:
            try:
                return call()
            except ConnectionError:
                time.sleep(0.05)
            except Exception as e:  # noqa: BLE001 - reported, not hidden
                say(f"unexpected {what}: {type(e).__name__}: {e}")
                time.sleep(0.05)

    def attempt(what: str, seq: int, call: Any, item: Any) -> None:
        """Makes one change: `<what> <seq>` once acknowledged, `<what>lost
        <seq>` if the server died under it (it may have been applied)."""
        try:
            call(item)
            say(f"{what} {seq}")
            return
        except ConnectionError:
            pass
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            say(f"unexpected {what}: {type(e).__name__}: {e}")
        say(f"{what}lost {seq}")

    m = statehub.Manager(address, timeout=30)
    counters = m.named.dict(COUNTERS)
    appended = m.named.list(APPENDED)
    q = m.named.Queue(QUEUE)
    stop = m.named.Event(STOP)
    lock = m.named.Lock(f"L{index}")
    key = f"w{index}"
    if not lock.acquire(timeout=10):
        say(f"unexpected acquire: L{index} not acquired within 10 s")
        return 1
    say(f"locked {lock.fencing_token}")
    say(f"start {counters.get(key, 0)}")
    say("ready")

    append_seq = put_seq = 0
    next_poll = time.monotonic() + STOP_POLL
    while True:
        if time.monotonic() >= next_poll:
            try:
                if stop.is_set():
                    break
            except ConnectionError:
                pass  # the server is down: look again next time
            except Exception as e:  # noqa: BLE001
                say(f"unexpected is_set: {type(e).__name__}: {e}")
            next_poll = time.monotonic() + STOP_POLL
        op = rng.random()
        if op < 0.6:
            try:
                say(f"ack {counters.increment(key, 1)}")
                continue
            except ConnectionError:
                pass
            except Exception as e:  # noqa: BLE001
                say(f"unexpected increment: {type(e).__name__}: {e}")
            say(f"resync {until_answered('get', lambda: counters.get(key, 0))}")
        elif op < 0.8:
            append_seq += 1
            attempt("append", append_seq, appended.append, (index, append_seq))
        else:
            put_seq += 1
            attempt("put", put_seq, q.put, (index, put_seq))

    try:
        lock.release()
        say("released")
    except Exception as e:  # noqa: BLE001
        say(f"unexpected release: {type(e).__name__}: {e}")
    m.shutdown()
    return 0


# --- the supervisor -----------------------------------------------------------


def server_binary(given: str | None) -> str:
    binary = (
        given
        or os.environ.get("STATEHUB_SERVER")
        or str(ROOT / "build" / "server" / "statehub-server")
    )
    if not os.access(binary, os.X_OK):
        sys.exit(
            f"crash loop: no statehub-server at {binary} (--server or STATEHUB_SERVER)"
        )
    return binary


class Server:
    """The server on one data dir and socket, killed and started again.
    Its stderr (the log, at info) goes to one file across every start."""

    def __init__(self, binary: str, directory: str, fsync: str) -> None:
        self.directory = directory
        self.data_dir = os.path.join(directory, "data")
        self.socket = os.path.join(directory, "s.sock")
        self.address = f"unix://{self.socket}"
        self.log_path = os.path.join(directory, "server.log")
        self.argv = [
            binary,
            f"--listen={self.address}",
            f"--data_dir={self.data_dir}",
            f"--fsync={fsync}",
            f"--snapshot_log_bytes={SNAPSHOT_LOG_BYTES}",
            f"--log_segment_bytes={LOG_SEGMENT_BYTES}",
            f"--lease_ttl={LEASE_TTL:g}s",
            "--metrics_listen=",
            "--log_level=info",
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.restart_seconds: list[float] = []

    def start(self) -> str | None:
        """Starts it and waits for "statehub-server ready"; None, or why not."""
        self.starts += 1
        out_path = os.path.join(self.directory, f"server-{self.starts}.out")
        with open(self.log_path, "a") as log:
            log.write(f"=== crash loop: start {self.starts}\n")
        with open(out_path, "wb") as out, open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if "statehub-server ready\n" in Path(out_path).read_text():
                return None
            if self.process.poll() is not None:
                return (
                    f"start {self.starts}: the server exited with "
                    f"{self.process.returncode} before ready"
                )
            time.sleep(0.005)
        self.process.kill()
        self.process.wait()
        return (
            f"start {self.starts}: the server was not ready within {READY_TIMEOUT:g} s"
        )

    def crash_and_restart(self) -> str | None:
        assert self.process is not None
        began = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        failed = self.start()
        self.restart_seconds.append(time.monotonic() - began)
        return failed

    def stop(self) -> int | None:
        """SIGTERM; the exit status, or None if it had to be killed."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None


@dataclass
class Trace:
    """What one worker wrote down, and what the checks found in it."""

    index: int
    last: int = 0  # the counter's last known value: acknowledged, or read
    acks: int = 0
    resyncs: int = 0
    applied_in_flight: int = 0
    appends: list[int] = field(default_factory=list)
    appends_lost: list[int] = field(default_factory=list)
    appends_applied: int = 0  # of the lost ones, how many are in the list
    puts: list[int] = field(default_factory=list)
    puts_lost: list[int] = field(default_factory=list)
    puts_applied: int = 0
    released: bool = False


def read_trace(index: int, path: str, failures: list[str]) -> Trace:
    """Worker ``index``'s output, and the checks of its counter's trace:
    each ``ack`` is one more than the value before it (acknowledged or
    read); each ``resync`` is that value or one more."""
    trace = Trace(index)
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        word, _, rest = line.partition(" ")
        where = f"worker {index} line {number} ({line!r})"
        if word == "start":
            trace.last = int(rest)
        elif word == "ack":
            value = int(rest)
            if value != trace.last + 1:
                failures.append(
                    f"{where}: an increment acknowledged {value} after "
                    f"{trace.last}: "
                    + ("one lost" if value <= trace.last else "one applied twice")
                )
            trace.acks += 1
            trace.last = value
        elif word == "resync":
            failures.append(f"{where}: an increment failed when the server died")
            value = int(rest)
            if not trace.last <= value <= trace.last + 1:
                failures.append(
                    f"{where}: read {value} after a failed increment, the "
                    f"value before it {trace.last}: "
                    + (
                        "an acknowledged increment lost"
                        if value < trace.last
                        else "an increment applied twice"
                    )
                )
            trace.resyncs += 1
            trace.applied_in_flight += value == trace.last + 1
            trace.last = value
        elif word == "append":
            trace.appends.append(int(rest))
        elif word == "appendlost":
            failures.append(f"{where}: an append failed when the server died")
            trace.appends_lost.append(int(rest))
        elif word == "put":
            trace.puts.append(int(rest))
        elif word == "putlost":
            failures.append(f"{where}: a put failed when the server died")
            trace.puts_lost.append(int(rest))
        elif word == "released":
            trace.released = True
        elif word == "unexpected":
            failures.append(f"worker {index} raised something unexpected: {rest}")
        elif word not in ("locked", "ready"):
            failures.append(f"{where}: not a trace line")
    if not trace.released:
        failures.append(f"worker {index} did not release its lock L{index}")
    return trace


def check_sequence(
    what: str,
    index: int,
    found: list[int],
    acked: list[int],
    lost: list[int],
    failures: list[str],
) -> int:
    """The seqs worker ``index`` put in a list or queue, in the order found:
    every acknowledged one exactly once, a lost one at most once, nothing
    else, in increasing order. Returns how many lost ones were applied."""
    acked_set, lost_set = set(acked), set(lost)
    counts: dict[int, int] = {}
    for seq in found:
        counts[seq] = counts.get(seq, 0) + 1
    missing = sorted(acked_set - counts.keys())
    if missing:
        failures.append(
            f"{what}: worker {index}'s acknowledged {missing[:10]} "
            f"({len(missing)} in all) are missing"
        )
    twice = sorted(s for s, n in counts.items() if n > 1)
    if twice:
        failures.append(
            f"{what}: worker {index}'s {twice[:10]} are there more than once"
        )
    strangers = sorted(counts.keys() - acked_set - lost_set)
    if strangers:
        failures.append(
            f"{what}: worker {index}'s {strangers[:10]} are there but were never sent"
        )
    if found != sorted(found):
        failures.append(f"{what}: worker {index}'s items are out of order")
    return len(lost_set & counts.keys())


@dataclass
class Recovery:
    revision: int
    snapshot_records: int
    log_records: int
    sessions: int
    seconds: float


RECOVERED = re.compile(
    r"recovered revision (\d+) \((\d+) snapshot and (\d+) log records, "
    r"\d+ bytes, \d+ objects, (\d+) sessions\) in ([\d.]+) s"
)

# spdlog's "[time] [logger] [level] message".
LEVEL = re.compile(r"\[[^\]]*\] \[[^\]]*\] \[(\w+)\] ")


def read_server_log(path: str, failures: list[str]) -> dict[str, Any]:
    """Recoveries, snapshots and torn tails in the server's log; every line
    that is an error, or names damage and is not a torn tail, fails."""
    recoveries: list[Recovery] = []
    snapshots = torn = 0
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("=== crash loop:"):
            continue
        if match := RECOVERED.search(line):
            recoveries.append(
                Recovery(*(int(g) for g in match.groups()[:4]), float(match.group(5)))
            )
        if "snapshot at revision" in line:
            snapshots += 1
        is_torn = "torn" in line and "was cut off" in line
        torn += is_torn
        level = LEVEL.match(line)
        bad_level = level is not None and level.group(1) in ("error", "critical")
        damage = re.search(r"corrupt|damage|checksum|mismatch", line, re.IGNORECASE)
        if (bad_level or damage) and not is_torn:
            failures.append(f"server log: {line}")
        elif level is not None and level.group(1) == "warning" and not is_torn:
            failures.append(f"server log, an unexpected warning: {line}")
    return {"recoveries": recoveries, "snapshots": snapshots, "torn": torn}


def print_table(traces: list[Trace]) -> None:
    """One row per worker and a total: what it saw acknowledged, what
    failed, and how many of the failed changes the server had applied."""
    widths = (6, 6, 7, 7, 7, 5, 7, 6, 5, 7)
    print(
        "  "
        + " ".join(
            h.rjust(w)
            for h, w in zip(
                (
                    "worker",
                    "acks",
                    "resyncs",
                    "applied",
                    "appends",
                    "lost",
                    "applied",
                    "puts",
                    "lost",
                    "applied",
                ),
                widths,
            )
        )
        + "  released"
    )
    rows: list[list[int]] = [
        [
            t.index,
            t.acks,
            t.resyncs,
            t.applied_in_flight,
            len(t.appends),
            len(t.appends_lost),
            t.appends_applied,
            len(t.puts),
            len(t.puts_lost),
            t.puts_applied,
        ]
        for t in traces
    ]
    released = ["yes" if t.released else "NO" for t in traces]
    totals = [sum(r[c] for r in rows) for c in range(1, len(widths))]
    for cells, done in zip(
        [[str(c) for c in r] for r in rows] + [["all", *map(str, totals)]],
        [*released, f"{sum(t.released for t in traces)}/{len(traces)}"],
    ):
        print("  " + " ".join(c.rjust(w) for c, w in zip(cells, widths)) + f"  {done}")
    print(
        "  (applied: of the calls that failed when the server died, those it "
        "had applied:\n   increments the resync read back, items found in "
        "the list or queue)"
    )


def wait_for_lines(
    path: str, needle: str, processes: list[Any], timeout: float
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in Path(path).read_text().splitlines():
            return True
        if any(p.poll() is not None for p in processes):
            return False
        time.sleep(0.05)
    return False


def run(args: argparse.Namespace) -> int:
    import statehub

    binary = server_binary(args.server)
    directory = tempfile.mkdtemp(prefix="statehub-crash-loop-")
    rng = random.Random(args.seed)
    server = Server(binary, directory, args.fsync)
    failures: list[str] = []
    workers: list[subprocess.Popen[bytes]] = []
    outputs = [os.path.join(directory, f"worker-{i}.out") for i in range(args.workers)]
    began = time.monotonic()
    cycles_done = 0
    exit_status: int | None = None
    snapshot_figures: dict[str, Any] = {}
    try:
        if (why := server.start()) is not None:
            failures.append(why)
            raise _Stop
        for i in range(args.workers):
            with (
                open(outputs[i], "wb") as out,
                open(os.path.join(directory, f"worker-{i}.err"), "wb") as err,
            ):
                workers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--worker",
                            server.address,
                            str(i),
                            str(rng.randrange(1 << 30)),
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                    )
                )
        for i in range(args.workers):
            if not wait_for_lines(outputs[i], "ready", workers, 120):
                failures.append(f"worker {i} did not get ready")
                raise _Stop

        for cycle in range(args.cycles):
            time.sleep(rng.uniform(0.2, 1.0))
            if (why := server.crash_and_restart()) is not None:
                failures.append(f"cycle {cycle + 1}: {why}")
                raise _Stop
            cycles_done += 1
            for i, p in enumerate(workers):
                if p.poll() is not None:
                    failures.append(
                        f"cycle {cycle + 1}: worker {i} exited early with {p.returncode}"
                    )
            if any(p.poll() is not None for p in workers):
                raise _Stop

        # The last crash is behind: every worker's lock must still be held.
        m = statehub.Manager(server.address, timeout=30)
        for i in range(args.workers):
            if not m.named.Lock(f"L{i}").state().locked:
                failures.append(f"lock L{i} is not held after the last restart")
        m.named.Event(STOP).set()
        m.shutdown()
        for i, p in enumerate(workers):
            try:
                code = p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                failures.append(f"worker {i} did not stop within 60 s")
                continue
            if code != 0:
                err = Path(directory, f"worker-{i}.err").read_text()[-2000:]
                failures.append(f"worker {i} exited with {code}: {err}")

        traces = [read_trace(i, outputs[i], failures) for i in range(args.workers)]

        # Read everything, crash once more, read it again: the same.
        m = statehub.Manager(server.address, timeout=30)
        counters = m.named.dict(COUNTERS).copy()
        appended = [tuple(x) for x in m.named.list(APPENDED)]
        queued = m.named.Queue(QUEUE).qsize()
        m.shutdown()
        if (why := server.crash_and_restart()) is not None:
            failures.append(f"the final restart: {why}")
            raise _Stop
        m = statehub.Manager(server.address, timeout=30)
        if m.named.dict(COUNTERS).copy() != counters:
            failures.append("the counters changed across a crash with no clients")
        if [tuple(x) for x in m.named.list(APPENDED)] != appended:
            failures.append("the list changed across a crash with no clients")
        q = m.named.Queue(QUEUE)
        if q.qsize() != queued:
            failures.append(
                f"the queue held {queued} items before a crash with no clients "
                f"and {q.qsize()} after"
            )
        drained: list[tuple[int, int]] = []
        while True:
            try:
                drained.append(tuple(q.get_nowait()))  # type: ignore[arg-type]
            except queue.Empty:
                break
        for i in range(args.workers):
            if m.named.Lock(f"L{i}").state().locked:
                failures.append(f"lock L{i} is still held after its release")
        m.shutdown()

        for t in traces:
            final = counters.get(f"w{t.index}", 0)
            if final != t.last:
                failures.append(
                    f"worker {t.index}'s counter is {final}, its trace ends at {t.last}"
                )
            t.appends_applied = check_sequence(
                "list",
                t.index,
                [s for w, s in appended if w == t.index],
                t.appends,
                t.appends_lost,
                failures,
            )
            t.puts_applied = check_sequence(
                "queue",
                t.index,
                [s for w, s in drained if w == t.index],
                t.puts,
                t.puts_lost,
                failures,
            )
        strangers = [x for x in appended + drained if not 0 <= x[0] < args.workers]
        if strangers:
            failures.append(f"items from no worker: {strangers[:10]}")
    except _Stop:
        traces = []
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        exit_status = server.stop()
    if exit_status != 0:
        failures.append(f"the server exited with {exit_status} on SIGTERM")

    log = read_server_log(server.log_path, failures)
    recoveries: list[Recovery] = log["recoveries"]
    # Start 1 recovers nothing; starts 2 .. cycles+1 follow a crash under
    # load (the last one, with no clients, is start cycles+2).
    if len(recoveries) != server.starts:
        failures.append(
            f"{server.starts} starts but {len(recoveries)} recovery lines in the log"
        )
    for k, r in enumerate(recoveries[1 : cycles_done + 1], 2):
        if r.sessions != args.workers:
            failures.append(
                f"start {k} recovered {r.sessions} sessions, not {args.workers}"
            )
    for k in range(1, len(recoveries)):
        if recoveries[k].revision < recoveries[k - 1].revision:
            failures.append(
                f"start {k + 1} recovered revision {recoveries[k].revision}, "
                f"lower than {recoveries[k - 1].revision} before it"
            )
    snapshot_figures = {
        "snapshots taken": log["snapshots"],
        "restarts from a snapshot": sum(1 for r in recoveries if r.snapshot_records),
        "torn tails cut off": log["torn"],
    }

    elapsed = time.monotonic() - began
    print(
        f"crash loop: {cycles_done} of {args.cycles} SIGKILL cycles, "
        f"{args.workers} workers, --fsync={args.fsync}, {elapsed:.0f} s in all"
    )
    if traces:
        print_table(traces)
    if server.restart_seconds:
        mean = sum(server.restart_seconds) / len(server.restart_seconds)
        print(
            f"  restart, SIGKILL to ready: mean {mean * 1000:.0f} ms, "
            f"max {max(server.restart_seconds) * 1000:.0f} ms"
        )
    if recoveries:
        last = recoveries[-1]
        print(
            f"  revision at the last start {last.revision}; longest recovery "
            f"{max(r.seconds for r in recoveries) * 1000:.0f} ms, of "
            f"{max(r.snapshot_records + r.log_records for r in recoveries)} "
            f"records at most"
        )
    for name, value in snapshot_figures.items():
        print(f"  {name}: {value}")
    if failures:
        print("crash loop: FAILED")
        for failure in failures:
            print(f"  - {failure}")
        print(f"  kept: {directory} (data dir, server.log, worker-*.out)")
        return 1
    shutil.rmtree(directory, ignore_errors=True)
    print(
        "crash loop: OK: no call failed, nothing acknowledged lost, nothing applied twice, "
        "every lock and session kept across every SIGKILL"
    )
    return 0


class _Stop(Exception):
    """Stops the run early: the checks after it cannot be made."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--fsync", choices=["always", "everysec", "no"], default="always"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", help="statehub-server binary")
    parser.add_argument(
        "--worker",
        nargs=3,
        metavar=("ADDRESS", "INDEX", "SEED"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.worker:
        address, index, seed = args.worker
        return worker(address, int(index), int(seed))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
