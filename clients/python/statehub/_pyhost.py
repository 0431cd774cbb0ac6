"""Objects only Python can run: ``register()``ed types and ``Pool``, hosted
in a CPython manager process (issue 24).

statehub's server holds values, not Python objects, so an instance of a
user's class (or a process pool) lives where CPython's Manager keeps every
object: in a ``multiprocessing.managers`` server process. This module reuses
that machinery as it is: the host is a ``BaseManager``, its proxies are
CPython's ``BaseProxy``/``AutoProxy``, so ``exposed``, ``method_to_typeid``,
``create_method``, authkeys and pickling to children behave exactly as in
CPython. What it adds:

- :class:`BaseManager` (public as ``statehub.managers.BaseManager``): a
  server started by :meth:`~BaseManager.start` ends when the process that
  started it ends, however it ends (as statehub's private server does), and
  a server's pools are terminated before it answers ``shutdown``, so no
  worker outlives it.
- :class:`PythonHost`: the host a ``statehub.SyncManager`` starts on first
  use of a registered type or ``Pool()`` (a plain ``Manager()`` costs no
  extra process), with the manager's registry, authkey and context, and
  stops in ``shutdown()``.

Example::

    class MyManager(statehub.SyncManager): ...
    MyManager.register("Maths", MathsClass)
    with MyManager() as m:
        maths = m.Maths()          # lives in m's Python host
        d = m.dict()               # lives on the statehub server
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing import connection, managers, process, util
from typing import Any

#: typeid -> (callable, exposed, method_to_typeid, proxytype), the shape of
#: BaseManager's ``_registry``.
Registry = dict[str, tuple[Any, ...]]

# Not in typeshed.
_CPythonPoolProxy: Any = managers.PoolProxy  # type: ignore[attr-defined]
_AutoProxy: Any = managers.AutoProxy  # type: ignore[attr-defined]
_IteratorProxy: Any = managers.IteratorProxy  # type: ignore[attr-defined]
_dispatch: Any = managers.dispatch  # type: ignore[attr-defined]
_State: Any = managers.State  # type: ignore[attr-defined]

# In a server process that BaseManager.start() started: the sentinel that
# becomes ready when the process that started it ends (None elsewhere, e.g.
# in a program that runs get_server().serve_forever() itself).
_owner_sentinel: int | None = None


class Server(managers.Server):
    """CPython's manager server, which also terminates the pools it holds
    before answering ``shutdown`` and, when :meth:`BaseManager.start` started
    it, stops once the process that started it has ended."""

    __module__ = "statehub.managers"  # its public home

    def accepter(self) -> None:
        # serve_forever() runs this in a thread after making stop_event,
        # which the watch needs.
        if _owner_sentinel is not None:
            threading.Thread(
                target=self._stop_when_owner_ends,
                args=(_owner_sentinel,),
                name="statehub-owner-watch",
                daemon=True,
            ).start()
        super().accepter()

    def shutdown(self, c: Any) -> None:
        # Before the reply: the manager's finalizer waits only
        # shutdown_timeout for this process to exit once answered, then
        # SIGTERMs it, which would skip the pools' own exit handlers.
        self._terminate_pools()
        super().shutdown(c)

    def _terminate_pools(self) -> None:
        with self.mutex:  # type: ignore[attr-defined]
            pools = [
                entry[0]
                for entry in self.id_to_obj.values()
                if isinstance(entry[0], multiprocessing.pool.Pool)
            ]
        for pool in pools:
            pool.terminate()

    def _stop_when_owner_ends(self, sentinel: int) -> None:
        connection.wait([sentinel])
        util.info("the process that started this manager has ended")
        self._terminate_pools()
        self.stop_event.set()  # type: ignore[attr-defined]


class BaseManager(managers.BaseManager):
    """``multiprocessing.managers.BaseManager``, for programs that use
    statehub: the same class in every respect (``register()``, ``start()``,
    ``connect()``, ``get_server().serve_forever()``, ``shutdown()``,
    ``address``, ``authkey``, the same wire protocol, so CPython's managers
    and statehub's connect to each other), except that

    - a server started by :meth:`start` ends when the process that started
      it ends (its forked children included), even by SIGKILL, instead of
      living on as CPython's does;
    - a server terminates the process pools it holds (a registered
      ``multiprocessing.Pool``) before it answers ``shutdown``.

    Hosted objects may hold statehub proxies (they pickle, so a method that
    returns one hands the caller a working proxy to an object on the
    statehub server). For objects that programs in other
    languages must reach, use ``statehub.Manager(address)`` and named objects
    instead (docs/python.md, "Customized and remote managers").
    """

    __module__ = "statehub.managers"  # its public home

    _Server = Server

    def get_server(self) -> managers.Server:
        """A server for this manager's address that
        ``serve_forever()`` runs in this process (as CPython's)."""
        if self._state.value != _State.INITIAL:  # type: ignore[attr-defined]
            super().get_server()  # raises CPython's ProcessError
        return self._Server(
            self._registry,  # type: ignore[attr-defined]
            self._address,  # type: ignore[attr-defined]
            self._authkey,  # type: ignore[attr-defined]
            self._serializer,  # type: ignore[attr-defined]
        )

    @classmethod
    def _run_server(cls, *args: Any, **kwargs: Any) -> None:
        # Runs in the process start() made.
        global _owner_sentinel
        parent = process.parent_process()
        if parent is not None:
            _owner_sentinel = parent.sentinel
        super()._run_server(*args, **kwargs)  # type: ignore[misc]


# -- the host of a statehub.SyncManager ------------------------------------

# The context the host's pools use (the manager's), set in the host.
_pool_context: Any = None


def _init_host(start_method: str) -> None:
    global _pool_context
    _pool_context = multiprocessing.get_context(start_method)


def _make_pool(
    processes: int | None = None,
    initializer: Callable[..., object] | None = None,
    initargs: Iterable[Any] = (),
    maxtasksperchild: int | None = None,
) -> multiprocessing.pool.Pool:
    """Manager's ``Pool`` callable: a pool of the manager's context."""
    context = _pool_context or multiprocessing.get_context()
    return context.Pool(processes, initializer, initargs, maxtasksperchild)


class _HostTypes:
    """Stands in for the manager of a Pool proxy unpickled in another
    process, where CPython leaves none: its ``_callmethod`` needs one to make
    the proxies ``apply_async``, ``map_async``, ``imap`` and the like return
    (CPython raises AttributeError there)."""

    _state = None  # as for a proxy without a manager: decref if reachable

    @property
    def _registry(self) -> Registry:
        return PythonHost._registry  # type: ignore[attr-defined,no-any-return]


_HOST_TYPES = _HostTypes()


class PoolProxy(_CPythonPoolProxy):  # type: ignore[misc]
    """A proxy to a ``multiprocessing.Pool`` in a manager's Python host
    (Manager's ``PoolProxy``); ``with`` terminates the pool on exit. Unlike
    CPython's, it makes ``apply_async``/``map_async``/``imap`` results in
    every process it is passed to, not only where it was made."""

    __module__ = "statehub.managers"  # its public home

    def _callmethod(
        self, methodname: str, args: tuple[Any, ...] = (), kwds: Any = None
    ) -> Any:
        if self._manager is None:
            self._manager: Any = _HOST_TYPES
        return super()._callmethod(methodname, args, kwds or {})


class PythonHost(BaseManager):
    """The Python process of one statehub manager: serves its registered
    types and its pools."""


PythonHost.register("Pool", _make_pool, PoolProxy, create_method=False)
# The types of what PoolProxy's methods return, as SyncManager registers them.
PythonHost.register("Iterator", proxytype=_IteratorProxy, create_method=False)
PythonHost.register("AsyncResult", create_method=False)


def default_registry() -> Registry:
    """The types every statehub.SyncManager's host serves: its Pool's."""
    return dict(PythonHost._registry)  # type: ignore[attr-defined]


def register(
    cls: Any,
    typeid: str,
    *,
    callable: Callable[..., object] | None,
    proxytype: Any,
    exposed: Sequence[str] | None,
    method_to_typeid: Mapping[str, str] | None,
    create_method: bool,
) -> None:
    """BaseManager.register() for a statehub.SyncManager subclass: the same
    registry entry, and a method that creates the object in the manager's
    Python host."""
    if "_registry" not in cls.__dict__:
        # A subclass's registrations stay its own, as BaseManager's do.
        cls._registry = cls._registry.copy()
    if proxytype is None:
        proxytype = _AutoProxy
    exposed = exposed or getattr(proxytype, "_exposed_", None)
    method_to_typeid = method_to_typeid or getattr(
        proxytype, "_method_to_typeid_", None
    )
    if method_to_typeid:
        for key, value in method_to_typeid.items():
            if type(key) is not str or type(value) is not str:
                raise TypeError(f"method_to_typeid: {key!r}: {value!r} is not str: str")
    cls._registry[typeid] = (callable, exposed, method_to_typeid, proxytype)
    if create_method:

        def create_object(self: Any, /, *args: Any, **kwds: Any) -> Any:
            return create(self._python_host(), typeid, proxytype, args, kwds)

        create_object.__name__ = create_object.__qualname__ = typeid
        create_object.__doc__ = f"A new shared {typeid!r} object in the Python host."
        setattr(cls, typeid, create_object)


def start_host(
    registry: Registry, authkey: bytes | None, ctx: Any, shutdown_timeout: float
) -> PythonHost:
    """Starts a host serving ``registry``; its pools use ctx's start method."""
    host = PythonHost(authkey=authkey, ctx=ctx, shutdown_timeout=shutdown_timeout)
    # The instance's copy is what start() sends to the host, and what
    # method_to_typeid results find their proxy type in.
    host._registry = dict(registry)  # type: ignore[attr-defined]
    host.start(_init_host, (ctx.get_start_method(),))
    return host


def stop_host(host: PythonHost) -> None:
    """Shuts the host down (idempotent): its pools' workers first."""
    host.shutdown()


def create(
    host: PythonHost,
    typeid: str,
    proxytype: Any,
    args: tuple[Any, ...],
    kwds: dict[str, Any],
) -> Any:
    """A new ``typeid`` object in host and its proxy (what BaseManager's
    create methods do)."""
    token, exposed = host._create(typeid, *args, **kwds)  # type: ignore[attr-defined]
    proxy = proxytype(
        token,
        host._serializer,  # type: ignore[attr-defined]
        manager=host,
        authkey=host._authkey,  # type: ignore[attr-defined]
        exposed=exposed,
    )
    # The proxy took its own reference; drop the one create took.
    conn = host._Client(token.address, authkey=host._authkey)  # type: ignore[attr-defined]
    try:
        _dispatch(conn, None, "decref", (token.id,))
    finally:
        conn.close()
    return proxy
