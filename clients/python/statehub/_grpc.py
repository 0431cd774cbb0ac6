"""The gRPC transport: a channel and a session stream per process and server.

Used when a manager is made with ``transport="grpc"`` (or TLS, which only
gRPC serves); needs grpcio (``pip install statehub[grpc]``). The default
transport is the lane (``_lane.py``), which imports nothing from here.

Each connection has a session (``_session.py``): a lease kept by a stream
that a background thread runs. Every unary call carries the session id as
``statehub-session`` metadata.

Fork safety: grpcio lets a forked child open channels only if
``GRPC_ENABLE_FORK_SUPPORT`` is set before grpc is first imported (importing
statehub sets it; importing this module warns if grpc came first without
it). With it, grpcio pauses its own threads around ``fork()``, but a call
in flight at that moment can make the child hang for good in grpcio's
fork handler: a bidi stream about one fork in five (grpcio 1.85), and a
thread parked in ``acquire()``, ``wait()`` or ``get()`` the second fork of
tests/python/test_fork_stress.py. So before a fork (the _ForkGate) new
calls wait, parked calls are cancelled on the server (which rolls back a
grant that raced the cancel) and made again after the fork for what is
left of their timeout, the fork waits for the other calls in flight, and
the session stream is half-closed (the server keeps the session for its
lease); after it the parent reconnects and resumes the same session in the
background.

Thread safety: a GrpcConnection is safe to share between threads.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from . import _metrics, _transport, errors
from ._frames import CallNumbers
from ._held import Held
from ._proto import (
    cell_pb2_grpc,
    dict_pb2_grpc,
    list_pb2_grpc,
    namespace_pb2_grpc,
    objects_pb2_grpc,
    queue_pb2_grpc,
    session_pb2_grpc,
    sync_pb2_grpc,
    value_pb2,
    watch_pb2_grpc,
)
from ._reconnect import RECONNECT_WAIT, made_again
from ._releases import Holds, take_again
from ._session import Session
from ._status import NO_KEY, error_from_status
from ._transport import Credentials, ManagerCount
from ._wire import Encoded


def _raise(error: errors.StatehubError, cause: grpc.RpcError) -> NoReturn:
    """Raises a call's error: a server verdict (it has a kind) as it is,
    since the gRPC plumbing adds nothing; a transport failure chained to
    grpcio's error."""
    if error.kind:
        raise error from None
    raise error from cause


SESSION_METADATA_KEY = "statehub-session"
#: A numbered call's "<number> <seen>" (api/LANE.md, "Numbered calls").
CALL_METADATA_KEY = "statehub-call"
ERROR_METADATA_KEY = "statehub-error-bin"
AUTHORIZATION_METADATA_KEY = "authorization"

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
_WatchesStub: Callable[[grpc.Channel], Any] = watch_pb2_grpc.WatchesStub

#: How many times a numbered call is sent again when its connection keeps
#: breaking while the server looks up (a restart costs one or two).
_MAX_RESENDS = 10
#: Between a call made again that broke again and the next try.
_AGAIN_PAUSE = 0.05


def _check_fork_support() -> None:
    from grpc._cython import cygrpc

    if os.name == "posix" and not cygrpc.is_fork_support_enabled():
        warnings.warn(
            "grpc was imported before statehub without GRPC_ENABLE_FORK_SUPPORT=1: "
            "child processes started with fork may hang or fail to reach the "
            "statehub server over gRPC. Import statehub before grpc, set "
            "GRPC_ENABLE_FORK_SUPPORT=1 in the environment, or use the lane "
            "(transport='lane', the default), which needs no grpc.",
            RuntimeWarning,
            stacklevel=2,
        )


_check_fork_support()


def auth_metadata(credentials: Credentials) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries (the bearer token)."""
    if not credentials.token:
        return ()
    return ((AUTHORIZATION_METADATA_KEY, f"Bearer {credentials.token}"),)


def make_channel(credentials: Credentials, address: str) -> grpc.Channel:
    """A new channel to ``address`` with ``credentials``."""
    if not credentials.tls:
        return grpc.insecure_channel(address, options=_channel_options())
    channel_credentials = grpc.ssl_channel_credentials(
        root_certificates=credentials.tls_ca,
        private_key=credentials.tls_key,
        certificate_chain=credentials.tls_cert,
    )
    return grpc.secure_channel(address, channel_credentials, options=_channel_options())


def _channel_options() -> list[tuple[str, Any]]:
    from . import __version__

    return [
        # The server enforces its own --max_message_bytes; gRPC's default
        # 4 MiB receive cap would refuse a large d.copy() on our side.
        ("grpc.max_receive_message_length", -1),
        ("grpc.max_send_message_length", -1),
        ("grpc.primary_user_agent", f"statehub-python/{__version__}"),
    ]


def translate_rpc_error(
    rpc_error: grpc.RpcError,
    address: str,
    key: Any = NO_KEY,
    attribute: str | None = None,
) -> errors.StatehubError:
    """The exception for a failed gRPC call (the shared translation)."""
    code = rpc_error.code()
    detail = None
    for entry in rpc_error.trailing_metadata() or ():
        if entry[0] == ERROR_METADATA_KEY:
            detail = value_pb2.ErrorDetail.FromString(entry[1])
            break
    return error_from_status(
        code.name if code is not None else "",
        rpc_error.details() or "",
        detail,
        address,
        key=key,
        attribute=attribute,
    )


def _broke(rpc_error: grpc.RpcError) -> bool:
    """Whether a call failed because its connection broke or the server
    could not be reached (UNAVAILABLE from grpcio itself), rather than by
    the server's verdict, which carries a statehub error detail."""
    if rpc_error.code() != grpc.StatusCode.UNAVAILABLE:
        return False
    metadata = rpc_error.trailing_metadata() or ()
    return not any(key == ERROR_METADATA_KEY for key, _ in metadata)


class GrpcWatchStream:
    """A watch on a gRPC server stream (statehub._watch.WatchStream), read
    by a daemon thread into a queue so that :meth:`next` can time out."""

    def __init__(self, connection: GrpcConnection, request: Any) -> None:
        self._address = connection.address
        self._closed = False
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        metadata = (
            (SESSION_METADATA_KEY, connection.session_id()),
            *connection.auth_metadata,
        )
        self._call = connection._watches.Watch(request, metadata=metadata)
        threading.Thread(target=self._read, name="statehub-watch", daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._queue.put(response)
            self._queue.put(grpc.StatusCode.UNAVAILABLE)
        except grpc.RpcError as rpc_error:
            self._queue.put(rpc_error)

    def next(self, timeout: float | None) -> Any:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if not isinstance(item, grpc.RpcError | grpc.StatusCode):
            return item
        self._queue.put(item)  # every later next() fails alike
        if self._closed or not isinstance(item, grpc.RpcError) or _broke(item):
            raise errors.ConnectionError(
                f"the watch's stream to statehub-server at {self._address} broke",
                code="UNAVAILABLE",
            )
        raise translate_rpc_error(item, self._address) from None

    def close(self) -> None:
        self._closed = True
        self._call.cancel()


#: How long a fork waits for the gRPC calls in flight to end before it goes
#: ahead anyway (with a warning).
FORK_DRAIN_TIMEOUT = 5.0


class _ForkGate:
    """Keeps a connection's calls out of the way of ``fork()``.

    Every call passes :meth:`enter` and :meth:`exit`; a parked call's future
    is :meth:`track`-ed while it waits. :meth:`close` (before a fork) stops
    new calls, cancels the parked ones and waits for the rest to end;
    :meth:`open` (after it, in the parent) lets calls go again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._active = 0
        # Parked calls' futures -> whether close() cancelled them.
        self._parked: dict[Any, bool] = {}

    def enter(self) -> None:
        with self._cond:
            while self._closed:
                self._cond.wait()
            self._active += 1

    def exit(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def track(self, future: Any) -> None:
        with self._cond:
            # One made as the gate closed is cancelled like the others.
            self._parked[future] = self._closed and future.cancel()

    def cancelled_for_fork(self, future: Any) -> bool:
        with self._cond:
            return self._parked.get(future, False)

    def untrack(self, future: Any) -> None:
        with self._cond:
            del self._parked[future]

    def close(self, timeout: float) -> int:
        """Stops new calls, cancels the parked ones, and waits up to
        ``timeout`` for the calls in flight to end; returns how many are
        still in flight."""
        with self._cond:
            self._closed = True
            for future, cancelled in self._parked.items():
                self._parked[future] = cancelled or future.cancel()
            self._cond.wait_for(lambda: self._active == 0, timeout)
            return self._active

    def open(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()


class GrpcConnection(ManagerCount):
    """A process's channel and session to one server over gRPC."""

    def __init__(self, address: str, credentials: Credentials) -> None:
        self.address = address
        self.pid = os.getpid()
        self.credentials = credentials
        self.auth_metadata = auth_metadata(credentials)
        self._channel = make_channel(credentials, address)
        self._stubs = {name: make(self._channel) for name, make in _STUBS.items()}
        self._watches = _WatchesStub(self._channel)
        self._methods: dict[tuple[str, str], Any] = {}
        # Reentrant: a proxy's finalizer may run (from the garbage collector)
        # on a thread that already holds it.
        self._lock = threading.RLock()
        # Holds this process has on anonymous objects.
        self._holds = Holds()
        self.held = Held(address)
        self._session = Session(self, _SessionsStub(self._channel))
        self._numbers = CallNumbers()
        self._gate = _ForkGate()
        self._managers = 0
        self.closed = False
        _live.add(self)
        _register_hooks()

    # -- the funnel ---------------------------------------------------------

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
        """``call`` of a request in wire form, returning the response in
        wire form (gRPC parses and serializes both)."""
        response = self.call(
            service,
            method,
            Encoded(message_type, name, body),
            timeout=timeout,
            key=key,
            attribute=attribute,
        )
        return response.SerializeToString()  # type: ignore[no-any-return]

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
    ) -> Any:
        """Runs one unary rpc (see statehub._transport.Connection.call).

        A parked call is made in its future form so that an exception raised
        while it waits cancels it on the server; one cancelled so that the
        process could fork raises ForkInterrupted (the caller makes it again).
        """
        if type(request) is Encoded:
            request = request.message()
        stub_method = self._methods.get((service, method))
        if stub_method is None:
            stub_method = getattr(self._stubs[service], method)
            self._methods[(service, method)] = stub_method
        deadline = (
            _transport.DEFAULT_TIMEOUT if timeout is None and not parked else timeout
        )
        metrics = _metrics.current
        started = time.monotonic() if metrics is not None else 0.0
        number = 0
        renewed = False
        # Set at the first break: until when a call made again may break
        # again while the server comes back (its channel can report ready a
        # moment before the server's restart refuses the connection).
        back_by: float | None = None
        try:
            while True:
                session_id = self._session.ensure()
                self.held.check()
                metadata: tuple[tuple[str, str], ...] = (
                    (SESSION_METADATA_KEY, session_id),
                    *self.auth_metadata,
                )
                if not number and self._session.number_calls:
                    number, seen = self._numbers.take((service, method), parked)
                if number:
                    metadata += ((CALL_METADATA_KEY, f"{number} {seen}"),)
                self._gate.enter()
                try:
                    return self._invoke(
                        stub_method, request, metadata, deadline, parked
                    )
                except grpc.RpcError as rpc_error:
                    broke = _broke(rpc_error)
                    if broke and number:
                        # It may have run: sent again in its session, it
                        # runs once (or gets its first answer).
                        return self._resend(
                            stub_method,
                            request,
                            metadata,
                            deadline=deadline,
                            parked=parked,
                            session_id=session_id,
                            failure=rpc_error,
                            key=key,
                            attribute=attribute,
                        )
                    if (
                        broke
                        and made_again((service, method), parked)
                        and (back_by is None or time.monotonic() < back_by)
                    ):
                        # Safe to make again once the server is back: a read,
                        # or a wait its proxy parks again for the rest of its
                        # timeout (after asking whether it was served).
                        back_by = self._await_server(
                            deadline, rpc_error, key, attribute, back_by
                        )
                        if parked:
                            raise _transport.Reconnected() from None
                        continue
                    error = self._translate(rpc_error, key, attribute)
                    if isinstance(error, errors.SessionError) and not renewed:
                        renewed = True
                        self._session.renew(session_id)
                        continue
                    _raise(error, rpc_error)
                finally:
                    self._gate.exit()
        finally:
            if number:
                self._numbers.done(number)
            if metrics is not None:
                metrics.observe_call(service, method, time.monotonic() - started)

    def _await_server(
        self,
        deadline: float | None,
        failure: grpc.RpcError,
        key: Any,
        attribute: str | None,
        back_by: float | None = None,
    ) -> float:
        """Waits for the channel to reach the server again, within
        RECONNECT_WAIT and the call's ``deadline`` (seconds); raises the
        call's ``failure`` if it does not. ``back_by``: None at a call's
        first break, which this sets to now + RECONNECT_WAIT and returns;
        at a later one (the channel was ready a moment before the server's
        restart refused it) the value returned then, after a short pause."""
        if back_by is None:
            back_by = time.monotonic() + RECONNECT_WAIT
        else:
            time.sleep(_AGAIN_PAUSE)
        wait = RECONNECT_WAIT if deadline is None else min(RECONNECT_WAIT, deadline)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=wait)
        except grpc.FutureTimeoutError:
            _raise(self._translate(failure, key, attribute), failure)
        return back_by

    def _invoke(
        self,
        stub_method: Any,
        request: Any,
        metadata: tuple[tuple[str, str], ...],
        deadline: float | None,
        parked: bool,
        *,
        wait_for_ready: bool | None = None,
    ) -> Any:
        """One attempt of a call (a parked one in its future form)."""
        if parked:
            return self._wait(
                stub_method.future(
                    request,
                    metadata=metadata,
                    timeout=deadline,
                    wait_for_ready=wait_for_ready,
                )
            )
        return stub_method(
            request, metadata=metadata, timeout=deadline, wait_for_ready=wait_for_ready
        )

    def _resend(
        self,
        stub_method: Any,
        request: Any,
        metadata: tuple[tuple[str, str], ...],
        *,
        deadline: float | None,
        parked: bool,
        session_id: str,
        failure: grpc.RpcError,
        key: Any,
        attribute: str | None,
    ) -> Any:
        """Sends a numbered call again, unchanged, once the server is back
        (within RECONNECT_WAIT of each break, as on the lane, and the call's
        deadline): the server runs it once per session, so a call it ran
        before the connection broke gets its first answer. The call sent
        again keeps its own deadline (a put parked on a full queue may wait
        as long as it was going to). Raises ConnectionError if the server
        does not come back in time or the session did not survive."""
        started = time.monotonic()
        for _ in range(_MAX_RESENDS):
            self._await_server(self._left(deadline, started), failure, key, attribute)
            try:
                return self._invoke(
                    stub_method,
                    request,
                    metadata,
                    self._left(deadline, started),
                    parked,
                    wait_for_ready=True,
                )
            except grpc.RpcError as rpc_error:
                if _broke(rpc_error):
                    failure = rpc_error  # broke again: another wait
                    continue
                error = self._translate(rpc_error, key, attribute)
                if isinstance(error, errors.SessionError):
                    raise errors.ConnectionError(
                        f"statehub-server at {self.address}: the connection "
                        f"broke during a call in session {session_id}, which "
                        "has ended (the server restarted without --data_dir, "
                        "or the lease ran out): it may or may not have been "
                        "applied",
                        code="UNAVAILABLE",
                    ) from None
                _raise(error, rpc_error)
        _raise(self._translate(failure, key, attribute), failure)

    @staticmethod
    def _left(deadline: float | None, started: float) -> float | None:
        """What is left at this moment of a timeout of ``deadline`` seconds
        counted from ``started`` (monotonic); None for none."""
        if deadline is None:
            return None
        return max(deadline - (time.monotonic() - started), 0.0)

    def _wait(self, future: Any) -> Any:
        """The response of a parked call made in future form. grpcio's
        ``result()`` waits in short slices, so signals are handled meanwhile;
        whatever interrupts the wait cancels the call (the server drops the
        waiter and rolls back a grant that raced with the cancellation)."""
        self._gate.track(future)
        try:
            return future.result()
        except grpc.FutureCancelledError:
            if self._gate.cancelled_for_fork(future):
                raise _transport.ForkInterrupted() from None
            raise
        except grpc.RpcError:
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            self._gate.untrack(future)

    def _translate(
        self, rpc_error: grpc.RpcError, key: Any, attribute: str | None
    ) -> errors.StatehubError:
        return translate_rpc_error(rpc_error, self.address, key, attribute)

    def open_watch(self, request: Any) -> GrpcWatchStream:
        """A watch on a server stream of its own."""
        return GrpcWatchStream(self, request)

    # -- holds on anonymous objects ----------------------------------------

    def add_hold(self, name: str, object_type: value_pb2.ObjectType) -> None:
        """Notes one server hold of this process's session on ``name``."""
        self._holds.add(name, object_type)

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
        self._holds.drop(name)

    def _session_replaced(self, old: str, new: str, ttl: float | None) -> None:
        self.held.session_replaced(old, new, ttl)

    def _readopt(self, new: str) -> None:
        """After the server replaced an expired session with a new one, takes
        the holds this process had again; the objects that are gone count as
        lost (statehub._held)."""
        gone: list[str] = []
        try:
            gone = take_again(self.call, self._holds.copy())
        finally:  # settles the loss even when the readoption failed
            self.held.objects_gone(new, gone)

    # -- life cycle ---------------------------------------------------------

    def session_id(self) -> str:
        """The current session id, connecting first if needed."""
        return self._session.ensure()

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

    def _pause_for_fork(self) -> None:
        in_flight = self._gate.close(FORK_DRAIN_TIMEOUT)
        if in_flight:
            warnings.warn(
                f"statehub: forking with {in_flight} gRPC call(s) to "
                f"{self.address} still in flight after {FORK_DRAIN_TIMEOUT:g}s; "
                "grpcio's fork handler may hang the child. Use the lane "
                "(transport='lane', the default), which forks safely, or fork "
                "before starting threads that call statehub.",
                RuntimeWarning,
                stacklevel=2,
            )
        self._session.pause()

    def _resume_after_fork(self) -> None:
        self._gate.open()
        self._session.resume()

    def _abandon_in_child(self) -> None:
        # Kept referenced by the registry's orphans: no destructor may touch
        # grpc state in the child.
        pass


# -- fork and exit hooks ----------------------------------------------------

# Every gRPC connection made in this process (or inherited by a fork).
_live: weakref.WeakSet[GrpcConnection] = weakref.WeakSet()
_hooks_registered = False
_hooks_lock = threading.Lock()


def _register_hooks() -> None:
    """Registers the fork and exit hooks of the gRPC transport, once, after
    grpc made its first channel: hooks run last-in, first-out, so ours run
    before grpc's own pre-fork handler (while grpc's threads can still
    finish our stream) and before grpc's own exit handlers."""
    global _hooks_registered
    with _hooks_lock:
        if _hooks_registered:
            return
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent)
        atexit.register(_close_all)
        _hooks_registered = True


def _grpc_connections() -> list[GrpcConnection]:
    """This process's open gRPC connections."""
    pid = os.getpid()
    return [c for c in list(_live) if c.pid == pid and not c.closed]


def _close_all() -> None:
    for conn in _grpc_connections():
        conn.close()


def _before_fork() -> None:
    for conn in _grpc_connections():
        conn._pause_for_fork()


def _after_fork_in_parent() -> None:
    for conn in _grpc_connections():
        conn._resume_after_fork()
