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
import os
import threading
from multiprocessing import util

from ._transport import (
    DEFAULT_TIMEOUT,
    HANDOFF_GRACE,
    TOKEN_ENVIRONMENT_VARIABLE,
    TRANSPORT_ENVIRONMENT_VARIABLE,
    TRANSPORTS,
    Connection,
    Credentials,
    ForkInterrupted,
    ManagerCount,
    Reconnected,
    Withdrawn,
    default_transport,
    make_credentials,
    normalize_address,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "HANDOFF_GRACE",
    "TOKEN_ENVIRONMENT_VARIABLE",
    "TRANSPORTS",
    "TRANSPORT_ENVIRONMENT_VARIABLE",
    "Connection",
    "Credentials",
    "ForkInterrupted",
    "ManagerCount",
    "Reconnected",
    "Withdrawn",
    "close_all",
    "connection_for",
    "connections",
    "default_transport",
    "make_credentials",
    "normalize_address",
    "use_credentials",
]

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


def connections() -> list[Connection]:
    """This process's open connections (a snapshot)."""
    pid = os.getpid()
    return [c for c in list(_connections.values()) if c.pid == pid and not c.closed]


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
