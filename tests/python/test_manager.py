"""statehub.Manager(): private server life cycle, connecting, named objects."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.managers
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import statehub
from statehub import _server

from conftest import RunningServer, process_alive, server_binary, wait_until


def test_private_server_starts_and_stops() -> None:
    m = statehub.Manager()
    assert m.address is not None and m.address.startswith("unix://")
    server = m._server
    assert server is not None and server.process is not None
    pid = server.process.pid
    socket_dir = Path(m.address[len("unix://") :]).parent
    d = m.dict(a=1)
    assert d["a"] == 1
    m.shutdown()
    assert not process_alive(pid)
    assert not socket_dir.exists()
    m.shutdown()  # idempotent
    with pytest.raises(multiprocessing.ProcessError):
        m.dict()


def test_context_manager_like_managers() -> None:
    with statehub.Manager() as m:
        server = m._server
        assert server is not None and server.process is not None
        pid = server.process.pid
        assert m.list(range(3))[:] == [0, 1, 2]
    assert not process_alive(pid)
    with statehub.SyncManager() as m2:  # __enter__ starts it, as BaseManager does
        assert m2.dict(x=1)["x"] == 1
    with pytest.raises(multiprocessing.ProcessError):
        m2.start()


def test_start_twice_and_connect_without_address() -> None:
    m = statehub.SyncManager()
    with pytest.raises(ValueError, match="address"):
        m.connect()
    m.start()
    try:
        with pytest.raises(multiprocessing.ProcessError, match="Already started"):
            m.start()
    finally:
        m.shutdown()


def test_private_server_on_a_tcp_address() -> None:
    m = statehub.SyncManager(("127.0.0.1", 0))
    m.start()
    try:
        assert m.address is not None and m.address.startswith("127.0.0.1:")
        assert not m.address.endswith(":0")
        assert m.dict(a=1).copy() == {"a": 1}
    finally:
        m.shutdown()


def test_no_server_left_behind_when_the_program_exits(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(
        textwrap.dedent(
            """
            import statehub
            m = statehub.Manager()
            d = m.dict()
            d["x"] = 1
            print(m._server.process.pid, flush=True)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=True,
    )
    pid = int(result.stdout.strip())
    assert wait_until(lambda: not process_alive(pid), 10)


def test_server_binary_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    binary = server_binary()
    monkeypatch.setenv("STATEHUB_SERVER", str(tmp_path / "missing"))
    with pytest.raises(statehub.ServerNotFound, match="STATEHUB_SERVER"):
        statehub.Manager()
    monkeypatch.setenv("STATEHUB_SERVER", binary)
    assert _server.find_server_binary() == binary
    monkeypatch.delenv("STATEHUB_SERVER")
    monkeypatch.setenv("PATH", str(tmp_path))
    # Not on PATH: the build output of the checkout the package came from.
    built = [
        root / "build" / "server" / "statehub-server" for root in _server._build_roots()
    ]
    existing = [b for b in built if b.exists()]
    if existing:
        assert Path(_server.find_server_binary()) == existing[0]
    else:  # installed from a copy that is not a built checkout
        with pytest.raises(statehub.ServerNotFound):
            _server.find_server_binary()
    monkeypatch.setattr(_server, "_build_roots", lambda: [tmp_path])
    with pytest.raises(statehub.ServerNotFound) as caught:
        statehub.Manager()
    assert isinstance(caught.value, FileNotFoundError)
    assert "STATEHUB_SERVER" in str(caught.value) and "ninja" in str(caught.value)


def test_connect_by_every_address_form(server: RunningServer) -> None:
    host, port = server.tcp.rsplit(":", 1)
    socket_path = server.unix[len("unix://") :]
    for address in (
        server.unix,
        server.tcp,
        socket_path,
        (host, int(port)),
        Path(socket_path),
    ):
        m = statehub.Manager(address)
        assert m.dict(a=1)["a"] == 1
        m.shutdown()


def test_every_manager_type_is_served(manager: statehub.SyncManager) -> None:
    from multiprocessing import managers

    typeids = set(managers.SyncManager._registry)  # type: ignore[attr-defined]
    # Manager's internal or since-removed helpers, not object types.
    typeids -= {"AsyncResult", "Iterator", "set"}
    # Arguments a factory cannot do without.
    args: dict[str, tuple[object, ...]] = {
        "Barrier": (2,),
        "Value": ("i", 0),
        "Array": ("i", [1, 2]),
    }
    # Pool lives in the manager's Python host (test_register.py).
    assert callable(manager.Pool)
    typeids.discard("Pool")
    names = []
    try:
        for typeid in sorted(typeids):
            made = getattr(manager, typeid)(*args.get(typeid, ()))
            assert isinstance(made, statehub.BaseProxy), typeid
            name = f"test-manager-every-{typeid}"
            names.append(name)
            if typeid == "Condition":
                names.append(f"{name}/lock")
            named = getattr(manager.named, typeid)(name, *args.get(typeid, ()))
            assert isinstance(named, statehub.BaseProxy), typeid
            assert type(named) is type(made), typeid
    finally:
        for name in names:
            with contextlib.suppress(statehub.ObjectNotFound):
                manager.named.delete(name)


def test_pool_is_a_proxy(manager: statehub.SyncManager) -> None:
    with manager.Pool(2) as pool:
        assert isinstance(pool, multiprocessing.managers.BaseProxy)
        assert pool.map(abs, [-1, -2]) == [1, 2]


@pytest.mark.parametrize("processes", [0, -1])
def test_pool_of_no_processes_raises_what_manager_raises(
    manager: statehub.SyncManager, processes: int
) -> None:
    with pytest.raises(multiprocessing.managers.RemoteError) as caught:
        manager.Pool(processes)
    error = caught.value
    # Also the ValueError multiprocessing.Pool raises, naming the value.
    assert isinstance(error, ValueError)
    assert isinstance(error, statehub.StatehubError)
    assert str(error) == f"Number of processes must be at least 1, not {processes}"
    with pytest.raises(ValueError, match="maxtasksperchild"):
        manager.Pool(1, maxtasksperchild=0)


def test_named_objects_get_or_create(manager: statehub.SyncManager) -> None:
    name = "test-manager-jobs"
    try:
        jobs = manager.named.dict(name, {"a": 1})
        assert jobs._token.name == name
        again = manager.named.dict(name, {"b": 2})  # exists: contents ignored
        assert again.copy() == {"a": 1}
        assert manager.named.dict("test-manager-kw", name=1).copy() == {"name": 1}
        with pytest.raises(TypeError, match="list"):
            manager.named.list(name)
        info = manager.describe(name)
        assert (info.type, info.anonymous, info.size, info.holders) == (
            "dict",
            False,
            1,
            0,
        )
        assert [i.name for i in manager.objects("test-manager-")] == [
            name,
            "test-manager-kw",
        ]
        manager.named.delete(name)
        with pytest.raises(statehub.ObjectNotFound):
            jobs["x"]
    finally:
        for leftover in ("test-manager-jobs", "test-manager-kw"):
            with contextlib.suppress(statehub.ObjectNotFound):
                manager.named.delete(leftover)


def test_named_objects_of_every_type(manager: statehub.SyncManager) -> None:
    names = []
    try:
        lst = manager.named.list("test-manager-lst", range(3))
        ns = manager.named.Namespace("test-manager-ns", a=1)
        v = manager.named.Value("test-manager-v", "i", 7)
        a = manager.named.Array("test-manager-a", "d", [0.5, 1.5])
        names = [
            "test-manager-lst",
            "test-manager-ns",
            "test-manager-v",
            "test-manager-a",
        ]
        assert lst.copy() == [0, 1, 2]
        assert ns.a == 1
        assert v.value == 7
        assert list(a) == [0.5, 1.5]
        assert manager.named.Value("test-manager-v").value == 7
        with pytest.raises(ValueError, match="empty"):
            manager.named.dict("")
        with pytest.raises(TypeError):
            manager.named.dict(3)  # type: ignore[arg-type]
    finally:
        for name in names:
            manager.named.delete(name)


def test_anonymous_objects_are_freed_when_proxies_die(
    manager: statehub.SyncManager,
) -> None:
    d = manager.dict()
    inner = manager.list([1])
    d["inner"] = inner
    name, inner_name = d._token.name, inner._token.name
    info = manager.describe(inner_name)
    assert (info.holders, info.referrers) == (1, 1)
    del inner
    gc.collect()
    assert wait_until(lambda: manager.describe(inner_name).holders == 0)
    assert d["inner"][0] == 1  # kept alive by the ref in d
    del d
    gc.collect()

    def gone(n: str) -> bool:
        try:
            manager.describe(n)
        except statehub.ObjectNotFound:
            return True
        return False

    assert wait_until(lambda: gone(name) and gone(inner_name))


def test_shutdown_releases_this_process_holds(server: RunningServer) -> None:
    m = statehub.Manager(server.unix)
    observer = statehub.Manager(server.tcp)
    try:
        name = m.dict()._token.name
        d = m.dict()
        name = d._token.name
        m.shutdown()  # Goodbye: the session's holds go at once
        with pytest.raises(statehub.ObjectNotFound):
            observer.describe(name)
    finally:
        observer.shutdown()


def test_one_managers_shutdown_leaves_anothers_objects(server: RunningServer) -> None:
    first = statehub.Manager(server.unix)
    second = statehub.Manager(server.unix)
    try:
        kept = second.dict(a=1)
        first.shutdown()
        assert kept["a"] == 1
        assert second.describe(kept).holders == 1
    finally:
        second.shutdown()


def test_a_manager_does_not_pickle(manager: statehub.SyncManager) -> None:
    import pickle

    with pytest.raises(TypeError, match="pass its proxies"):
        pickle.dumps(manager)


def test_proxies_of_a_dropped_connected_manager_keep_working(
    server: RunningServer,
) -> None:
    d = statehub.Manager(server.unix).dict(a=1)
    gc.collect()
    assert d["a"] == 1


def test_a_dropped_private_manager_stops_its_server() -> None:
    m = statehub.Manager()
    server = m._server
    assert server is not None and server.process is not None
    pid = server.process.pid
    del m, server
    gc.collect()
    assert wait_until(lambda: not process_alive(pid))
