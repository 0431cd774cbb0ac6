"""What durability costs (issue 21): throughput per --fsync mode, group
commit under --fsync=always, recovery speed, and small-call latency while a
snapshot is written. One run, side by side; every figure that is compared
is a ratio taken in this run.

Every server this script starts is a copy of the statehub-server binary
taken once at the start (a rebuild during the run cannot mix binaries),
listens on a private Unix socket and TCP 127.0.0.1:0, serves metrics on
127.0.0.1:0 and logs to a file in the work directory. Data dirs live in the
work directory (--dir), so the raw fsync figure below is taken on the same
filesystem.

1. Throughput per mode: memory (no --data_dir), --fsync=no, everysec and
   always. Per mode a fresh server (and a fresh data dir), then
   build/bench/loadgen at --clients connections x 1 in flight (lane, TCP):
   dict_set then dict_get; then the Python throughput bench of
   manager_bench.py (bench/python/_throughput.py): 8 spawned processes, each
   alternating a set and a get of its own key in one dict, through
   statehub.Manager(address) on the Unix socket, counted in one window.
   --rounds rounds; round r starts with mode r mod 4 and goes on in order.
   ops/s is total ops over total measured time; the ratio is mode / memory
   (target: everysec >= 0.90x memory). Beside it, the server's CPU per set:
   its user+sys CPU time (/proc/<pid>/stat) over the dict_set run, divided
   by the Dicts.Set calls it finished (statehub_rpc_requests_total), a
   figure that the machine's other load does not move much.
2. Group commit: --fsync=always at 1, 8 and 50 clients (loadgen dict_set,
   N connections x 1), with the server's fsync latency from its
   statehub_log_fsync_seconds histogram (scraped before and after; p50/p99
   interpolated inside the buckets, as Prometheus' histogram_quantile does;
   the mean is exact; records per fsync from statehub_revision) beside the
   raw fsync latency of this filesystem, measured just before each server
   window: --fsyncs 512-byte os.write appends to a file in the work
   directory, each followed by an os.fdatasync timed alone.
3. Recovery: a data dir of --state-mb MB of string -> string entries
   (dicts of 8,000 entries "k0000000" -> 240-character values, written by
   update() of 1,000 items, --snapshot_log_bytes=0), SIGKILLed; a copy of it
   keeps the whole log. Part 4 gives the original a snapshot. Then
   --rounds3 rounds, alternating which goes first, of: start on the
   log-only copy / on the snapshot + tail, read the server's "recovered
   revision ... in S s (M MB/s)" line and the server's CPU time at ready
   (bytes per CPU-second: the rate with a CPU of its own), SIGKILL. Target:
   >= 100 MB/s. The files are in the page cache (just written) unless
   --drop-caches.
4. Snapshot interference: on the --state-mb state (--fsync=everysec,
   --snapshot_log_bytes=--snapshot-trigger-mb), a probe process makes paced
   small calls (--probe-rate a second, in turn: set and get on a small dict
   of its own, get of a key of one of the large dicts) and stamps each.
   Rounds alternate which window goes first: a quiet window (--quiet-s) and
   a snapshot window (overwrite existing entries of the large dicts until
   the log has grown past the trigger, then from the moment the
   snap-*.snap.tmp file appears, or the overwrite ends if later, to the
   server's "snapshot at revision" line). p99 during snapshots over p99 in
   quiet windows is the ratio (target: <= 2x). The log's fdatasyncs inside
   each kind of window come from statehub_log_fsync_seconds, scraped at the
   window's ends. --placements: "unpinned" (as a user runs it) and
   "pinned" (the server, every thread, and the probe on CPU 0, with taskset
   and sched_setaffinity: the snapshot thread then competes with the calls
   for one CPU).

Nothing is asserted: the script prints its commands and tables and exits 0.

    scripts/build.sh release statehub-server loadgen
    .venv/bin/python bench/durability.py --quick   # about 2 minutes
    .venv/bin/python bench/durability.py           # about 8 minutes
"""

from __future__ import annotations

import argparse
import array
import bisect
import contextlib
import hashlib
import math
import multiprocessing
import os
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "python"))

# statehub before anything that loads grpc: it sets GRPC_ENABLE_FORK_SUPPORT.
import statehub
from _report import (
    environment_lines,
    format_table,
    percentile,
    ratio,
    rotated,
)
from _throughput import run_window

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ["memory", "no", "everysec", "always"]
ENTRIES_PER_DICT = 8_000
BATCH = 1_000
VALUE_LEN = 240
KEY_LEN = 8  # "k0000000"
PROBE_KINDS = ["small set", "small get", "large-dict get"]


def say(text: str = "") -> None:
    print(text, flush=True)


def show_command(cmd: Sequence[str]) -> None:
    say("$ " + shlex.join(cmd))


# -- servers ------------------------------------------------------------------


class Server:
    """One statehub-server process: started, ready, its addresses known."""

    def __init__(
        self,
        binary: str,
        workdir: str,
        name: str,
        *,
        data_dir: str | None = None,
        fsync: str = "everysec",
        snapshot_log_bytes: int | None = None,
        startup_timeout: float = 900,
    ) -> None:
        self.sock = os.path.join(workdir, f"{name}.sock")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.data_dir = data_dir
        cmd = [
            binary,
            f"--listen=unix://{self.sock},127.0.0.1:0",
            "--metrics_listen=127.0.0.1:0",
            "--watch_stdin",
        ]
        if data_dir is not None:
            cmd += [f"--data_dir={data_dir}", f"--fsync={fsync}"]
            if snapshot_log_bytes is not None:
                cmd.append(f"--snapshot_log_bytes={snapshot_log_bytes}")
        show_command(cmd)
        with open(self.log_path, "a") as log:
            self.log_offset = log.tell()
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.tcp = ""
        self.metrics_url = ""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + startup_timeout
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(
                    f"server exited ({self.proc.wait()}): see {self.log_path}\n"
                    + self.log_text()[-2000:]
                )
            if line.startswith("statehub-server listening on ") and (
                not line.strip().endswith(".sock")
            ):
                address = line.split(" on ", 1)[1].strip()
                if not address.startswith("unix:"):
                    self.tcp = address
            elif line.startswith("statehub-server metrics on "):
                self.metrics_url = line.split(" on ", 1)[1].strip()
            elif line.startswith("statehub-server ready"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
        self.ready_s = time.monotonic() - self.started

    @property
    def unix(self) -> str:
        return f"unix://{self.sock}"

    def log_text(self) -> str:
        with open(self.log_path) as log:
            log.seek(self.log_offset)
            return log.read()

    def recovered(self) -> dict[str, float]:
        m = re.search(
            r"recovered revision (\d+) \((\d+) snapshot and (\d+) log records, "
            r"(\d+) bytes, (\d+) objects, (\d+) sessions\) in ([\d.]+) s "
            r"\(([\d.]+) MB/s\)",
            self.log_text(),
        )
        if m is None:
            raise RuntimeError(f"no recovery line in {self.log_path}")
        keys = [
            "revision",
            "snap_records",
            "log_records",
            "bytes",
            "objects",
            "sessions",
            "seconds",
            "mb_s",
        ]
        return {k: float(v) for k, v in zip(keys, m.groups(), strict=True)}

    def snapshots(self) -> list[tuple[int, float]]:
        """(bytes, seconds) of each "snapshot at revision" line so far."""
        return [
            (int(b), float(s))
            for b, s in re.findall(
                r"snapshot at revision \d+ \((\d+) bytes\) in ([\d.]+) s",
                self.log_text(),
            )
        ]

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as reply:
            return reply.read().decode()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server, every thread."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


@contextlib.contextmanager
def server(*args: Any, **kwargs: Any) -> Iterator[Server]:
    s = Server(*args, **kwargs)
    try:
        yield s
    finally:
        s.stop()


def metric_value(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)}(?:\{{\}})? ([0-9.e+-]+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def metric_sum(text: str, name: str, contains: str = "") -> float:
    """The sum of every series of name whose labels contain `contains`."""
    return sum(
        float(v)
        for labels, v in re.findall(
            rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.MULTILINE
        )
        if contains in labels
    )


@dataclass
class Histogram:
    bounds: list[float] = field(default_factory=list)  # le, ascending, +Inf last
    cumulative: list[float] = field(default_factory=list)
    count: float = 0.0
    total: float = 0.0

    @staticmethod
    def parse(text: str, name: str) -> Histogram | None:
        h = Histogram()
        for le, value in re.findall(
            rf'^{re.escape(name)}_bucket\{{le="([^"]+)"\}} ([0-9.e+-]+)$',
            text,
            re.MULTILINE,
        ):
            h.bounds.append(math.inf if le == "+Inf" else float(le))
            h.cumulative.append(float(value))
        if not h.bounds:
            return None
        h.count = metric_value(text, f"{name}_count")
        h.total = metric_value(text, f"{name}_sum")
        return h

    def minus(self, earlier: Histogram | None) -> Histogram:
        if earlier is None:
            return self
        return Histogram(
            self.bounds,
            [a - b for a, b in zip(self.cumulative, earlier.cumulative, strict=True)],
            self.count - earlier.count,
            self.total - earlier.total,
        )

    def plus(self, other: Histogram | None) -> Histogram:
        if other is None:
            return self
        return Histogram(
            self.bounds,
            [a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)],
            self.count + other.count,
            self.total + other.total,
        )

    def top_bucket(self) -> str:
        """The bound of the highest bucket that holds a sample: "<= X ms"."""
        below = 0.0
        top = ""
        for bound, cum in zip(self.bounds, self.cumulative, strict=True):
            if cum > below:
                top = "> 1 s" if math.isinf(bound) else f"<= {bound * 1e3:g} ms"
            below = cum
        return top or "-"

    def quantile(self, q: float) -> float:
        """histogram_quantile's estimate: linear inside the bucket."""
        if self.count <= 0:
            return math.nan
        rank = q * self.cumulative[-1]
        lower, below = 0.0, 0.0
        for bound, cum in zip(self.bounds, self.cumulative, strict=True):
            if cum >= rank:
                if math.isinf(bound):
                    return lower  # beyond the last finite bound
                inside = cum - below
                return lower + (bound - lower) * (
                    (rank - below) / inside if inside else 1
                )
            lower, below = bound, cum
        return lower


# -- loadgen ------------------------------------------------------------------


@dataclass
class LoadgenResult:
    ops_s: float
    p50_us: float
    p99_us: float
    errors: int


def loadgen(
    binary: str,
    address: str,
    clients: int,
    ops: Sequence[str],
    seconds: float,
    warmup: float,
) -> dict[str, LoadgenResult]:
    cmd = [
        binary,
        f"--address={address}",
        f"--connections={clients}",
        "--inflight=1",
        f"--ops={','.join(ops)}",
        f"--seconds={seconds:g}",
        f"--warmup={warmup:g}",
        "--csv",
    ]
    show_command(cmd)
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120 + 2 * len(ops) * (seconds + warmup),
    )
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr}")
    results = {}
    for line in out.stdout.splitlines():
        cells = line.split(",")
        if len(cells) == 8 and cells[0] in ops:
            results[cells[0]] = LoadgenResult(
                float(cells[4]), float(cells[5]), float(cells[6]), int(cells[7])
            )
    return results


# -- part 1: throughput per mode -----------------------------------------------


def part_throughput(args: argparse.Namespace, ctx: Any, work: str) -> None:
    say("\n## 1. Throughput per mode")
    say(
        f"loadgen: {args.clients} connections x 1 in flight, {args.seconds:g} s "
        f"per op after {args.warmup:g} s warmup; Python: {args.processes} spawned "
        f"processes, {args.window:g} s window; {args.rounds} rounds rotating "
        "which mode goes first; a fresh server and data dir per mode and round."
    )
    cols = ["dict_set", "dict_get", "python"]
    ops = {m: dict.fromkeys(cols, 0.0) for m in MODES}
    secs = {m: dict.fromkeys(cols, 0.0) for m in MODES}
    per_round: dict[str, list[float]] = {m: [] for m in MODES}
    p99 = {m: {c: [] for c in cols[:2]} for m in MODES}
    errors = 0
    cpu = dict.fromkeys(MODES, 0.0)  # server CPU s during the dict_set runs
    sets = dict.fromkeys(MODES, 0.0)  # Set calls the server finished in them
    for r in range(args.rounds):
        for i in rotated(range(len(MODES)), r):
            mode = MODES[i]
            data_dir = None if mode == "memory" else os.path.join(work, f"tp-{mode}")
            if data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
            say(f"-- round {r + 1}, {mode}")
            with server(
                args.server_copy, work, f"tp-{mode}", data_dir=data_dir, fsync=mode
            ) as s:
                calls = (
                    "statehub_rpc_requests_total",
                    'method="statehub.v1.Dicts.Set"',
                )
                rev0, cpu0 = metric_sum(s.scrape(), *calls), s.cpu_seconds()
                res = loadgen(
                    args.loadgen_copy,
                    s.tcp,
                    args.clients,
                    ["dict_set"],
                    args.seconds,
                    args.warmup,
                )
                cpu[mode] += s.cpu_seconds() - cpu0
                sets[mode] += metric_sum(s.scrape(), *calls) - rev0
                res |= loadgen(
                    args.loadgen_copy,
                    s.tcp,
                    args.clients,
                    ["dict_get"],
                    args.seconds,
                    args.warmup,
                )
                for op, x in res.items():
                    ops[mode][op] += x.ops_s * args.seconds
                    secs[mode][op] += args.seconds
                    p99[mode][op].append(x.p99_us)
                    errors += x.errors
                m = statehub.Manager(s.unix)
                try:
                    d = m.dict()
                    count, window, _ = run_window(ctx, d, args.processes, args.window)
                finally:
                    m.shutdown()
                ops[mode]["python"] += count
                secs[mode]["python"] += window
                per_round[mode].append(count / window)
            if data_dir:
                shutil.rmtree(data_dir, ignore_errors=True)
    rate = {m: {c: ops[m][c] / secs[m][c] for c in cols} for m in MODES}
    rows = []
    for m in MODES:
        row = [m if m == "memory" else f"--fsync={m}"]
        for c in cols:
            row += [f"{rate[m][c]:.0f}", ratio(rate[m][c], rate["memory"][c])]
        per_set = cpu[m] / sets[m] * 1e6 if sets[m] else math.nan
        row += [f"{per_set:.1f}", ratio(per_set, cpu["memory"] / sets["memory"] * 1e6)]
        row.append(">= 0.90" if m == "everysec" else "none")
        rows.append(row)
    say(
        f"\nops/s (total ops / total measured s over {args.rounds} rounds); "
        "ratio = mode / memory, HIGHER is better (CPU: lower); server CPU us/set "
        "= the server's user+sys CPU during the loadgen dict_set runs (warmup "
        "included) / the Set calls it finished (statehub_rpc_requests_total)"
    )
    say(
        format_table(
            [
                "mode",
                "loadgen set ops/s",
                "ratio",
                "loadgen get ops/s",
                "ratio",
                f"python {args.processes}p ops/s",
                "ratio",
                "server CPU us/set",
                "ratio",
                "target",
            ],
            rows,
        )
    )
    say("\nloadgen dict_set p99 us per round, and Python ops/s per round:")
    say(
        format_table(
            ["mode", "set p99 us by round", "python ops/s by round"],
            [
                [
                    m,
                    " ".join(f"{x:.0f}" for x in p99[m]["dict_set"]),
                    " ".join(f"{x:.0f}" for x in per_round[m]),
                ]
                for m in MODES
            ],
        )
    )
    if errors:
        say(f"loadgen errors: {errors}")


# -- part 2: group commit -------------------------------------------------------


def raw_fsync(directory: str, count: int) -> list[int]:
    """ns per fdatasync of a 512-byte append, count times."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    block = b"x" * 512
    samples = []
    try:
        for _ in range(count):
            os.write(fd, block)
            t = time.perf_counter_ns()
            os.fdatasync(fd)
            samples.append(time.perf_counter_ns() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return samples


def part_group_commit(args: argparse.Namespace, work: str) -> None:
    say("\n## 2. --fsync=always: group commit at 1, 8, 50 clients")
    counts = [1, 8, 50]
    raw: list[int] = []
    res: dict[int, list[LoadgenResult]] = {n: [] for n in counts}
    hist: dict[int, Histogram | None] = dict.fromkeys(counts)
    records: dict[int, float] = dict.fromkeys(counts, 0.0)
    have_metric = True
    for r in range(args.rounds2):
        for i in rotated(range(len(counts)), r):
            n = counts[i]
            # Raw fsyncs next to each server window: the disk's latency moves
            # with whatever else the machine writes.
            say(
                f"-- round {r + 1}, raw fsync: {args.fsyncs} x (os.write 512 B "
                f"append + os.fdatasync) in {work}"
            )
            raw += raw_fsync(work, args.fsyncs)
            data_dir = os.path.join(work, f"gc-{n}")
            shutil.rmtree(data_dir, ignore_errors=True)
            say(f"-- round {r + 1}, always, {n} clients")
            with server(
                args.server_copy, work, f"gc-{n}", data_dir=data_dir, fsync="always"
            ) as s:
                before_text = s.scrape()
                x = loadgen(
                    args.loadgen_copy, s.tcp, n, ["dict_set"], args.seconds, args.warmup
                )["dict_set"]
                after_text = s.scrape()
            shutil.rmtree(data_dir, ignore_errors=True)
            res[n].append(x)
            name = "statehub_log_fsync_seconds"
            after = Histogram.parse(after_text, name)
            if after is None:
                have_metric = False
                continue
            delta = after.minus(Histogram.parse(before_text, name))
            hist[n] = delta.plus(hist[n])
            records[n] += metric_value(after_text, "statehub_revision") - (
                metric_value(before_text, "statehub_revision")
            )
    raw.sort()
    rows = []
    raw_mean = sum(raw) / len(raw) / 1e3
    rows.append(
        [
            "raw fdatasync",
            "-",
            "-",
            "-",
            "-",
            "-",
            f"{percentile(raw, 50) / 1e3:.0f}",
            f"{percentile(raw, 99) / 1e3:.0f}",
            f"{raw_mean:.0f}",
            "1.00",
        ]
    )
    for n in counts:
        xs = res[n]
        rate = sum(x.ops_s for x in xs) / len(xs)
        p50 = sorted(x.p50_us for x in xs)[len(xs) // 2]
        p99 = sorted(x.p99_us for x in xs)[len(xs) // 2]
        h = hist[n]
        if h is not None and h.count > 0:
            mean = h.total / h.count * 1e6
            cells = [
                f"{h.count:.0f}",
                f"{records[n] / h.count:.1f}",
                f"{h.quantile(0.5) * 1e6:.0f}",
                f"{h.quantile(0.99) * 1e6:.0f}",
                f"{mean:.0f}",
                ratio(mean, raw_mean),
            ]
        else:
            cells = ["-", "-", "-", "-", "-", "-"]
        rows.append(
            [f"always, {n} clients", f"{rate:.0f}", f"{p50:.0f}", f"{p99:.0f}", *cells]
        )
    say(
        f"\n{args.rounds2} rounds rotating 1/8/50 clients, raw fsyncs before each; "
        "ops/s is the mean of rounds, client p50/p99 the median round's; server "
        "fsyncs from statehub_log_fsync_seconds (count; p50/p99 interpolated in "
        "its buckets; exact mean), records per fsync = statehub_revision delta / "
        f"fsyncs; raw: {len(raw)} fdatasyncs of 512-byte appends, same filesystem"
    )
    say(
        format_table(
            [
                "what",
                "ops/s",
                "client p50 us",
                "client p99 us",
                "fsyncs",
                "records/fsync",
                "fsync p50 us",
                "fsync p99 us",
                "fsync mean us",
                "mean/raw mean",
            ],
            rows,
        )
    )
    if not have_metric:
        say(
            "(statehub_log_fsync_seconds not exported by this server: "
            "client-side figures only)"
        )


# -- parts 3 and 4: a large state ------------------------------------------------


def fill(address: str, dicts: int) -> float:
    """Writes `dicts` dicts of ENTRIES_PER_DICT entries; returns seconds."""
    m = statehub.Manager(address)
    value = "v" * VALUE_LEN
    t = time.monotonic()
    try:
        for d in range(dicts):
            big = m.named.dict(f"big/{d:04d}")
            for b in range(0, ENTRIES_PER_DICT, BATCH):
                big.update({f"k{i:07d}": value for i in range(b, b + BATCH)})
    finally:
        m.shutdown()
    return time.monotonic() - t


def dir_bytes(path: str) -> int:
    return sum(e.stat().st_size for e in os.scandir(path) if e.is_file())


def drop_caches(enabled: bool) -> None:
    if not enabled:
        return
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")


def _probe(
    address: str,
    dicts: int,
    rate: float,
    cpu: int | None,
    stop: Any,
    ready: Any,
    out_path: str,
) -> None:
    """Paced small calls until stop is set; writes (t_ns, lat_ns, kind)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    m = statehub.Manager(address)
    small = m.named.dict("probe/small")
    bigs = [
        m.named.dict(f"big/{d:04d}")
        for d in random.sample(range(dicts), min(dicts, 32))
    ]
    small["k"] = 0
    for b in bigs:
        _ = b["k0000000"]
    samples = array.array("q")
    rng = random.Random(1)
    period = 1e9 / rate
    ready.set()
    next_at = time.monotonic_ns()
    i = 0
    while not stop.is_set():
        kind = i % 3
        t = time.monotonic_ns()
        if kind == 0:
            small["k"] = i
        elif kind == 1:
            _ = small["k"]
        else:
            _ = bigs[rng.randrange(len(bigs))][
                f"k{rng.randrange(ENTRIES_PER_DICT):07d}"
            ]
        end = time.monotonic_ns()
        samples.extend((t, end - t, kind))
        i += 1
        next_at += int(period)
        delay = next_at - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        else:
            next_at = time.monotonic_ns()
    with open(out_path, "wb") as f:
        samples.tofile(f)
    m.shutdown()


def snapshot_tmp(data_dir: str) -> bool:
    return any(n.endswith(".snap.tmp") for n in os.listdir(data_dir))


def overwrite_until(s: Server, m: Any, dicts: int, log_bytes: int, turn: int) -> None:
    """Overwrites entries of the large dicts (same sizes, so the state does
    not grow) until statehub_log_bytes_total has grown by log_bytes."""
    start = metric_value(s.scrape(), "statehub_log_bytes_total")
    value = chr(ord("a") + turn % 26) * VALUE_LEN
    d = 0
    while True:
        big = m.named.dict(f"big/{d % dicts:04d}")
        for b in range(0, ENTRIES_PER_DICT, BATCH):
            big.update({f"k{i:07d}": value for i in range(b, b + BATCH)})
        d += 1
        if metric_value(s.scrape(), "statehub_log_bytes_total") - start >= log_bytes:
            return


@dataclass
class Windows:
    quiet: list[tuple[int, int]] = field(default_factory=list)
    snap: list[tuple[int, int]] = field(default_factory=list)


def classify(samples: array.array, windows: Windows) -> dict[str, list[list[int]]]:
    out = {"quiet": [[] for _ in PROBE_KINDS], "snapshot": [[] for _ in PROBE_KINDS]}
    for name, spans in (("quiet", windows.quiet), ("snapshot", windows.snap)):
        starts = [a for a, _ in spans]
        for j in range(0, len(samples), 3):
            t = samples[j]
            k = bisect.bisect_right(starts, t) - 1
            if k >= 0 and t + samples[j + 1] <= spans[k][1]:
                out[name][samples[j + 2]].append(samples[j + 1])
    for lists in out.values():
        for xs in lists:
            xs.sort()
    return out


def part_snapshot_latency(
    args: argparse.Namespace, ctx: Any, work: str, data_dir: str, dicts: int
) -> list[tuple[int, float]]:
    say("\n## 4. Small-call latency while a snapshot is written")
    trigger = int(args.snapshot_trigger_mb * (1 << 20))
    all_snaps: list[tuple[int, float]] = []
    with server(
        args.server_copy,
        work,
        "snap",
        data_dir=data_dir,
        fsync="everysec",
        snapshot_log_bytes=trigger,
    ) as s:
        say(f"server ready in {s.ready_s:.1f} s (recovery of the log-only state)")
        writer = statehub.Manager(s.unix)
        turn = 0
        try:
            for placement in args.placements:
                pinned = placement == "pinned"
                if pinned:
                    cmd = ["taskset", "-a", "-p", "-c", "0", str(s.proc.pid)]
                    show_command(cmd)
                    subprocess.run(cmd, check=True, capture_output=True)
                out_path = os.path.join(work, f"probe-{placement}.bin")
                stop, ready = ctx.Event(), ctx.Event()
                probe = ctx.Process(
                    target=_probe,
                    args=(
                        s.unix,
                        dicts,
                        args.probe_rate,
                        0 if pinned else None,
                        stop,
                        ready,
                        out_path,
                    ),
                )
                probe.start()
                ready.wait(120)
                windows = Windows()
                fsyncs: dict[str, Histogram | None] = {"quiet": None, "snapshot": None}

                def fsync_hist(server: Server) -> Histogram | None:
                    return Histogram.parse(
                        server.scrape(), "statehub_log_fsync_seconds"
                    )

                snaps_before = len(s.snapshots())
                for r in range(args.rounds4):
                    order = (
                        ["quiet", "snapshot"] if r % 2 == 0 else ["snapshot", "quiet"]
                    )
                    for what in order:
                        if what == "quiet":
                            h0 = fsync_hist(s)
                            a = time.monotonic_ns()
                            time.sleep(args.quiet_s)
                            windows.quiet.append((a, time.monotonic_ns()))
                            h1 = fsync_hist(s)
                            if h1 is not None:
                                fsyncs["quiet"] = h1.minus(h0).plus(fsyncs["quiet"])
                            say(
                                f"-- {placement}, round {r + 1}: quiet {args.quiet_s:g} s"
                            )
                            continue
                        n_before = len(s.snapshots())
                        t0 = time.monotonic()
                        overwrite_until(s, writer, dicts, trigger, turn)
                        turn += 1
                        wrote_end = time.monotonic_ns()
                        h0 = fsync_hist(s)
                        began = None
                        while len(s.snapshots()) == n_before:
                            if began is None and snapshot_tmp(data_dir):
                                began = time.monotonic_ns()
                            if time.monotonic() - t0 > 600:
                                raise RuntimeError("no snapshot within 600 s")
                            time.sleep(0.002)
                        ended = time.monotonic_ns()
                        h1 = fsync_hist(s)
                        if h1 is not None:
                            fsyncs["snapshot"] = h1.minus(h0).plus(fsyncs["snapshot"])
                        if began is None:
                            began = ended  # missed it: an empty window
                        windows.snap.append((max(began, wrote_end), ended))
                        b, sec = s.snapshots()[-1]
                        say(
                            f"-- {placement}, round {r + 1}: overwrite "
                            f"{(wrote_end / 1e9 - t0):.1f} s, snapshot of {b / 1e6:.0f} "
                            f"MB in {sec:.2f} s (window {(ended - max(began, wrote_end)) / 1e9:.2f} s)"
                        )
                stop.set()
                probe.join(120)
                samples = array.array("q")
                with open(out_path, "rb") as f:
                    samples.frombytes(f.read())
                got = classify(samples, windows)
                snaps = s.snapshots()[snaps_before:]
                all_snaps += snaps
                report_probe(args, placement, got, snaps)
                for name, h in fsyncs.items():
                    if h is not None and h.count > 0:
                        say(
                            f"log fdatasyncs in {name} windows: {h.count:.0f}, "
                            f"mean {h.total / h.count * 1e3:.2f} ms, p99 "
                            f"{h.quantile(0.99) * 1e3:.2f} ms (bucket-interpolated), "
                            f"longest {h.top_bucket()}, {h.total:.2f} s in all"
                        )
                if pinned:
                    cmd = [
                        "taskset",
                        "-a",
                        "-p",
                        "-c",
                        f"0-{os.cpu_count() - 1}",
                        str(s.proc.pid),
                    ]
                    subprocess.run(cmd, check=True, capture_output=True)
        finally:
            writer.shutdown()
        s.kill()
    return all_snaps


def report_probe(
    args: argparse.Namespace,
    placement: str,
    got: dict[str, list[list[int]]],
    snaps: list[tuple[int, float]],
) -> None:
    mean_s = sum(x for _, x in snaps) / len(snaps)
    mean_b = sum(b for b, _ in snaps) / len(snaps)
    say(
        f"\n{placement}: {len(snaps)} snapshots of {mean_b / 1e6:.0f} MB, "
        f"{mean_s:.2f} s each ({mean_b / 1e6 / mean_s:.0f} MB/s); probe "
        f"{args.probe_rate:g} calls/s; latency in us"
    )
    rows = []
    for k, kind in enumerate(PROBE_KINDS):
        q, sn = got["quiet"][k], got["snapshot"][k]
        if not q or not sn:
            rows.append(
                [
                    kind,
                    str(len(q)),
                    "-",
                    "-",
                    str(len(sn)),
                    "-",
                    "-",
                    "-",
                    "-",
                    "<= 2.00",
                ]
            )
            continue
        qp99, sp99 = percentile(q, 99), percentile(sn, 99)
        rows.append(
            [
                kind,
                str(len(q)),
                f"{percentile(q, 50) / 1e3:.0f}",
                f"{qp99 / 1e3:.0f}",
                str(len(sn)),
                f"{percentile(sn, 50) / 1e3:.0f}",
                f"{sp99 / 1e3:.0f}",
                f"{sn[-1] / 1e3:.0f}",
                ratio(sp99, qp99),
                "<= 2.00",
            ]
        )
    say(
        format_table(
            [
                "call",
                "quiet n",
                "quiet p50",
                "quiet p99",
                "snap n",
                "snap p50",
                "snap p99",
                "snap max",
                "p99 snap/quiet",
                "target",
            ],
            rows,
        )
    )


def part_recovery(
    args: argparse.Namespace, work: str, log_dir: str, snap_dir: str
) -> None:
    say("\n## 3. Recovery: log replay and snapshot load")
    sources = [("log replay", log_dir), ("snapshot + tail", snap_dir)]
    got: dict[str, list[dict[str, float]]] = {name: [] for name, _ in sources}
    for r in range(args.rounds3):
        for i in rotated(range(2), r):
            name, d = sources[i]
            drop_caches(args.drop_caches)
            s = Server(
                args.server_copy,
                work,
                f"rec-{i}",
                data_dir=d,
                fsync="everysec",
                snapshot_log_bytes=0,
            )
            rec = s.recovered()
            rec["ready"] = s.ready_s
            rec["cpu"] = s.cpu_seconds()
            s.kill()
            got[name].append(rec)
            say(
                f"-- round {r + 1}, {name}: {rec['bytes'] / 1e6:.0f} MB in "
                f"{rec['seconds']:.2f} s ({rec['mb_s']:.0f} MB/s), ready after "
                f"{rec['ready']:.2f} s, {rec['cpu']:.2f} CPU-s"
            )
    rows = []
    for name, _ in sources:
        xs = got[name]
        mb_s = sorted(x["bytes"] / 1e6 / x["seconds"] for x in xs)
        mb_cpu = sorted(x["bytes"] / 1e6 / x["cpu"] for x in xs)
        x = xs[0]
        rows.append(
            [
                name,
                f"{x['snap_records']:.0f}",
                f"{x['log_records']:.0f}",
                f"{x['bytes'] / 1e6:.0f}",
                f"{x['objects']:.0f}",
                " ".join(f"{y['seconds']:.2f}" for y in xs),
                f"{mb_s[len(mb_s) // 2]:.0f}",
                f"{mb_s[0]:.0f}-{mb_s[-1]:.0f}",
                f"{sorted(y['ready'] for y in xs)[len(xs) // 2]:.2f}",
                f"{mb_cpu[len(mb_cpu) // 2]:.0f}",
                ">= 100",
            ]
        )
    cache = "dropped before each start" if args.drop_caches else "warm (page cache)"
    say(
        f"\n{args.rounds3} rounds alternating which goes first; files {cache}; "
        "MB/s from the server's recovery line (bytes read / recovery time); "
        "MB per CPU-s = bytes / the server's user+sys CPU at ready (start-up "
        "included): what a CPU of its own would give"
    )
    say(
        format_table(
            [
                "source",
                "snapshot records",
                "log records",
                "MB",
                "objects",
                "seconds by round",
                "median MB/s",
                "range",
                "ready s",
                "MB per CPU-s",
                "target",
            ],
            rows,
        )
    )


def part_large_state(args: argparse.Namespace, ctx: Any, work: str) -> None:
    state_bytes = args.state_mb * 1e6
    dicts = max(1, math.ceil(state_bytes / (ENTRIES_PER_DICT * (KEY_LEN + VALUE_LEN))))
    data_dir = os.path.join(work, "large")
    log_dir = os.path.join(work, "large-log-only")
    for d in (data_dir, log_dir):
        shutil.rmtree(d, ignore_errors=True)
    say(
        f"\n## Building the large state: {dicts} dicts x {ENTRIES_PER_DICT} entries "
        f"of {KEY_LEN}-char keys -> {VALUE_LEN}-char strings "
        f"({dicts * ENTRIES_PER_DICT * (KEY_LEN + VALUE_LEN) / 1e6:.0f} MB of "
        f"strings), update() of {BATCH} items"
    )
    with server(
        args.server_copy,
        work,
        "fill",
        data_dir=data_dir,
        fsync="everysec",
        snapshot_log_bytes=0,
    ) as s:
        took = fill(s.unix, dicts)
        rss = 0
        with open(f"/proc/{s.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
        s.kill()
    logged = dir_bytes(data_dir)
    say(
        f"wrote {logged / 1e6:.0f} MB of log in {took:.1f} s "
        f"({logged / 1e6 / took:.0f} MB/s); server RSS {rss / 1e9:.2f} GB; SIGKILLed"
    )
    cmd = ["cp", "-a", data_dir, log_dir]
    show_command(cmd)
    subprocess.run(cmd, check=True)
    if args.skip_snapshot_latency:
        say(
            "\n(--skip-snapshot-latency: the snapshot comes from one snapshot "
            "server run with no probe)"
        )
        with server(
            args.server_copy,
            work,
            "snap",
            data_dir=data_dir,
            fsync="everysec",
            snapshot_log_bytes=1,
        ) as s:
            m = statehub.Manager(s.unix)
            m.named.dict("probe/small")["k"] = 1
            m.shutdown()
            while not s.snapshots():
                time.sleep(0.05)
            s.kill()
    else:
        part_snapshot_latency(args, ctx, work, data_dir, dicts)
    say(f"data dir with snapshot: {sorted(os.listdir(data_dir))}")
    part_recovery(args, work, log_dir, data_dir)
    for d in (data_dir, log_dir):
        shutil.rmtree(d, ignore_errors=True)


# -- main -------------------------------------------------------------------


def git_describe() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return head + (" (working tree modified)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def filesystem_of(path: str) -> str:
    best = ("", "?", "?")
    real = os.path.realpath(path)
    with open("/proc/mounts") as mounts:
        for line in mounts:
            dev, mnt, fstype = line.split()[:3]
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(
                mnt
            ) >= len(best[0]):
                best = (mnt, dev, fstype)
    return f"{best[1]} on {best[0]} ({best[2]})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a ~2 minute version: fewer rounds, shorter "
        "windows, a 150 MB state, unpinned only",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get(
            "STATEHUB_SERVER", os.path.join(ROOT, "build/server/statehub-server")
        ),
    )
    parser.add_argument("--loadgen", default=os.path.join(ROOT, "build/bench/loadgen"))
    parser.add_argument(
        "--dir",
        default=tempfile.gettempdir(),
        help="where the work directory (data dirs) goes",
    )
    parser.add_argument(
        "--parts",
        default="1,2,3",
        help="1: throughput, 2: group commit, 3: large state "
        "(recovery and snapshot latency)",
    )
    parser.add_argument("--rounds", type=int, help="part 1 rounds (5)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, help="loadgen s per op (2)")
    parser.add_argument("--warmup", type=float, help="loadgen warmup s (0.5)")
    parser.add_argument("--window", type=float, help="Python window s (2)")
    parser.add_argument("--rounds2", type=int, help="part 2 rounds (3)")
    parser.add_argument(
        "--fsyncs", type=int, help="raw fsyncs before each window (200)"
    )
    parser.add_argument("--state-mb", type=float, help="large state MB (1000)")
    parser.add_argument("--rounds3", type=int, help="recovery rounds (3)")
    parser.add_argument("--rounds4", type=int, help="snapshot rounds (3)")
    parser.add_argument("--quiet-s", type=float, help="quiet window s (5)")
    parser.add_argument(
        "--snapshot-trigger-mb",
        type=float,
        default=64,
        help="--snapshot_log_bytes of part 4, MiB",
    )
    parser.add_argument("--probe-rate", type=float, default=1000)
    parser.add_argument("--placements", help="unpinned,pinned")
    parser.add_argument(
        "--drop-caches",
        action="store_true",
        help="drop the page cache before each recovery start",
    )
    parser.add_argument("--skip-snapshot-latency", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    args = parser.parse_args()
    q = args.quick
    defaults = {
        "rounds": 2 if q else 5,
        "seconds": 1.0 if q else 2.0,
        "warmup": 0.3 if q else 0.5,
        "window": 1.0 if q else 2.0,
        "rounds2": 1 if q else 3,
        "fsyncs": 100 if q else 200,
        "state_mb": 150 if q else 1000,
        "rounds3": 2 if q else 3,
        "rounds4": 1 if q else 3,
        "quiet_s": 3.0 if q else 5.0,
        "placements": "unpinned" if q else "unpinned,pinned",
    }
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.placements = args.placements.split(",")
    parts = set(args.parts.split(","))

    work = tempfile.mkdtemp(prefix="statehub-durability-", dir=args.dir)
    args.server_copy = os.path.join(work, "statehub-server")
    shutil.copy2(args.server, args.server_copy)
    if "1" in parts or "2" in parts:
        args.loadgen_copy = os.path.join(work, "loadgen")
        shutil.copy2(args.loadgen, args.loadgen_copy)
    ctx = multiprocessing.get_context("spawn")

    say("statehub durability benchmarks (issue 21)")
    say("$ " + shlex.join([sys.executable, *sys.argv]))
    for line in environment_lines("spawn"):
        say(line)
    say(f"commit:       {git_describe()}")
    built = time.strftime(
        "%Y-%m-%d %H:%M:%S", time.gmtime(os.stat(args.server).st_mtime)
    )
    with open(args.server_copy, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    say(
        f"server:       {args.server} (built {built} UTC, sha256 {digest}; "
        f"copied to {args.server_copy})"
    )
    say(f"work dir:     {work}, {filesystem_of(work)}")
    began = time.monotonic()
    try:
        if "1" in parts:
            part_throughput(args, ctx, work)
        if "2" in parts:
            part_group_commit(args, work)
        if "3" in parts:
            part_large_state(args, ctx, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    say(
        f"\ntotal {time.monotonic() - began:.0f} s; load average now "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )


if __name__ == "__main__":
    main()
