"""What every transport provides: the Connection interface whose ``call``
is the funnel every rpc goes through, the credentials a connection is
made with, and the exceptions and constants the funnels share.

The transports (``_lane.py``, ``_grpc.py``) implement it; the registry
that finds a process's connection to a server is ``_connection.py``, which
creates them. Nothing here imports either, so the transports depend on
this module alone.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Protocol

from ._held import Held
from ._proto import session_pb2, value_pb2
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

#: The Goodbye that ends this process's session when it exits normally or
#: its manager shuts down. It leaves the Lock holdings and semaphore units of
#: the session taken, for another process to release, as a
#: multiprocessing.Manager client's exit does; a process that dies without
#: it (killed, crashed) has them released, the next acquirer told
#: owner_died (docs/python.md, "Locks of a process that exits").
GOODBYE = session_pb2.Goodbye(leave_locks=True)

# The default of Connection.call's `key`: no dict key to name.
_NO_KEY: Any = NO_KEY


#: The private servers (statehub.Manager() without an address) this process
#: has proxies of: address -> the pid of the process whose manager started
#: it, and which stops it.
_private_owners: dict[str, int] = {}
#: Those of them a manager of this process has shut down.
_shut_down: set[str] = set()


def note_private_server(address: str, owner: int) -> None:
    """Records that ``address`` is a private server that process ``owner``
    started (for :func:`cannot_open_session`)."""
    _private_owners[address] = owner
    _shut_down.discard(address)


def note_shut_down(address: str) -> None:
    """Records that this process shut the private server at ``address``
    down."""
    _shut_down.add(address)


def cannot_open_session(address: str, why: object) -> str:
    """The message of a session that could not be opened because the
    server at ``address`` could not be reached (``why``), saying what became
    of it if it was a private server (both transports say it so)."""
    return (
        f"cannot open a session with statehub-server at {address}: {why}"
        f"{_why_unreachable(address)}"
    )


def _why_unreachable(address: str) -> str:
    """What became of the server at ``address`` if it was a private one,
    to end an error message with ("" for any other server)."""
    owner = _private_owners.get(address)
    if owner is None:
        return ""
    if owner == os.getpid():
        if address in _shut_down:
            return (
                "; it was the private server of a statehub manager of this "
                "process, which was shut down (shutdown(), the end of its with "
                "block, or the manager and all its proxies were dropped)"
            )
        return ""
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return (
            "; it was the private server of the statehub manager of process "
            f"{owner}, which has exited (a private server ends with the "
            "process that started it)"
        )
    except OSError:
        pass
    return (
        "; it is the private server of the statehub manager of process "
        f"{owner}, which has shut it down"
    )


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

    def call_wire(
        self,
        service: str,
        method: str,
        message_type: Any,
        name: str,
        body: bytes,
        *,
        timeout: float | None = None,
        key: Any = _NO_KEY,
        attribute: str | None = None,
    ) -> bytes:
        """:meth:`call` of an rpc that does not park, with its request in
        wire form (``body``: a ``message_type`` message naming object
        ``name``, see statehub._wire) and its response returned in wire
        form, for the hot calls that statehub._wire reads without building
        messages."""
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

    def open_watch(self, request: Any) -> Any:
        """Starts a watch (a ``statehub.v1.WatchRequest``) on a stream of
        its own: a statehub._watch.WatchStream. Raises ConnectionError if
        the server cannot be reached."""
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
