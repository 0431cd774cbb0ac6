"""``python -m statehub.server`` and the statehub-cli lookup, from a source
install (the binary wheel's side is tests/wheel)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import statehub
from statehub import _server

from conftest import server_binary


def _env(server: str) -> dict[str, str]:
    return {**os.environ, "STATEHUB_SERVER": server}


def test_python_m_statehub_server_becomes_the_server(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/m.sock"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "statehub.server",
            f"--listen={address}",
            "--metrics_listen=",
        ],
        env=_env(server_binary()),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        printed = b""
        deadline = time.monotonic() + 15
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"statehub-server ready\n" not in printed:
                assert time.monotonic() < deadline, printed
                if selector.select(1):
                    chunk = os.read(process.stdout.fileno(), 4096)
                    assert chunk, f"exited {process.wait()} before ready"
                    printed += chunk
        assert f"statehub-server listening on {address}".encode() in printed
        # exec, not a child: signals and the exit status are the server's.
        exe = os.readlink(f"/proc/{process.pid}/exe")
        assert Path(exe) == Path(server_binary()).resolve()
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()


def test_python_m_statehub_server_says_what_it_could_not_find(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "statehub.server"],
        env=_env(str(tmp_path / "missing")),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("statehub-server: $STATEHUB_SERVER is ")
    assert "Traceback" not in result.stderr


def test_the_cli_is_the_one_beside_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = server_binary()
    monkeypatch.setenv("STATEHUB_SERVER", binary)
    assert _server.find_cli_binary() == str(
        Path(binary).resolve().with_name("statehub-cli")
    )
    lone = tmp_path / "statehub-server"
    lone.symlink_to(binary)
    monkeypatch.setenv("STATEHUB_SERVER", str(lone))
    monkeypatch.setattr(_server, "BUNDLED_DIR", tmp_path / "no-bin")
    # A symlink to the build's server finds the build's CLI.
    assert Path(_server.find_cli_binary()).parent == Path(binary).resolve().parent
    copy = tmp_path / "copy" / "statehub-server"
    copy.parent.mkdir()
    copy.write_bytes(b"#!/bin/sh\n")
    copy.chmod(0o755)
    monkeypatch.setenv("STATEHUB_SERVER", str(copy))
    with pytest.raises(statehub.ServerNotFound, match="statehub-cli"):
        _server.find_cli_binary()
