"""register(), BaseManager and Pool: objects only Python can run, in a
Python process the manager starts and stops (issue 24, points 2 and 3).

The two recipes of the multiprocessing docs ("Customized managers" and
"Using a remote manager") run as the docs print them, but for the import
(and, for the remote one, the host and port).
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.managers
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import statehub
import statehub.managers

import hosted
from conftest import RunningServer, process_alive, wait_until

METHODS = ["fork", "spawn", "forkserver"]
JOIN_TIMEOUT = 60

pytestmark = pytest.mark.processes

CPYTHON_IMPORT = "from multiprocessing.managers import BaseManager"
STATEHUB_IMPORT = "from statehub.managers import BaseManager"

# https://docs.python.org/3/library/multiprocessing.html#customized-managers
CUSTOMIZED_MANAGERS = """\
from multiprocessing.managers import BaseManager

class MathsClass:
    def add(self, x, y):
        return x + y
    def mul(self, x, y):
        return x * y

class MyManager(BaseManager):
    pass

MyManager.register('Maths', MathsClass)

if __name__ == '__main__':
    with MyManager() as manager:
        maths = manager.Maths()
        print(maths.add(4, 3))         # prints 7
        print(maths.mul(7, 8))         # prints 56
"""

# https://docs.python.org/3/library/multiprocessing.html#using-a-remote-manager
# (doctest text, as the docs print it).
REMOTE_SERVER = """\
>>> from multiprocessing.managers import BaseManager
>>> from queue import Queue
>>> queue = Queue()
>>> class QueueManager(BaseManager): pass
>>> QueueManager.register('get_queue', callable=lambda:queue)
>>> m = QueueManager(address=('', 50000), authkey=b'abracadabra')
>>> s = m.get_server()
>>> s.serve_forever()
"""

REMOTE_PUTTER = """\
>>> from multiprocessing.managers import BaseManager
>>> class QueueManager(BaseManager): pass
>>> QueueManager.register('get_queue')
>>> m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
>>> m.connect()
>>> queue = m.get_queue()
>>> queue.put('hello')
"""

REMOTE_GETTER = """\
>>> from multiprocessing.managers import BaseManager
>>> class QueueManager(BaseManager): pass
>>> QueueManager.register('get_queue')
>>> m = QueueManager(address=('foo.bar.org', 50000), authkey=b'abracadabra')
>>> m.connect()
>>> queue = m.get_queue()
>>> queue.get()
'hello'
"""

REMOTE_LOCAL_SERVER = """\
>>> from multiprocessing import Process, Queue
>>> from multiprocessing.managers import BaseManager
>>> class Worker(Process):
...     def __init__(self, q):
...         self.q = q
...         super().__init__()
...     def run(self):
...         self.q.put('local hello')
...
>>> queue = Queue()
>>> w = Worker(queue)
>>> w.start()
>>> class QueueManager(BaseManager): pass
...
>>> QueueManager.register('get_queue', callable=lambda: queue)
>>> m = QueueManager(address=('', 50000), authkey=b'abracadabra')
>>> s = m.get_server()
>>> s.serve_forever()
"""

LOCAL_GETTER = REMOTE_GETTER.replace("'hello'", "'local hello'")


def _statehub_text(text: str, port: int = 0) -> str:
    assert CPYTHON_IMPORT in text
    return (
        text.replace(CPYTHON_IMPORT, STATEHUB_IMPORT)
        .replace("50000", str(port))
        .replace("foo.bar.org", "127.0.0.1")
    )


def _run_with_start_method(
    tmp_path: Path, program: str, method: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs program (a file's text) as ``python program.py`` with method as
    the default start method, set by a sitecustomize module so that the
    program's text stays the docs'."""
    (tmp_path / "program.py").write_text(program)
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import multiprocessing, os\n"
        "multiprocessing.set_start_method(os.environ['TEST_START_METHOD'])\n"
    )
    env = dict(os.environ, TEST_START_METHOD=method, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, "program.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _run_doctest(tmp_path: Path, name: str, text: str) -> subprocess.Popen[str]:
    path = tmp_path / f"{name}.txt"
    path.write_text(text)
    return subprocess.Popen(
        [sys.executable, "-m", "doctest", str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _join(process: Any) -> None:
    process.join(JOIN_TIMEOUT)
    if process.is_alive():
        process.kill()
        process.join()
        pytest.fail("child process hung")
    assert process.exitcode == 0


# -- the docs' recipes ----------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_customized_managers_recipe_runs_with_one_import_changed(
    tmp_path: Path, method: str
) -> None:
    run = _run_with_start_method(tmp_path, _statehub_text(CUSTOMIZED_MANAGERS), method)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "7\n56\n"


def test_remote_manager_recipe_runs_with_one_import_changed(tmp_path: Path) -> None:
    port = _free_port()
    server = _run_doctest(tmp_path, "server", _statehub_text(REMOTE_SERVER, port))
    try:
        assert wait_until(lambda: _listening(port), timeout=30)
        for name, text in [("putter", REMOTE_PUTTER), ("getter", REMOTE_GETTER)]:
            client = _run_doctest(tmp_path, name, _statehub_text(text, port))
            out, _ = client.communicate(timeout=60)
            assert client.returncode == 0, out
        # CPython's client reaches statehub's server: one protocol.
        cpython = _run_doctest(
            tmp_path,
            "cpython",
            _statehub_text(REMOTE_PUTTER, port).replace(
                STATEHUB_IMPORT, CPYTHON_IMPORT
            ),
        )
        out, _ = cpython.communicate(timeout=60)
        assert cpython.returncode == 0, out
        # The authkey is checked, as CPython checks it.
        impostor = statehub.managers.BaseManager(
            address=("127.0.0.1", port), authkey=b"not the key"
        )
        with pytest.raises(multiprocessing.AuthenticationError):
            impostor.connect()
    finally:
        server.kill()
        server.communicate()


def test_remote_manager_recipe_with_a_local_process(tmp_path: Path) -> None:
    # As printed, this recipe runs only with fork: it starts a Process
    # subclass defined in an interactive session, and without an
    # ``if __name__ == '__main__'`` guard (with multiprocessing too).
    port = _free_port()
    server = _run_doctest(tmp_path, "server", _statehub_text(REMOTE_LOCAL_SERVER, port))
    try:
        assert wait_until(lambda: _listening(port), timeout=30)
        client = _run_doctest(tmp_path, "getter", _statehub_text(LOCAL_GETTER, port))
        out, _ = client.communicate(timeout=60)
        assert client.returncode == 0, out
    finally:
        server.kill()
        server.communicate()


def test_the_native_version_of_the_remote_recipe(
    server: RunningServer, manager: statehub.SyncManager
) -> None:
    # docs/python.md: the same job with a named queue on a statehub server.
    host, port = server.tcp.rsplit(":", 1)
    program = textwrap.dedent(
        f"""
        import sys
        import statehub
        m = statehub.Manager(({host!r}, {port}))
        jobs = m.named.Queue("test-register-jobs")
        if sys.argv[1] == "put":
            jobs.put("hello")
        else:
            print(jobs.get(timeout=30))
        """
    )
    try:
        for role in ("put", "get"):
            run = subprocess.run(
                [sys.executable, "-c", program, role],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert run.returncode == 0, run.stderr
        assert run.stdout == "hello\n"
    finally:
        manager.named.delete("test-register-jobs")


@pytest.mark.parametrize("method", METHODS)
def test_base_manager_start_serves_other_processes(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    authkey = os.urandom(16)
    manager = hosted.QueueManager(address=("127.0.0.1", 0), authkey=authkey, ctx=ctx)
    manager.start()
    try:
        child = ctx.Process(
            target=hosted.put_through_remote,
            args=(manager.address, authkey, ("from", "child")),
        )
        child.start()
        _join(child)
        client = hosted.QueueClient(address=manager.address, authkey=authkey)
        client.connect()
        assert client.get_queue().get(timeout=30) == ("from", "child")
        server = manager._process
    finally:
        manager.shutdown()
    assert not server.is_alive()


# -- SyncManager.register() -------------------------------------------------------


def test_registrations_stay_in_their_class() -> None:
    assert "Foo" in hosted.MyManager._registry
    for cls in (statehub.SyncManager, hosted.OtherManager):
        assert "Foo" not in cls._registry
        assert not hasattr(cls, "Foo")
    # Pool's types are served by every manager's host.
    assert {"Pool", "AsyncResult", "Iterator"} <= set(statehub.SyncManager._registry)


def test_exposed_method_to_typeid_and_create_method_as_in_cpython() -> None:
    with hosted.MyManager() as m:
        # CPython's _TestMyManager.common, on statehub's SyncManager.
        foo, bar, baz = m.Foo(), m.Bar(), m.baz()
        names = ("f", "g", "_h")
        assert [n for n in names if hasattr(foo, n)] == ["f", "g"]
        assert [n for n in names if hasattr(bar, n)] == ["f", "_h"]
        assert foo.f() == "f()"
        with pytest.raises(ValueError, match=r"g\(\) raises"):
            foo.g()
        assert foo._callmethod("f") == "f()"
        with pytest.raises(multiprocessing.managers.RemoteError):
            foo._callmethod("_h")
        assert bar._h() == "_h()"
        assert bar._callmethod("_h") == "_h()"
        assert list(baz) == [i * i for i in range(10)]
        assert repr(foo).startswith("<AutoProxy[Foo] object, typeid 'Foo' at ")
        # create_method=False: no method, but a method_to_typeid result.
        assert not hasattr(m, "CounterOnly")
        maker = m.Maker()
        counter = maker.counter(5)
        assert isinstance(counter, multiprocessing.managers.BaseProxy)
        assert counter.add(1) == 6
        # A method not in method_to_typeid returns by value (a pickle).
        plain = maker.plain(3)
        assert isinstance(plain, hosted.Counter) and plain.add() == 4
        # statehub's own types are alongside, on the server.
        d = m.dict(counter=counter.add(0))
        assert isinstance(d, statehub.DictProxy) and d["counter"] == 6


def test_hosted_objects_hold_and_return_statehub_proxies() -> None:
    with hosted.MyManager() as m:
        holder, d = m.Holder(), m.dict(a=1)
        holder.put(d)
        back = holder.get()
        assert isinstance(back, statehub.DictProxy)
        back["b"] = 2
        assert d.copy() == {"a": 1, "b": 2}


def test_a_plain_manager_starts_no_python_process() -> None:
    before = set(multiprocessing.active_children())
    with statehub.Manager() as m:
        m.dict(a=1)
        m.Lock()
        assert m._host is None
        assert set(multiprocessing.active_children()) == before


@pytest.mark.parametrize("method", METHODS)
def test_registered_proxies_work_in_children(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    with hosted.MyManager(ctx=ctx) as m:
        counter, foo, results = m.Counter(1), m.Foo(), m.dict()
        child = ctx.Process(target=hosted.use_hosted, args=(counter, foo, results))
        child.start()
        _join(child)
        assert results.copy() == {
            "add": 11,
            "f": "f()",
            "g": "g() raises",
            "host": counter.pid(),
        }
        assert counter.add(0) == 11
        # A hosted proxy stored in a statehub dict (as a pickle) works in
        # the process that reads it back.
        shared = m.dict(counter=counter)
        child = ctx.Process(target=hosted.use_hosted_from_dict, args=(shared,))
        child.start()
        _join(child)
        assert shared["added"] == 16


def test_authkey_is_the_hosts() -> None:
    with hosted.MyManager(authkey=b"secret") as m:
        counter = m.Counter()
        assert bytes(counter._authkey) == b"secret"
        host = m._python_host()
        with pytest.raises(multiprocessing.AuthenticationError):
            multiprocessing.managers.BaseManager(
                address=host.address, authkey=b"wrong"
            ).connect()
        assert counter.add() == 1


def test_a_manager_that_is_not_started_hosts_nothing() -> None:
    m = hosted.MyManager()
    with pytest.raises(multiprocessing.ProcessError, match="not started"):
        m.Counter()
    with pytest.raises(multiprocessing.ProcessError, match="not started"):
        m.Pool()


def test_a_dropped_manager_keeps_its_host_while_hosted_proxies_live() -> None:
    m = hosted.MyManager()
    m.start()
    counter = m.Counter()
    host = counter.pid()
    del m
    gc.collect()
    assert counter.add() == 1
    del counter
    gc.collect()
    assert wait_until(lambda: not process_alive(host), timeout=15)


def test_proxies_pickle_like_cpythons() -> None:
    with hosted.MyManager() as m:
        counter = m.Counter(2)
        copy = pickle.loads(pickle.dumps(counter))
        assert copy.add(1) == 3 and counter.add(0) == 3


# -- Pool() ----------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_pool_is_a_proxy_usable_in_children(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    with statehub.Manager(ctx=ctx) as m:
        pool = m.Pool(2)
        assert repr(pool).startswith("<PoolProxy object, typeid 'Pool' at ")
        results = m.dict()
        child = ctx.Process(target=hosted.use_pool, args=(pool, results))
        child.start()
        _join(child)
        assert results.copy() == {
            "map": [0, 1, 4, 9],
            "apply": 25,
            "apply_async": 36,
            "map_async": [49],
            "imap": [64, 81],
        }
        assert pool.apply_async(hosted.square, (3,)).get(30) == 9


@pytest.mark.parametrize("method", METHODS)
def test_shutdown_leaves_nothing_running(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    m = hosted.MyManager(ctx=ctx)
    m.start()
    pool = m.Pool(2)
    workers = set(pool.map(hosted.worker_pid, range(8), chunksize=1))
    assert workers
    host = m.Counter().pid()
    assert host == m._python_host()._process.pid
    assert host not in workers
    m.shutdown()
    for pid in (host, *workers):
        assert wait_until(lambda pid=pid: not process_alive(pid), timeout=15), pid
    m.shutdown()  # idempotent


def test_the_pool_of_a_with_block_is_terminated() -> None:
    with statehub.Manager() as m:
        with m.Pool(1) as pool:
            (worker,) = set(pool.map(hosted.worker_pid, [0]))
        assert wait_until(lambda: not process_alive(worker), timeout=15)


def test_a_program_that_exits_leaves_nothing_running(tmp_path: Path) -> None:
    program = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        import hosted

        if __name__ == "__main__":
            m = hosted.MyManager()
            m.start()
            pool = m.Pool(2)
            pids = set(pool.map(hosted.worker_pid, range(4), chunksize=1))
            pids.add(m.Counter().pid())
            print(" ".join(map(str, sorted(pids))), flush=True)
        """
    )
    run = _run_with_start_method(
        tmp_path,
        program.replace("sys.argv[1]", repr(str(Path(hosted.__file__).parent))),
        "spawn",
    )
    assert run.returncode == 0, run.stderr
    pids = [int(p) for p in run.stdout.split()]
    assert len(pids) >= 2
    time.sleep(0.1)
    assert wait_until(lambda: not any(process_alive(p) for p in pids), timeout=15)


@pytest.mark.parametrize("method", METHODS)
def test_the_host_ends_when_its_program_is_killed(tmp_path: Path, method: str) -> None:
    (tmp_path / "program.py").write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(Path(hosted.__file__).parent)!r})
            import multiprocessing, hosted

            if __name__ == "__main__":
                multiprocessing.set_start_method({method!r})
                m = hosted.MyManager()
                m.start()
                pool = m.Pool(2)
                pids = set(pool.map(hosted.worker_pid, range(4), chunksize=1))
                pids.add(m.Counter().pid())
                print(" ".join(map(str, sorted(pids))), flush=True)
                time.sleep(600)
            """
        )
    )
    program = subprocess.Popen(
        [sys.executable, "program.py"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert program.stdout is not None
    pids: list[int] = []
    try:
        pids = [int(p) for p in program.stdout.readline().split()]
        assert len(pids) >= 2
        program.kill()
        # Not communicate(): a host that lived on would hold the pipe open.
        program.wait()
        assert wait_until(lambda: not any(process_alive(p) for p in pids), timeout=15)
    finally:
        program.kill()
        program.wait()
        program.stdout.close()
        for pid in pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)
