"""The raw-socket floor: bench/floor/echo_server.c on a private Unix socket,
and the Python client side of one framed round trip.

A round trip is what the issue defines as the floor of a Python call: write
one 40-byte length-prefixed frame (a 4-byte little-endian length of 36, then
36 bytes; about the size of a small lane request) with ``sendall`` and read
the 40 echoed bytes back with ``recv_into``. No encoding, no parsing, no
state: whatever a manager costs above this is its own.

The server binary is looked for in ``$STATEHUB_ECHO_SERVER``, then in
``<repo>/build/bench/statehub_echo_server``; build it with
``scripts/build.sh release statehub_echo_server``.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

ECHO_ENV = "STATEHUB_ECHO_SERVER"
_BUILD_PATH = Path("build") / "bench" / "statehub_echo_server"
_READY = "statehub_echo_server ready"

FRAME_BYTES = 40
_FRAME = struct.pack("<I", FRAME_BYTES - 4) + bytes(range(FRAME_BYTES - 4))


class EchoServerNotFound(RuntimeError):
    """The echo server binary is not built and not named by the environment."""


def find_echo_server(explicit: str | None = None) -> str:
    """The echo server to start: explicit, $STATEHUB_ECHO_SERVER, or the
    release build's output in this checkout."""
    # bench/python/_floor.py -> repository root.
    built = Path(__file__).resolve().parents[2] / _BUILD_PATH
    for candidate in (explicit, os.environ.get(ECHO_ENV), str(built)):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise EchoServerNotFound(
        f"cannot find the raw-socket floor's echo server (--echo-server, "
        f"${ECHO_ENV}, {built}); build it: "
        "scripts/build.sh release statehub_echo_server"
    )


class EchoServer:
    """The echo server as a child process on a socket in a private temporary
    directory. Use as a context manager; :meth:`connect` opens a client."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self._dir = tempfile.TemporaryDirectory(prefix="statehub-floor-")
        self.path = os.path.join(self._dir.name, "echo.sock")
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> EchoServer:
        self._process = subprocess.Popen(
            [self.binary, self.path], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if line != _READY:
            self.__exit__()
            raise RuntimeError(f"{self.binary} did not start (printed {line!r})")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout is not None:
                self._process.stdout.close()
            self._process = None
        self._dir.cleanup()

    def connect(self) -> EchoClient:
        """A new connection to the server."""
        return EchoClient(self.path)


class EchoClient:
    """One connection; :meth:`round_trip` is the timed floor op. Not thread
    safe (one connection, one frame in flight)."""

    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The server may print ready a moment before a first connect succeeds
        # on a loaded machine; it never should, but a short retry is cheap.
        for attempt in range(50):
            try:
                self._sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if attempt == 49:
                    raise
                time.sleep(0.01)
        self._buf = bytearray(FRAME_BYTES)
        self._view = memoryview(self._buf)

    def round_trip(self) -> None:
        """Writes one 40-byte frame and reads its echo back."""
        self._sock.sendall(_FRAME)
        view, got = self._view, 0
        while got < FRAME_BYTES:
            n = self._sock.recv_into(view[got:])
            if n == 0:
                raise ConnectionError("echo server closed the connection")
            got += n

    def close(self) -> None:
        self._sock.close()
