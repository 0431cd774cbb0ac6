"""The lane transport: statehub's framed protocol on plain sockets
(``api/LANE.md``), the default. Needs no grpcio.

Layout of one process's :class:`LaneConnection` to one server:

- a **primary** link that owns the session (HELLO with
  ``resume_session_id``). It carries no calls, only RELEASE, PING and
  GOODBYE, so that no call that breaks (a deadline, Ctrl-C in the middle of
  a write, a frame over the server's limit) can close it: on a Unix socket
  the server ends the session the moment the owning connection closes. That
  is also how a killed process's locks are freed at once: the kernel closes
  its socket. The connection object keeps the primary referenced for the
  life of the process.
- a **pool** of links that JOIN the session (``join_session_id``) and carry
  the calls. A call pops one (``list.pop`` is atomic under the GIL), writes
  one REQUEST frame, reads its reply, and appends it back; a parked call
  (an acquire, a wait) keeps its link until answered. A link that broke or
  fell out of step is closed, never reused.
- over TCP a daemon thread sends PING every ``ttl / 3`` on the primary
  (the lease runs there); on a Unix socket there is no keepalive at all.
- a watcher thread notices at once when the primary closes (the server
  went away) and reconnects in the background, resuming the session; calls
  whose link broke meanwhile wait for it and are re-parked, retried or
  failed (``_reconnect.py``), and a session that could not be resumed
  raises SessionLost where ``_held.py`` says.
- RELEASE frames for holds given back by proxies that died are queued
  (a finalizer may run on any thread, even one inside a call, so it does
  no I/O) and sent on the primary before the next call, or by a small timer
  thread started when a release has to wait (``HANDOFF_GRACE``).

A call interrupted while it waits (KeyboardInterrupt from Ctrl-C, any other
exception) sends CANCEL for its request id and reads until its reply comes:
ERROR CANCELLED, or the real reply if the server answered first, in which
case what an acquire got is given back before the exception propagates
(``_lane_cancel.py``). Links are dialed and welcomed by ``_lane_dial.py``.

Fork: a forked child never uses these sockets; it closes its inherited
copies of the descriptors (no I/O) and connects afresh on first use.

Thread safety: a LaneConnection is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from . import _metrics, _transport, errors
from ._frames import (
    HEADER,
    METHODS,
    NUMBERED,
    REQUEST,
    RESPONSE,
    SEND_FLAGS,
    CallNumbers,
    Link,
    LinkError,
    parse_reply,
)
from ._held import Held
from ._lane_cancel import interrupted
from ._lane_dial import Dialer
from ._lane_session import LaneSession
from ._lane_watch import LaneWatchStream
from ._proto import lane_pb2, session_pb2, value_pb2
from ._reconnect import LinkBroken, after_break, await_reconnect
from ._status import NO_KEY, code_name, lane_error
from ._transport import Credentials, ManagerCount
from ._wire import Encoded

#: Idle links kept in the pool; more are closed when given back.
_MAX_IDLE = 64
#: The slices in which the main thread waits for a reply.
_SLICE = 0.1
#: The slices in which other threads wait for a parked call's reply.
_LONG_SLICE = _transport.DEFAULT_TIMEOUT

_MAIN_THREAD = threading.main_thread().ident


def _await_reply(
    link: Link, request_id: int, deadline: float | None
) -> tuple[int, bytes]:
    """The reply of call ``request_id``, when the link's receive timeout is a
    slice of the wait, which goes on until ``deadline`` (None: forever)."""
    while True:
        try:
            return link.read_reply(request_id)
        except TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise


#: METHODS with ``bytes`` for each response class: call_wire's replies.
_RAW_METHODS = {rpc: (entry[0], bytes) for rpc, entry in METHODS.items()}


class _GoOn(Exception):
    """Raised by LaneConnection._quick when its exchange needs the funnel
    to go on: ``first`` is what the exchange came to (an ERROR's LaneError,
    or LinkBroken, ConnectionError, SessionError), in session
    ``session_id``, for a call made at ``started`` (time.monotonic). A
    numbered call hands on its ``number`` and ``body`` (the number in
    front): a retry must carry the same."""

    def __init__(
        self,
        first: BaseException | lane_pb2.LaneError,
        session_id: str,
        started: float,
        number: int = 0,
        body: bytes = b"",
    ) -> None:
        super().__init__()
        self.first = first
        self.session_id = session_id
        self.started = started
        self.number = number
        self.body = body


class LaneConnection(ManagerCount):
    """A process's session and links to one server over the lane."""

    def __init__(self, address: str, credentials: Credentials) -> None:
        self.address = address
        self.pid = os.getpid()
        self.credentials = credentials
        self.closed = False
        self._managers = 0
        self._dialer = Dialer(address, credentials, self.pid)
        # Guards the manager count, closing, and session changes (shared
        # with the session, so that a close waits for a session opening).
        self._lock = threading.RLock()
        #: The primary link, the session it owns, its holds and releases.
        self.session = LaneSession(self, self._lock, unix=self._dialer.unix)
        # Bumps when the session is replaced or comes back: links of before
        # are closed rather than pooled.
        self._generation = 0
        self._pool: list[Link] = []
        # Every open link (pooled or in use), for close() and a forked child.
        self._links: set[Link] = set()
        # Numbered calls (the server's WELCOME advises them): the next
        # number, and the numbers whose answers were not seen yet.
        self._numbers = CallNumbers()
        self.held = Held(address)

    # -- the funnel ---------------------------------------------------------

    def call(
        self,
        service: str,
        method: str,
        request: Any,
        *,
        timeout: float | None = None,
        key: Any = NO_KEY,
        attribute: str | None = None,
        parked: bool = False,
        checked: bool = True,
    ) -> Any:
        """Runs one rpc as a REQUEST frame (see
        statehub._transport.Connection.call).

        A non-parked call's deadline is ``timeout``, kept by the socket's
        receive timeout (in slices on the main thread, see _exchange); a
        parked call's wait is bounded by the server from the request, and
        ``timeout`` (if any) only guards against a server that never
        answers. ``checked``:
        raise SessionLost in a thread not yet told of a lost session (off
        for the client's own calls while it recovers).
        """
        rpc = (service, method)
        entry = METHODS.get(rpc)
        if entry is None:
            raise errors.StatehubError(f"{service}.{method} has no lane method id")
        if checked:
            if timeout is None and not parked:
                timeout = _transport.DEFAULT_TIMEOUT
            try:
                response = self._quick(
                    entry,
                    request.body
                    if type(request) is Encoded
                    else request.SerializeToString(),
                    timeout,
                    parked=parked,
                    rpc=rpc,
                    request=request,
                )
            except _GoOn as go_on:
                return self._funnel(
                    entry,
                    service,
                    method,
                    request,
                    first=go_on,
                    timeout=timeout,
                    key=key,
                    attribute=attribute,
                    parked=parked,
                )
            if response is not None:
                return response
        return self._funnel(
            entry,
            service,
            method,
            request,
            timeout=timeout,
            key=key,
            attribute=attribute,
            parked=parked,
            checked=checked,
        )

    def call_wire(
        self,
        service: str,
        method: str,
        message_type: Any,
        name: str,
        body: bytes,
        *,
        timeout: float | None = None,
        key: Any = NO_KEY,
        attribute: str | None = None,
    ) -> bytes:
        """``call`` of a call that does not park, with its request in wire
        form (``body``, a ``message_type`` naming object ``name``), returning
        the response in wire form (see statehub._transport.Connection). The
        request is built as an Encoded only if the quick path (:meth:`_quick`)
        hands the call to the funnel."""
        rpc = (service, method)
        raw = _RAW_METHODS.get(rpc)
        if raw is None:
            raise errors.StatehubError(f"{service}.{method} has no lane method id")
        if timeout is None:
            timeout = _transport.DEFAULT_TIMEOUT
        first = None
        try:
            reply = self._quick(raw, body, timeout, rpc=rpc, request=None)
        except _GoOn as go_on:
            first = go_on
        else:
            if reply is not None:
                return reply  # type: ignore[no-any-return]
        # Not made (None: the funnel makes it afresh) or to be gone on with.
        response = self._funnel(
            METHODS[rpc],
            service,
            method,
            Encoded(message_type, name, body),
            first=first,
            timeout=timeout,
            key=key,
            attribute=attribute,
        )
        return response.SerializeToString()  # type: ignore[no-any-return]

    def _quick(  # noqa: PLR0915 - one frame on purpose: a call costs its lines
        self,
        entry: tuple[int, Any],
        body: bytes,
        timeout: float | None,
        *,
        parked: bool = False,
        rpc: tuple[str, str],
        request: Any,
    ) -> Any:
        """Makes a call as one plain exchange, when that will do: a session
        in place, nothing to time or release first, a deadline ahead (or
        none, for a parked call), a pooled link with nothing buffered; a
        call that changes state is numbered here where the server advises
        it, as the funnel would number it. Sends its REQUEST and reads its
        reply with one receive where it can. Returns the response (of
        ``entry``'s class, which may be ``bytes``: the response as it
        came), or None if the call was not made (the funnel makes it
        afresh); raises _GoOn for the funnel to go on from what the
        exchange came to (an ERROR, a broken link, ...)."""
        session = self.session
        pool = self._pool
        if not (
            pool
            and (parked if timeout is None else timeout > 0)
            and session.primary is not None
            and _metrics.current is None
            and session.outbox.empty()
        ):
            return None
        self.held.check()
        try:
            link = pool.pop()
        except IndexError:  # another thread took the last one
            return None
        if link.generation != self._generation or link.buffered():
            pool.append(link)
            return None
        started = time.monotonic()
        session_id = session.id
        number = 0
        if session.number_calls:
            number, body = self._numbers.stamp(rpc, parked, body)
        # Set when the funnel goes on with the call: it then owns the number.
        handed_on = False
        try:
            request_id = link.next_id()
            # As in _exchange: the main thread waits in slices.
            wait = _SLICE if threading.get_ident() == _MAIN_THREAD else _LONG_SLICE
            if timeout is not None and timeout < wait:
                wait = timeout
            send = _transport.DEFAULT_TIMEOUT if timeout is None else timeout
            if link.send_timeout != send or link.receive_timeout != wait:
                link.set_timeouts(send, wait)
            try:
                link.sock.sendall(
                    HEADER.pack(
                        len(body),
                        request_id,
                        entry[0],
                        REQUEST,
                        NUMBERED if number else 0,
                    )
                    + body,
                    SEND_FLAGS,
                )
            except OSError:
                # Not all of the frame went out: the server cannot have run
                # it, and the funnel makes it afresh (under a number of its
                # own).
                self._drop(link)
                return None
            except BaseException:
                self._drop(link)  # interrupted in the middle of the frame
                raise
            interrupt: BaseException | None = None
            try:
                reply = link.quick_reply(request_id)
            except BaseException as raised:
                reply = None
                interrupt = raised
            if reply is not None:
                response_class = entry[1]
                if response_class is not bytes:
                    reply = response_class.FromString(reply)
                self._give_back(link)
                return reply
            deadline = None
            if wait != timeout:  # waiting in slices
                if timeout is not None:
                    deadline = time.monotonic() + timeout
                if isinstance(interrupt, TimeoutError):  # a slice went by
                    interrupt = None
                    if deadline is not None:
                        deadline -= wait
            try:
                response, failure = self._receive(
                    link,
                    request_id,
                    entry[1],
                    timeout=timeout,
                    wait=wait,
                    deadline=deadline,
                    parked=parked,
                    rpc=rpc,
                    request=request,
                    interrupt=interrupt,
                )
            except (LinkBroken, errors.ConnectionError, errors.SessionError) as raised:
                handed_on = True
                raise _GoOn(raised, session_id, started, number, body) from None
            if failure is None:
                return response
            handed_on = True
            raise _GoOn(failure, session_id, started, number, body)
        finally:
            if number and not handed_on:
                self._numbers.done(number)

    def _funnel(  # noqa: PLR0915 - every retry rule in one loop
        self,
        entry: tuple[int, Any],
        service: str,
        method: str,
        request: Any,
        *,
        first: _GoOn | None = None,
        timeout: float | None,
        key: Any,
        attribute: str | None,
        parked: bool = False,
        checked: bool = True,
    ) -> Any:
        """The funnel, every retry rule in one loop: :meth:`call`, and the
        rest of a call whose ``first`` exchange, made by :meth:`_quick`
        (unnumbered), broke, found no link or session, or was answered with
        an ERROR: handled as if this loop had made it."""
        session = self.session
        if timeout is None:
            if not parked:
                timeout = _transport.DEFAULT_TIMEOUT
        elif timeout <= 0:
            raise errors.DeadlineExceeded(
                f"statehub-server at {self.address}: the deadline has passed "
                f"(timeout {timeout:g}s)",
                code="DEADLINE_EXCEEDED",
            )
        if first is None and session.releases_pending():
            session.flush_releases()
        metrics = _metrics.current if first is None else None
        started = time.monotonic() if metrics is not None else 0.0
        body = request.body if type(request) is Encoded else request.SerializeToString()
        rpc = (service, method)
        deadline = (
            None
            if timeout is None
            else (time.monotonic() if first is None else first.started) + timeout
        )
        session_id = "" if first is None else first.session_id
        renewed = resent = redialed = False
        number = 0
        numbered_in = ""  # the session a numbered call was first sent in
        if first is not None and first.number:
            # Numbered by the quick path: retried under the same number.
            number, body, numbered_in = first.number, first.body, first.session_id
        try:
            while True:
                try:
                    if first is not None:
                        # What the first exchange came to, handled as if
                        # this loop had made it.
                        outcome, first = first.first, None
                        if isinstance(outcome, BaseException):
                            raise outcome
                        error = self._translate(outcome, key, attribute)
                    else:
                        session_id = (
                            session.id
                            if session.primary is not None
                            else session.ensure()
                        )
                        if not number and session.number_calls:
                            number, body = self._numbers.stamp(rpc, parked, body)
                            numbered_in = session_id if number else ""
                        response, failure = self._exchange(
                            entry[0],
                            entry[1],
                            body,
                            timeout=timeout,
                            parked=parked,
                            rpc=rpc,
                            request=request,
                            checked=checked,
                            flags=NUMBERED if number else 0,
                        )
                        if failure is None:
                            return response
                        error = self._translate(failure, key, attribute)
                except LinkBroken as broken:
                    if resent:
                        raise self._broken(broken.cause) from None
                    resent = True
                    after_break(
                        self,
                        broken,
                        rpc,
                        request,
                        parked=parked,
                        deadline=deadline,
                        numbered_in=numbered_in,
                    )
                    continue
                except errors.ConnectionError as failed:
                    # No link could be opened, so nothing was sent: tried
                    # once more, after the server is back if it went away
                    # just now.
                    if redialed or isinstance(failed, errors.DeadlineExceeded):
                        raise
                    redialed = True
                    await_reconnect(self, failed, deadline)
                    continue
                except errors.SessionError as refused:
                    error = refused  # a link could not join, or SessionLost
                if (
                    isinstance(error, errors.SessionError)
                    and not isinstance(error, errors.SessionLost)
                    and not renewed
                ):
                    # The session is not live: a new one, and one retry.
                    renewed = True
                    session.renew(session_id)
                    continue
                raise error
        finally:
            if number:
                self._numbers.done(number)
            if metrics is not None:
                metrics.observe_call(service, method, time.monotonic() - started)

    def _translate(
        self,
        failure: lane_pb2.LaneError,
        key: Any = NO_KEY,
        attribute: str | None = None,
    ) -> errors.StatehubError:
        return lane_error(failure, self.address, key, attribute)

    def _exchange(
        self,
        method_id: int,
        response_class: Any,
        body: bytes,
        *,
        timeout: float | None,
        parked: bool,
        rpc: tuple[str, str],
        request: Any,
        checked: bool = True,
        flags: int = 0,
    ) -> tuple[Any, lane_pb2.LaneError | None]:
        """Sends one REQUEST on a pooled link and reads its reply: (response,
        None) or (None, the ERROR's LaneError); ``response_class`` ``bytes``
        gives the response as it came. Raises LinkBroken if the link
        broke."""
        pool = self._pool
        while True:
            if checked:
                # Here, so that no call goes out in a new session before its
                # thread was told that the old one was lost (a release of a
                # lock that may be another process's now, say).
                self.held.check()
            fresh = False
            try:
                link = pool.pop()
            except IndexError:
                link = self._open_link()
                fresh = True
            if link.generation != self._generation:
                self._drop(link)
                continue
            request_id = link.next_id()
            # The main thread waits in slices, as grpcio's future.result()
            # does: a signal may be delivered to another thread, and
            # _thread.interrupt_main() interrupts no system call; either way
            # the KeyboardInterrupt is raised here between slices. Other
            # threads wait for a parked call in long slices. A link's
            # timeouts then stay put from call to call (a lock's acquire and
            # release alike), and setting them costs no system call.
            limit = _SLICE if threading.get_ident() == _MAIN_THREAD else _LONG_SLICE
            wait = limit if timeout is None else min(timeout, limit)
            deadline = (
                None
                if wait == timeout or timeout is None
                else time.monotonic() + timeout
            )
            try:
                link.set_timeouts(
                    _transport.DEFAULT_TIMEOUT if timeout is None else timeout, wait
                )
                link.sock.sendall(
                    HEADER.pack(len(body), request_id, method_id, REQUEST, flags)
                    + body,
                    SEND_FLAGS,
                )
            except OSError as failed:
                # Not all of the frame was sent, so the server cannot have
                # run it: a pooled link that went stale is retried on another.
                self._drop(link)
                if not fresh:
                    continue
                raise LinkBroken(failed, sent=False) from failed
            except BaseException:
                # Interrupted in the middle of the frame: out of step.
                self._drop(link)
                raise
            return self._receive(
                link,
                request_id,
                response_class,
                timeout=timeout,
                wait=wait,
                deadline=deadline,
                parked=parked,
                rpc=rpc,
                request=request,
            )

    def _receive(
        self,
        link: Link,
        request_id: int,
        response_class: Any,
        *,
        timeout: float | None,
        wait: float | None,
        deadline: float | None,
        parked: bool,
        rpc: tuple[str, str],
        request: Any,
        interrupt: BaseException | None = None,
    ) -> tuple[Any, lane_pb2.LaneError | None]:
        """The second half of an exchange: reads the reply of call
        ``request_id``, sent on ``link`` (receive timeout ``wait``, the
        call's ``timeout``, ``deadline`` when ``wait`` is a slice of it),
        unless ``interrupt`` was raised already while it waited; pools or
        drops the link."""
        try:
            if interrupt is not None:
                raise interrupt
            payload = None
            if not link.buffered():
                # Most replies come whole with one receive (Link.quick_reply).
                try:
                    payload = link.quick_reply(request_id)
                except TimeoutError:
                    if wait == timeout:
                        raise
            if payload is not None:
                kind = RESPONSE
            else:
                kind, payload = (
                    link.read_reply(request_id)
                    if wait == timeout
                    else _await_reply(link, request_id, deadline)
                )
        except BaseException as raised:
            return interrupted(
                self,
                link,
                request_id,
                raised,
                timeout=timeout,
                parked=parked,
                response_class=response_class,
                rpc=rpc,
                request=request,
            )
        # The reply is read: the link is in step whatever happens next.
        # (Parse before pooling: the payload is a view of its buffer.)
        pooled = False
        try:
            if kind == RESPONSE:
                response = parse_reply(response_class, payload)
                pooled = True
                self._give_back(link)
                return response, None
            failure = lane_pb2.LaneError.FromString(payload)
        except BaseException:
            if not pooled:
                self._give_back(link)
            raise
        self._finish(link, failure)
        return None, failure

    def _broken(self, cause: BaseException) -> errors.StatehubError:
        if self.closed:
            return errors.ConnectionError(
                f"the connection to {self.address} was closed (its manager was "
                "shut down)",
                code="UNAVAILABLE",
            )
        return errors.ConnectionError(
            f"statehub-server at {self.address}: the connection broke ({cause})",
            code="UNAVAILABLE",
        )

    # -- links ----------------------------------------------------------------

    def _give_back(self, link: Link) -> None:
        if (
            link.generation == self._generation
            and not self.closed
            and len(self._pool) < _MAX_IDLE
        ):
            self._pool.append(link)
        else:
            self._drop(link)

    def _finish(self, link: Link, failure: lane_pb2.LaneError) -> None:
        """Pools a link after an ERROR reply, unless the error was one of the
        transport (kind unspecified), after which the server may close it."""
        if (
            failure.detail.kind != value_pb2.ERROR_KIND_UNSPECIFIED
            or code_name(failure.code) == "CANCELLED"
        ):
            self._give_back(link)
        else:
            self._drop(link)

    def _drop(self, link: Link) -> None:
        self._links.discard(link)
        link.close()

    def _dial(self, hello: lane_pb2.LaneHello) -> tuple[Link, session_pb2.Welcome]:
        """A new link, welcomed. Raises the server's refusal or
        ConnectionError."""
        if self.closed:
            raise self._broken(LinkError("closed"))
        link, welcome = self._dialer.dial(hello)
        self._links.add(link)
        return link, welcome

    def _open_link(self) -> Link:
        """A new link that joins the current session. Raises SessionError if
        the session is not live any more."""
        session = self.session.ensure()
        generation = self._generation
        link, _ = self._dial(lane_pb2.LaneHello(join_session_id=session))
        link.generation = generation
        return link

    def _retire_links(self) -> None:
        """The session was replaced or came back after the primary broke:
        the links made before (to a server that may have gone away) are not
        used again."""
        self._generation += 1
        stale_links, self._pool = self._pool, []
        for link in stale_links:
            self._drop(link)

    def open_watch(self, request: Any) -> LaneWatchStream:
        """A watch on a link of its own (statehub._lane_watch)."""
        return LaneWatchStream(self, self._open_link(), request)

    # -- holds on anonymous objects ------------------------------------------

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this process's session on ``name``."""
        self.session.add_hold(name, object_type)

    def release(self, name: str, *, handed_off: bool = False) -> None:
        """Drops one hold on ``name``: queued, and sent in a RELEASE frame on
        the primary before the next call or by the timer thread.

        ``handed_off``: the proxy may have been passed to another process
        (pickled, or alive when this process forked), which adopts the
        object by taking a hold of its own when it starts; the release waits
        :data:`statehub._transport.HANDOFF_GRACE` seconds first.

        Safe to call from a finalizer on any thread (no I/O).
        """
        if not self.closed:
            self.session.release(name, handed_off=handed_off)

    # -- life cycle -------------------------------------------------------------

    def session_id(self) -> str:
        """The current session id, connecting first if needed."""
        return self.session.ensure()

    def close(self) -> None:
        """Ends the session (GOODBYE, leaving locks taken: see
        statehub._transport.GOODBYE) and closes every link. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.pid == os.getpid():
            self.session.close()
            pooled, self._pool = self._pool, []
            for link in pooled:
                self._drop(link)
            # Links in use: wake their threads (they see the connection
            # closed and close the link themselves).
            for link in list(self._links):
                link.shutdown()

    def _abandon_in_child(self) -> None:
        # Close this process's copies of the descriptors, nothing more: no
        # shutdown, no frame (the sockets are the parent's). Were they kept
        # open, a parent that died would not end its session while this
        # child lived.
        self.closed = True
        for link in list(self._links):
            with contextlib.suppress(OSError):
                link.close()
        self._links.clear()
        self._pool = []
        self.session.abandon()
