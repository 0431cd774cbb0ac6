"""The operations side of --data_dir, against the real binaries: the
durability metrics a server with a data dir exports, and
`statehub-cli inspect`, which reads a data dir written by a real server
(SIGKILLed, with a torn tail, corrupted) without a server and without its
lock."""

from __future__ import annotations

import hashlib
import os
import re
import struct
import subprocess
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import statehub
from statehub._connection import close_all

from conftest import REPO, RunningServer, run_server_to_exit, start_server, wait_until

FILE_HEADER = 28  # docs/storage-format.md
FRAME_HEADER = 20


def cli_binary() -> str:
    binary = os.environ.get("STATEHUB_CLI") or str(
        REPO / "build" / "server" / "statehub-cli"
    )
    if not os.access(binary, os.X_OK):
        pytest.exit(f"statehub-cli not found at {binary}: build it", returncode=2)
    return binary


def inspect(data_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli_binary(), "inspect", f"--data_dir={data_dir}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def segments(data_dir: str) -> list[str]:
    return sorted(
        os.path.join(data_dir, name)
        for name in os.listdir(data_dir)
        if re.fullmatch(r"log-\d{20}\.log", name)
    )


def frames(path: str) -> list[tuple[int, int, int]]:
    """(offset, revision, total length) of each whole frame of a file, read
    by the format in docs/storage-format.md."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    at = FILE_HEADER
    while at + FRAME_HEADER <= len(data):
        header_crc, length, revision, payload_crc = struct.unpack_from(
            "<IIQI", data, at
        )
        assert header_crc == zlib.crc32(data[at + 4 : at + 16])
        payload = data[at + FRAME_HEADER : at + FRAME_HEADER + length]
        assert len(payload) == length and payload_crc == zlib.crc32(payload)
        out.append((at, revision, FRAME_HEADER + length))
        at += FRAME_HEADER + length
    assert at == len(data)
    return out


def digests(data_dir: str) -> dict[str, str]:
    """Every file of the directory by name: the SHA-256 of its bytes."""
    files = sorted(Path(data_dir).iterdir())
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def promtool_check(metrics_url: str) -> None:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    checked = subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


class DataDirServer:
    """A server with a data dir and metrics on a free loopback port."""

    def __init__(self, *flags: str) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="statehub-ops-")
        self.flags = (
            f"--data_dir={self.data_dir}",
            "--metrics_listen=127.0.0.1:0",
            *flags,
        )
        self.server: RunningServer = start_server(*self.flags)

    def restart_after_kill(self) -> None:
        self.server.kill()
        close_all()
        self.server = start_server(*self.flags, directory=self.server.directory)


@pytest.fixture
def durable() -> Iterator[DataDirServer]:
    running = DataDirServer("--fsync=always")
    yield running
    close_all()
    running.server.stop()


def write_some(address: str) -> statehub.SyncManager:
    m = statehub.Manager(address)
    jobs = m.named.dict("jobs")
    jobs.update({"a": 1, "b": [1, 2], "c": "x" * 100})
    m.named.list("items").extend([1, 2, 3])
    m.named.Queue("work").put("job-1")
    assert m.named.Lock("L").acquire()
    return m


# --- Metrics -----------------------------------------------------------------


def test_log_metrics_count_what_the_log_wrote_and_synced(
    durable: DataDirServer,
) -> None:
    write_some(durable.server.unix)
    samples = durable.server.scrape()
    (segment,) = segments(durable.data_dir)
    # Under --fsync=always every acknowledged record is written and synced.
    # The counter counts frames; the segment's header is not a write(2) of
    # the writer's.
    assert samples["statehub_log_bytes_total"] == os.path.getsize(segment) - FILE_HEADER
    assert samples["statehub_log_fsync_seconds_count"] >= 1
    assert samples["statehub_log_fsync_seconds_sum"] > 0
    assert (
        samples['statehub_log_fsync_seconds_bucket{le="+Inf"}']
        == (samples["statehub_log_fsync_seconds_count"])
    )
    assert samples['statehub_log_fsync_seconds_bucket{le="5e-05"}'] >= 0
    assert samples["statehub_log_healthy"] == 1
    # The revision is the last record's, the one the log ends with.
    last_revision = frames(segment)[-1][1]
    assert samples["statehub_revision"] == last_revision
    # A fresh data dir: nothing recovered, no snapshot taken yet.
    assert samples['statehub_recovery_records{source="snapshot"}'] == 0
    assert samples['statehub_recovery_records{source="log"}'] == 0
    assert samples["statehub_recovery_bytes"] == 0
    assert samples["statehub_snapshot_seconds"] == 0
    assert samples["statehub_snapshot_bytes"] == 0
    promtool_check(durable.server.metrics)


def test_recovery_metrics_say_what_the_restart_replayed(durable: DataDirServer) -> None:
    write_some(durable.server.unix)
    (segment,) = segments(durable.data_dir)
    before = frames(segment)
    revision = durable.server.metric("statehub_revision")
    durable.restart_after_kill()

    samples = durable.server.scrape()
    assert samples['statehub_recovery_records{source="log"}'] == len(before)
    assert samples['statehub_recovery_records{source="snapshot"}'] == 0
    # RecoveryStats::bytes: the snapshot's file size (none here) plus the
    # log's frames, header and payload, as they are in the file.
    frame_bytes = sum(length for _, _, length in before)
    assert samples["statehub_recovery_bytes"] == frame_bytes
    assert samples["statehub_recovery_seconds"] > 0
    assert samples["statehub_revision"] == revision
    # The new run writes a new segment and counts only its own bytes.
    assert samples["statehub_log_bytes_total"] == 0
    statehub.Manager(durable.server.unix).named.dict("jobs")["d"] = 4
    samples = durable.server.scrape()
    newest = segments(durable.data_dir)[-1]
    assert samples["statehub_log_bytes_total"] == os.path.getsize(newest) - FILE_HEADER
    assert samples["statehub_revision"] > revision


def test_without_a_data_dir_no_log_series_are_exported() -> None:
    server = start_server("--metrics_listen=127.0.0.1:0")
    try:
        statehub.Manager(server.unix).named.dict("d")["k"] = 1
        names = {re.sub(r"\{.*", "", series) for series in server.scrape()}
        assert not {
            n
            for n in names
            if n.startswith(
                ("statehub_log_", "statehub_recovery_", "statehub_snapshot_")
            )
        }
        # No consumer of the change stream: no records, revision 0.
        assert server.metric("statehub_revision") == 0
    finally:
        close_all()
        server.stop()


# --- statehub-cli inspect ------------------------------------------------------


def test_inspect_shows_a_killed_servers_data_dir(durable: DataDirServer) -> None:
    m = write_some(durable.server.unix)
    anon = m.dict({"k": 1})
    assert anon["k"] == 1
    revision = int(durable.server.metric("statehub_revision"))
    durable.server.kill()
    close_all()
    (segment,) = segments(durable.data_dir)
    before = digests(durable.data_dir)

    result = inspect(durable.data_dir)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"data dir {durable.data_dir}\n" in out
    assert f"revision {revision}\n" in out
    assert "snapshot: none" in out
    count = len(frames(segment))
    size = os.path.getsize(segment)
    assert (
        f"  {os.path.basename(segment)}: first revision 1, {count} frames, "
        f"{size} bytes, last revision {revision}\n"
    ) in out
    assert "torn tail" not in out
    assert f"total {size} bytes, {count} records\n" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.split("objects: ", 1)[1].split("sessions: ")[0].splitlines()[1:]
    }
    assert rows["jobs"][:2] == ["dict", "3"]
    assert rows["items"][:2] == ["list", "3"]
    assert rows["work"][:2] == ["queue", "1"]
    assert rows["L"][:3] == ["lock", "0", "held"]
    assert any(
        name.startswith("_anon/") and row[0] == "dict" for name, row in rows.items()
    )
    sessions = out.split("sessions: ", 1)[1].splitlines()
    assert sessions[0] == "1"
    session_id = sessions[1].split()[0]
    assert f"held by session {session_id}" in out
    # Read only: not a byte changed, and no lock left behind.
    assert digests(durable.data_dir) == before


def test_inspect_reads_a_running_servers_data_dir_without_its_lock(
    durable: DataDirServer,
) -> None:
    write_some(durable.server.unix)
    result = inspect(durable.data_dir)
    assert result.returncode == 0, result.stderr
    assert "objects: " in result.stdout
    # The server still holds its lock, and still serves.
    second = run_server_to_exit(
        f"--data_dir={durable.data_dir}", socket_dir=durable.data_dir
    )
    assert second.returncode != 0 and "in use by" in second.stderr
    statehub.Manager(durable.server.unix).named.dict("jobs")["z"] = 26


def killed_after_a_last_write(
    durable: DataDirServer,
) -> tuple[str, list[tuple[int, int, int]]]:
    """Writes some state, then jobs["last"] (its last write: the change and
    the answer of the numbered call, one group), SIGKILLs the server, and
    returns its one log segment and that segment's frames."""
    m = write_some(durable.server.unix)
    m.named.dict("jobs")["last"] = "y" * 50
    durable.server.kill()
    close_all()
    (segment,) = segments(durable.data_dir)
    return segment, frames(segment)


def test_inspect_reports_a_torn_tail(durable: DataDirServer) -> None:
    segment, whole = killed_after_a_last_write(durable)
    # The last write, the change and the answer the server remembers for a
    # retry of the call (CallAnswered), cut short inside the change, as a
    # crash in the middle of it leaves.
    offset, _, length = whole[-2]
    os.truncate(segment, offset + length - 7)

    result = inspect(durable.data_dir)

    assert result.returncode == 0, result.stderr
    assert f"revision {whole[-3][1]}\n" in result.stdout
    assert (
        f"{len(whole) - 2} frames, {offset + length - 7} bytes, "
        f"last revision {whole[-3][1]}, torn tail at byte offset {offset} "
        f"({length - 7} bytes: "
    ) in result.stdout
    # The cut change ("last") is not among what a restart recovers.
    assert re.search(r"^  jobs +dict +3$", result.stdout, re.M), result.stdout

    # The server agrees: it starts, cuts the tail, and starts a new segment.
    durable.server = start_server(*durable.flags, directory=durable.server.directory)
    assert "last" not in statehub.Manager(durable.server.unix).named.dict("jobs")
    again = inspect(durable.data_dir)
    assert again.returncode == 0, again.stderr
    assert "torn tail" not in again.stdout
    assert "log segments: 2\n" in again.stdout


def test_a_write_group_cut_short_is_not_recovered(durable: DataDirServer) -> None:
    segment, whole = killed_after_a_last_write(durable)
    # The last write is one group: the change (ChangeRecord.more set) and
    # the numbered call's answer. Cut between the two, on a frame boundary
    # (no torn tail), as a crash between two pages of one write can leave:
    # the change alone would be applied again by the client's retry.
    os.truncate(segment, whole[-1][0])

    result = inspect(durable.data_dir)

    assert result.returncode == 0, result.stderr
    assert "torn tail" not in result.stdout
    assert (
        f"unfinished write group: 1 record(s) from revision {whole[-2][1]}, "
        "not recovered"
    ) in result.stdout
    assert re.search(r"^  jobs +dict +3$", result.stdout, re.M), result.stdout

    with tempfile.TemporaryFile() as log:
        durable.server = start_server(
            *durable.flags, directory=durable.server.directory, stderr=log
        )
        jobs = statehub.Manager(durable.server.unix).named.dict("jobs")
        assert "last" not in jobs
        log.seek(0)
        assert "the log ended inside a write group" in log.read().decode()
    # The log goes on from the cut: what is written now outlives a restart.
    jobs["next"] = 1
    durable.restart_after_kill()
    jobs = statehub.Manager(durable.server.unix).named.dict("jobs")
    assert sorted(jobs.keys()) == ["a", "b", "c", "next"]
    assert "unfinished" not in inspect(durable.data_dir).stdout


def test_inspect_replays_a_snapshot_and_the_log_after_it() -> None:
    # Small segments and snapshot threshold: the server snapshots in the
    # background and deletes the segments the snapshot covers.
    running = DataDirServer(
        "--fsync=always", "--snapshot_log_bytes=2000", "--log_segment_bytes=4096"
    )
    try:
        m = statehub.Manager(running.server.unix)
        jobs = m.named.dict("jobs")
        for i in range(300):
            jobs[f"k{i}"] = "x" * 20
        assert wait_until(
            lambda: any(n.endswith(".snap") for n in os.listdir(running.data_dir))
        )
        m.named.list("items").extend([1, 2, 3])
        revision = int(running.server.metric("statehub_revision"))
        running.server.kill()
        close_all()

        result = inspect(running.data_dir)

        assert result.returncode == 0, result.stderr
        out = result.stdout
        (snap,) = [n for n in os.listdir(running.data_dir) if n.endswith(".snap")]
        assert f"snapshot:\n  {snap}: revision {int(snap[5:25])}, " in out
        assert f"revision {revision}\n" in out
        assert re.search(r"^  jobs +dict +300$", out, re.M), out
        assert re.search(r"^  items +list +3$", out, re.M), out
        # The server recovers the same from the same files.
        running.server = start_server(
            *running.flags, directory=running.server.directory
        )
        samples = running.server.scrape()
        assert samples['statehub_recovery_records{source="snapshot"}'] > 0
        assert samples["statehub_revision"] == revision
        m = statehub.Manager(running.server.unix)
        assert len(m.named.dict("jobs")) == 300
        assert list(m.named.list("items")) == [1, 2, 3]
    finally:
        close_all()
        running.server.stop()


def test_inspect_fails_naming_the_file_and_offset_of_a_corrupt_record(
    durable: DataDirServer,
) -> None:
    m = statehub.Manager(durable.server.unix)
    d = m.named.dict("d")
    for i in range(20):
        d[f"k{i}"] = "x" * 100
    durable.server.kill()
    close_all()
    (segment,) = segments(durable.data_dir)
    offset = frames(segment)[10][0]
    with open(segment, "r+b") as f:
        f.seek(offset + FRAME_HEADER + 2)  # a payload byte: its checksum fails
        byte = f.read(1)
        f.seek(offset + FRAME_HEADER + 2)
        f.write(bytes([byte[0] ^ 0xFF]))

    result = inspect(durable.data_dir)

    assert result.returncode == 1
    assert segment in result.stderr
    assert f"byte offset {offset}" in result.stderr
    assert "objects:" not in result.stdout  # no state from a damaged log


def test_inspect_usage_and_a_missing_dir(tmp_path: os.PathLike[str]) -> None:
    usage = subprocess.run(
        [cli_binary(), "inspect"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 2
    assert "--data_dir" in usage.stderr
    missing = inspect(os.path.join(str(tmp_path), "nothing-here"))
    assert missing.returncode == 1
    assert "nothing-here" in missing.stderr
