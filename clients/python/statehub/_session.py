"""The session stream of one connection, run by a background thread.

A session is a lease on the server kept alive by this stream
(``Sessions.Connect``): Hello (resuming the previous session id if there was
one), a Keepalive every ``ttl / 3``, Release messages batched as proxies die,
Goodbye at the end. When the stream breaks, the thread reconnects and resumes
the session while its lease lasts; if the server has ended it meanwhile, the
new session takes this process's holds on anonymous objects again, and what
it cannot take back (locks, semaphore units, objects that are gone) raises
SessionLost (statehub._held).

Around a fork the stream is half-closed (:meth:`Session.pause`) and reopened
afterwards (:meth:`Session.resume`): see ``_grpc.py`` for why.
"""

from __future__ import annotations

import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import grpc

from . import _metrics, _transport, errors
from ._proto import session_pb2
from ._releases import ReleaseQueue

#: How long a call waits for the session to be established.
_SESSION_WAIT = 15.0
#: Keepalive period before the server has said its lease TTL.
_DEFAULT_KEEPALIVE = 1.0
#: Most names in one Release message.
_MAX_RELEASE_BATCH = 4096
#: How long a pause before fork waits for the stream to close cleanly.
_PAUSE_WAIT = 1.0


class Owner(Protocol):
    """What a session needs of its connection."""

    address: str
    #: Metadata every call carries to authenticate (the bearer token).
    auth_metadata: tuple[tuple[str, str], ...]

    def _session_replaced(self, old: str, new: str, ttl: float | None) -> None: ...

    def _readopt(self, new: str) -> None: ...

    def _translate(
        self, rpc_error: grpc.RpcError, key: Any, attribute: str | None
    ) -> errors.StatehubError: ...

    def _forget_hold(self, name: str) -> None: ...


class Session:
    """The session stream of one connection, run by a background thread.

    States: ``idle`` (not started), ``running``, ``paused`` (around a fork),
    ``closed``. Outgoing messages come from :attr:`_releases`
    (statehub._releases): releases, and the control messages
    ``("stop", stream)`` and ``("goodbye",)``.
    """

    def __init__(self, conn: Owner, stub: Any) -> None:
        self._conn = conn
        self._stub = stub
        self._cond = threading.Condition()
        self._state = "idle"
        self._thread: threading.Thread | None = None
        self._call: Any = None
        self._id = ""
        self._stale = ""
        self._ttl: float | None = None
        self._stream = 0
        self._failures = 0
        # The next Welcome ends a planned pause around a fork, not a broken
        # stream: it is not counted as a reconnect.
        self._planned = False
        self._last_error: errors.StatehubError | None = None
        self._last_details = ""
        # Kept across streams (held-back releases too); streams overlap
        # briefly when one replaces another.
        self._releases = ReleaseQueue()
        #: The server's advice to number calls that change state (Welcome).
        self.number_calls = False
        host = socket.gethostname()
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        self._label = f"{host}:{os.getpid()}:{program or 'python'}"

    # -- called by the funnel ----------------------------------------------

    def ensure(self) -> str:
        """Returns a live session id, starting the stream on first use.

        Raises ConnectionError if the server cannot be reached, as soon as a
        connection attempt made after this call started has failed.
        """
        with self._cond:
            if self._state == "closed":
                raise errors.ConnectionError(
                    f"the connection to {self._conn.address} was closed "
                    "(its manager was shut down)"
                )
            if self._id and self._id != self._stale:
                return self._id
            if self._state == "idle":
                self._start_locked()
            failures = self._failures
            deadline = time.monotonic() + _SESSION_WAIT
            while not self._id or self._id == self._stale:
                if self._state == "closed":
                    raise errors.ConnectionError(
                        f"the connection to {self._conn.address} was closed"
                    )
                if self._failures > failures and self._last_error is not None:
                    last = self._last_error
                    message = _transport.cannot_open_session(
                        self._conn.address, self._last_details
                    )
                    # The server's verdict (a wrong token, a limit) or
                    # the same class (a ConnectionError, say), saying what
                    # was being done.
                    raise errors.restated(last, message)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise errors.DeadlineExceeded(
                        f"no session with statehub-server at "
                        f"{self._conn.address} within {_SESSION_WAIT:g}s"
                    )
                self._cond.wait(remaining)
            return self._id

    def renew(self, stale_id: str) -> None:
        """The server said ``stale_id`` is not live: reconnect for a new one."""
        with self._cond:
            if self._id != stale_id or self._state != "running":
                return
            self._stale = stale_id
            stream = self._stream
        self._releases.outbox.put(("stop", stream))

    def send_release(self, name: str, *, handed_off: bool = False) -> None:
        """Queues a Release of one hold on ``name``.

        ``handed_off``: the proxy may have been passed to another process
        (pickled, or alive when this process forked), which adopts the
        object by taking a hold of its own when it starts. A parent that
        drops its proxy right after ``Process.start()`` (which drops its
        args) would otherwise free the object before the child adopts it,
        as happens with multiprocessing.Manager; the release waits
        :data:`statehub._transport.HANDOFF_GRACE` seconds instead.
        """
        self._releases.put(name, handed_off=handed_off)
        self._conn._forget_hold(name)

    # -- life cycle ---------------------------------------------------------

    def _start_locked(self) -> None:
        self._state = "running"
        self._thread = threading.Thread(
            target=self._run,
            name=f"statehub-session {self._conn.address}",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            state = self._state
            self._state = "closed"
            thread = self._thread
            self._cond.notify_all()
        if state != "running" or thread is None:
            return
        self._releases.outbox.put(("goodbye",))
        thread.join(_PAUSE_WAIT)
        if thread.is_alive():
            self._cancel()
            thread.join(_PAUSE_WAIT)

    def pause(self) -> None:
        """Half-closes the stream before a fork and waits until it is gone."""
        with self._cond:
            if self._state != "running":
                return
            # Forks in quick succession: let the stream started after the
            # last one say Hello first, or no message might reach the
            # server for several forks in a row and the lease would pass.
            # (A fork while another thread waits in a call takes about a
            # second: grpcio's pre-fork handler waits for its poller.)
            deadline = time.monotonic() + _PAUSE_WAIT
            while (
                self._planned
                # ...unless the server is not answering: nothing to keep.
                and self._last_error is None
                and self._state == "running"
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._cond.wait(remaining)
            if self._state != "running":
                return
            self._state = "paused"
            thread = self._thread
            stream = self._stream
            self._cond.notify_all()  # wakes a reconnect backoff
        if thread is None:
            return
        self._releases.outbox.put(("stop", stream))
        thread.join(_PAUSE_WAIT)
        if thread.is_alive():
            self._cancel()
            thread.join(_PAUSE_WAIT)

    def resume(self) -> None:
        """Reconnects after a fork, resuming the session (in the background)."""
        with self._cond:
            if self._state == "paused":
                self._planned = True
                self._start_locked()

    def _cancel(self) -> None:
        with self._cond:
            call = self._call
        if call is not None:
            call.cancel()

    # -- the stream thread --------------------------------------------------

    def _run(self) -> None:
        backoff = 0.02
        while True:
            with self._cond:
                if self._state != "running":
                    return
                self._stream += 1
                stream = self._stream
                resume = self._id
            failure: errors.StatehubError | None = None
            details = ""
            welcomed = False
            try:
                call = self._stub.Connect(
                    self._requests(stream, resume),
                    metadata=self._conn.auth_metadata,
                )
                with self._cond:
                    self._call = call
                for response in call:
                    if response.HasField("welcome"):
                        self._welcomed(response.welcome)
                        welcomed = True
                        backoff = 0.02
            except grpc.RpcError as rpc_error:
                details = rpc_error.details() or ""
                # The stream's own verdict (a wrong token, --max_sessions)
                # comes with the same error detail as any call's.
                failure = self._conn._translate(rpc_error, None, None)
            with self._cond:
                self._call = None
                if self._state != "running":
                    self._cond.notify_all()
                    return
                if failure is not None and not welcomed:
                    # A stream that never got its Welcome: the server is
                    # unreachable or refuses us; callers waiting for a
                    # session hear why. (A stream that broke after its
                    # Welcome just reconnects.)
                    self._failures += 1
                    self._last_error = failure
                    self._last_details = details
                    self._cond.notify_all()
                if not welcomed:
                    # Do not spin against a server that is down or refusing.
                    self._cond.wait(backoff)
                    backoff = min(backoff * 2, 1.0)

    def _welcomed(self, welcome: session_pb2.Welcome) -> None:
        with self._cond:
            old, ttl = self._id, self._ttl
        if old and welcome.session_id != old:
            # Before calls can use the new session: what the old one held is
            # lost (statehub._held).
            self._conn._session_replaced(old, welcome.session_id, ttl)
        with self._cond:
            had_session = bool(self._id)
            planned = self._planned
            self._planned = False
            self._id = welcome.session_id
            self._stale = ""
            self._ttl = welcome.lease_ttl_ms / 1000.0 if welcome.lease_ttl_ms else None
            self.number_calls = welcome.number_calls
            self._last_error = None
            self._cond.notify_all()
        metrics = _metrics.current
        if had_session and not planned and metrics is not None:
            metrics.reconnected(resumed=welcome.resumed)
        if had_session and not welcome.resumed:
            self._conn._readopt(welcome.session_id)

    def _due_releases(
        self, stream: int, now: float
    ) -> tuple[list[str], float | None] | None:
        """Pops the held-back releases due by ``now``; returns them and when
        the next one is due, or None if ``stream`` is no longer current."""
        if stream != self._stream:
            return None
        names: list[str] = []
        return names, self._releases.due(names, now, _MAX_RELEASE_BATCH)

    def _requests(
        self, stream: int, resume: str
    ) -> Iterator[session_pb2.SessionRequest]:
        yield session_pb2.SessionRequest(
            hello=session_pb2.Hello(resume_session_id=resume, label=self._label)
        )
        outbox = self._releases.outbox
        last_sent = time.monotonic()
        while True:
            interval = (self._ttl / 3.0) if self._ttl else _DEFAULT_KEEPALIVE
            now = time.monotonic()
            due = self._due_releases(stream, now)
            if due is None:
                return  # a newer stream sends them
            names, next_due = due
            if names:
                yield session_pb2.SessionRequest(
                    release=session_pb2.Release(names=names)
                )
                last_sent = now
                continue
            wait = last_sent + interval - now
            if next_due is not None:
                wait = min(wait, next_due - now)
            try:
                item = outbox.get(timeout=max(wait, 0.0))
            except queue.Empty:
                if time.monotonic() - last_sent >= interval:
                    yield session_pb2.SessionRequest(keepalive=session_pb2.Keepalive())
                    last_sent = time.monotonic()
                continue
            if stream != self._stream:
                # A newer stream exists; leave the message to it.
                outbox.put(item)
                return
            control = self._releases.collect(names, item, _MAX_RELEASE_BATCH)
            if names:
                yield session_pb2.SessionRequest(
                    release=session_pb2.Release(names=names)
                )
                last_sent = time.monotonic()
            if control is None:
                continue
            if control[0] == "goodbye":
                yield session_pb2.SessionRequest(goodbye=_transport.GOODBYE)
                return
            if control[0] == "stop" and control[1] == stream:
                # Half-close: the server ends the stream and keeps the
                # session for its lease.
                return
