"""statehub.Manager(): multiprocessing.Manager()'s surface, served by
statehub-server.

Example::

    import statehub

    with statehub.Manager() as m:             # a private server, like Manager()
        d = m.dict({"a": 1})
        l = m.list(range(3))
        jobs = m.named.dict("jobs")            # get-or-create by name

    m = statehub.Manager("unix:///tmp/statehub.sock")   # a running server

Anonymous objects (``m.dict()``) live while some process holds a proxy to
them or another object refers to them; named objects (``m.named.dict(name)``)
live until deleted (``m.named.delete(name)``).
"""

from __future__ import annotations

import builtins
import dataclasses
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from multiprocessing import util
from typing import Any, ClassVar, NoReturn, cast

from . import _codec, _pyhost
from ._cache import cached_class
from ._cells import ArrayProxy, ValueProxy
from ._connection import (
    DEFAULT_TIMEOUT,
    Connection,
    connection_for,
    make_credentials,
    normalize_address,
    use_credentials,
)
from ._dict import DictProxy
from ._events import BarrierProxy, EventProxy
from ._list import ListProxy
from ._locks import (
    ConditionProxy,
    Deadlock,
    LockProxy,
    SemaphoreProxy,
    deadlock_from_wire,
)
from ._namespace import NamespaceProxy
from ._proto import objects_pb2, sync_pb2, value_pb2
from ._proxy import (
    ANONYMOUS_PREFIX,
    BaseProxy,
    Options,
    ServerLife,
    Token,
    keep_alive,
    proxy_type,
)
from ._queue import JoinableQueueProxy, QueueProxy
from ._server import ServerProcess
from ._set import SetProxy
from ._transport import note_private_server, note_shut_down
from ._watch import Watch, open_watch
from .errors import StatehubRemoteError

__all__ = ["Manager", "NamedObjects", "ObjectInfo", "SyncManager"]

_INITIAL, _STARTED, _SHUTDOWN = "initial", "started", "shutdown"

# Zero cells of an Array made from a length, per typecode.
_ZERO: dict[str, Any] = {"f": 0.0, "d": 0.0, "u": "\0", "c": b"\0"}


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One shared object as the server describes it (``Objects.Describe``).

    ``type`` is the object type's name in lower case ("dict", "list",
    "namespace", "value", "array", ...). ``size`` counts entries or items
    (1 for a value). ``holders`` (session holds) and ``referrers`` (refs in
    other objects) keep an anonymous object alive; both are 0 for named ones.
    """

    name: str
    type: str
    anonymous: bool
    size: int
    typecode: str
    holders: int
    referrers: int

    @classmethod
    def _from_wire(cls, info: objects_pb2.ObjectInfo) -> ObjectInfo:
        return cls(
            name=info.name,
            type=value_pb2.ObjectType.Name(info.type).lower(),
            anonymous=info.anonymous,
            size=info.size,
            typecode=info.typecode,
            holders=info.holders,
            referrers=info.referrers,
        )


class SyncManager:
    """Manager's SyncManager for statehub: shared dict, list, Namespace,
    Value, Array, Lock, RLock, Condition, Semaphore, BoundedSemaphore,
    Event, Barrier, Queue and JoinableQueue objects on a statehub-server;
    Pool and the types of :meth:`register` in a Python process of its own.

    ``SyncManager(address)`` then :meth:`start` runs a private server (on
    ``address`` if given, else on a private Unix socket), as
    ``BaseManager.start()`` does; :meth:`connect` connects to a running one.
    :func:`Manager` does either in one call.

    ``allow_pickle``: store objects other than None, bool, int, float, str,
    bytes, list, tuple, dict and proxies as pickles, and unpickle what is
    read back. Unpickling runs code, so it is on by default only for a
    private server (Manager's own trust model: only your processes reach
    it) and off when connecting to a shared one.

    ``timeout`` is the deadline of each call in seconds. ``server`` names the
    statehub-server binary and ``server_args`` adds flags (e.g.
    ``["--lease_ttl=5s"]``) for a private server. ``data_dir`` (a path) makes
    a private server durable: it keeps its state there (``--data_dir``,
    created if missing), so a later private manager on the same directory
    finds every object as it was left (docs/durability.md); it is a
    ValueError with :meth:`connect`. ``ctx`` is the multiprocessing context
    of the Python host (see :meth:`register`) and of its pools.

    ``authkey`` is the Python host's, as BaseManager's (default:
    ``current_process().authkey``); the statehub server's is ``token``.

    ``transport`` is how calls travel: ``"lane"`` (statehub's own framed
    protocol on the server's usual address, the default; needs no grpcio)
    or ``"grpc"`` (``pip install 'statehub[grpc]'``). The default comes from
    ``$STATEHUB_TRANSPORT`` when set. TLS implies ``"grpc"``: the server
    serves no lane on its TLS listeners, so ``transport="lane"`` with TLS is
    a ValueError.

    ``token`` is the bearer token of a server started with
    ``--auth_token_file`` (default: ``$STATEHUB_TOKEN``, if set). ``tls``
    connects with TLS; ``tls_ca`` is the CA the server's certificate must
    chain to (default: the system's CAs), ``tls_cert`` and ``tls_key`` this
    client's certificate for mutual TLS (each a path or PEM bytes; giving
    any of them implies ``tls``). Proxies sent to child processes carry
    these and the transport, so children connect the same way.

    A manager and its proxies are safe to use from several threads.
    """

    #: What the Python host serves (Pool, and the types of register()):
    #: BaseManager's registry, typeid -> (callable, exposed,
    #: method_to_typeid, proxytype). A subclass that registers gets a copy.
    _registry: ClassVar[dict[str, tuple[Any, ...]]] = _pyhost.default_registry()

    def __init__(
        self,
        address: object = None,
        *,
        allow_pickle: bool | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        server: str | None = None,
        server_args: Sequence[str] = (),
        ctx: Any = None,
        shutdown_timeout: float = 1.0,
        data_dir: str | os.PathLike[str] | None = None,
        token: str | None = None,
        tls: bool = False,
        tls_ca: object = None,
        tls_cert: object = None,
        tls_key: object = None,
        transport: str | None = None,
        authkey: bytes | None = None,
    ) -> None:
        self._requested_address = address
        self._address: str | None = (
            normalize_address(address) if address is not None else None
        )
        self._allow_pickle = allow_pickle
        self._timeout = float(timeout)
        self._server_binary = server
        self._server_args = list(server_args)
        self._data_dir = (
            None if data_dir is None else os.path.abspath(os.fspath(data_dir))
        )
        self._ctx = ctx or multiprocessing.get_context()
        self._shutdown_timeout = shutdown_timeout
        self._authkey = authkey
        # The Python host, started on first use (register(), Pool()).
        self._host: _pyhost.PythonHost | None = None
        self._host_lock = threading.Lock()
        self._state = _INITIAL
        self._server: ServerProcess | None = None
        self._options: Options | None = None
        self._finalizer: util.Finalize | None = None
        # A private server's keep-alive, which its proxies hold too.
        self._life: ServerLife | None = None
        self._credentials = make_credentials(
            token, tls, tls_ca, tls_cert, tls_key, transport=transport
        )

    @property
    def named(self) -> NamedObjects:
        """Named objects, opened or created by name: ``m.named.dict("jobs")``."""
        return NamedObjects(self)

    # -- life cycle (BaseManager's) -----------------------------------------

    def start(self) -> None:
        """Starts a private statehub-server and connects to it.

        It listens on a Unix socket in a private temporary directory (or on
        the address given to the constructor) and is stopped by
        :meth:`shutdown`, by leaving a ``with`` block, or at exit.
        Raises ServerNotFound when there is no statehub-server binary.
        """
        self._check_initial()
        listen = None
        if self._address is not None:
            listen = self._address
        args = list(self._server_args)
        if self._data_dir is not None:
            args.insert(0, f"--data_dir={self._data_dir}")
        server = ServerProcess(self._server_binary, listen=listen, args=args)
        server.start()
        self._server = server
        self._address = normalize_address(server.address)
        allow = True if self._allow_pickle is None else self._allow_pickle
        use_credentials(self._address, self._credentials)
        self._options = Options(
            allow_pickle=allow,
            timeout=self._timeout,
            credentials=self._credentials,
            owner=os.getpid(),
        )
        self._state = _STARTED
        conn = connection_for(self._address)
        conn.attach_manager()
        note_private_server(self._address, os.getpid())
        # The server stops at shutdown(), at exit, or once this manager and
        # every proxy of the server in this process are gone: they all hold
        # its ServerLife (a dropped manager whose proxies are in use keeps
        # its server, as CPython's proxies keep their manager).
        self._life = keep_alive(self._address)
        self._finalizer = util.Finalize(
            self._life,
            _finalize_manager,
            args=(server, conn, self._shutdown_timeout),
            exitpriority=0,
        )
        conn.session_id()

    def connect(self) -> None:
        """Connects to the running server at the address given to the
        constructor; ConnectionError if it cannot be reached."""
        self._check_initial()
        if self._address is None:
            raise ValueError(
                "connect() needs the server's address: SyncManager(address)"
            )
        if self._data_dir is not None:
            raise ValueError(
                "data_dir is for a private server (Manager() or start()); the "
                f"server at {self._address} keeps its state where its own "
                "--data_dir says"
            )
        allow = False if self._allow_pickle is None else self._allow_pickle
        use_credentials(self._address, self._credentials)
        self._options = Options(
            allow_pickle=allow, timeout=self._timeout, credentials=self._credentials
        )
        conn = connection_for(self._address)
        try:
            conn.session_id()
        except BaseException:
            if conn._managers == 0:
                conn.close()  # stop its reconnect attempts
            raise
        conn.attach_manager()
        self._state = _STARTED
        # Not tied to this object's life (unlike a private server, which
        # dies with its manager as Manager's does): proxies of a connected
        # manager that was dropped keep working until shutdown() or exit.
        self._finalizer = util.Finalize(
            None,
            _finalize_manager,
            args=(None, conn, self._shutdown_timeout),
            exitpriority=0,
        )

    def shutdown(self) -> None:
        """Ends this process's session (its anonymous objects are released)
        and stops the private server, if this manager started one.
        Idempotent. The Python host (if any) stops first, with its pools."""
        if self._host is not None:
            _pyhost.stop_host(self._host)
        if self._finalizer is not None:
            self._finalizer()
        self._state = _SHUTDOWN

    def join(self, timeout: float | None = None) -> None:
        """Waits for the private server process to exit."""
        if self._server is not None and self._server.process is not None:
            self._server.process.wait(timeout)

    def __enter__(self) -> SyncManager:
        if self._state == _INITIAL:
            self.start()
        if self._state != _STARTED:
            raise multiprocessing.ProcessError("Manager has shut down")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    @property
    def address(self) -> str | None:
        """The server's address (a target such as ``unix:///...`` or
        ``host:port``)."""
        return self._address

    def __repr__(self) -> str:
        return f"<statehub.SyncManager {self._state} address={self._address!r}>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a statehub manager cannot be pickled: pass its proxies (they "
            "pickle) or its address (statehub.Manager(address)) to other "
            "processes"
        )

    def _check_initial(self) -> None:
        if self._state == _STARTED:
            raise multiprocessing.ProcessError("Already started server")
        if self._state == _SHUTDOWN:
            raise multiprocessing.ProcessError("Manager has shut down")

    def _started(self) -> tuple[str, Options]:
        if self._state != _STARTED or self._address is None or self._options is None:
            raise multiprocessing.ProcessError(
                "the statehub manager is not started: call start() or connect()"
                if self._state == _INITIAL
                else "Manager has shut down"
            )
        return self._address, self._options

    # -- objects only Python can run (issue 24) ----------------------------

    @classmethod
    def register(  # noqa: PLR0917 - BaseManager.register's signature
        cls,
        typeid: str,
        callable: Callable[..., object] | None = None,
        proxytype: Any = None,
        exposed: Sequence[str] | None = None,
        method_to_typeid: Mapping[str, str] | None = None,
        create_method: bool = True,
    ) -> None:
        """``BaseManager.register()``: objects that ``callable`` makes live in
        this manager's Python host, a ``multiprocessing.managers`` server
        process that the manager starts on first use (with its ``ctx`` and
        ``authkey``) and stops in :meth:`shutdown`. Their proxies are
        CPython's (``AutoProxy`` unless ``proxytype`` says otherwise), so
        ``exposed``, ``method_to_typeid``, ``create_method`` and pickling to
        child processes behave as with ``multiprocessing.managers``; the
        statehub server never sees them. Registering on a subclass leaves
        its base classes unchanged. Example::

            class MyManager(statehub.SyncManager): ...
            MyManager.register("Maths", MathsClass)
            with MyManager() as m:
                maths = m.Maths()
        """
        _pyhost.register(
            cls,
            typeid,
            callable=callable,
            proxytype=proxytype,
            exposed=exposed,
            method_to_typeid=method_to_typeid,
            create_method=create_method,
        )

    def _python_host(self) -> _pyhost.PythonHost:
        """The Python host of this manager, started on first use."""
        self._started()
        with self._host_lock:
            if self._host is None:
                # It stops at shutdown(), at exit (before the private
                # server: its finalizer is younger), or once this manager
                # and the hosted objects' proxies, which hold it as
                # CPython's hold their manager, are gone.
                self._host = _pyhost.start_host(
                    type(self)._registry,
                    self._authkey,
                    self._ctx,
                    max(self._shutdown_timeout, 5.0),
                )
            return self._host

    # -- opening objects ----------------------------------------------------

    def _open(
        self,
        request: objects_pb2.OpenRequest,
        proxy_class: type[BaseProxy] | None = None,
    ) -> Any:
        return self._open_response(request, proxy_class)[0]

    def _open_response(
        self,
        request: objects_pb2.OpenRequest,
        proxy_class: type[BaseProxy] | None = None,
    ) -> tuple[Any, objects_pb2.OpenResponse]:
        """Opens an object; returns its proxy (of ``proxy_class``, else the
        class registered for its type) and the server's answer."""
        address, options = self._started()
        response = connection_for(address).call(
            "Objects", "Open", request, timeout=options.timeout
        )
        token = Token(address, response.name, response.type, response.typecode)
        cls = proxy_class or proxy_type(response.type)
        held = response.name.startswith(ANONYMOUS_PREFIX)
        return cls(token, options, held=held), response

    def _encode_entries(self, out: value_pb2.ValueMap, mapping: dict[Any, Any]) -> None:
        address, options = self._started()
        out.SetInParent()
        _codec.encode_entries(mapping.items(), out.entries, address, options)

    def _encode_items(self, out: Any, items: Iterable[Any]) -> None:
        address, options = self._started()
        _codec.encode_items(items, out, address, options)

    def _dict_request(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        request = objects_pb2.OpenRequest(name=name, type=value_pb2.DICT)
        if args or kwargs:
            self._encode_entries(request.dict_init, builtins.dict(*args, **kwargs))
        return request

    def _list_request(self, name: str, sequence: Iterable[Any] | None) -> Any:
        request = objects_pb2.OpenRequest(name=name, type=value_pb2.LIST)
        if sequence is not None:
            request.list_init.SetInParent()
            items = sequence.copy() if isinstance(sequence, ListProxy) else sequence
            self._encode_items(request.list_init.items, items)
        return request

    def _namespace_request(self, name: str, kwds: dict[str, Any]) -> Any:
        request = objects_pb2.OpenRequest(name=name, type=value_pb2.NAMESPACE)
        if kwds:
            self._encode_entries(request.dict_init, kwds)
        return request

    def _value_request(self, name: str, typecode: Any, value: Any, init: bool) -> Any:
        request = objects_pb2.OpenRequest(
            name=name, type=value_pb2.VALUE, typecode=typecode or ""
        )
        if init:
            address, options = self._started()
            request.value_init.CopyFrom(_codec.encode(value, address, options))
        return request

    def _array_request(self, name: str, typecode: str | None, sequence: Any) -> Any:
        if typecode is None:
            # Open an existing array. Describe first, for ObjectNotFound: an
            # Open of a missing array without contents is a ValueError.
            self.describe(name)
            return objects_pb2.OpenRequest(name=name, type=value_pb2.ARRAY)
        if not isinstance(typecode, str):
            raise TypeError(
                f"array typecode must be a str, not {type(typecode).__name__}"
            )
        request = objects_pb2.OpenRequest(
            name=name, type=value_pb2.ARRAY, typecode=typecode
        )
        request.array_init.typecode = typecode
        self._encode_items(request.array_init.items, _array_items(typecode, sequence))
        return request

    # -- Manager's data objects (anonymous) --------------------------------

    def dict(
        self, *args: Any, cache: bool | int = False, **kwargs: Any
    ) -> DictProxy[Any, Any]:
        """A new shared dict: ``m.dict()``, ``m.dict({'a': 1})``,
        ``m.dict(a=1)``, ``m.dict([('a', 1)])``, as ``dict(...)`` takes.

        ``cache=True`` (or a number of keys to keep) serves ``d[k]``,
        ``d.get(k)`` and ``k in d`` from this process's memory after the
        first read, kept correct by the server's invalidations
        (docs/watches.md, "The near cache"). A dict with a key "cache" is
        made from a mapping: ``m.dict({'cache': 1})``."""
        return self._open(  # type: ignore[no-any-return]
            self._dict_request("", args, kwargs), cached_class(DictProxy, cache)
        )

    def list(self, sequence: Iterable[Any] = (), /) -> ListProxy[Any]:
        """A new shared list with the items of sequence: ``m.list(range(3))``."""
        return self._open(self._list_request("", sequence))  # type: ignore[no-any-return]

    def set(self, iterable: Iterable[Any] = (), /) -> SetProxy[Any]:
        """A new shared set (CPython 3.14's ``SyncManager.set()``), made from
        ``iterable``; a dict of its members to other clients (statehub._set)."""
        return self._open(  # type: ignore[no-any-return]
            self._dict_request("", (builtins.dict.fromkeys(iterable),), {}),
            SetProxy,
        )

    def Namespace(self, **kwds: Any) -> NamespaceProxy:  # noqa: N802 - Manager's name
        """A new shared namespace with the given attributes."""
        return self._open(self._namespace_request("", kwds))  # type: ignore[no-any-return]

    def Value(  # noqa: N802
        self, typecode: Any, value: Any, lock: bool = True, *, cache: bool = False
    ) -> ValueProxy[Any]:
        """A new shared value; ``typecode`` (e.g. 'i') is only shown by
        repr(), as with Manager. ``lock`` is accepted and ignored, as Manager
        does (every operation is atomic on the server). ``cache=True`` serves
        ``v.value`` from memory once read (docs/watches.md)."""
        return self._open(  # type: ignore[no-any-return]
            self._value_request("", typecode, value, True),
            cached_class(ValueProxy, cache),
        )

    def Array(self, typecode: str, sequence: Any, lock: bool = True) -> ArrayProxy[Any]:  # noqa: N802
        """A new shared fixed-length array of ``typecode`` cells, from a
        sequence (or, like multiprocessing.Array, a length: zeros)."""
        return self._open(self._array_request("", typecode, sequence))  # type: ignore[no-any-return]

    def Pool(  # noqa: N802
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
    ) -> _pyhost.PoolProxy:
        """A proxy to a new process pool in this manager's Python host, as
        Manager's ``Pool()`` is (its workers are of the manager's ``ctx``).
        The proxy pickles to child processes of every start method, where
        ``apply_async``, ``imap`` and the like work too; the pool's workers
        end with the manager (``shutdown()``, a ``with`` block, exit), or
        when the proxy's ``with`` block ends (``terminate()``).

        ``processes`` below 1 or a ``maxtasksperchild`` that is not a
        positive int raise :class:`~statehub.errors.StatehubRemoteError`,
        both the ``RemoteError`` Manager raises and the ``ValueError``
        ``multiprocessing.Pool`` raises.
        """
        # Checked here, before the host is asked, so the error can be both
        # Manager's type and ValueError (issue 14) and name the value.
        if processes is not None and processes < 1:
            raise StatehubRemoteError(
                f"Number of processes must be at least 1, not {processes!r}"
            )
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise StatehubRemoteError(
                "maxtasksperchild must be a positive int or None, not "
                f"{maxtasksperchild!r}"
            )
        return _pyhost.create(  # type: ignore[no-any-return]
            self._python_host(),
            "Pool",
            _pyhost.PoolProxy,
            (processes, initializer, initargs, maxtasksperchild),
            {},
        )

    # -- Manager's synchronization objects (anonymous) ---------------------

    def Lock(self) -> LockProxy:  # noqa: N802 - Manager's names
        """A new shared ``threading.Lock``, with robust ownership (see
        :class:`LockProxy`)."""
        return self._open(self._sync_request("", value_pb2.LOCK))  # type: ignore[no-any-return]

    def RLock(self) -> LockProxy:  # noqa: N802
        """A new shared ``threading.RLock``, owned per (process, thread)."""
        return self._open(self._sync_request("", value_pb2.RLOCK))  # type: ignore[no-any-return]

    def Condition(self, lock: LockProxy | None = None) -> ConditionProxy:  # noqa: N802
        """A new shared ``threading.Condition`` bound to lock (a shared Lock
        or RLock proxy), or to a new shared RLock if none is given."""
        return self._condition("", lock)

    def Semaphore(self, value: int = 1) -> SemaphoreProxy:  # noqa: N802
        """A new shared ``threading.Semaphore`` with value free units."""
        return self._open(self._semaphore_request("", value_pb2.SEMAPHORE, value))  # type: ignore[no-any-return]

    def BoundedSemaphore(self, value: int = 1) -> SemaphoreProxy:  # noqa: N802
        """A new shared ``threading.BoundedSemaphore``: releasing past value
        raises ValueError."""
        return self._open(  # type: ignore[no-any-return]
            self._semaphore_request("", value_pb2.BOUNDED_SEMAPHORE, value)
        )

    def Event(self) -> EventProxy:  # noqa: N802
        """A new shared ``threading.Event``."""
        return self._open(self._sync_request("", value_pb2.EVENT))  # type: ignore[no-any-return]

    def Barrier(  # noqa: N802
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> BarrierProxy:
        """A new shared ``threading.Barrier`` for parties callers. action
        and timeout live in the proxy (see :class:`BarrierProxy`): the
        caller that arrives last runs action."""
        return self._barrier("", parties, action, timeout)

    def Queue(self, maxsize: int = 0) -> QueueProxy[Any]:  # noqa: N802
        """A new shared ``queue.Queue`` (maxsize <= 0: unbounded)."""
        return self._open(self._queue_request("", value_pb2.QUEUE, maxsize))  # type: ignore[no-any-return]

    def JoinableQueue(self, maxsize: int = 0) -> JoinableQueueProxy[Any]:  # noqa: N802
        """A new shared queue with task_done() and join()."""
        return self._open(  # type: ignore[no-any-return]
            self._queue_request("", value_pb2.JOINABLE_QUEUE, maxsize)
        )

    def _sync_request(
        self, name: str, object_type: value_pb2.ObjectType
    ) -> objects_pb2.OpenRequest:
        return objects_pb2.OpenRequest(name=name, type=object_type)

    def _semaphore_request(
        self, name: str, object_type: value_pb2.ObjectType, value: int | None
    ) -> objects_pb2.OpenRequest:
        request = objects_pb2.OpenRequest(name=name, type=object_type)
        if value is not None:
            value = _as_int(value, "semaphore value")
            if value < 0:
                raise ValueError("semaphore initial value must be >= 0")
            request.semaphore_value = value
        return request

    def _queue_request(
        self, name: str, object_type: value_pb2.ObjectType, maxsize: int
    ) -> objects_pb2.OpenRequest:
        return objects_pb2.OpenRequest(
            name=name, type=object_type, maxsize=_as_int(maxsize, "maxsize")
        )

    def _condition(self, name: str, lock: LockProxy | None) -> ConditionProxy:
        address, _ = self._started()
        if lock is None:
            # Python's Condition() makes its own RLock. A named condition
            # gets a named one, "<name>/lock", which people can find by name
            # too (the server also reports a condition's lock).
            lock = self.named.RLock(f"{name}/lock") if name else self.RLock()
        elif not isinstance(lock, LockProxy):
            raise TypeError(
                "a statehub Condition needs a shared Lock or RLock (m.Lock(), "
                f"m.RLock()), not {type(lock).__name__}"
            )
        elif lock._token.address != address:
            raise ValueError("a condition and its lock must be on one server")
        request = objects_pb2.OpenRequest(
            name=name, type=value_pb2.CONDITION, condition_lock=lock._token.name
        )
        proxy, response = self._open_response(request)
        condition = cast(ConditionProxy, proxy)
        # A condition that existed may be bound to another lock: the proxy
        # then opens that one (by the name the server answered) on first use.
        if response.condition_lock == lock._token.name:
            condition._restore_extra(lock)
        else:
            condition._bind_lock_name(response.condition_lock)
        return condition

    def _barrier(
        self,
        name: str,
        parties: int | None,
        action: Callable[[], object] | None,
        timeout: float | None,
    ) -> BarrierProxy:
        if action is not None and not callable(action):
            raise TypeError("a barrier's action must be callable")
        request = objects_pb2.OpenRequest(name=name, type=value_pb2.BARRIER)
        if parties is not None:
            request.parties = _as_int(parties, "parties")
            if request.parties <= 0:
                raise ValueError("parties must be > 0")
        barrier = cast(BarrierProxy, self._open(request))
        barrier._restore_extra((action, timeout))
        return barrier

    # -- introspection -------------------------------------------------------

    def objects(
        self, prefix: str = "", *, include_anonymous: bool = False
    ) -> builtins.list[ObjectInfo]:
        """The objects whose names start with prefix, in name order
        (``Objects.List``); anonymous ones only if asked."""
        address, options = self._started()
        response = connection_for(address).call(
            "Objects",
            "List",
            objects_pb2.ListObjectsRequest(
                prefix=prefix, include_anonymous=include_anonymous
            ),
            timeout=options.timeout,
        )
        return [ObjectInfo._from_wire(info) for info in response.objects]

    def describe(self, target: str | BaseProxy) -> ObjectInfo:
        """What the server knows of one object (by name or proxy);
        ObjectNotFound if it does not exist."""
        address, options = self._started()
        name = target._token.name if isinstance(target, BaseProxy) else target
        response = connection_for(address).call(
            "Objects",
            "Describe",
            objects_pb2.DescribeRequest(name=name),
            timeout=options.timeout,
        )
        return ObjectInfo._from_wire(response.info)

    def watch(
        self,
        prefix: str = "",
        *,
        name: str | None = None,
        since: int | None = None,
        initial: bool = False,
    ) -> Watch:
        """Watches the names under ``prefix`` ("" for all): a
        :class:`statehub.Watch` whose events are ``created`` (``value`` is
        the type) and ``deleted``, with ``object`` naming the object;
        ``initial=True`` fills ``watch.initial`` with ``{name: type}`` of
        the objects there at the start. With ``name=``, watches that one
        object instead (as ``proxy.watch()``; a namespace's way, whose
        attributes are its own). ``since`` resumes after a revision.
        """
        address, options = self._started()
        if name is not None:
            return open_watch(address, options, name=name, since=since, initial=initial)
        return open_watch(address, options, prefix=prefix, since=since, initial=initial)

    def deadlocks(self) -> builtins.list[Deadlock]:
        """The deadlocks present now among the server's locks and rlocks
        (``Locks.Deadlocks``), oldest first: cycles of threads each parked
        on a lock that the next one holds. A cycle is gone once any of its
        waits ends (a timeout, a cancel, a process's end) or one of its
        locks changes hands. See also :attr:`LockState.deadlocks
        <statehub.LockState.deadlocks>` for one lock's."""
        address, options = self._started()
        response = connection_for(address).call(
            "Locks",
            "Deadlocks",
            sync_pb2.LockDeadlocksRequest(),
            timeout=options.timeout,
        )
        return [deadlock_from_wire(d) for d in response.deadlocks]


class NamedObjects:
    """Objects opened by name: get-or-create, with a type check.

    The same methods as the manager's, with the name first (positional
    only, so ``m.named.dict("jobs", name=1)`` is ``{'name': 1}``). Initial
    contents apply only if the call creates the object (atomically); an
    existing object is returned as it is. Opening an existing object as
    another type raises TypeError naming both types. Named objects live until
    :meth:`delete`.
    """

    def __init__(self, manager: SyncManager) -> None:
        self._manager = manager

    def dict(
        self, name: str, /, *args: Any, cache: bool | int = False, **kwargs: Any
    ) -> DictProxy[Any, Any]:
        """The dict called name, created from ``dict(*args, **kwargs)`` if new;
        ``cache=`` as :meth:`SyncManager.dict`."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._dict_request(_check_name(name), args, kwargs),
            cached_class(DictProxy, cache),
        )

    def list(
        self, name: str, sequence: Iterable[Any] | None = None, /
    ) -> ListProxy[Any]:
        """The list called name, created with the items of sequence if new."""
        m = self._manager
        return m._open(m._list_request(_check_name(name), sequence))  # type: ignore[no-any-return]

    def set(self, name: str, iterable: Iterable[Any] = (), /) -> SetProxy[Any]:
        """The set called name (a dict of its members), with the members of
        ``iterable`` if new."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._dict_request(_check_name(name), (builtins.dict.fromkeys(iterable),), {}),
            SetProxy,
        )

    def Namespace(self, name: str, /, **kwds: Any) -> NamespaceProxy:  # noqa: N802
        """The namespace called name, created with kwds as attributes if new."""
        m = self._manager
        return m._open(m._namespace_request(_check_name(name), kwds))  # type: ignore[no-any-return]

    def Value(  # noqa: N802
        self,
        name: str,
        typecode: Any = None,
        value: Any = _codec.MISSING,
        /,
        *,
        cache: bool = False,
    ) -> ValueProxy[Any]:
        """The value called name, created holding value (None if not given)
        if new; ``cache=`` as :meth:`SyncManager.Value`."""
        m = self._manager
        request = m._value_request(
            _check_name(name), typecode, value, value is not _codec.MISSING
        )
        return m._open(request, cached_class(ValueProxy, cache))  # type: ignore[no-any-return]

    def Array(  # noqa: N802
        self, name: str, typecode: str | None = None, sequence: Any = (), /
    ) -> ArrayProxy[Any]:
        """The array called name, created from typecode and sequence if new.
        Without a typecode it must exist already (an array's length and
        typecode are fixed when it is made)."""
        m = self._manager
        return m._open(m._array_request(_check_name(name), typecode, sequence))  # type: ignore[no-any-return]

    def Lock(self, name: str, /) -> LockProxy:  # noqa: N802
        """The Lock called name."""
        m = self._manager
        return m._open(m._sync_request(_check_name(name), value_pb2.LOCK))  # type: ignore[no-any-return]

    def RLock(self, name: str, /) -> LockProxy:  # noqa: N802
        """The RLock called name."""
        m = self._manager
        return m._open(m._sync_request(_check_name(name), value_pb2.RLOCK))  # type: ignore[no-any-return]

    def Condition(  # noqa: N802
        self, name: str, lock: LockProxy | None = None, /
    ) -> ConditionProxy:
        """The Condition called name, bound to lock if new (without a lock,
        to the RLock called ``"<name>/lock"``). An existing condition keeps
        the lock it was created with; the proxy uses that one."""
        return self._manager._condition(_check_name(name), lock)

    def Semaphore(self, name: str, value: int | None = None, /) -> SemaphoreProxy:  # noqa: N802
        """The Semaphore called name, with value units (default 1) if new."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._semaphore_request(_check_name(name), value_pb2.SEMAPHORE, value)
        )

    def BoundedSemaphore(  # noqa: N802
        self, name: str, value: int | None = None, /
    ) -> SemaphoreProxy:
        """The BoundedSemaphore called name, with value units (default 1)
        if new."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._semaphore_request(_check_name(name), value_pb2.BOUNDED_SEMAPHORE, value)
        )

    def Event(self, name: str, /) -> EventProxy:  # noqa: N802
        """The Event called name."""
        m = self._manager
        return m._open(m._sync_request(_check_name(name), value_pb2.EVENT))  # type: ignore[no-any-return]

    def Barrier(  # noqa: N802
        self,
        name: str,
        parties: int | None = None,
        /,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> BarrierProxy:
        """The Barrier called name, for parties callers if new (parties is
        needed to create it, not to open an existing one). action and
        timeout belong to this proxy (see :class:`BarrierProxy`)."""
        return self._manager._barrier(_check_name(name), parties, action, timeout)

    def Queue(self, name: str, maxsize: int = 0, /) -> QueueProxy[Any]:  # noqa: N802
        """The Queue called name, bounded by maxsize if new."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._queue_request(_check_name(name), value_pb2.QUEUE, maxsize)
        )

    def JoinableQueue(  # noqa: N802
        self, name: str, maxsize: int = 0, /
    ) -> JoinableQueueProxy[Any]:
        """The JoinableQueue called name, bounded by maxsize if new."""
        m = self._manager
        return m._open(  # type: ignore[no-any-return]
            m._queue_request(_check_name(name), value_pb2.JOINABLE_QUEUE, maxsize)
        )

    def delete(self, name: str) -> None:
        """Deletes the object called name; refs to it dangle (using them
        raises ObjectNotFound). ObjectNotFound if it does not exist."""
        address, options = self._manager._started()
        connection_for(address).call(
            "Objects",
            "Delete",
            objects_pb2.DeleteRequest(name=_check_name(name)),
            timeout=options.timeout,
        )

    def __repr__(self) -> str:
        return f"<statehub named objects of {self._manager!r}>"


def Manager(  # noqa: N802 - multiprocessing.Manager's name
    address: object = None,
    *,
    allow_pickle: bool | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    server: str | None = None,
    server_args: Sequence[str] = (),
    ctx: Any = None,
    data_dir: str | os.PathLike[str] | None = None,
    token: str | None = None,
    tls: bool = False,
    tls_ca: object = None,
    tls_cert: object = None,
    tls_key: object = None,
    transport: str | None = None,
    authkey: bytes | None = None,
) -> SyncManager:
    """A started manager, the way ``multiprocessing.Manager()`` returns one.

    With no address it starts a private statehub-server (stopped by
    ``shutdown()``, a ``with`` block, or at exit); with an address
    (``"unix:///tmp/statehub.sock"``, ``"host:port"``, a socket path or a
    ``(host, port)`` tuple) it connects to a running server. See
    :class:`SyncManager` for the options (``transport``: the lane, the
    default, or ``"grpc"``; ``token`` and ``tls*``: auth and TLS;
    ``data_dir``: a private server that keeps its state in that directory;
    ``authkey``: the Python host's, for Pool and registered types).
    """
    manager = SyncManager(
        address,
        allow_pickle=allow_pickle,
        timeout=timeout,
        server=server,
        server_args=server_args,
        ctx=ctx,
        data_dir=data_dir,
        token=token,
        tls=tls,
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        transport=transport,
        authkey=authkey,
    )
    if address is None:
        manager.start()
    else:
        manager.connect()
    return manager


def _finalize_manager(
    server: ServerProcess | None, conn: Connection, shutdown_timeout: float
) -> None:
    if server is not None:
        # The server goes away: say goodbye now rather than leave other
        # managers of this process talking to a dead socket.
        conn.close()
        note_shut_down(conn.address)
    else:
        conn.detach_manager()
    if server is not None:
        server.stop(max(shutdown_timeout, 5.0))


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        raise TypeError(f"an object name is a str, not {type(name).__name__}")
    if not name:
        raise ValueError("an object name cannot be empty (anonymous objects: m.dict())")
    return name


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)  # type: ignore[call-overload, no-any-return]
        except (TypeError, ValueError):
            raise TypeError(
                f"{what} must be an int, not {type(value).__name__}"
            ) from None
    return value


def _array_items(typecode: str, sequence: Any) -> Iterable[Any]:
    if isinstance(sequence, int) and not isinstance(sequence, bool):
        return [_ZERO.get(typecode, 0)] * sequence
    if typecode == "c" and isinstance(sequence, (bytes, bytearray)):
        return [bytes([b]) for b in sequence]
    if isinstance(sequence, ArrayProxy):
        return builtins.list(sequence)
    return cast(Iterable[Any], sequence)
