"""Exceptions raised by statehub, all rooted at :class:`StatehubError`.

A failed server call carries an error *kind* (``statehub.v1.ErrorKind``) that
names the exception a ``multiprocessing.Manager`` proxy would have raised. The
client raises a class that derives from both :class:`StatehubError` and that
builtin, so code written for Manager keeps working::

    try:
        d["missing"]
    except KeyError as e:          # also a statehub.StatehubError
        print(e)                   # 'missing'  -- like a dict's KeyError
        print(e.message)           # dict "jobs": key 'missing' not found

Every :class:`StatehubError` has these attributes:

``message``
    The server's message, naming the object: ``dict "jobs": key 'x' not found``.
``object``
    The name of the object concerned, or ``""``.
``kind``
    The error kind's name (``"KEY_ERROR"``, ...), or ``""`` for errors that
    did not come from the server's error detail (transport failures).
``code``
    The gRPC status code's name (``"NOT_FOUND"``, ...), or ``""``.

``str(e)`` is the message, except for :class:`StatehubKeyError`, whose ``args``
are ``(key,)`` as for a dict's ``KeyError`` (so ``str(e)`` is the key's
``repr``), whenever the client knows the key.
"""

from __future__ import annotations

import builtins
import multiprocessing
import threading
from multiprocessing import managers
from typing import Any

__all__ = [
    "AuthenticationError",
    "BrokenBarrierError",
    "ConnectionError",
    "DeadlineExceeded",
    "DeadlockError",
    "LimitExceeded",
    "ObjectNotFound",
    "ServerNotFound",
    "SessionError",
    "SessionLost",
    "StatehubAttributeError",
    "StatehubError",
    "StatehubIndexError",
    "StatehubKeyError",
    "StatehubRemoteError",
    "StatehubRuntimeError",
    "StatehubTypeError",
    "StatehubValueError",
    "WatchTooOld",
]


class StatehubError(Exception):
    """Root of every exception statehub raises."""

    message: str
    object: str
    kind: str
    code: str

    def __init__(
        self,
        message: str = "",
        *args: Any,
        object: str = "",
        kind: str = "",
        code: str = "",
    ) -> None:
        super().__init__(message, *args)
        self.message = message
        self.object = object
        self.kind = kind
        self.code = code


class StatehubKeyError(StatehubError, KeyError):
    """A missing dict key (kind KEY_ERROR); ``args`` are ``(key,)`` when known."""

    def __init__(
        self,
        message: str = "",
        *,
        key: Any = None,
        has_key: bool = False,
        object: str = "",
        kind: str = "KEY_ERROR",
        code: str = "",
    ) -> None:
        super().__init__(message, object=object, kind=kind, code=code)
        if has_key:
            # KeyError's str() is the repr of args[0]: make it the key, as a
            # dict does, and keep the server's words in .message.
            self.args = (key,)

    def __str__(self) -> str:
        return KeyError.__str__(self)


class StatehubIndexError(StatehubError, IndexError):
    """An index out of range (kind INDEX_ERROR)."""


class StatehubValueError(StatehubError, ValueError):
    """A bad value: a value missing from a list, a bad name (kind VALUE_ERROR)."""


class StatehubRemoteError(StatehubValueError, managers.RemoteError):
    """A bad argument that Manager reports as a ``RemoteError`` (its server
    process raised the ValueError), such as ``m.Pool(0)``.

    Also a ``ValueError``, which the same call raises without a manager, so
    code that catches either keeps working. ``str(e)`` is the message, which
    names the bad value, without RemoteError's ruled-off traceback.
    """

    def __str__(self) -> str:
        return Exception.__str__(self)


class StatehubTypeError(StatehubError, TypeError):
    """A type mismatch, e.g. opening a dict as a list (kind TYPE_ERROR)."""


class StatehubAttributeError(StatehubError, AttributeError):
    """A namespace attribute that is not set (kind ATTRIBUTE_ERROR)."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        object: str = "",
        kind: str = "ATTRIBUTE_ERROR",
        code: str = "",
    ) -> None:
        super().__init__(message, object=object, kind=kind, code=code)
        self.name = name


class StatehubRuntimeError(StatehubError, RuntimeError):
    """An operation invalid in the object's state (kind RUNTIME_ERROR), e.g.
    "dictionary changed size during iteration"."""


class ObjectNotFound(StatehubError):
    """The named object does not exist, or was deleted (kind OBJECT_NOT_FOUND)."""


class LimitExceeded(StatehubError):
    """A server limit was hit (kind LIMIT_EXCEEDED).

    ``limit`` names the server flag whose limit it was, e.g. ``"max_elements"``
    (empty when the server did not say, e.g. a message over gRPC's size cap).
    """

    def __init__(
        self,
        message: str = "",
        *,
        limit: str = "",
        object: str = "",
        kind: str = "LIMIT_EXCEEDED",
        code: str = "",
    ) -> None:
        super().__init__(message, object=object, kind=kind, code=code)
        self.limit = limit


class SessionError(StatehubError):
    """The call needed a live session and had none (kind SESSION_ERROR).

    The client renews its session and retries once by itself; this reaches
    you only when that failed too.
    """


class SessionLost(SessionError):
    """This process's session ended while the client was away, and what
    only that session could hold is gone.

    Raised when the client reconnects and gets a *new* session instead of
    resuming its own (the server restarted without ``--data_dir``, or the
    client was cut off longer than the lease), and the old session held
    something the new one cannot take back: locks, rlock levels or
    semaphore units this process acquired and had not released (the server
    released them; another process may hold them now), or anonymous
    objects that no longer exist. The message names them.

    When it is raised (docs/durability.md, "Clients"): every thread of the
    process that existed at the loss gets it once, from its next call (or
    from the call it was making, which is not retried); and a ``release()``
    of a lost acquisition raises it every time and never reaches the server,
    so it cannot release what another process holds now. After that, calls
    go on under the new session: proxies of named objects keep working.

    Attributes: ``session_id`` (the session that ended), ``new_session_id``,
    ``released`` (the names of the locks and semaphores whose holds were
    lost) and ``objects`` (the anonymous objects that are gone).
    """

    def __init__(
        self,
        message: str = "",
        *,
        session_id: str = "",
        new_session_id: str = "",
        released: tuple[str, ...] = (),
        objects: tuple[str, ...] = (),
        object: str = "",
        kind: str = "SESSION_ERROR",
        code: str = "",
    ) -> None:
        super().__init__(message, object=object, kind=kind, code=code)
        self.session_id = session_id
        self.new_session_id = new_session_id
        self.released = released
        self.objects = objects


class BrokenBarrierError(StatehubError, threading.BrokenBarrierError):
    """The barrier is broken (kind BROKEN_BARRIER)."""


class DeadlockError(StatehubError, RuntimeError):
    """A lock acquire that would deadlock (kind DEADLOCK), raised only by a
    server run with ``--deadlock=fail``.

    The acquire (of a Lock or RLock, or a Condition wait's reacquire) would
    have closed a cycle of waits: this thread would wait for a lock whose
    holder waits, through the other locks of the cycle, for a lock this
    thread holds. The acquire fails at once instead of parking, so the lock
    is **not** held; the locks this thread held before it still are, and
    releasing one of them breaks the cycle for the others. The message names
    every lock and holder of the cycle. Also a ``RuntimeError``, which
    Python raises for a lock used wrongly. Under the server's default
    ``--deadlock=report`` the waits stay parked and the cycle shows in
    :meth:`statehub.SyncManager.deadlocks` instead.
    """


class WatchTooOld(StatehubError):
    """A watch cannot go on without a gap (kind WATCH_TOO_OLD): the changes
    after the revision it resumes from are no longer kept by the server, or
    its reader fell too far behind.

    ``revision`` is the server's revision and ``oldest_revision`` the oldest
    one a watch can resume from. Read the current state (``initial=True``)
    and watch again from there.
    """

    revision: int
    oldest_revision: int

    def __init__(
        self,
        message: str = "",
        *args: Any,
        revision: int = 0,
        oldest_revision: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, *args, **kwargs)
        self.revision = revision
        self.oldest_revision = oldest_revision


class AuthenticationError(StatehubError, multiprocessing.AuthenticationError):
    """No or a wrong token (kind UNAUTHENTICATED).

    Also a ``multiprocessing.AuthenticationError``, which a Manager raises
    for a wrong authkey.
    """


class ConnectionError(StatehubError, builtins.ConnectionError):
    """The server could not be reached, or the call broke in transit.

    Also the builtin ``ConnectionError`` (an ``OSError``), as a Manager whose
    server is gone raises ``BrokenPipeError`` or ``ConnectionRefusedError``.
    An operation that failed this way may or may not have been applied.
    """


class DeadlineExceeded(ConnectionError, builtins.TimeoutError):
    """The call did not finish within its deadline (gRPC DEADLINE_EXCEEDED)."""


class ServerNotFound(StatehubError, FileNotFoundError):
    """No ``statehub-server`` binary to start a private server with."""


_BY_KIND: dict[str, type[StatehubError]] = {
    "KEY_ERROR": StatehubKeyError,
    "INDEX_ERROR": StatehubIndexError,
    "VALUE_ERROR": StatehubValueError,
    "TYPE_ERROR": StatehubTypeError,
    "ATTRIBUTE_ERROR": StatehubAttributeError,
    "RUNTIME_ERROR": StatehubRuntimeError,
    "OBJECT_NOT_FOUND": ObjectNotFound,
    "LIMIT_EXCEEDED": LimitExceeded,
    "SESSION_ERROR": SessionError,
    "BROKEN_BARRIER": BrokenBarrierError,
    "UNAUTHENTICATED": AuthenticationError,
    "DEADLOCK": DeadlockError,
    "WATCH_TOO_OLD": WatchTooOld,
}


def error_for_kind(
    kind: str,
    message: str,
    *,
    object: str = "",
    limit: str = "",
    code: str = "",
    key: Any = None,
    has_key: bool = False,
    attribute: str | None = None,
) -> StatehubError:
    """Builds the exception for a server error kind (the one mapping table).

    An unknown or unspecified kind gives a plain :class:`StatehubError`.
    """
    cls = _BY_KIND.get(kind)
    if cls is StatehubKeyError:
        return StatehubKeyError(
            message, key=key, has_key=has_key, object=object, code=code
        )
    if cls is StatehubAttributeError:
        return StatehubAttributeError(message, name=attribute, object=object, code=code)
    if cls is LimitExceeded:
        return LimitExceeded(message, limit=limit, object=object, code=code)
    if cls is None:
        return StatehubError(message, object=object, kind=kind, code=code)
    return cls(message, object=object, kind=kind, code=code)


def restated(error: StatehubError, message: str) -> StatehubError:
    """An exception like ``error`` that says ``message`` instead: the same
    kind, object, limit and code when the server gave a kind, else the same
    class and code."""
    if error.kind:
        return error_for_kind(
            error.kind,
            message,
            object=error.object,
            limit=getattr(error, "limit", ""),
            code=error.code,
        )
    return type(error)(message, code=error.code)
