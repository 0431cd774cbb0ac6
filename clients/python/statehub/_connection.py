"""One connection per process and server: the gRPC channel, the session, and
the call funnel every rpc goes through.

A process talks to a server through exactly one :class:`Connection`, found by
:func:`connection_for`, keyed by address and created lazily. Connections
belong to the process that made them: a forked child never touches its
parent's channel or session (the registry is emptied in the child at fork),
and opens its own on first use, as the design requires.

Each connection has a session (``_session.py``): a lease kept by a stream
that a background thread runs. Every unary call carries the session id as
``statehub-session`` metadata.

Fork safety: with ``GRPC_ENABLE_FORK_SUPPORT`` set (``statehub/__init__.py``
sets it), grpcio pauses its own threads around ``fork()``, but a bidi stream
that is live at that moment makes some children hang (measured: about one fork
in five with grpcio 1.85). So before a fork the session stream is half-closed
(the server keeps the session for its lease), and after it the parent
reconnects and resumes the same session in the background.

Thread safety: a Connection is safe to share between threads.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from multiprocessing import util
from typing import Any

import grpc

from . import _metrics, errors
from ._proto import (
    cell_pb2_grpc,
    dict_pb2_grpc,
    list_pb2_grpc,
    namespace_pb2_grpc,
    objects_pb2,
    objects_pb2_grpc,
    queue_pb2_grpc,
    session_pb2_grpc,
    sync_pb2_grpc,
    value_pb2,
)
from ._session import Session, transport_error

SESSION_METADATA_KEY = "statehub-session"
ERROR_METADATA_KEY = "statehub-error-bin"
AUTHORIZATION_METADATA_KEY = "authorization"
#: The environment variable a token is read from when none is given.
TOKEN_ENVIRONMENT_VARIABLE = "STATEHUB_TOKEN"

#: Default deadline of one call, in seconds.
DEFAULT_TIMEOUT = 60.0

_STUBS: dict[str, Callable[[grpc.Channel], Any]] = {
    "Objects": objects_pb2_grpc.ObjectsStub,
    "Dicts": dict_pb2_grpc.DictsStub,
    "Lists": list_pb2_grpc.ListsStub,
    "Namespaces": namespace_pb2_grpc.NamespacesStub,
    "Values": cell_pb2_grpc.ValuesStub,
    "Arrays": cell_pb2_grpc.ArraysStub,
    "Locks": sync_pb2_grpc.LocksStub,
    "Conditions": sync_pb2_grpc.ConditionsStub,
    "Semaphores": sync_pb2_grpc.SemaphoresStub,
    "Events": sync_pb2_grpc.EventsStub,
    "Barriers": sync_pb2_grpc.BarriersStub,
    "Queues": queue_pb2_grpc.QueuesStub,
}

_SessionsStub: Callable[[grpc.Channel], Any] = session_pb2_grpc.SessionsStub

# A key passed to the funnel so a KEY_ERROR can carry it, as dict's KeyError.
_NO_KEY: Any = object()


def normalize_address(address: object) -> str:
    """Returns the gRPC target for a server address.

    Accepts ``"unix:///path"``, ``"host:port"``, a filesystem path of a Unix
    socket (``"/tmp/statehub.sock"``, or an ``os.PathLike``), or Manager's
    ``(host, port)`` tuple.
    """
    if isinstance(address, tuple):
        host, port = address
        return f"{host or '127.0.0.1'}:{int(port)}"
    if isinstance(address, os.PathLike):
        address = os.fspath(address)
    if not isinstance(address, str) or not address:
        raise TypeError(
            "a statehub address is 'unix:///path', 'host:port', a socket path "
            f"or a (host, port) tuple, not {address!r}"
        )
    if address.startswith("unix:"):
        return address
    if address.startswith("/"):
        return "unix://" + address
    return address


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How this process proves itself to one server, and checks the server.

    ``token`` is the bearer token of a server started with
    ``--auth_token_file``. ``tls`` connects with TLS: ``tls_ca`` (PEM) is the
    CA the server's certificate must chain to (None: the system's CAs), and
    ``tls_cert``/``tls_key`` (PEM) are this client's certificate for a server
    that requires one (``--tls_client_ca``). Travels with pickled proxies, so
    child processes connect the way their parent did.
    """

    token: str | None = None
    tls: bool = False
    tls_ca: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None

    def __repr__(self) -> str:
        # Never print the secrets.
        return (
            f"Credentials(token={'***' if self.token else None}, tls={self.tls}, "
            f"client_cert={self.tls_cert is not None})"
        )

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries."""
        if not self.token:
            return ()
        return ((AUTHORIZATION_METADATA_KEY, f"Bearer {self.token}"),)

    def channel(self, address: str) -> grpc.Channel:
        """A new channel to ``address`` with these credentials."""
        if not self.tls:
            return grpc.insecure_channel(address, options=_channel_options())
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca,
            private_key=self.tls_key,
            certificate_chain=self.tls_cert,
        )
        return grpc.secure_channel(address, credentials, options=_channel_options())


def _pem(value: object, what: str) -> bytes | None:
    """PEM bytes given as bytes, or read from a path."""
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (str, os.PathLike)):
        with open(value, "rb") as pem:
            return pem.read()
    raise TypeError(f"{what} is a path or PEM bytes, not {type(value).__name__}")


def make_credentials(
    token: str | None,
    tls: bool,
    tls_ca: object,
    tls_cert: object,
    tls_key: object,
) -> Credentials:
    """Credentials from Manager's arguments: the token, else
    ``$STATEHUB_TOKEN``; TLS if asked for or if any ``tls_*`` is given."""
    if token is None:
        token = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None
    elif not isinstance(token, str):
        raise TypeError(f"token is a str, not {type(token).__name__}")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together (mutual TLS)")
    return Credentials(
        token=token or None,
        tls=bool(tls) or any(v is not None for v in (tls_ca, tls_cert, tls_key)),
        tls_ca=_pem(tls_ca, "tls_ca"),
        tls_cert=_pem(tls_cert, "tls_cert"),
        tls_key=_pem(tls_key, "tls_key"),
    )


def _channel_options() -> list[tuple[str, Any]]:
    from . import __version__

    return [
        # The server enforces its own --max_message_bytes; gRPC's default
        # 4 MiB receive cap would refuse a large d.copy() on our side.
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
        ("grpc.primary_user_agent", f"statehub-python/{__version__}"),
    ]


class Connection:
    """A process's channel and session to one server."""

    def __init__(self, address: str, credentials: Credentials) -> None:
        self.address = address
        self.pid = os.getpid()
        self.credentials = credentials
        self.auth_metadata = credentials.metadata
        self._channel = credentials.channel(address)
        self._stubs = {name: make(self._channel) for name, make in _STUBS.items()}
        self._methods: dict[tuple[str, str], Any] = {}
        # Reentrant: a proxy's finalizer may run (from the garbage collector)
        # on a thread that already holds it.
        self._lock = threading.RLock()
        # Holds this process has on anonymous objects: name -> [type, count].
        self._holds: dict[str, list[Any]] = {}
        self._session = Session(self, _SessionsStub(self._channel))
        self._managers = 0
        self.closed = False

    # -- the funnel ---------------------------------------------------------

    def call(
        self,
        service: str,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,
        key: Any = _NO_KEY,
        attribute: str | None = None,
        parked: bool = False,
    ) -> Any:
        """Runs one unary rpc and returns its response; every rpc comes here.

        Attaches the session id, applies the deadline (``timeout`` seconds,
        default :data:`DEFAULT_TIMEOUT`) and turns a failure into the
        exception its error kind names (see :mod:`statehub.errors`). ``key``
        (a dict key) and ``attribute`` (a namespace attribute) only decorate
        a KeyError or AttributeError the way Python's own would be.

        ``parked`` marks a call that may wait on the server (an acquire, a
        wait, a blocking get): ``timeout=None`` then means no deadline at
        all, since the wait may rightly last longer than any default, and
        the call is made in its future form so that an exception raised
        while it waits (KeyboardInterrupt from Ctrl-C) cancels it on the
        server, which removes the waiter, before propagating.

        A call refused because the session had expired (SESSION_ERROR, which
        the server raises before doing anything) is retried once on a new
        session.
        """
        stub_method = self._methods.get((service, method))
        if stub_method is None:
            stub_method = getattr(self._stubs[service], method)
            self._methods[(service, method)] = stub_method
        deadline = DEFAULT_TIMEOUT if timeout is None and not parked else timeout
        metrics = _metrics.current
        started = time.monotonic() if metrics is not None else 0.0
        try:
            for attempt in range(2):
                session_id = self._session.ensure()
                metadata = ((SESSION_METADATA_KEY, session_id), *self.auth_metadata)
                try:
                    if parked:
                        return _wait_for_future(
                            stub_method.future(
                                request, metadata=metadata, timeout=deadline
                            )
                        )
                    return stub_method(request, metadata=metadata, timeout=deadline)
                except grpc.RpcError as rpc_error:
                    error = self._translate(rpc_error, key, attribute)
                    if isinstance(error, errors.SessionError) and attempt == 0:
                        self._session.renew(session_id)
                        continue
                    if error.kind:
                        # A server verdict: the gRPC plumbing adds nothing.
                        raise error from None
                    raise error from rpc_error
            raise AssertionError("unreachable")
        finally:
            if metrics is not None:
                metrics.observe_call(service, method, time.monotonic() - started)

    def _translate(
        self, rpc_error: grpc.RpcError, key: Any, attribute: str | None
    ) -> errors.StatehubError:
        code = rpc_error.code()
        message = rpc_error.details() or ""
        detail = None
        for entry in rpc_error.trailing_metadata() or ():
            if entry[0] == ERROR_METADATA_KEY:
                detail = value_pb2.ErrorDetail.FromString(entry[1])
                break
        code_name = code.name if code is not None else ""
        if detail is not None and detail.kind != value_pb2.ERROR_KIND_UNSPECIFIED:
            return errors.error_for_kind(
                value_pb2.ErrorKind.Name(detail.kind),
                message,
                object=detail.object,
                limit=detail.limit,
                code=code_name,
                key=None if key is _NO_KEY else key,
                has_key=key is not _NO_KEY,
                attribute=attribute,
            )
        if (
            code == grpc.StatusCode.RESOURCE_EXHAUSTED
            and "message larger than max" in message.lower()
        ):
            # gRPC refused the message before statehub saw it: no detail
            # names the limit, so name it here.
            return errors.LimitExceeded(
                f"statehub-server at {self.address}: the message exceeds the "
                f"server's --max_message_bytes ({message})",
                limit="max_message_bytes",
                code=code_name,
            )
        return transport_error(code, message, self.address)

    # -- holds on anonymous objects ----------------------------------------

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this process's session on ``name``."""
        with self._lock:
            entry = self._holds.get(name)
            if entry is None:
                self._holds[name] = [object_type, 1]
            else:
                entry[1] += 1

    def release(self, name: str, *, handed_off: bool = False) -> None:
        """Drops one hold on ``name``: sent, batched, on the session stream
        (after a grace period if the proxy was ``handed_off`` to another
        process: see Session.send_release).

        Safe to call from a finalizer or a weakref callback: it appends to a
        SimpleQueue (reentrant) and takes only a reentrant lock.
        """
        if self.closed:
            return
        self._session.send_release(name, handed_off=handed_off)

    def _forget_hold(self, name: str) -> None:
        with self._lock:
            entry = self._holds.get(name)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._holds[name]

    def _readopt(self) -> None:
        """After the server replaced an expired session with a new one, takes
        the holds this process had again (best effort: objects freed in
        between are gone)."""
        with self._lock:
            # One C-level copy: a finalizer run by the garbage collector
            # could otherwise change the dict while Python iterates it.
            holds = self._holds.copy()
        for name, (object_type, count) in holds.items():
            for _ in range(count):
                try:
                    self.call(
                        "Objects",
                        "Open",
                        objects_pb2.OpenRequest(name=name, type=object_type),
                    )
                except errors.StatehubError:
                    break

    # -- life cycle ---------------------------------------------------------

    def session_id(self) -> str:
        """The current session id, connecting first if needed."""
        return self._session.ensure()

    def attach_manager(self) -> None:
        """A manager of this process started using this connection."""
        with self._lock:
            self._managers += 1

    def detach_manager(self) -> None:
        """A manager shut down: the last one ends the session and closes the
        connection (managers of one process share it, and one manager's
        shutdown must not end another's session)."""
        with self._lock:
            self._managers -= 1
            last = self._managers <= 0
        if last:
            self.close()

    def close(self) -> None:
        """Ends the session (Goodbye: the server releases every hold at once)
        and closes the channel. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.pid == os.getpid():
            self._session.close()
            self._channel.close()
        _unregister(self)

    def _pause_for_fork(self) -> None:
        self._session.pause()

    def _resume_after_fork(self) -> None:
        self._session.resume()


def _wait_for_future(future: Any) -> Any:
    """The response of a call made in future form. grpcio's ``result()``
    waits in short slices, so signals are handled meanwhile; whatever
    interrupts the wait cancels the call (the server drops the waiter and
    rolls back a grant that raced with the cancellation)."""
    try:
        return future.result()
    except grpc.RpcError:
        raise
    except BaseException:
        future.cancel()
        raise


# -- the per-process registry ----------------------------------------------

_registry_lock = threading.Lock()
_connections: dict[str, Connection] = {}
# The credentials this process uses for each server address.
_credentials: dict[str, Credentials] = {}
_fork_hooks_registered = False
_atexit_registered = False
#: How many times this process has forked (since it started, or since it was
#: forked itself): a proxy alive across a fork may have been inherited.
fork_generation = 0


def use_credentials(address: str, credentials: Credentials) -> None:
    """Connects to ``address`` with ``credentials`` from now on.

    Raises ValueError if this process is connected to it with others: one
    process has one connection per server.
    """
    with _registry_lock:
        conn = _connections.get(address)
        if (
            conn is not None
            and not conn.closed
            and conn.pid == os.getpid()
            and conn.credentials != credentials
        ):
            raise ValueError(
                f"this process is already connected to {address} with other "
                "credentials (token or TLS); use the same ones"
            )
        _credentials[address] = credentials


def connection_for(address: str) -> Connection:
    """This process's connection to ``address`` (a normalized target)."""
    global _fork_hooks_registered, _atexit_registered
    conn = _connections.get(address)
    if conn is not None and not conn.closed:
        return conn
    with _registry_lock:
        conn = _connections.get(address)
        if conn is None or conn.closed:
            conn = Connection(address, _credentials.get(address, Credentials()))
            _connections[address] = conn
        if not _fork_hooks_registered:
            # Registered after grpc made its first channel, so that ours run
            # before grpc's own pre-fork handler (hooks run last-in,
            # first-out) while grpc's threads can still finish our stream.
            os.register_at_fork(
                before=_before_fork,
                after_in_parent=_after_fork_in_parent,
                after_in_child=_after_fork_in_child,
            )
            _fork_hooks_registered = True
        if not _atexit_registered:
            # Registered after grpc's import, so it runs before grpc's own
            # exit handlers; multiprocessing children run it through
            # multiprocessing.util's finalizers instead (they skip atexit).
            atexit.register(close_all)
            _register_mp_finalizer()
            _atexit_registered = True
    return conn


class _Anchor:
    """A weakref-able object for multiprocessing.util.register_after_fork."""


_anchor = _Anchor()


def _register_mp_finalizer(_: object = None) -> None:
    # exitpriority 5: after proxies, before the manager's own shutdown (0).
    util.Finalize(None, close_all, exitpriority=5)
    # A child started by multiprocessing clears the finalizers *after* it
    # unpickled its arguments (which may have connected, spawn and
    # forkserver) and then runs the after-fork hooks: register again there.
    util.register_after_fork(_anchor, _register_mp_finalizer)


def _unregister(conn: Connection) -> None:
    with _registry_lock:
        if _connections.get(conn.address) is conn:
            del _connections[conn.address]


def close_all() -> None:
    """Closes every connection of this process (Goodbye to each server)."""
    for conn in list(_connections.values()):
        if conn.pid == os.getpid():
            conn.close()


def _before_fork() -> None:
    global fork_generation
    fork_generation += 1
    _registry_lock.acquire()
    for conn in _connections.values():
        conn._pause_for_fork()


def _after_fork_in_parent() -> None:
    try:
        for conn in _connections.values():
            conn._resume_after_fork()
    finally:
        _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock, _connections, _atexit_registered
    # The parent's connections are the parent's: keep them referenced (so no
    # destructor touches grpc state in the child) but never use them.
    _orphans.extend(_connections.values())
    _connections = {}
    _registry_lock = threading.Lock()
    # multiprocessing clears its finalizers in a child it starts; register
    # ours again on first use there.
    _atexit_registered = False


_orphans: collections.deque[Connection] = collections.deque()
