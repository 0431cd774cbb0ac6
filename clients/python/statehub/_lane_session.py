"""The session half of a lane connection (``statehub._lane``): the
**primary** link that owns the session, and what travels on it.

- Opening and resuming the session: HELLO with ``resume_session_id`` on a
  new primary (:meth:`LaneSession.open`), when there is none yet, after the
  server said the session is not live, or after the primary was lost (the
  watcher of ``statehub._reconnect`` reconnects in the background). A new
  session rather than the old one back is told to ``statehub._held`` and
  the holds this process had are taken again.
- The holds of this process's session on anonymous objects, and the
  releases on their way (``statehub._releases``): RELEASE frames sent on the
  primary before the next call, or by the timer thread when one has to
  wait (``HANDOFF_GRACE``).
- Over TCP a daemon thread (the same timer thread) sends PING every
  ``ttl / 3`` on the primary, where the lease runs; on a Unix socket there
  is no keepalive: the server ends the session the moment the primary
  closes.
- GOODBYE at close (``statehub._transport.GOODBYE``: locks are left taken,
  as a Manager client's exit leaves them).

The primary carries no calls, so that no call that breaks can close it.

Lock order: :attr:`LaneSession.lock` (session changes), then
:attr:`~LaneSession.primary_lock` (frames on the primary), then the holds'
lock. Finalizers take only the holds' lock, which is reentrant.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import threading
import time
from typing import Any, Protocol

from . import _metrics, _transport, errors
from ._frames import GOODBYE, PING, PONG, RELEASE, Link, LinkError
from ._held import Held
from ._proto import lane_pb2, session_pb2, value_pb2
from ._reconnect import Watcher
from ._releases import Holds, ReleaseQueue, take_again

#: How long connecting and the HELLO may take (also the watcher's socket
#: timeout).
CONNECT_TIMEOUT = 15.0
#: Most names in one RELEASE frame.
_MAX_RELEASE_BATCH = 4096
#: Keepalive period over TCP before WELCOME has said the lease TTL.
_DEFAULT_KEEPALIVE = 1.0
#: How long close() waits for the server to finish the GOODBYE.
_GOODBYE_WAIT = 1.0
_GOODBYE_BODY = _transport.GOODBYE.SerializeToString()


class Owner(Protocol):
    """What the session uses of its connection (statehub._lane)."""

    address: str
    pid: int
    closed: bool
    held: Held

    def call(
        self, service: str, method: str, request: Any, *, checked: bool = True
    ) -> Any: ...
    def _broken(self, cause: BaseException) -> errors.StatehubError: ...
    def _dial(self, hello: lane_pb2.LaneHello) -> tuple[Link, session_pb2.Welcome]: ...
    def _drop(self, link: Link) -> None: ...
    def _retire_links(self) -> None: ...


class LaneSession:
    """The session of one LaneConnection (see the module docstring)."""

    def __init__(self, conn: Owner, lock: threading.RLock, *, unix: bool) -> None:
        self._conn = conn
        self._unix = unix
        #: Held while the session changes; the connection's own lock, which
        #: it holds to close.
        self.lock = lock
        self.primary_lock = threading.Lock()
        #: The link that owns the session; None before the first session
        #: and while it is lost.
        self.primary: Link | None = None
        #: The session id ("" before the first).
        self.id = ""
        #: The lease TTL the server gave, in seconds.
        self.ttl: float | None = None
        #: The server's advice to number calls that change state (WELCOME).
        self.number_calls = False
        #: When the primary was lost (monotonic), while it is not back.
        self.lost_at: float | None = None
        # Holds this process has on anonymous objects.
        self._holds = Holds()
        # Releases not sent yet, and ("stop",) for the timer thread.
        self._releases = ReleaseQueue()
        #: Its outbox, for the quick path's look (empty: nothing to send).
        self.outbox = self._releases.outbox
        self._thread: threading.Thread | None = None
        self._watcher: Watcher | None = None

    # -- opening and resuming ---------------------------------------------

    def ensure(self) -> str:
        """The live session's id, opening the session (the primary) if there
        is none."""
        if self.primary is not None:
            return self.id
        return self.open("")

    def open(self, stale: str) -> str:
        """Opens a session (resuming the current one if the server still has
        it) unless another thread did since ``stale`` was current."""
        conn = self._conn
        with self.lock:
            if conn.closed:
                raise conn._broken(LinkError("closed"))
            if self.primary is not None and self.id != stale:
                return self.id
            old = self.primary
            had_session = bool(self.id)
            primary, welcome = conn._dial(lane_pb2.LaneHello(resume_session_id=self.id))
            holds: dict[str, list[Any]] = {}
            new_session = welcome.session_id != self.id
            if had_session and new_session:
                # Before any call can run in the new session: what the old
                # one held is lost (statehub._held).
                conn.held.session_replaced(self.id, welcome.session_id, self.ttl)
            with self.primary_lock:
                self.primary = primary
                self.lost_at = None
                if old is not None:
                    old.shutdown()  # wakes the watcher
                    conn._drop(old)
                self.id = welcome.session_id
                self.number_calls = welcome.number_calls
                self.ttl = (
                    welcome.lease_ttl_ms / 1000.0 if welcome.lease_ttl_ms else None
                )
                if had_session:
                    # A new session, or the old one back after the primary
                    # broke: the links made before (to a server that may
                    # have gone away) are not used again.
                    conn._retire_links()
                if new_session:
                    with self._holds.lock:
                        # Releases queued for the old session are moot; the
                        # new one takes what this process holds now.
                        self._releases.clear()
                        holds = self._holds.copy()
            if not self._unix:
                self._start_thread()
            if self._watcher is None and conn.pid == os.getpid():
                self._watcher = Watcher(conn, self, CONNECT_TIMEOUT)
                self._watcher.start()
        metrics = _metrics.current
        if had_session and metrics is not None:
            metrics.reconnected(resumed=welcome.resumed)
        if had_session and new_session:
            gone: list[str] = []
            try:
                gone = self._readopt(holds)
            finally:  # settles the loss even when the readoption failed
                conn.held.objects_gone(welcome.session_id, gone)
        return welcome.session_id

    def renew(self, stale: str) -> None:
        """The server said session ``stale`` is not live: opens a new one
        (unless another thread did already)."""
        if self.id == stale:
            self.open(stale)

    def check_primary(self) -> None:
        """After a link broke: if the primary is gone too (the server went
        away), forget it, so that the next call opens a new session."""
        primary = self.primary
        if primary is None:
            return
        dead = False
        try:
            poller = select.poll()
            poller.register(primary.sock, select.POLLIN)
            events = poller.poll(0)
            if events:
                if events[0][1] & (select.POLLHUP | select.POLLERR):
                    dead = True
                else:
                    peeked = primary.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    dead = not peeked
        except BlockingIOError:
            pass
        except (OSError, ValueError):
            dead = True
        if dead:
            self.lose_primary(primary)

    def lose_primary(self, primary: Link) -> None:
        """Forgets ``primary`` (if it is still the primary): the server went
        away or stopped answering."""
        with self.lock:
            if self.primary is primary:
                self.primary = None
                self.lost_at = time.monotonic()
                primary.shutdown()  # wakes the watcher
                self._conn._drop(primary)

    def _readopt(self, holds: dict[str, list[Any]]) -> list[str]:
        conn = self._conn

        def call(service: str, method: str, request: Any) -> Any:
            return conn.call(service, method, request, checked=False)

        return take_again(call, holds)

    # -- holds on anonymous objects ----------------------------------------

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this session on ``name``."""
        self._holds.add(name, object_type)

    def release(self, name: str, *, handed_off: bool = False) -> None:
        """Drops one hold on ``name`` (see LaneConnection.release). Safe to
        call from a finalizer on any thread: no I/O, and only a reentrant
        lock and a SimpleQueue."""
        with self._holds.lock:
            self._holds.drop(name)
            self._releases.put(name, handed_off=handed_off)

    def releases_pending(self) -> bool:
        return self._releases.pending()

    def flush_releases(
        self, first: tuple[Any, ...] | None = None, *, timer: bool = False
    ) -> float | None:
        """Sends the releases that are due (``first``: one the timer thread
        already took from the queue); returns when the next held-back one is
        due (None: none is). A call skips it if another thread is sending;
        the timer thread waits its turn. Never called from a finalizer."""
        if not self.primary_lock.acquire(blocking=timer):
            return None
        try:
            names: list[str] = []
            now = time.monotonic()
            releases = self._releases
            with self._holds.lock:
                control = releases.collect(names, first)
                if control is not None:
                    releases.outbox.put(control)  # "stop", for the thread
                next_due = releases.due(names, now)
                primary = self.primary
                if primary is None and names:
                    # No session to send them on yet: keep them for the next.
                    releases.hold(names, now)
                    names = []
                    next_due = now
            if names and primary is not None:
                try:
                    for i in range(0, len(names), _MAX_RELEASE_BATCH):
                        batch = session_pb2.Release(
                            names=names[i : i + _MAX_RELEASE_BATCH]
                        )
                        primary.send(RELEASE, 0, batch.SerializeToString())
                except OSError:
                    pass  # the primary is gone, and with it the session's holds
        finally:
            self.primary_lock.release()
        if next_due is not None and not timer:
            self._start_thread()
        return next_due

    # -- the timer and keepalive thread ------------------------------------

    def _start_thread(self) -> None:
        """Starts the thread that sends held-back releases (and, over TCP,
        keepalives), once. Never called from a finalizer."""
        conn = self._conn
        if self._thread is not None or conn.closed or conn.pid != os.getpid():
            return
        with self.lock:
            # Checked again: another thread may have started it meanwhile.
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name=f"statehub-lane {conn.address}", daemon=True
                )
                self._thread = thread
                thread.start()

    def _run(self) -> None:
        last_ping = time.monotonic()
        item: tuple[Any, ...] | None = None
        while not self._conn.closed:
            next_due = self.flush_releases(item, timer=True)
            now = time.monotonic()
            wait = None if next_due is None else max(next_due - now, 0.0)
            if not self._unix:
                interval = self.ttl / 3.0 if self.ttl else _DEFAULT_KEEPALIVE
                if now - last_ping >= interval:
                    self._ping(interval)
                    last_ping = time.monotonic()
                    continue
                ping_in = last_ping + interval - now
                wait = ping_in if wait is None else min(wait, ping_in)
            try:
                item = self._releases.outbox.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is not None and item[0] == "stop":
                return

    def _ping(self, interval: float) -> None:
        """Renews the lease over TCP; a primary that does not answer is
        replaced, resuming the session."""
        primary = self.primary
        if primary is None:
            self._reconnect("")
            return
        with self.primary_lock:
            if self.primary is not primary or self._conn.closed:
                return
            try:
                primary.set_timeout(max(interval, 1.0))
                request_id = primary.next_id()
                primary.send(PING, request_id)
                while True:
                    rid, kind, _ = primary.read_frame()
                    if kind == PONG and rid == request_id:
                        return
            except (OSError, LinkError):
                pass
        self.lose_primary(primary)
        self._reconnect(self.id)

    def _reconnect(self, session: str) -> None:
        # The server may be away: calls will say so, and the next ping tries
        # again.
        with contextlib.suppress(errors.StatehubError):
            self.open(session)

    # -- the end -----------------------------------------------------------

    def close(self) -> None:
        """Says GOODBYE on the primary and closes it, and stops the threads
        (the connection is marked closed already)."""
        self._releases.outbox.put(("stop",))
        if self._watcher is not None:
            self._watcher.stop()
        acquired = self.primary_lock.acquire(timeout=_GOODBYE_WAIT)
        try:
            primary = self.primary
            self.primary = None
            if primary is not None:
                _goodbye(primary)
                self._conn._drop(primary)
        finally:
            if acquired:
                self.primary_lock.release()

    def abandon(self) -> None:
        """In a forked child: forgets the parent's primary and threads (the
        connection closes the descriptors)."""
        self.primary = None
        self._thread = None
        self._watcher = None


def _goodbye(primary: Link) -> None:
    try:
        primary.send(GOODBYE, 0, _GOODBYE_BODY)
        # Wait for the server to close its side: GOODBYE is then done
        # (closing first could reset a TCP connection before the server
        # read it).
        primary.sock.shutdown(socket.SHUT_WR)
        primary.set_timeout(_GOODBYE_WAIT)
        while primary.sock.recv(4096):
            pass
    except OSError:
        pass
