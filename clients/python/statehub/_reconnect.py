"""The lane's reconnects: noticing at once that the server went away,
getting the session back in the background, and what happens to the calls
that were in flight (docs/durability.md, "Clients").

- :class:`Watcher`, a daemon thread per connection, waits on the primary
  link (the one that owns the session). The server sends nothing there
  unasked, so the link becoming readable means it closed (the server died
  or shut down) or that a frame nobody waits for came (read and dropped).
  When the primary is lost the watcher reconnects at once, HELLO resuming
  the session, and again with a backoff (20 ms doubling, at most a quarter
  of the lease and 1 s) until the server answers or the connection is
  closed. A server restarted with ``--data_dir`` recovers the session with
  a fresh lease, so a process that makes no call meanwhile (a lock held
  while it computes) still resumes it in time.
- A call that could not open a link waits for the server if it went away
  just now (:func:`await_reconnect`). A call whose link broke
  (:class:`LinkBroken`) is handled by :func:`after_break`: it waits for the
  session to come back (up to :data:`RECONNECT_WAIT` after the loss, and
  its own deadline), then a parked call is made again by its proxy
  (``Reconnected``) if it is one of :data:`REPARKABLE`, a call that never
  reached the server or only reads is retried once, and so is a numbered
  call (one that changes state, numbered where the server's WELCOME
  advises it: the server answers it once per session, so a retry in the
  same session gets the first answer if the call ran); any other raises
  ConnectionError naming it: it may have been applied already.
- A reconnect that gets a new session raises SessionLost where
  statehub._held says.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any, Protocol

from . import _transport, errors
from ._frames import ERROR, READ_ONLY, Link, LinkError
from ._held import Held


class Session(Protocol):
    """What reconnecting reads and does of a lane connection's session
    (statehub._lane_session.LaneSession)."""

    primary: Link | None
    primary_lock: threading.Lock
    id: str
    ttl: float | None
    lost_at: float | None

    def ensure(self) -> str: ...
    def check_primary(self) -> None: ...
    def lose_primary(self, primary: Link) -> None: ...


class Watched(Protocol):
    """What the watcher reads of a lane connection."""

    address: str
    closed: bool


class LaneConnection(Protocol):
    """What reconnecting reads and does of a lane connection
    (statehub._lane.LaneConnection): this module is the part of it that
    deals with a server that went away, kept apart from its calls."""

    address: str
    closed: bool
    held: Held

    @property
    def session(self) -> Session: ...

    def _broken(self, cause: BaseException) -> errors.StatehubError: ...

#: How long after the server went away calls wait for it to come back
#: (then they fail at once with ConnectionError; the watcher goes on).
RECONNECT_WAIT = 15.0
#: The first wait between reconnect attempts; it doubles from there.
_FIRST_BACKOFF = 0.02
#: The longest wait between reconnect attempts (and at most ttl / 4).
_MAX_BACKOFF = 1.0
#: How often the watcher looks again at a primary that says nothing (it is
#: woken sooner when the primary closes or is replaced).
_WATCH_SLICE_MS = 5000

#: Calls that change nothing (their ``(statehub.v1.read_only)`` option):
#: retried once when their connection broke after they were sent. (Any
#: other call is retried only if it was numbered.)
SAFE_TO_REPEAT = READ_ONLY


#: Parked calls made again after a reconnect: waits that change nothing
#: (an event's or a join's), a condition wait (which ends as a spurious
#: wakeup), acquires (the proxy first checks whether the server had granted
#: it), and a get (an item served in the instant before the server died is
#: lost either way: failing would not give it back). A put and a barrier
#: arrival are not: they may have been applied, so they fail like writes
#: (a put is numbered where the server advises it, and then retried).
REPARKABLE = frozenset(
    {
        ("Events", "Wait"),
        ("Queues", "Join"),
        ("Conditions", "Wait"),
        ("Locks", "Acquire"),
        ("Semaphores", "Acquire"),
        ("Queues", "Get"),
    }
)


def made_again(rpc: tuple[str, str], parked: bool) -> bool:
    """Whether a call of ``rpc`` that was not numbered may be made again
    after its connection broke: a parked call of REPARKABLE (its proxy
    parks it again), or a call that only reads. Both transports ask."""
    return rpc in (REPARKABLE if parked else SAFE_TO_REPEAT)


class LinkBroken(Exception):
    """A call's link broke. ``sent``: the whole REQUEST frame was written
    (the server may have run it), rather than failing to go out."""

    def __init__(self, cause: BaseException, *, sent: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.sent = sent


def backoff_cap(ttl: float | None) -> float:
    """The longest wait between two reconnect attempts."""
    return min(_MAX_BACKOFF, ttl / 4.0) if ttl else _MAX_BACKOFF


def await_session(conn: LaneConnection, deadline: float | None) -> None:
    """Waits until ``conn`` has a live session again, trying to reconnect
    with a backoff, until ``deadline`` (monotonic; None: none) or
    RECONNECT_WAIT after the server went away. Raises ConnectionError if it
    does not come back in time, or the server's refusal."""
    session = conn.session
    lost_at = session.lost_at if session.lost_at is not None else time.monotonic()
    limit = lost_at + RECONNECT_WAIT
    if deadline is not None:
        limit = min(limit, deadline)
    backoff = _FIRST_BACKOFF
    while True:
        if conn.closed:
            raise conn._broken(LinkError("closed"))
        try:
            session.ensure()
            return
        except errors.ConnectionError as failed:
            if isinstance(failed, errors.DeadlineExceeded):
                raise
            last = failed
        remaining = limit - time.monotonic()
        if remaining <= 0:
            raise errors.ConnectionError(
                f"statehub-server at {conn.address} went away and did not come "
                f"back in time: {last.message}",
                code="UNAVAILABLE",
            ) from None
        time.sleep(min(backoff, remaining))
        backoff = min(backoff * 2, backoff_cap(session.ttl))


def await_reconnect(
    conn: LaneConnection, failed: errors.ConnectionError, deadline: float | None
) -> None:
    """A call could not open a link (``failed``; nothing was sent): waits
    for the server if it went away less than RECONNECT_WAIT ago, else
    briefly (the server's connections close one by one as it dies, so the
    primary may look alive an instant longer). A server that was never
    reached, or is gone for longer, fails at once."""
    session = conn.session
    session.check_primary()
    if session.primary is not None:
        # The primary looks alive but a new link failed: the server may be
        # dying, its primary not closed yet.
        time.sleep(_FIRST_BACKOFF)
        session.check_primary()
        if session.primary is not None:
            return  # alive after all: the call tries once more
    lost_at = session.lost_at
    if lost_at is None or time.monotonic() - lost_at >= RECONNECT_WAIT:
        raise failed
    await_session(conn, deadline)


def after_break(
    conn: LaneConnection,
    broken: LinkBroken,
    rpc: tuple[str, str],
    request: Any,
    *,
    parked: bool,
    deadline: float | None,
    numbered_in: str = "",
) -> None:
    """Decides what becomes of a call whose link broke: returns if it is to
    be sent again; raises Reconnected for a parked call (its proxy makes it
    again), SessionLost, or ConnectionError. ``numbered_in``: the session
    a numbered call was sent in ("" for a call that is not numbered)."""
    if conn.closed:
        raise conn._broken(broken.cause) from None
    conn.session.check_primary()
    name = getattr(request, "name", "")
    on = f' on "{name}"' if name else ""
    if numbered_in and broken.sent:
        # The server answers a numbered call once per session: sent again
        # in the same session, it gets the first answer if it ran.
        await_session(conn, deadline)
        if conn.session.id == numbered_in:
            return
        conn.held.check()
        raise errors.ConnectionError(
            f"statehub-server at {conn.address}: the connection broke during "
            f"{rpc[0]}.{rpc[1]}{on} ({broken.cause}), and the session it ran "
            "in has ended (the server restarted without --data_dir, or the "
            "lease ran out): it may or may not have been applied",
            object=name,
            code="UNAVAILABLE",
        ) from None
    if broken.sent and not made_again(rpc, parked):
        raise errors.ConnectionError(
            f"statehub-server at {conn.address}: the connection broke during "
            f"{rpc[0]}.{rpc[1]}{on} ({broken.cause}); it may or may not have "
            "been applied, and it is not retried because it changes state "
            "(the server numbers calls only where a session can outlive its "
            "connection: with --data_dir, or over TCP)",
            object=name,
            code="UNAVAILABLE",
        ) from None
    await_session(conn, deadline)
    conn.held.check()
    if parked and broken.sent:
        raise _transport.Reconnected()


class Watcher:
    """The thread that notices a lost primary and reconnects (see the module
    docstring). Started with the first session; ends when the connection is
    closed."""

    def __init__(
        self, conn: Watched, session: Session, restore_timeout: float
    ) -> None:
        self._conn = conn
        self._session = session
        self._restore_timeout = restore_timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"statehub-watch {conn.address}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Wakes the thread so it sees the connection closed (no join)."""
        self._stop.set()

    def _run(self) -> None:
        conn, session = self._conn, self._session
        backoff = _FIRST_BACKOFF
        while not conn.closed and not self._stop.is_set():
            primary = session.primary
            if primary is not None:
                backoff = _FIRST_BACKOFF
                if self._lost(primary):
                    session.lose_primary(primary)
                continue
            try:
                session.ensure()
                continue
            except Exception:
                pass  # away, or refusing us for now: try again
            self._stop.wait(backoff)
            backoff = min(backoff * 2, backoff_cap(session.ttl))

    def _lost(self, primary: Link) -> bool:
        """Waits until ``primary`` closes (True), or is replaced or the
        connection closed (False)."""
        conn, session = self._conn, self._session
        poller = select.poll()
        try:
            poller.register(primary.sock, select.POLLIN)
        except (OSError, ValueError):
            return session.primary is primary  # closed under us
        while not conn.closed and session.primary is primary:
            if poller.poll(_WATCH_SLICE_MS) and self._closed(primary):
                return True
        return False

    def _closed(self, primary: Link) -> bool:
        """The primary is readable: whether it closed. Frames nobody waits
        for (a late PONG, a connection-level ERROR before the server closes,
        an EVENT) are read and dropped; a keepalive in progress reads its own
        PONG (it holds the primary's lock meanwhile)."""
        conn, session = self._conn, self._session
        with session.primary_lock:
            if session.primary is not primary or conn.closed:
                return False
            try:
                peeked = primary.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return False  # already read by a keepalive
            except OSError:
                return True
            if not peeked:
                return True
            try:
                primary.set_timeout(0.001)
                while True:
                    request_id, kind, _ = primary.read_frame()
                    if request_id == 0 and kind == ERROR:
                        continue  # the server closes next
            except TimeoutError:
                return False
            except (OSError, LinkError):
                return True
            finally:
                with contextlib.suppress(OSError):
                    primary.set_timeout(self._restore_timeout)
