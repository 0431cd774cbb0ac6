"""Fixtures: the real statehub-server binary on a temporary Unix socket and
an ephemeral TCP port, and managers connected to it. No mocks.

The binary comes from $STATEHUB_SERVER, else <repo>/build/server/statehub-server.
"""

from __future__ import annotations

import dataclasses
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import statehub
from statehub._connection import close_all

REPO = Path(__file__).resolve().parents[2]
LEASE_TTL_SECONDS = 2


def server_binary() -> str:
    binary = os.environ.get("STATEHUB_SERVER") or str(
        REPO / "build" / "server" / "statehub-server"
    )
    if not os.access(binary, os.X_OK):
        pytest.exit(
            f"statehub-server not found at {binary}: build it "
            "(ninja -C build statehub-server) or set STATEHUB_SERVER",
            returncode=2,
        )
    return binary


def run_soak(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs tests/soak/<script> against the test's server binary to its end
    (the short runs of the long soaks the test command holds)."""
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "soak" / script),
            *args,
            f"--server={server_binary()}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def run_server_to_exit(
    *flags: str, socket_dir: str
) -> subprocess.CompletedProcess[str]:
    """Runs the server on a Unix socket in ``socket_dir`` until it exits, for
    starts that must fail; its stderr says why."""
    return subprocess.run(
        [
            server_binary(),
            "--listen=unix://" + os.path.join(socket_dir, "refused.sock"),
            "--metrics_listen=",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclasses.dataclass
class RunningServer:
    """A statehub-server child process and the addresses it printed."""

    process: subprocess.Popen[bytes]
    unix: str
    tcp: str
    directory: str
    # The /metrics URL, or "" with metrics off (start_server's default; pass
    # "--metrics_listen=127.0.0.1:0" to turn them on).
    metrics: str = ""

    def scrape(self) -> dict[str, float]:
        """Every sample of the server's /metrics page: 'name{labels}' -> value."""
        assert self.metrics, "started without --metrics_listen"
        with urllib.request.urlopen(self.metrics, timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$", line)
            if match:
                samples[match.group(1)] = float(match.group(2))
        return samples

    def metric(self, series: str) -> float:
        """One sample of /metrics (name and labels as exposed), 0 if absent."""
        return self.scrape().get(series, 0.0)

    def kill(self) -> None:
        """SIGKILLs the server, as a crash or the OOM killer would."""
        self.process.kill()
        self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


def start_server(
    *flags: str, stderr: IO[bytes] | None = None, directory: str | None = None
) -> RunningServer:
    """Starts the binary on a fresh Unix socket and TCP port 0; waits for ready.

    Metrics are off unless flags turn them on; ``stderr`` (a file) takes the
    server's log instead of the test run's stderr; ``directory`` (an earlier
    server's) serves the same Unix socket again, as a restarted server."""
    directory = directory or tempfile.mkdtemp(prefix="statehub-test-")
    socket_path = os.path.join(directory, "s.sock")
    process = subprocess.Popen(
        [
            server_binary(),
            f"--listen=unix://{socket_path},127.0.0.1:0",
            f"--lease_ttl={LEASE_TTL_SECONDS}s",
            "--metrics_listen=",
            "--log_level=warn",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=stderr,
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    addresses: list[str] = []
    metrics = ""
    pending = b""
    deadline = time.monotonic() + 15
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("statehub-server did not become ready")
            if not selector.select(1):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(
                    f"statehub-server exited with {process.wait()} before ready"
                )
            pending += chunk
            *lines, pending = pending.split(b"\n")
            done = False
            for line in lines:
                text = line.decode().strip()
                prefix = "statehub-server listening on "
                if text.startswith(prefix):
                    addresses.append(text[len(prefix) :])
                elif text.startswith("statehub-server metrics on "):
                    metrics = text.split(" on ", 1)[1]
                elif text == "statehub-server ready":
                    done = True
            if done:
                break
    unix = next(a for a in addresses if a.startswith("unix:"))
    tcp = next(a for a in addresses if not a.startswith("unix:"))
    return RunningServer(process, unix, tcp, directory, metrics)


@pytest.fixture(scope="session")
def server() -> Iterator[RunningServer]:
    """One real server for the whole run (lease TTL 2 s)."""
    running = start_server()
    yield running
    # Say goodbye first: the server's shutdown waits (a grace period) for
    # session streams that are still open.
    close_all()
    assert running.stop() == 0


@pytest.fixture
def manager(server: RunningServer) -> Iterator[statehub.SyncManager]:
    """A manager connected to the shared server (pickling off, the default)."""
    m = statehub.Manager(server.unix)
    yield m
    m.shutdown()


@pytest.fixture
def grpc_manager(server: RunningServer) -> Iterator[statehub.SyncManager]:
    """A manager connected to the shared server over gRPC (not the lane)."""
    close_all()  # one process has one connection (one transport) per server
    m = statehub.Manager(server.unix, transport="grpc")
    yield m
    m.shutdown()
    close_all()


@pytest.fixture
def pickling_manager(server: RunningServer) -> Iterator[statehub.SyncManager]:
    """A manager connected to the shared server with pickling on."""
    m = statehub.Manager(server.unix, allow_pickle=True)
    yield m
    m.shutdown()


@pytest.fixture
def short_handoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Releases of proxies handed to a child wait 0.2 s, not the default
    grace, in tests that watch holds drop after the child has adopted."""
    from statehub import _transport

    monkeypatch.setattr(_transport, "HANDOFF_GRACE", 0.2)


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has exited: only its
    parent's wait() remains)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return status != "Z"


def wait_until(
    predicate: object, timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """Polls predicate() until it is true or timeout passes; returns the last result."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(interval)
