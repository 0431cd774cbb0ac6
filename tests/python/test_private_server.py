"""A private server (statehub.Manager() with no address) dies with the
process that started it, however that process dies, and holds none of its
standard streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import statehub

from conftest import process_alive, server_binary, wait_until

# How long a private server may outlive its owner. It notices at once (its
# standard input closes); the bound leaves room for a loaded machine.
EXIT_BOUND_SECONDS = 10


def _owner_script(tmp_path: Path, body: str) -> Path:
    """A program that starts a private server, uses it, prints the server's
    pid and log path, then runs `body`."""
    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time
            import statehub
            m = statehub.Manager()
            d = m.dict()
            d["x"] = 1
            print(m._server.process.pid, m._server.log_path, flush=True)
            """
        )
        + textwrap.dedent(body)
    )
    return script


def _start_owner(script: Path) -> tuple[subprocess.Popen[str], int, str]:
    owner = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=script.parent,
    )
    assert owner.stdout is not None
    pid, log_path = owner.stdout.readline().split()
    return owner, int(pid), log_path


def test_server_exits_when_its_owner_is_sigkilled(tmp_path: Path) -> None:
    owner, server_pid, log_path = _start_owner(
        _owner_script(tmp_path, "time.sleep(600)\n")
    )
    try:
        assert process_alive(server_pid)
        owner.kill()
        owner.wait()
        assert wait_until(lambda: not process_alive(server_pid), EXIT_BOUND_SECONDS), (
            f"the private server (pid {server_pid}) outlived its SIGKILLed owner"
        )
        assert "the process that started this server is gone" in Path(
            log_path
        ).read_text()
    finally:
        owner.kill()
        if process_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def test_a_forked_child_does_not_keep_the_server_alive(tmp_path: Path) -> None:
    # The owner forks a child that outlives it: the server still goes with
    # the owner (a forked copy closes its end of the lifeline).
    owner, server_pid, _ = _start_owner(
        _owner_script(
            tmp_path,
            """
            child = os.fork()
            if child == 0:
                time.sleep(600)
                os._exit(0)
            print(child, flush=True)
            time.sleep(600)
            """,
        )
    )
    assert owner.stdout is not None
    child = int(owner.stdout.readline())
    try:
        owner.kill()
        owner.wait()
        assert process_alive(child)
        assert wait_until(lambda: not process_alive(server_pid), EXIT_BOUND_SECONDS), (
            "a forked child of the owner kept the private server alive"
        )
    finally:
        for pid in (child, server_pid):
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_shell_capturing_the_owners_output_is_not_kept_waiting(
    tmp_path: Path,
) -> None:
    # `$(...)` returns when every writer of the captured output has closed
    # it: the server must not be one of them, whether the owner exits or is
    # killed. Standard error is captured too (2>&1). A server that held
    # them would make subprocess.run time out.
    for ending in ("sys.exit(0)\n", "os.kill(os.getpid(), signal.SIGKILL)\n"):
        script = _owner_script(tmp_path, "print('done', flush=True)\n" + ending)
        result = subprocess.run(
            ["bash", "-c", f'out=$("{sys.executable}" "{script}" 2>&1); echo "$out"'],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
        lines = result.stdout.split()
        assert "done" in lines, result
        server_pid = int(lines[0])
        assert wait_until(
            lambda pid=server_pid: not process_alive(pid), EXIT_BOUND_SECONDS
        )


def test_a_server_that_fails_to_start_quotes_its_log() -> None:
    with pytest.raises(statehub.StatehubError, match="its log says"):
        statehub.Manager(server_args=["--lease_ttl=0s"])


def test_proxies_keep_a_dropped_manager_s_server() -> None:
    # `q = Manager().Queue()`: the manager is not kept, its proxies are.
    import gc

    q = statehub.Manager(server=server_binary()).Queue()
    shared = statehub.Manager(server=server_binary()).dict(a=1)
    gc.collect()
    q.put("job")
    assert q.get(timeout=10) == "job"
    shared["b"] = 2
    nested = shared.copy()
    assert nested == {"a": 1, "b": 2}


def test_a_private_server_stops_once_its_manager_and_proxies_are_gone() -> None:
    import gc

    m = statehub.Manager(server=server_binary())
    server = m._server
    assert server is not None and server.process is not None
    process = server.process
    d = m.dict()
    d["inner"] = m.list([1])  # a proxy decoded from a read holds it too
    inner = d["inner"]
    del m, d
    gc.collect()
    assert process.poll() is None
    assert inner[0] == 1
    del inner
    gc.collect()
    assert wait_until(lambda: process.poll() is not None, EXIT_BOUND_SECONDS)


def test_a_proxy_of_a_shut_down_manager_says_so() -> None:
    m = statehub.Manager(server=server_binary())
    d = m.dict()
    m.shutdown()
    with pytest.raises(statehub.ConnectionError, match="was shut down"):
        d["x"] = 1


def _use_dict(d: object) -> object:
    return d["x"]  # type: ignore[index]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_pool_task_given_a_proxy_of_a_gone_server_fails_with_the_reason(
    method: str,
) -> None:
    # The worker unpickles the proxy without error (an OSError there would
    # end the worker and lose the task) and the task raises when it uses it.
    import multiprocessing

    m = statehub.Manager(server=server_binary())
    d = m.dict(x=1)
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert pool.apply_async(_use_dict, (d,)).get(60) == 1
        m.shutdown()
        with pytest.raises(ConnectionError, match="has shut it down"):
            pool.apply_async(_use_dict, (d,)).get(60)


def test_a_proxy_whose_owner_exited_says_so(tmp_path: Path) -> None:
    # A program starts a private server, hands a proxy over (a pickle in a
    # file) and exits: its server goes with it.
    import pickle

    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pickle, sys
            import statehub
            m = statehub.Manager(server={server_binary()!r})
            d = m.named.dict("handed-over", a=1)
            with open(sys.argv[1], "wb") as out:
                pickle.dump(d, out)
            """
        )
    )
    handed = tmp_path / "proxy.pickle"
    subprocess.run([sys.executable, str(script), str(handed)], check=True, timeout=60)
    d = pickle.loads(handed.read_bytes())
    with pytest.raises(statehub.ConnectionError, match="which has exited"):
        d["a"]
