"""One connection per process and server, and the registry that finds it.

A process talks to a server through exactly one connection, found by
:func:`connection_for`, keyed by address and created lazily. Its class
depends on the transport (:class:`Credentials` ``transport``):

- ``"lane"`` (the default): statehub's own framed transport on a plain
  socket (``_lane.py``, ``api/LANE.md``); needs no grpcio.
- ``"grpc"``: gRPC with its session stream (``_grpc.py``, ``_session.py``);
  needs ``pip install statehub[grpc]``. TLS is served only over gRPC, so
  ``tls=True`` implies it.

Both have the interface of :class:`Connection`, whose ``call`` is the funnel
every rpc goes through.

Connections belong to the process that made them: a forked child never uses
its parent's sockets, channel or session (the registry is emptied in the
child at fork), and opens its own on first use, as the design requires.

Thread safety: a connection is safe to share between threads.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import os
import threading
from multiprocessing import util
from typing import Any, Protocol

from ._held import Held
from ._proto import value_pb2
from ._status import NO_KEY

#: The environment variable a token is read from when none is given.
TOKEN_ENVIRONMENT_VARIABLE = "STATEHUB_TOKEN"
#: The environment variable that picks the transport when none is given.
TRANSPORT_ENVIRONMENT_VARIABLE = "STATEHUB_TRANSPORT"
#: The transports, the default first.
TRANSPORTS = ("lane", "grpc")

#: Default deadline of one call, in seconds.
DEFAULT_TIMEOUT = 60.0

#: How long the release of a proxy that may have been handed to another
#: process (pickled, or alive at a fork) is held back: time for that process
#: to start and take its own hold first, generous for a spawned child on a
#: loaded machine. Read at each release (tests shorten it).
HANDOFF_GRACE = 10.0

# Re-exported for the funnels and proxies.
_NO_KEY: Any = NO_KEY


class Withdrawn(Exception):
    """A parked call that the transport withdrew and that the proxy makes
    again for what is left of its timeout (``BaseProxy._park``)."""


class ForkInterrupted(Withdrawn):
    """A parked call that the gRPC transport cancelled so that the process
    could fork safely (see _grpc._ForkGate); the proxy makes it again."""


class Reconnected(Withdrawn):
    """A parked call whose connection broke (the server went away) and came
    back with the session resumed, or replaced with nothing lost (the lane:
    see _reconnect.py); the proxy makes it again."""


class ManagerCount:
    """The managers of one process that share a connection: the last one to
    shut down closes it (one manager's shutdown must not end another's
    session). Both transports inherit it; they provide ``_lock``,
    ``_managers`` and ``close``."""

    _lock: threading.RLock
    _managers: int

    def close(self) -> None:
        raise NotImplementedError

    def attach_manager(self) -> None:
        """A manager of this process started using this connection."""
        with self._lock:
            self._managers += 1

    def detach_manager(self) -> None:
        """A manager shut down: the last one closes the connection."""
        with self._lock:
            self._managers -= 1
            last = self._managers <= 0
        if last:
            self.close()


class Connection(Protocol):
    """What proxies and managers use of a process's connection to a server
    (both transports implement it)."""

    address: str
    pid: int
    credentials: Credentials
    closed: bool
    _managers: int
    #: What only this connection's session holds (statehub._held).
    held: Held

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
        """Runs one rpc and returns its response; every rpc comes here.

        Applies the deadline (``timeout`` seconds, default
        :data:`DEFAULT_TIMEOUT`) and turns a failure into the exception its
        error kind names (see :mod:`statehub.errors`). ``key`` (a dict key)
        and ``attribute`` (a namespace attribute) only decorate a KeyError or
        AttributeError the way Python's own would be.

        ``parked`` marks a call that may wait on the server (an acquire, a
        wait, a blocking get): ``timeout=None`` then means no deadline at
        all, and an exception raised while it waits (KeyboardInterrupt from
        Ctrl-C) cancels it on the server, which removes the waiter, before
        propagating.

        A call refused because the session had expired (SESSION_ERROR, which
        the server raises before doing anything) is retried once on a new
        session. If that new session replaced one that held locks or
        anonymous objects, SessionLost is raised as statehub._held says. A
        call whose connection broke because the server went away waits for
        it to come back, then is re-parked (raising Reconnected to its
        proxy), sent again (if it only reads, or is numbered) or failed
        with ConnectionError (the lane: statehub._reconnect; gRPC: its
        ``call``).
        """
        ...

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this process's session on ``name``."""
        ...

    def release(self, name: str, *, handed_off: bool = False) -> None:
        """Drops one hold on ``name``, sent later (after
        :data:`HANDOFF_GRACE` if the proxy was ``handed_off`` to another
        process). Safe to call from a finalizer on any thread."""
        ...

    def session_id(self) -> str:
        """The current session id, connecting first if needed."""
        ...

    def attach_manager(self) -> None:
        """A manager of this process started using this connection."""
        ...

    def detach_manager(self) -> None:
        """A manager shut down; the last one closes the connection."""
        ...

    def close(self) -> None:
        """Ends the session (everything it held is released) and closes the
        connection. Idempotent."""
        ...

    def _abandon_in_child(self) -> None:
        """In a forked child: lets go of what was inherited, without I/O."""
        ...


def normalize_address(address: object) -> str:
    """Returns the target for a server address.

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


def default_transport() -> str:
    """``$STATEHUB_TRANSPORT`` if set, else ``"lane"``."""
    value = os.environ.get(TRANSPORT_ENVIRONMENT_VARIABLE, "").strip().lower()
    if not value:
        return TRANSPORTS[0]
    if value not in TRANSPORTS:
        raise ValueError(
            f"${TRANSPORT_ENVIRONMENT_VARIABLE} is {value!r}; it is 'lane' or 'grpc'"
        )
    return value


@dataclasses.dataclass(frozen=True)
class Credentials:
    """How this process reaches one server: the transport, how it proves
    itself, and how it checks the server.

    ``transport`` is ``"lane"`` (statehub's framed transport, the default)
    or ``"grpc"``. ``token`` is the bearer token of a server started with
    ``--auth_token_file``. ``tls`` connects with TLS (over gRPC: the server
    serves no lane on TLS listeners): ``tls_ca`` (PEM) is the CA the
    server's certificate must chain to (None: the system's CAs), and
    ``tls_cert``/``tls_key`` (PEM) are this client's certificate for a server
    that requires one (``--tls_client_ca``). Travels with pickled proxies, so
    child processes connect the way their parent did.
    """

    token: str | None = None
    tls: bool = False
    tls_ca: bytes | None = None
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    transport: str = dataclasses.field(default_factory=default_transport)

    def __repr__(self) -> str:
        # Never print the secrets.
        return (
            f"Credentials(transport={self.transport!r}, "
            f"token={'***' if self.token else None}, tls={self.tls}, "
            f"client_cert={self.tls_cert is not None})"
        )


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
    *,
    transport: str | None = None,
) -> Credentials:
    """Credentials from Manager's arguments: the token, else
    ``$STATEHUB_TOKEN``; TLS if asked for or if any ``tls_*`` is given; the
    transport, else ``$STATEHUB_TRANSPORT``, else the lane (gRPC with TLS)."""
    if token is None:
        token = os.environ.get(TOKEN_ENVIRONMENT_VARIABLE) or None
    elif not isinstance(token, str):
        raise TypeError(f"token is a str, not {type(token).__name__}")
    if (tls_cert is None) != (tls_key is None):
        raise ValueError("tls_cert and tls_key go together (mutual TLS)")
    use_tls = bool(tls) or any(v is not None for v in (tls_ca, tls_cert, tls_key))
    if transport is None:
        chosen = "grpc" if use_tls else default_transport()
    elif transport in TRANSPORTS:
        chosen = transport
    else:
        raise ValueError(f"transport is 'lane' or 'grpc', not {transport!r}")
    if use_tls and chosen != "grpc":
        raise ValueError(
            "TLS needs transport='grpc': statehub-server serves no lane on "
            "its TLS listeners (tls=True or tls_* given)"
        )
    return Credentials(
        token=token or None,
        tls=use_tls,
        tls_ca=_pem(tls_ca, "tls_ca"),
        tls_cert=_pem(tls_cert, "tls_cert"),
        tls_key=_pem(tls_key, "tls_key"),
        transport=chosen,
    )


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
                "credentials (token, TLS or transport); use the same ones"
            )
        _credentials[address] = credentials


def _new_connection(address: str, credentials: Credentials) -> Connection:
    if credentials.transport == "grpc":
        try:
            from ._grpc import GrpcConnection
        except ImportError as missing:
            raise ImportError(
                "statehub's gRPC transport needs grpcio: pip install 'statehub[grpc]' "
                f"({missing})"
            ) from missing
        return GrpcConnection(address, credentials)
    from ._lane import LaneConnection

    return LaneConnection(address, credentials)


def connection_for(address: str) -> Connection:
    """This process's connection to ``address`` (a normalized target)."""
    global _fork_hooks_registered, _atexit_registered
    conn = _connections.get(address)
    if conn is not None and not conn.closed:
        return conn
    with _registry_lock:
        conn = _connections.get(address)
        if conn is None or conn.closed:
            credentials = _credentials.get(address) or Credentials()
            conn = _new_connection(address, credentials)
            _connections[address] = conn
        if not _fork_hooks_registered:
            # The gRPC transport registers its own pause/resume hooks later
            # (after grpc's import), so that they run before grpc's.
            os.register_at_fork(
                before=_before_fork,
                after_in_parent=_after_fork_in_parent,
                after_in_child=_after_fork_in_child,
            )
            _fork_hooks_registered = True
        if not _atexit_registered:
            # multiprocessing children run it through multiprocessing.util's
            # finalizers instead (they skip atexit).
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


def unregister(conn: Connection) -> None:
    """Removes a closed connection from the registry."""
    with _registry_lock:
        if _connections.get(conn.address) is conn:
            del _connections[conn.address]


def connections() -> list[Connection]:
    """This process's open connections (a snapshot)."""
    return [c for c in list(_connections.values()) if c.pid == os.getpid()]


def close_all() -> None:
    """Closes every connection of this process (ending each session)."""
    for conn in connections():
        conn.close()


def _before_fork() -> None:
    global fork_generation
    fork_generation += 1
    _registry_lock.acquire()


def _after_fork_in_parent() -> None:
    _registry_lock.release()


def _after_fork_in_child() -> None:
    global _registry_lock, _connections, _atexit_registered
    # The parent's connections are the parent's: never used here. Each
    # drops what the child inherited without any I/O (a lane connection
    # closes its copies of the socket descriptors, so a parent that dies
    # ends its session at once even while this child lives; a gRPC one is
    # only kept referenced, so no destructor touches grpc state here).
    parents = list(_connections.values())
    _orphans.extend(parents)
    for conn in parents:
        conn._abandon_in_child()
    _connections = {}
    _registry_lock = threading.Lock()
    # multiprocessing clears its finalizers in a child it starts; register
    # ours again on first use there.
    _atexit_registered = False


_orphans: collections.deque[Connection] = collections.deque()
