"""The binary wheel (issue 25), installed the way a Python user installs it.

``scripts/build.sh wheel`` builds it into build-wheel/dist/ ($STATEHUB_WHEEL
names another file). Here it goes into a fresh virtual environment with
``pip install --only-binary :all:`` (nothing is compiled), and everything
after that runs with a minimal environment: $PATH is the new environment's
bin/ and the base system's, no $STATEHUB_SERVER, no checkout on $PATH or
sys.path, the working directory a temporary one. What the user was
promised:

- ``statehub.Manager()`` starts the server inside the wheel, and its proxies
  work from fork and spawn children, without grpcio;
- ``python -m statehub.server`` and the ``statehub-server`` command run a
  standalone server that the ``statehub-cli`` command reads;
- every library the shipped binaries load comes from inside the wheel or is
  one that the wheel's manylinux tag lets it take from the base system
  (auditwheel's policy for that tag, from build-wheel/tools), and nothing
  shipped carries debug info.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / "build-wheel"
BINARIES = ("statehub-server", "statehub-cli")


def _wheel() -> Path:
    given = os.environ.get("STATEHUB_WHEEL")
    if given:
        return Path(given)
    wheels = sorted((WHEEL_DIR / "dist").glob("statehub-*.whl"))
    if len(wheels) != 1:
        pytest.fail(
            f"expected one wheel in {WHEEL_DIR / 'dist'}, found {len(wheels)}: "
            "scripts/build.sh wheel"
        )
    return wheels[0]


def _installer_env() -> dict[str, str]:
    """What pip needs to reach its index here (its own settings and the CA
    bundle), and nothing of statehub's."""
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith("PIP_")
        or k in {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE"}
        or k.lower() in {"http_proxy", "https_proxy", "no_proxy"}
    }


class Venv:
    """A fresh virtual environment with the wheel installed."""

    def __init__(self, root: Path, work: Path) -> None:
        self.root = root
        self.work = work
        self.python = root / "bin" / "python"
        self.bin = root / "bin"
        # $PATH: the environment's commands and the base system's, no more.
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
        }

    def run(
        self, *args: str | Path, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(a) for a in args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(map(str, args))} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def site_packages(self) -> Path:
        out = self.run(
            self.python, "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"
        )
        return Path(out.stdout.strip())


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    wheel = _wheel()
    base = tmp_path_factory.mktemp("wheel")
    root, work = base / "venv", base / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    env = Venv(root, work)
    install = subprocess.run(
        [
            str(env.python),
            "-m",
            "pip",
            "install",
            "-q",
            "--only-binary",
            ":all:",
            str(wheel),
        ],
        # No compiler: a source build that slipped in would fail, not pass.
        env={**env.env, **_installer_env(), "CC": "/bin/false", "CXX": "/bin/false"},
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    return env


def test_the_commands_are_the_wheels_entry_points(venv: Venv) -> None:
    for command in BINARIES:
        script = venv.bin / command
        # A Python entry point, not the binary: the binary sits in the package
        # beside the libraries it was pointed at.
        assert script.read_text().startswith("#!"), command
        assert "statehub.server" in script.read_text()
    which = venv.run("sh", "-c", "command -v statehub-server").stdout.strip()
    assert which == str(venv.bin / "statehub-server")


MANAGER_PROGRAM = textwrap.dedent(
    """
    import importlib.util, json, multiprocessing, os, sys
    import statehub
    from statehub._proto import _build_info

    def work(tally, lock, done, method):
        with lock:
            tally[method] = tally.get(method, 0) + 1
        done.put((method, os.getpid()))

    if __name__ == "__main__":
        assert "STATEHUB_SERVER" not in os.environ
        with statehub.Manager() as m:
            tally, lock, done = m.dict(), m.Lock(), m.Queue()
            seen = []
            for method in ("fork", "spawn"):
                context = multiprocessing.get_context(method)
                children = [
                    context.Process(target=work, args=(tally, lock, done, method))
                    for _ in range(2)
                ]
                for child in children:
                    child.start()
                for child in children:
                    child.join(60)
                seen += [child.exitcode for child in children]
            items = sorted(done.get(timeout=10)[0] for _ in range(4))
            print(json.dumps({
                "server": m._server.binary,
                "exitcodes": seen,
                "tally": dict(tally),
                "queued": items,
                "grpc": importlib.util.find_spec("grpc") is not None,
                "grpc_imported": "grpc" in sys.modules,
                "source_root": _build_info.SOURCE_ROOT,
            }))
    """
)


def test_manager_runs_the_bundled_server_for_fork_and_spawn_children(
    venv: Venv,
) -> None:
    program = venv.work / "manager_program.py"
    program.write_text(MANAGER_PROGRAM)
    result = json.loads(venv.run(venv.python, program).stdout)
    site = venv.site_packages()
    assert result["server"] == str(site / "statehub" / "_bin" / "statehub-server")
    assert result["exitcodes"] == [0, 0, 0, 0]
    assert result["tally"] == {"fork": 2, "spawn": 2}
    assert result["queued"] == ["fork", "fork", "spawn", "spawn"]
    # The wheel needs no grpcio: not installed, and the lane never asks.
    assert not result["grpc"] and not result["grpc_imported"]
    assert result["source_root"] == ""


class Standalone:
    """A standalone server started by one of the wheel's commands."""

    started = 0

    def __init__(self, venv: Venv, *command: str | Path) -> None:
        Standalone.started += 1
        self.address = f"unix://{venv.work}/standalone-{Standalone.started}.sock"
        self.process = subprocess.Popen(
            [str(c) for c in command]
            + [f"--listen={self.address}", "--metrics_listen="],
            env=venv.env,
            cwd=venv.work,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.printed = self._read_until_ready(timeout=30)

    def _read_until_ready(self, timeout: float) -> list[str]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while "statehub-server ready" not in lines:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._fail(f"not ready within {timeout:g}s")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 4096)
                if not chunk:
                    self._fail("exited before it was ready")
                pending += chunk
                *done, pending = pending.split(b"\n")
                lines += [line.decode().strip() for line in done]
        return lines

    def _fail(self, why: str) -> NoReturn:
        self.process.kill()
        _, err = self.process.communicate(timeout=10)
        pytest.fail(f"{self.process.args}: {why}\n{err.decode(errors='replace')}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture(params=["python -m statehub.server", "statehub-server"])
def standalone(request: pytest.FixtureRequest, venv: Venv) -> Iterator[Standalone]:
    if request.param == "statehub-server":
        command: tuple[str | Path, ...] = (venv.bin / "statehub-server",)
    else:
        command = (venv.python, "-m", "statehub.server")
    server = Standalone(venv, *command)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


CLIENT_PROGRAM = textwrap.dedent(
    """
    import sys
    import statehub

    m = statehub.Manager(sys.argv[1])
    jobs = m.named.dict("wheel/jobs")
    jobs.update({"a": 1, "b": 2})
    lock = m.named.Lock("wheel/lock")
    assert lock.acquire()
    print("ok")
    sys.stdout.flush()
    sys.stdin.read()  # holds the lock until the test closes standard input
    """
)


def test_the_cli_reads_a_standalone_server(venv: Venv, standalone: Standalone) -> None:
    site = venv.site_packages()
    # The command became the server itself (exec), not a parent of it.
    exe = os.readlink(f"/proc/{standalone.process.pid}/exe")
    assert exe == str(site / "statehub" / "_bin" / "statehub-server")
    assert f"statehub-server listening on {standalone.address}" in standalone.printed

    program = venv.work / "client_program.py"
    program.write_text(CLIENT_PROGRAM)
    client = subprocess.Popen(
        [str(venv.python), str(program), standalone.address],
        env=venv.env,
        cwd=venv.work,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None and client.stdout.readline() == "ok\n"
        cli = venv.bin / "statehub-cli"
        listed = venv.run(cli, f"--address={standalone.address}", "ls", "wheel/").stdout
        assert re.search(r"wheel/jobs\s+dict\s+2\b", listed), listed
        locks = venv.run(
            cli, f"--address={standalone.address}", "locks", "wheel/"
        ).stdout
        assert "wheel/lock" in locks and "held" in locks, locks
    finally:
        assert client.stdin is not None
        client.stdin.close()
        client.wait(30)
    assert client.returncode == 0
    # SIGTERM reaches the server itself, which shuts down cleanly.
    assert standalone.stop() == 0


def _base_system(tag: str) -> set[str]:
    """The libraries a system that ``tag`` (a policy name, such as
    manylinux_2_35) fits must provide: the policy's whitelist, from the
    auditwheel that repaired the wheel (in build-wheel/tools)."""
    files = sorted(
        (WHEEL_DIR / "tools").glob(
            "lib/python*/site-packages/auditwheel/policy/manylinux-policy.json"
        )
    )
    if not files:
        pytest.fail(f"no auditwheel in {WHEEL_DIR / 'tools'}: scripts/build.sh wheel")
    for policy in json.loads(files[0].read_text()):
        if policy["name"] == tag or tag in policy["aliases"]:
            return set(policy["lib_whitelist"])
    pytest.fail(f"auditwheel knows no policy {tag}")


def _ldd(venv: Venv, binary: Path) -> list[tuple[str, str]]:
    """(name, resolved path) of every library ``binary`` loads, as ldd
    finds them in the minimal environment."""
    out = venv.run("ldd", binary).stdout
    loaded = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            assert target != "not", f"{binary}: {line.strip()}"
            if target.startswith("/"):
                loaded.append((parts[0], target))
            # else linux-vdso: the kernel's, no file
        elif parts and parts[0].startswith("/"):
            loaded.append((Path(parts[0]).name, parts[0]))  # the dynamic loader
    return loaded


def test_the_bundled_binaries_load_only_the_wheels_and_the_tags_libraries(
    venv: Venv,
) -> None:
    # The policy's name is the tag without the architecture.
    tag = re.search(r"-(manylinux_\d+_\d+)_\w+\.whl$", _wheel().name)
    assert tag, f"{_wheel().name} has no manylinux_2_* tag"
    allowed = _base_system(tag.group(1))
    site = venv.site_packages()
    bundled = site / "statehub.libs"
    assert bundled.is_dir()
    outside = []
    for name in BINARIES:
        loaded = _ldd(venv, site / "statehub" / "_bin" / name)
        assert loaded, name
        for soname, path in loaded:
            inside = Path(path).resolve().is_relative_to(bundled.resolve())
            # The dynamic loader is glibc's, which every tag promises.
            if (
                not inside
                and soname not in allowed
                and not soname.startswith("ld-linux")
            ):
                outside.append(f"{name}: {soname} => {path}")
    assert not outside, (
        "loaded from outside the wheel and the tag's base system:\n  "
        + "\n  ".join(outside)
    )


def test_nothing_shipped_carries_debug_info(venv: Venv) -> None:
    site = venv.site_packages()
    shipped = [site / "statehub" / "_bin" / b for b in BINARIES]
    shipped += sorted((site / "statehub.libs").iterdir())
    with_debug = [
        str(path)
        for path in shipped
        if ".debug_info" in venv.run("readelf", "-S", "-W", path).stdout
    ]
    assert not with_debug
