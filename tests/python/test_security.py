"""Auth tokens, TLS and mutual TLS, and the session limits, from Python,
against the real server with certificates openssl makes for the test
(tests/testing/make_certs.sh)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import statehub
from statehub._connection import close_all

import workers
from conftest import REPO, RunningServer, start_server, wait_until

TOKEN = "python-test-token"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("secrets")
    subprocess.run(
        [str(REPO / "tests" / "testing" / "make_certs.sh"), str(directory)], check=True
    )
    (directory / "token").write_text(f"{TOKEN}\n")
    return directory


@pytest.fixture(scope="module")
def token_server(secrets: Path) -> Iterator[RunningServer]:
    running = start_server(f"--auth_token_file={secrets / 'token'}")
    yield running
    close_all()
    assert running.stop() == 0


@pytest.fixture(autouse=True)
def _fresh_connections() -> Iterator[None]:
    # Each test picks its own credentials for the module's servers.
    close_all()
    yield
    close_all()


def test_the_right_token_is_let_in(token_server: RunningServer) -> None:
    m = statehub.Manager(token_server.unix, token=TOKEN)
    d = m.named.dict("secured")
    d["a"] = 1
    assert d["a"] == 1
    assert m.list([1, 2])[1] == 2  # anonymous objects need the session
    m.shutdown()


@pytest.mark.parametrize("token", [None, "wrong"])
def test_no_token_or_a_wrong_one_is_refused(
    token_server: RunningServer, token: str | None
) -> None:
    with pytest.raises(statehub.AuthenticationError) as caught:
        statehub.Manager(token_server.unix, token=token)
    # What a Manager raises for a wrong authkey.
    assert isinstance(caught.value, multiprocessing.AuthenticationError)
    assert caught.value.kind == "UNAUTHENTICATED"
    assert ("requires a token" if token is None else "wrong token") in str(
        caught.value
    )


def test_the_token_comes_from_the_environment(
    token_server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEHUB_TOKEN", TOKEN)
    m = statehub.Manager(token_server.unix)
    m.named.dict("from-env")["k"] = "v"
    m.shutdown()


@pytest.mark.processes
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_children_connect_with_their_parents_token(
    token_server: RunningServer, method: str
) -> None:
    m = statehub.Manager(token_server.unix, token=TOKEN)
    counts = m.named.dict(f"children-{method}")
    ctx = multiprocessing.get_context(method)
    child = ctx.Process(target=workers.count_in_child, args=(counts, "done"))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert counts["done"] == 1
    m.shutdown()


def test_a_second_manager_with_other_credentials_is_refused(
    token_server: RunningServer,
) -> None:
    m = statehub.Manager(token_server.unix, token=TOKEN)
    with pytest.raises(ValueError, match="other credentials"):
        statehub.Manager(token_server.unix, token="another")
    m.shutdown()


# --- TLS ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(secrets: Path) -> Iterator[RunningServer]:
    running = start_server(
        f"--tls_cert={secrets / 'server.pem'}",
        f"--tls_key={secrets / 'server.key'}",
    )
    yield running
    close_all()
    assert running.stop() == 0


@pytest.fixture(scope="module")
def mtls_server(secrets: Path) -> Iterator[RunningServer]:
    running = start_server(
        f"--tls_cert={secrets / 'server.pem'}",
        f"--tls_key={secrets / 'server.key'}",
        f"--tls_client_ca={secrets / 'ca.pem'}",
    )
    yield running
    close_all()
    assert running.stop() == 0


def test_tls_with_the_servers_ca(tls_server: RunningServer, secrets: Path) -> None:
    m = statehub.Manager(tls_server.tcp, tls_ca=secrets / "ca.pem", timeout=5)
    m.named.dict("over-tls")["k"] = "v"
    m.shutdown()
    # PEM bytes work as well as paths.
    m = statehub.Manager(
        tls_server.tcp, tls_ca=(secrets / "ca.pem").read_bytes(), timeout=5
    )
    assert m.named.dict("over-tls")["k"] == "v"
    m.shutdown()


@pytest.mark.parametrize("how", ["plaintext", "other CA"])
def test_tls_refuses_clients_that_do_not_trust_it(
    tls_server: RunningServer, secrets: Path, how: str
) -> None:
    tls_ca = secrets / "other-ca.pem" if how == "other CA" else None
    with pytest.raises(statehub.ConnectionError):
        statehub.Manager(tls_server.tcp, tls_ca=tls_ca, timeout=3)


def test_mutual_tls(mtls_server: RunningServer, secrets: Path) -> None:
    m = statehub.Manager(
        mtls_server.tcp,
        tls_ca=secrets / "ca.pem",
        tls_cert=secrets / "client.pem",
        tls_key=secrets / "client.key",
        timeout=5,
    )
    m.named.dict("mtls")["k"] = 1
    m.shutdown()


@pytest.mark.parametrize("cert", [None, "other-client"])
def test_mutual_tls_refuses_a_missing_or_foreign_certificate(
    mtls_server: RunningServer, secrets: Path, cert: str | None
) -> None:
    client = {}
    if cert is not None:
        client = {
            "tls_cert": secrets / f"{cert}.pem",
            "tls_key": secrets / f"{cert}.key",
        }
    with pytest.raises(statehub.ConnectionError):
        statehub.Manager(
            mtls_server.tcp, tls_ca=secrets / "ca.pem", timeout=3, **client
        )


def test_tls_cert_needs_its_key(secrets: Path) -> None:
    with pytest.raises(ValueError, match="go together"):
        statehub.SyncManager(
            "127.0.0.1:1", tls_ca=secrets / "ca.pem", tls_cert=secrets / "client.pem"
        )


# --- limits ------------------------------------------------------------------


def test_one_session_too_many_names_the_limit() -> None:
    running = start_server("--max_sessions=1")
    try:
        first = statehub.Manager(running.unix)
        # A second process: one process shares one session per server.
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import statehub, sys\n"
                "try:\n"
                f"    statehub.Manager({running.unix!r})\n"
                "except statehub.LimitExceeded as e:\n"
                "    print(e.limit); sys.exit(0)\n"
                "sys.exit(1)\n",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "max_sessions"
        first.shutdown()
    finally:
        close_all()
        running.stop()


def test_a_message_over_the_servers_limit_names_the_limit() -> None:
    running = start_server("--max_message_bytes=4096")
    try:
        m = statehub.Manager(running.unix)
        d = m.named.dict("big")
        with pytest.raises(statehub.LimitExceeded) as caught:
            d["k"] = "x" * 10_000
        assert caught.value.limit == "max_message_bytes"
        assert "--max_message_bytes" in str(caught.value)
        d["k"] = "small"  # the server goes on serving
        m.shutdown()
    finally:
        close_all()
        running.stop()


def test_one_blocking_call_too_many_in_a_session_is_refused() -> None:
    running = start_server("--max_waiters_per_session=2")
    try:
        m = statehub.Manager(running.unix)
        lock = m.named.Lock("busy")
        lock.acquire()
        # Two threads of this process park (a Lock may wait on itself).
        parked = [
            threading.Thread(target=lock.acquire, kwargs={"timeout": 30})
            for _ in range(2)
        ]
        for t in parked:
            t.start()
        wait_until(lambda: len(lock.state().waiters) == 2)
        with pytest.raises(statehub.LimitExceeded) as caught:
            lock.acquire(timeout=30)
        assert caught.value.limit == "max_waiters_per_session"
        lock.release()
        lock.release()
        for t in parked:
            t.join(30)
        lock.release()
        assert lock.acquire(timeout=5)  # room again
        m.shutdown()
    finally:
        close_all()
        running.stop()
