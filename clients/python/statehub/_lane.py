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
case what an acquire got is given back before the exception propagates.

Fork: a forked child never uses these sockets; it closes its inherited
copies of the descriptors (no I/O) and connects afresh on first use.

Thread safety: a LaneConnection is safe to share between threads.
"""

from __future__ import annotations

import contextlib
import os
import queue
import select
import socket
import sys
import threading
import time
from typing import Any

from . import _metrics, _transport, errors
from ._frames import (
    CANCEL,
    GOODBYE,
    HEADER,
    METHODS,
    NUMBER,
    NUMBERED,
    PING,
    PONG,
    PROTOCOL_VERSION,
    RELEASE,
    REQUEST,
    RESPONSE,
    SEND_FLAGS,
    CallNumbers,
    Link,
    LinkError,
    Refused,
)
from ._held import Held
from ._proto import lane_pb2, objects_pb2, session_pb2, sync_pb2, value_pb2
from ._reconnect import LinkBroken, Watcher, after_break, await_reconnect
from ._releases import ReleaseQueue
from ._status import NO_KEY, code_name, error_from_status
from ._transport import Credentials, ManagerCount
from ._wire import Encoded

#: How long connecting and the HELLO may take.
_CONNECT_TIMEOUT = 15.0
#: How long an interrupted call waits for its reply after CANCEL.
_DRAIN_WAIT = 10.0
#: Idle links kept in the pool; more are closed when given back.
_MAX_IDLE = 64
#: Most names in one RELEASE frame.
_MAX_RELEASE_BATCH = 4096
#: Keepalive period over TCP before WELCOME has said the lease TTL.
_DEFAULT_KEEPALIVE = 1.0
#: How long close() waits for the server to finish the GOODBYE.
_GOODBYE_WAIT = 1.0
_GOODBYE_BODY = _transport.GOODBYE.SerializeToString()
#: The slices in which the main thread waits for a reply.
_SLICE = 0.1
#: The slices in which other threads wait for a parked call's reply.
_LONG_SLICE = _transport.DEFAULT_TIMEOUT

_MAIN_THREAD = threading.main_thread().ident

_host = socket.gethostname()


def _target(address: str) -> tuple[int, Any]:
    """The socket family and address of a normalized target."""
    if address.startswith("unix-abstract:"):
        return socket.AF_UNIX, "\0" + address[len("unix-abstract:") :]
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]  # unix:///abs/path
        return socket.AF_UNIX, path
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
            break
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(
            f"cannot reach {address!r} on the lane: a statehub address is "
            "'unix:///path' or 'host:port'"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return socket.AF_INET, (host or "127.0.0.1", int(port))


def _undo_lock(request: Any, response: Any) -> tuple[str, Any] | None:
    if not response.acquired:
        return None
    return "Locks", sync_pb2.LockReleaseRequest(
        name=request.name, thread_id=request.thread_id
    )


def _undo_semaphore(request: Any, response: Any) -> tuple[str, Any] | None:
    if not response.acquired:
        return None
    return "Semaphores", sync_pb2.SemaphoreReleaseRequest(name=request.name, n=1)


def _undo_barrier(request: Any, response: Any) -> tuple[str, Any] | None:
    if not response.run_action:
        return None
    # Told to run the action, which now never runs: the barrier breaks
    # rather than hold the other parties.
    return "Barriers", sync_pb2.BarrierActionDoneRequest(name=request.name, failed=True)


# What gives back the result of an interrupted call that the server served
# before the CANCEL reached it (api/LANE.md, "Cancel"): the caller never
# learns it acquired, so it must not keep the lock or unit (nor leave the
# other parties of a barrier waiting for an action it will not run).
_UNDO = {
    ("Locks", "Acquire"): _undo_lock,
    ("Semaphores", "Acquire"): _undo_semaphore,
    ("Barriers", "Wait"): _undo_barrier,
}


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


class LaneConnection(ManagerCount):
    """A process's session and links to one server over the lane."""

    def __init__(self, address: str, credentials: Credentials) -> None:
        self.address = address
        self.pid = os.getpid()
        self.credentials = credentials
        self.closed = False
        self._managers = 0
        self._family, self._sockaddr = _target(address)
        self._unix = self._family == socket.AF_UNIX
        # Lock order: _lock (session changes), then _primary_lock (frames
        # on the primary), then _holds_lock. Finalizers take only
        # _holds_lock, which is reentrant.
        self._lock = threading.RLock()
        self._primary_lock = threading.Lock()
        self._holds_lock = threading.RLock()
        self._primary: Link | None = None
        self._session = ""
        # Bumps when the session id changes: links of an older session are
        # closed rather than pooled.
        self._generation = 0
        self._ttl: float | None = None
        self._pool: list[Link] = []
        # Every open link (pooled or in use), for close() and a forked child.
        self._links: set[Link] = set()
        # Holds this process has on anonymous objects: name -> [type, count].
        self._holds: dict[str, list[Any]] = {}
        # Releases not sent yet (statehub._releases), and ("stop",) for the
        # timer thread.
        self._releases = ReleaseQueue()
        self._thread: threading.Thread | None = None
        self._watcher: Watcher | None = None
        #: When the primary was lost (monotonic), while it is not back.
        self.lost_at: float | None = None
        # Numbered calls (the server's WELCOME advises them): the next
        # number, and the numbers whose answers were not seen yet.
        self._number_calls = False
        self._numbers = CallNumbers()
        self.held = Held(address)
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        self._label = f"{_host}:{self.pid}:{program or 'python'}"

    # -- the funnel ---------------------------------------------------------

    def call(  # noqa: PLR0915 - the funnel: every retry rule in one loop
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
        entry = METHODS.get((service, method))
        if entry is None:
            raise errors.StatehubError(f"{service}.{method} has no lane method id")
        if self._releases.pending():
            self._flush_releases()
        if timeout is None:
            if not parked:
                timeout = _transport.DEFAULT_TIMEOUT
        elif timeout <= 0:
            raise errors.DeadlineExceeded(
                f"statehub-server at {self.address}: the deadline has passed "
                f"(timeout {timeout:g}s)",
                code="DEADLINE_EXCEEDED",
            )
        metrics = _metrics.current
        started = time.monotonic() if metrics is not None else 0.0
        body = (
            request.body if type(request) is Encoded else request.SerializeToString()
        )
        rpc = (service, method)
        deadline = None if timeout is None else time.monotonic() + timeout
        renewed = resent = redialed = False
        session = ""
        number = 0
        numbered_in = ""  # the session a numbered call was first sent in
        try:
            while True:
                try:
                    session = (
                        self._session if self._primary is not None else self._ensure()
                    )
                    if not number and self._number_calls:
                        number, seen = self._numbers.take(rpc, parked)
                        if number:
                            body = NUMBER.pack(number, seen) + body
                        numbered_in = session if number else ""
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
                    self._renew(session)
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
        return error_from_status(
            code_name(failure.code),
            failure.message,
            failure.detail if failure.HasField("detail") else None,
            self.address,
            key=key,
            attribute=attribute,
        )

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
        None) or (None, the ERROR's LaneError). Raises LinkBroken if the
        link broke."""
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
            try:
                kind, payload = (
                    link.read_reply(request_id)
                    if wait == timeout
                    else _await_reply(link, request_id, deadline)
                )
            except BaseException as interrupt:
                return self._interrupted(
                    link,
                    request_id,
                    interrupt,
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
                    response = response_class.FromString(payload)
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

    def _interrupted(
        self,
        link: Link,
        request_id: int,
        interrupt: BaseException,
        *,
        timeout: float | None,
        parked: bool,
        response_class: Any,
        rpc: tuple[str, str],
        request: Any,
    ) -> tuple[Any, lane_pb2.LaneError | None]:
        """The call on ``link`` was sent and its reply is still owed when
        ``interrupt`` was raised. Raises the exception the call ends with,
        or returns the reply when a parked call's deadline passed but the
        server answered after all."""
        if isinstance(interrupt, Refused):
            self._drop(link)
            raise self._translate(interrupt.error) from None
        timed_out = isinstance(interrupt, TimeoutError)
        if isinstance(interrupt, (OSError, LinkError)) and not timed_out:
            self._drop(link)
            raise LinkBroken(interrupt, sent=True) from interrupt
        if timed_out and not parked:
            # The server is still working on it: no CANCEL applies.
            self._drop(link)
            raise errors.DeadlineExceeded(
                f"statehub-server at {self.address}: no reply within {timeout:g}s",
                code="DEADLINE_EXCEEDED",
            ) from None
        reply = self._withdraw(link, request_id, parked, response_class)
        if timed_out:
            if reply is not None and reply[1] is None:
                return reply  # served just as the deadline passed
            raise errors.DeadlineExceeded(
                f"statehub-server at {self.address}: no reply within {timeout:g}s",
                code="DEADLINE_EXCEEDED",
            ) from None
        if reply is not None and reply[1] is None:
            self._undo(rpc, request, reply[0])
        raise interrupt

    def _withdraw(
        self, link: Link, request_id: int, parked: bool, response_class: Any
    ) -> tuple[Any, lane_pb2.LaneError | None] | None:
        """Cancels a parked call and reads until its reply, so the link stays
        in step; returns the reply, or None if the link was lost."""
        deadline = time.monotonic() + _DRAIN_WAIT
        try:
            if parked:
                link.set_timeout(_DRAIN_WAIT)
                link.send(CANCEL, request_id)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no reply after CANCEL")
                link.set_timeout(remaining)
                try:
                    kind, payload = link.read_reply(request_id)
                except KeyboardInterrupt:
                    continue  # another Ctrl-C: the reply is on its way
                break
            if kind == RESPONSE:
                response = response_class.FromString(payload)
                self._give_back(link)
                return response, None
            failure = lane_pb2.LaneError.FromString(payload)
        except BaseException:
            self._drop(link)
            return None
        self._finish(link, failure)
        return None, failure

    def _undo(self, rpc: tuple[str, str], request: Any, response: Any) -> None:
        undo = _UNDO.get(rpc)
        if undo is None:
            return
        given_back = undo(request, response)
        if given_back is None:
            return
        # Best effort: the interrupt matters more, and the session's end
        # frees it anyway.
        with contextlib.suppress(BaseException):
            self.call(given_back[0], "Release", given_back[1])

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
        hello.protocol_version = PROTOCOL_VERSION
        hello.label = self._label
        if self.credentials.token:
            hello.token = self.credentials.token
        try:
            link = Link.dial(self._family, self._sockaddr, _CONNECT_TIMEOUT)
        except OSError as failed:
            raise errors.ConnectionError(
                f"cannot open a session with statehub-server at {self.address}: "
                f"{failed}{_transport.why_unreachable(self.address)}",
                code="UNAVAILABLE",
            ) from None
        try:
            welcome = link.hello(hello)
        except Refused as refused:
            link.close()
            raise self._refusal(refused.error) from None
        except (OSError, LinkError) as failed:
            link.close()
            raise errors.ConnectionError(
                f"cannot open a session with statehub-server at {self.address}: "
                f"{failed}{_transport.why_unreachable(self.address)}",
                code="UNAVAILABLE",
            ) from None
        except BaseException:
            link.close()
            raise
        self._links.add(link)
        return link, welcome

    def _refusal(self, failure: lane_pb2.LaneError) -> errors.StatehubError:
        """The exception for a refused HELLO, as the gRPC session says it."""
        error = self._translate(failure)
        message = (
            f"cannot open a session with statehub-server at {self.address}: "
            f"{failure.message}"
        )
        if error.kind:
            return errors.error_for_kind(
                error.kind,
                message,
                object=error.object,
                limit=getattr(error, "limit", ""),
                code=error.code,
            )
        return type(error)(message, code=error.code)

    def _open_link(self) -> Link:
        """A new link that joins the current session. Raises SessionError if
        the session is not live any more."""
        session = self._ensure()
        generation = self._generation
        link, _ = self._dial(lane_pb2.LaneHello(join_session_id=session))
        link.generation = generation
        return link

    # -- the session ----------------------------------------------------------

    def _ensure(self) -> str:
        """The live session's id, opening the session (the primary) if there
        is none."""
        if self._primary is not None:
            return self._session
        return self._open_session("")

    def _open_session(self, stale: str) -> str:
        with self._lock:
            if self.closed:
                raise self._broken(LinkError("closed"))
            if self._primary is not None and self._session != stale:
                return self._session
            old = self._primary
            had_session = bool(self._session)
            primary, welcome = self._dial(
                lane_pb2.LaneHello(resume_session_id=self._session)
            )
            holds: dict[str, list[Any]] = {}
            new_session = welcome.session_id != self._session
            if had_session and new_session:
                # Before any call can run in the new session: what the old
                # one held is lost (statehub._held).
                self.held.session_replaced(self._session, welcome.session_id, self._ttl)
            with self._primary_lock:
                self._primary = primary
                self.lost_at = None
                if old is not None:
                    old.shutdown()  # wakes the watcher
                    self._drop(old)
                self._session = welcome.session_id
                self._number_calls = welcome.number_calls
                self._ttl = (
                    welcome.lease_ttl_ms / 1000.0 if welcome.lease_ttl_ms else None
                )
                if had_session:
                    # A new session, or the old one back after the primary
                    # broke: the links made before (to a server that may
                    # have gone away) are not used again.
                    self._generation += 1
                    stale_links, self._pool = self._pool, []
                    for link in stale_links:
                        self._drop(link)
                if new_session:
                    with self._holds_lock:
                        # Releases queued for the old session are moot; the
                        # new one takes what this process holds now.
                        self._releases.clear()
                        holds = self._holds.copy()
            if not self._unix:
                self._start_thread()
            if self._watcher is None and self.pid == os.getpid():
                self._watcher = Watcher(self, _CONNECT_TIMEOUT)
                self._watcher.start()
        metrics = _metrics.current
        if had_session and metrics is not None:
            metrics.reconnected(resumed=welcome.resumed)
        if had_session and new_session:
            self.held.objects_gone(welcome.session_id, self._readopt(holds))
        return welcome.session_id

    def _renew(self, stale: str) -> None:
        """The server said session ``stale`` is not live: opens a new one
        (unless another thread did already)."""
        if self._session == stale:
            self._open_session(stale)

    def _check_primary(self) -> None:
        """After a link broke: if the primary is gone too (the server went
        away), forget it, so that the next call opens a new session."""
        primary = self._primary
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
            self._lose_primary(primary)

    def _lose_primary(self, primary: Link) -> None:
        with self._lock:
            if self._primary is primary:
                self._primary = None
                self.lost_at = time.monotonic()
                primary.shutdown()  # wakes the watcher
                self._drop(primary)

    def _readopt(self, holds: dict[str, list[Any]]) -> list[str]:
        """After the server replaced an ended session with a new one, takes
        the holds this process had again; returns the names of the objects
        that are gone (best effort: other failures are not counted)."""
        gone = []
        for name, (object_type, count) in holds.items():
            for _ in range(count):
                try:
                    self.call(
                        "Objects",
                        "Open",
                        objects_pb2.OpenRequest(name=name, type=object_type),
                        checked=False,
                    )
                except errors.ObjectNotFound:
                    gone.append(name)
                    break
                except errors.StatehubError:
                    break
        return gone

    # -- holds on anonymous objects ------------------------------------------

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this process's session on ``name``."""
        with self._holds_lock:
            entry = self._holds.get(name)
            if entry is None:
                self._holds[name] = [object_type, 1]
            else:
                entry[1] += 1

    def release(self, name: str, *, handed_off: bool = False) -> None:
        """Drops one hold on ``name``: queued, and sent in a RELEASE frame on
        the primary before the next call or by the timer thread.

        ``handed_off``: the proxy may have been passed to another process
        (pickled, or alive when this process forked), which adopts the
        object by taking a hold of its own when it starts; the release waits
        :data:`statehub._transport.HANDOFF_GRACE` seconds first.

        Safe to call from a finalizer on any thread: no I/O, and only a
        reentrant lock and a SimpleQueue.
        """
        if self.closed:
            return
        with self._holds_lock:
            entry = self._holds.get(name)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._holds[name]
            self._releases.put(name, handed_off=handed_off)

    def _flush_releases(self, carried: tuple[Any, ...] | None = None) -> float | None:
        """Sends the releases that are due; returns when the next held-back
        one is due (None: none is). Skips if another thread is sending.
        Never called from a finalizer."""
        if not self._primary_lock.acquire(blocking=carried is not None):
            return None
        try:
            names: list[str] = []
            now = time.monotonic()
            releases = self._releases
            with self._holds_lock:
                first = carried if carried and carried[0] != "tick" else None
                control = releases.collect(names, first)
                if control is not None:
                    releases.outbox.put(control)  # "stop", for the thread
                next_due = releases.due(names, now)
                primary = self._primary
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
            self._primary_lock.release()
        if next_due is not None and carried is None:
            self._start_thread()
        return next_due

    # -- the timer and keepalive thread ----------------------------------------

    def _start_thread(self) -> None:
        """Starts the thread that sends held-back releases (and, over TCP,
        keepalives), once. Never called from a finalizer."""
        if self._thread is not None or self.closed or self.pid != os.getpid():
            return
        with self._lock:
            # Checked again: another thread may have started it meanwhile.
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name=f"statehub-lane {self.address}", daemon=True
                )
                self._thread = thread
                thread.start()

    def _run(self) -> None:
        last_ping = time.monotonic()
        item: tuple[Any, ...] | None = None
        while not self.closed:
            next_due = self._flush_releases(item or ("tick",))
            now = time.monotonic()
            wait = None if next_due is None else max(next_due - now, 0.0)
            if not self._unix:
                interval = self._ttl / 3.0 if self._ttl else _DEFAULT_KEEPALIVE
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
        primary = self._primary
        if primary is None:
            self._reconnect("")
            return
        with self._primary_lock:
            if self._primary is not primary or self.closed:
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
        self._lose_primary(primary)
        self._reconnect(self._session)

    def _reconnect(self, session: str) -> None:
        # The server may be away: calls will say so, and the next ping tries
        # again.
        with contextlib.suppress(errors.StatehubError):
            self._open_session(session)

    # -- life cycle -------------------------------------------------------------

    def session_id(self) -> str:
        """The current session id, connecting first if needed."""
        return self._ensure()

    def close(self) -> None:
        """Ends the session (GOODBYE: the server releases everything it held
        at once) and closes every link. Idempotent."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self.pid == os.getpid():
            self._releases.outbox.put(("stop",))
            if self._watcher is not None:
                self._watcher.stop()
            acquired = self._primary_lock.acquire(timeout=_GOODBYE_WAIT)
            try:
                primary = self._primary
                self._primary = None
                if primary is not None:
                    self._goodbye(primary)
                    self._drop(primary)
            finally:
                if acquired:
                    self._primary_lock.release()
            pooled, self._pool = self._pool, []
            for link in pooled:
                self._drop(link)
            # Links in use: wake their threads (they see the connection
            # closed and close the link themselves).
            for link in list(self._links):
                link.shutdown()

    def _goodbye(self, primary: Link) -> None:
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
        self._primary = None
        self._thread = None
        self._watcher = None
