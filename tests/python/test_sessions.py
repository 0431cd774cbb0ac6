"""The session: one per process, resumed after a broken stream and across a
fork, used safely by many threads; fork support set before grpc loads."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import statehub
from statehub._connection import connection_for

from conftest import REPO, RunningServer, wait_until


def test_one_connection_and_session_per_process(server: RunningServer) -> None:
    a = statehub.Manager(server.unix)
    b = statehub.Manager(server.unix)
    try:
        assert connection_for(a.address or "") is connection_for(b.address or "")
        assert a.dict()._token.address == b.dict()._token.address
    finally:
        a.shutdown()
        b.shutdown()


def test_broken_stream_resumes_the_same_session(
    grpc_manager: statehub.SyncManager,
) -> None:
    manager = grpc_manager
    conn: Any = connection_for(manager.address or "")
    d = manager.dict(a=1)
    before = conn.session_id()
    conn._session._cancel()  # the stream breaks, as on a network blip
    d["b"] = 2  # calls go on with the live session meanwhile
    assert wait_until(lambda: conn._session._stream >= 2)
    time.sleep(0.2)
    assert conn.session_id() == before
    assert manager.describe(d).holders == 1  # the hold survived
    assert d.copy() == {"a": 1, "b": 2}


def test_session_survives_fork_in_the_parent(manager: statehub.SyncManager) -> None:
    conn = connection_for(manager.address or "")
    d = manager.dict()
    before = conn.session_id()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    d["x"] = 1
    assert conn.session_id() == before
    assert manager.describe(d).holders == 1


def test_keepalives_hold_the_lease(manager: statehub.SyncManager) -> None:
    d = manager.dict(a=1)
    conn = connection_for(manager.address or "")
    before = conn.session_id()
    time.sleep(2.5)  # longer than the server's 2 s lease: keepalives renew it
    assert d["a"] == 1
    assert conn.session_id() == before


def test_threads_share_proxies(manager: statehub.SyncManager) -> None:
    counter = manager.dict(n=0)
    items = manager.list()
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            for _ in range(100):
                counter.increment("n")
            items.append(index)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert counter["n"] == 800
    assert sorted(items) == list(range(8))


def _python(
    code: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k != "GRPC_ENABLE_FORK_SUPPORT"
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        cwd=REPO,
        check=False,
    )


def test_import_enables_grpc_fork_support() -> None:
    result = _python(
        "import os, statehub\n"
        "from grpc._cython import cygrpc\n"
        "enabled = cygrpc.is_fork_support_enabled()\n"
        "print(os.environ['GRPC_ENABLE_FORK_SUPPORT'], enabled)"
    )
    assert result.stdout.split() == ["1", "True"], result.stderr


def test_grpc_imported_first_warns_when_grpc_is_used() -> None:
    # The warning belongs to the gRPC transport, given when it is first
    # used; the lane needs no fork support from grpc.
    code = "import grpc, statehub\nfrom statehub import _grpc\n"
    result = _python(code)
    assert "GRPC_ENABLE_FORK_SUPPORT" in result.stderr
    assert "RuntimeWarning" in result.stderr
    quiet = _python(code, {"GRPC_ENABLE_FORK_SUPPORT": "1"})
    assert quiet.stderr == ""
    lane_only = _python("import grpc, statehub")
    assert lane_only.stderr == ""


@pytest.mark.parametrize("value", ["0", "1"])
def test_an_explicit_setting_is_respected(value: str) -> None:
    result = _python(
        "import os, statehub; print(os.environ['GRPC_ENABLE_FORK_SUPPORT'])",
        {"GRPC_ENABLE_FORK_SUPPORT": value},
    )
    assert result.stdout.strip() == value


def test_grpc_releases_the_hold_of_a_dropped_proxy(
    grpc_manager: statehub.SyncManager,
) -> None:
    d = grpc_manager.dict(a=1)
    name = d._token.name
    assert grpc_manager.describe(d).holders == 1
    del d
    gc.collect()

    def gone() -> bool:
        try:
            grpc_manager.describe(name)
        except statehub.ObjectNotFound:
            return True
        return False

    assert wait_until(gone, 10)
