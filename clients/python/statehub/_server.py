"""A private ``statehub-server`` process, as ``multiprocessing.Manager()``
starts a private server process.

The binary is looked for in this order:

1. ``$STATEHUB_SERVER``;
2. ``statehub-server`` on ``$PATH``;
3. the build output of the source checkout this package was built from
   (``<repo>/build/server/statehub-server``; the path is recorded at build
   time in ``statehub/_proto/_build_info.py``), or of the checkout this
   module sits in (an editable install).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import errors

SERVER_ENV = "STATEHUB_SERVER"
_BINARY = "statehub-server"
_BUILD_PATH = Path("build") / "server" / _BINARY
_READY = "statehub-server ready"
_LISTENING = "statehub-server listening on "


def _build_roots() -> list[Path]:
    roots = []
    try:
        from ._proto import _build_info

        if _build_info.SOURCE_ROOT:
            roots.append(Path(_build_info.SOURCE_ROOT))
    except ImportError:
        pass
    # statehub/_server.py -> clients/python/statehub -> repository root.
    roots.append(Path(__file__).resolve().parents[3])
    return roots


def find_server_binary() -> str:
    """The path of the statehub-server binary to start; ServerNotFound if none."""
    from_env = os.environ.get(SERVER_ENV)
    if from_env:
        if os.path.isfile(from_env) and os.access(from_env, os.X_OK):
            return from_env
        raise errors.ServerNotFound(
            f"${SERVER_ENV} is {from_env!r}, which is not an executable file"
        )
    on_path = shutil.which(_BINARY)
    if on_path:
        return on_path
    looked = []
    for root in _build_roots():
        candidate = root / _BUILD_PATH
        looked.append(str(candidate))
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise errors.ServerNotFound(
        f"cannot find {_BINARY} to start a private statehub server: not in "
        f"${SERVER_ENV}, not on $PATH, not at {' or '.join(looked)}. Build it "
        f"(ninja -C <statehub checkout>/build {_BINARY}), set "
        f"{SERVER_ENV}=/path/to/{_BINARY}, or connect to a running server "
        "with statehub.Manager('unix:///tmp/statehub.sock')"
    )


class ServerProcess:
    """A statehub-server child process on a private Unix socket.

    :meth:`start` returns once the server printed ``ready``; :meth:`stop`
    sends SIGTERM and waits (SIGKILL after ``timeout``), then removes the
    private directory.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        listen: str | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.binary = binary or find_server_binary()
        self._listen = listen
        self._args = list(args)
        self._dir: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        #: The addresses the server listens on, in the order it printed them.
        self.addresses: list[str] = []

    @property
    def address(self) -> str:
        """The address to connect to (the Unix socket if there is one)."""
        for address in self.addresses:
            if address.startswith("unix:"):
                return address
        return self.addresses[0]

    def start(self, timeout: float = 15.0) -> None:
        listen = self._listen
        if listen is None:
            self._dir = tempfile.mkdtemp(prefix="statehub-")
            listen = f"unix://{self._dir}/server.sock"
        # A private server serves no metrics (its port would clash with the
        # next manager's); pass args=["--metrics_listen=..."] to get them.
        command = [
            self.binary,
            f"--listen={listen}",
            "--log_level=warn",
            "--metrics_listen=",
            *self._args,
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            # Its own process group: a Ctrl-C at the terminal reaches this
            # program, which then shuts the server down in order (Manager's
            # server ignores SIGINT for the same reason, bpo-36368).
            start_new_session=True,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        # Raw reads of the pipe: a buffered reader could hold the "ready"
        # line while select() waits for more.
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise errors.StatehubError(
                        f"{self.binary} did not become ready within {timeout:g}s"
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.process.wait()
                    raise errors.StatehubError(
                        f"{self.binary} exited with status {code} before it was "
                        "ready (its standard error says why)"
                    )
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").strip()
                    if line.startswith(_LISTENING):
                        self.addresses.append(line[len(_LISTENING) :])
                    elif line == _READY:
                        return

    def stop(self, timeout: float = 5.0) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
