"""A private ``statehub-server`` process, as ``multiprocessing.Manager()``
starts a private server process.

The binary is looked for in this order:

1. ``$STATEHUB_SERVER``;
2. the binary inside this package (``statehub/_bin/statehub-server``), which
   only the binary wheel carries (``scripts/build.sh wheel``);
3. ``statehub-server`` on ``$PATH``;
4. the build output of the source checkout this package was built from
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
import weakref
from collections.abc import Sequence
from pathlib import Path

from . import errors

SERVER_ENV = "STATEHUB_SERVER"
_BINARY = "statehub-server"
_CLI = "statehub-cli"
#: Where the binary wheel puts statehub-server and statehub-cli.
BUNDLED_DIR = Path(__file__).resolve().parent / "_bin"
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
    bundled = BUNDLED_DIR / _BINARY
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
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


def find_cli_binary() -> str:
    """The path of statehub-cli: the one inside this package, else the one
    beside the statehub-server :func:`find_server_binary` finds (one build
    makes both); ServerNotFound if none."""
    bundled = BUNDLED_DIR / _CLI
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    server = find_server_binary()
    beside = Path(server).resolve().with_name(_CLI)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise errors.ServerNotFound(
        f"cannot find {_CLI}: not inside the statehub package and not beside "
        f"{server}. Build it (ninja -C <statehub checkout>/build {_CLI})"
    )


class ServerProcess:
    """A statehub-server child process on a private Unix socket.

    :meth:`start` returns once the server printed ``ready``; :meth:`stop`
    sends SIGTERM and waits (SIGKILL after ``timeout``), then removes the
    private directory.

    The server outlives nobody: its standard input is a pipe whose only
    writer is this process (closed in forked children), and it runs with
    ``--watch_stdin``, so it shuts down as soon as this process dies,
    however it dies. It holds none of this process's standard streams: its
    log goes to ``server.log`` in the private directory (:attr:`log_path`),
    so a shell that captures this program's output (``out=$(python
    prog.py)``) is not kept waiting by the server.
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
        self._owner = os.getpid()
        self.process: subprocess.Popen[bytes] | None = None
        #: The server's log (its standard error), in the private directory.
        self.log_path: str | None = None
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
        self._dir = tempfile.mkdtemp(prefix="statehub-")
        listen = self._listen
        if listen is None:
            listen = f"unix://{self._dir}/server.sock"
        # A private server serves no metrics (its port would clash with the
        # next manager's); pass args=["--metrics_listen=..."] to get them.
        command = [
            self.binary,
            f"--listen={listen}",
            "--log_level=warn",
            "--metrics_listen=",
            "--watch_stdin",
            *self._args,
        ]
        self.log_path = os.path.join(self._dir, "server.log")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                # Its own process group: a Ctrl-C at the terminal reaches this
                # program, which then shuts the server down in order
                # (Manager's server ignores SIGINT for the same reason,
                # bpo-36368).
                start_new_session=True,
            )
        _lifelines.add(self)
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
                        f"{self.binary} did not become ready within "
                        f"{timeout:g}s{self._log_tail()}"
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    code = self.process.wait()
                    raise errors.StatehubError(
                        f"{self.binary} exited with status {code} before it was "
                        f"ready{self._log_tail()}"
                    )
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = raw.decode("utf-8", "replace").strip()
                    if line.startswith(_LISTENING):
                        self.addresses.append(line[len(_LISTENING) :])
                    elif line == _READY:
                        return

    def _log_tail(self, lines: int = 10) -> str:
        """The end of the server's log, to quote in an error."""
        try:
            with open(self.log_path or "", "rb") as log:
                tail = log.read().decode("utf-8", "replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "; its log says:\n  " + "\n  ".join(tail) if tail else ""

    def _drop_lifeline(self) -> None:
        """Closes this process's end of the server's standard input (which
        stops a server started with --watch_stdin)."""
        process = self.process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    def stop(self, timeout: float = 5.0) -> None:
        if os.getpid() != self._owner:
            # A forked copy: the server belongs to the process that started it.
            return
        _lifelines.discard(self)
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._drop_lifeline()
        if process is not None and process.stdout is not None:
            process.stdout.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


#: The servers this process started; a forked child closes its copies of
#: their lifelines, so that only the process that started a server keeps it.
_lifelines: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


def _close_lifelines_in_child() -> None:
    for server in list(_lifelines):
        server._drop_lifeline()
    _lifelines.clear()


os.register_at_fork(after_in_child=_close_lifelines_in_child)
