"""Lock, RLock, Semaphore, BoundedSemaphore and Condition proxies on
``statehub.v1.Locks``, ``Semaphores`` and ``Conditions``.

They behave as Manager's ``AcquirerProxy`` and ``ConditionProxy`` do, with
statehub's robust ownership on top: a lock whose holder's process dies is
released when that process's session ends (after the server's lease TTL),
and the next acquirer sees :attr:`LockProxy.owner_died`. Every acquisition
also gets a fencing token (:attr:`LockProxy.fencing_token`), a per-lock
counter that only grows.

Example::

    lock = m.Lock()
    with lock:
        if lock.owner_died:         # the last holder died holding it
            repair()
        write(token=lock.fencing_token)

Blocking calls park on the server (no deadline unless a timeout is given);
Ctrl-C while one waits cancels it on the server. All proxies here are safe
to use from several threads; RLock ownership is per thread, as in Python.

The proxies count what this process acquired and has not released
(statehub._held): if its session is lost, a release of what it held raises
SessionLost instead of reaching the server, where another process may hold
it by now.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from . import _metrics, errors
from ._connection import Withdrawn, connection_for
from ._held import Held, Key
from ._proto import objects_pb2, sync_pb2, value_pb2
from ._proxy import BaseProxy, Options, Token, _open_anonymous, make_proxy, register
from ._waits import call_deadline, caller_fields, clamp, lock_timeout
from ._watch import Watchable

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Holder:
    """Who holds or waits: a session, a thread in it, and a label
    (``host:pid:thread-name``)."""

    session_id: str
    thread_id: int
    label: str


@dataclasses.dataclass(frozen=True)
class DeadlockEdge:
    """One wait of a deadlock: ``waiter`` is parked on ``lock`` (a Lock, or
    an RLock when ``reentrant``), which ``holder`` holds. ``condition``: the
    waiter is a Condition wait reacquiring its lock after a notify or its
    timeout."""

    lock: str
    reentrant: bool
    condition: bool
    waiter: Holder
    holder: Holder


@dataclasses.dataclass(frozen=True)
class Deadlock:
    """A cycle of waits among locks and rlocks (``Locks.Deadlocks``): each
    edge's holder is the next edge's waiter, and the last edge's holder the
    first edge's waiter, so none of them can go on until one wait ends.

    ``id`` numbers the cycles the server has found since it started, from
    1; ``age`` is how long ago (seconds) this one closed. A plain Lock that
    a thread waits for while holding it itself is a cycle of one edge."""

    id: int
    age: float
    edges: tuple[DeadlockEdge, ...]

    @property
    def locks(self) -> tuple[str, ...]:
        """The names of the locks in the cycle, in its order."""
        return tuple(edge.lock for edge in self.edges)


@dataclasses.dataclass(frozen=True)
class LockState:
    """A lock as the server sees it (``Locks.State``): whether it is held,
    by whom, its RLock recursion depth, the last fencing token, the parked
    acquirers in the order they will be served, the deadlocks present now
    that go through it, and whether its holder has exited leaving it held."""

    locked: bool
    holder: Holder | None
    held_for: float
    recursion: int
    fencing_token: int
    waiters: tuple[Holder, ...]
    deadlocks: tuple[Deadlock, ...] = ()
    #: The holder's process exited normally leaving the lock held, as a
    #: Manager client may; any process may release it.
    holder_left: bool = False


def _holder(wire: sync_pb2.Holder) -> Holder:
    return Holder(wire.session_id, wire.thread_id, wire.label)


def deadlock_from_wire(wire: sync_pb2.Deadlock) -> Deadlock:
    """A ``statehub.v1.Deadlock`` as a :class:`Deadlock`."""
    return Deadlock(
        id=wire.id,
        age=wire.age.ToTimedelta().total_seconds(),
        edges=tuple(
            DeadlockEdge(
                lock=edge.lock,
                reentrant=edge.reentrant,
                condition=edge.condition,
                waiter=_holder(edge.waiter),
                holder=_holder(edge.holder),
            )
            for edge in wire.edges
        ),
    )


class AcquirerProxy(Watchable, BaseProxy):
    """What Manager's ``AcquirerProxy`` offers: ``acquire``, ``release`` and
    the context manager protocol. The base of the lock and semaphore
    proxies (``isinstance(m.Lock(), statehub.AcquirerProxy)``)."""

    __slots__ = ()
    _manager_class = "AcquirerProxy"

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def _getvalue(self) -> Any:
        raise TypeError(f"cannot copy a shared {self._token.typeid}")

    def _held(self) -> Held:
        return connection_for(self._token.address).held

    def _release_held(
        self, key: Key, send: Callable[[int], object], n: int = 1
    ) -> None:
        """Releases ``n`` of ``key``: ``send(count)`` sends the release of
        ``count`` of them, counted once it is answered; raises SessionLost,
        without sending, for what a lost session held."""
        held = self._held()
        taken, lost = held.take_lost(key, n)
        if taken < n:
            try:
                send(n - taken)
            except errors.SessionLost:
                held.take_lost(key, n - taken)
                raise
            held.released(key, n - taken)
        if lost is not None:
            raise lost

    def _acquire(self, request_type: Any, blocking: bool, seconds: float | None) -> Any:
        """Sends an acquire of ``request_type`` (LockAcquireRequest or
        SemaphoreAcquireRequest), parked on the server for up to ``seconds``
        (None: until served), records the wait, and returns the reply."""
        started = time.monotonic()
        response = self._park(
            "Acquire",
            request_type,
            seconds,
            call_deadline(seconds if blocking else 0),
            # blocking is field 2 of both request types.
            wire=b"\x10\x01" if blocking else b"",
        )
        metrics = _metrics.current
        if blocking and metrics is not None:
            metrics.observe_lock_wait(
                value_pb2.ObjectType.Name(self._token.type).lower(),
                response.acquired,
                time.monotonic() - started,
            )
        return response


class _Acquisition(threading.local):
    fencing_token = 0
    owner_died = False


@register(value_pb2.LOCK)
@register(value_pb2.RLOCK)
class LockProxy(AcquirerProxy):
    """A shared ``threading.Lock`` (``m.Lock()``) or ``threading.RLock``
    (``m.RLock()``).

    A Lock may be released by any caller, as Python allows; an RLock only by
    the thread that acquired it, once per acquire. Releasing a lock that is
    not held raises RuntimeError, as threading does.

    :attr:`fencing_token` and :attr:`owner_died` describe the last
    acquisition made through this proxy by the calling thread.
    """

    __slots__ = ("_last",)
    _service = "Locks"

    _last: _Acquisition

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        super().__init__(token, options, held=held)
        object.__setattr__(self, "_last", _Acquisition())

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquires the lock, as ``threading.Lock.acquire`` does: returns
        True, or False if not blocking or the timeout passed first. A
        timeout of -1 (or None) waits forever; other negative timeouts, or a
        timeout with ``blocking=False``, raise ValueError."""
        seconds = lock_timeout(blocking, timeout)
        response = self._acquire(sync_pb2.LockAcquireRequest, blocking, seconds)
        if response.acquired:
            self._note(response)
            self._held().acquired(self._key())
        return bool(response.acquired)

    def _key(self, thread_id: int = 0) -> Key:
        if self._token.type == value_pb2.RLOCK:
            return ("rlock", self._token.name, thread_id or threading.get_ident())
        return ("lock", self._token.name, 0)

    def _served_before_break(self, request: Any) -> Any:
        # The server may have granted the acquire just before it went away
        # (the grant is in its log, the reply was lost): then this thread
        # holds it now, once more than this process counted.
        state = self._call("State", sync_pb2.LockStateRequest(name=self._token.name))
        mine = connection_for(self._token.address).session_id()
        if not state.locked or (
            state.holder.session_id,
            state.holder.thread_id,
        ) != (mine, request.thread_id):
            return None
        counted = self._held().count(self._key(request.thread_id))
        if self._token.type == value_pb2.RLOCK:
            granted = state.recursion > counted
        else:
            granted = counted == 0
        if not granted:
            return None
        return sync_pb2.LockAcquireResponse(
            acquired=True, fencing_token=state.fencing_token
        )

    def _note(self, response: Any) -> None:
        self._last.fencing_token = response.fencing_token
        self._last.owner_died = response.owner_died

    def release(self) -> None:
        """Releases the lock. RuntimeError if it is not held (for an RLock:
        not held by this thread); SessionLost if this process's acquisition
        was lost with its session (then nothing is sent: the lock may be
        another process's by now)."""
        self._release_held(self._key(), self._send_release)

    def _send_release(self, _count: int) -> None:
        # LockReleaseRequest.thread_id is field 2.
        if (
            self._call_wire(
                "Release", sync_pb2.LockReleaseRequest, caller_fields(b"\x10")
            )
            is None
        ):
            self._call(
                "Release",
                sync_pb2.LockReleaseRequest(
                    name=self._token.name, thread_id=threading.get_ident()
                ),
            )

    @property
    def fencing_token(self) -> int:
        """The fencing token of this thread's last acquisition through this
        proxy (0 if none): it only grows per lock, so a resource guarded by
        the lock can refuse a write that carries an older token. An RLock
        re-entry keeps the outer acquisition's token."""
        return self._last.fencing_token

    @property
    def owner_died(self) -> bool:
        """True if this thread's last acquisition through this proxy found
        the lock freed because its previous holder's session ended (its
        process died, or was cut off past the lease) while holding it; the
        state the lock guards may be half-updated. Told to one acquirer."""
        return self._last.owner_died

    def locked(self) -> bool:
        """Whether the lock is held now (by anyone)."""
        return self.state().locked

    def state(self) -> LockState:
        """The lock as the server sees it now: holder, recursion, waiters,
        and the deadlocks through it."""
        r = self._call("State", sync_pb2.LockStateRequest(name=self._token.name))
        return LockState(
            locked=r.locked,
            holder=_holder(r.holder) if r.HasField("holder") else None,
            held_for=r.held_for.ToTimedelta().total_seconds(),
            recursion=r.recursion,
            fencing_token=r.fencing_token,
            waiters=tuple(_holder(w.holder) for w in r.waiters),
            deadlocks=tuple(deadlock_from_wire(d) for d in r.deadlocks),
            holder_left=r.holder_left,
        )

    def _str(self) -> str:
        s = self.state()
        status = "locked" if s.locked else "unlocked"
        if self._token.type == value_pb2.RLOCK:
            return f"<{status} RLock {self._token.name!r} count={s.recursion}>"
        return f"<{status} Lock {self._token.name!r}>"


@register(value_pb2.SEMAPHORE)
@register(value_pb2.BOUNDED_SEMAPHORE)
class SemaphoreProxy(AcquirerProxy):
    """A shared ``threading.Semaphore`` (``m.Semaphore(value)``) or
    ``BoundedSemaphore``.

    Unlike Python's, units are owned: a unit acquired by a process whose
    session ends (it died) is given back, so a worker killed inside
    ``with sem:`` does not leak it. Any process may release.
    """

    __slots__ = ()
    _service = "Semaphores"

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Takes one unit, as ``threading.Semaphore.acquire``: True, or
        False when not blocking or the timeout passed (a negative timeout
        is 0). ValueError for a timeout with ``blocking=False``."""
        if not blocking and timeout is not None:
            raise ValueError("can't specify timeout for non-blocking acquire")
        response = self._acquire(
            sync_pb2.SemaphoreAcquireRequest, blocking, clamp(timeout)
        )
        if response.acquired:
            self._held().acquired(self._key())
        return bool(response.acquired)

    def _key(self) -> Key:
        return ("semaphore", self._token.name, 0)

    def _served_before_break(self, request: Any) -> Any:
        # As for a lock: a unit granted just before the server went away is
        # counted against this session, one more than this process counted.
        state = self._call(
            "State", sync_pb2.SemaphoreStateRequest(name=self._token.name)
        )
        mine = connection_for(self._token.address).session_id()
        units = sum(h.units for h in state.holders if h.session_id == mine)
        if units > self._held().count(self._key()):
            return sync_pb2.SemaphoreAcquireResponse(acquired=True)
        return None

    def release(self, n: int = 1) -> None:
        """Releases n units. ValueError if n < 1, or if a BoundedSemaphore
        would pass its initial value ("Semaphore released too many times").
        SessionLost if units this process acquired were lost with its
        session: those are not released again (its other units are)."""
        if n < 1:
            raise ValueError("n must be one or more")
        self._release_held(
            self._key(),
            lambda count: self._call(
                "Release",
                sync_pb2.SemaphoreReleaseRequest(name=self._token.name, n=count),
            ),
            n,
        )

    def get_value(self) -> int:
        """The number of free units now."""
        r = self._call("State", sync_pb2.SemaphoreStateRequest(name=self._token.name))
        return int(r.value)

    def _str(self) -> str:
        return f"<{self._token.typeid} {self._token.name!r} value={self.get_value()}>"


@register(value_pb2.CONDITION)
class ConditionProxy(AcquirerProxy):
    """A shared ``threading.Condition`` (``m.Condition(lock=None)``), bound
    to a shared Lock or RLock (a new RLock when none is given).

    ``wait`` releases the lock, waits and reacquires it all on the server, so
    no notify is lost in between. ``wait_for`` evaluates its predicate here,
    in the client, between waits (as Manager's ConditionProxy does).
    """

    __slots__ = ("_lock", "_lock_name")
    _service = "Conditions"
    _manager_class = "ConditionProxy"

    _lock: LockProxy | None
    # The bound lock's name when known but not yet opened ("": unknown).
    _lock_name: str

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        super().__init__(token, options, held=held)
        object.__setattr__(self, "_lock", None)
        object.__setattr__(self, "_lock_name", "")

    def _reduce_extra(self) -> Any:
        return self._lock

    def _restore_extra(self, extra: Any) -> None:
        object.__setattr__(self, "_lock", extra)

    def _bind_lock_name(self, name: str) -> None:
        """Notes the name of the bound lock (the Open reply's), which
        :attr:`lock` then opens on first use."""
        object.__setattr__(self, "_lock_name", name)

    @property
    def lock(self) -> LockProxy:
        """The shared lock this condition is bound to. A proxy read back from
        a shared object learns it from the server on first use."""
        if self._lock is None:
            object.__setattr__(self, "_lock", self._bound_lock())
        return cast(LockProxy, self._lock)

    def _bound_lock(self) -> LockProxy:
        """Opens a proxy on the lock this condition is bound to (adopting it,
        if anonymous, for this process), asking the server which lock that
        is unless the Open reply said so."""
        lock_name = self._lock_name or self._describe(self._token.name).condition_lock
        lock_info = self._describe(lock_name)
        token = Token(self._token.address, lock_info.name, lock_info.type)
        if token.anonymous:
            _open_anonymous(token)
        return cast(LockProxy, make_proxy(token, self._options, held=token.anonymous))

    def _describe(self, name: str) -> Any:
        return self._call(
            "Describe", objects_pb2.DescribeRequest(name=name), service="Objects"
        ).info

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquires the bound lock (see :meth:`LockProxy.acquire`)."""
        return self.lock.acquire(blocking, timeout)

    def release(self) -> None:
        """Releases the bound lock."""
        self.lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Releases the lock (every RLock level), waits for a notify or the
        timeout, reacquires the lock, and returns False if the timeout
        passed first. Like Python's, a timed-out wait still waits as long
        as it takes to reacquire the lock; a negative timeout is 0.
        RuntimeError if this thread does not hold the lock."""
        # No deadline: after a timeout the server still reacquires the lock,
        # which may take any time, as in Python.
        try:
            response = self._park(
                "Wait",
                sync_pb2.ConditionWaitRequest,
                clamp(timeout),
                None,
                retry_after_fork=False,
            )
        except errors.StatehubError:
            raise
        except Withdrawn:
            # Cancelled for a fork (gRPC), or cut when the server went away
            # and came back (the lane), with the lock released: it cannot
            # simply be made again, so it ends as a spurious wakeup would,
            # holding the lock again. Callers that loop on their predicate
            # (wait_for, or `while not ...: wait()`) are unaffected.
            self._reacquire_after_interrupt(threading.get_ident())
            return True
        except BaseException:
            # Interrupted (Ctrl-C): the call was cancelled with the lock
            # released. Python's wait reacquires before propagating, so that
            # the `with cond:` around it can release.
            self._reacquire_after_interrupt(threading.get_ident())
            raise
        if self._lock is not None:
            self._lock._note(response)
        return bool(response.notified)

    def _reacquire_after_interrupt(self, thread_id: int) -> None:
        lock = self._lock
        if lock is None:
            return
        try:
            holder = lock.state().holder
            mine = connection_for(self._token.address).session_id()
            ours = holder is not None and (holder.session_id, holder.thread_id) == (
                mine,
                thread_id,
            )
            # One level, even for an RLock held several levels deep: the
            # depth is not known here. Enough for `with cond: cond.wait()`.
            # Not a new acquisition: this process counted it held all along.
            if not ours and lock.acquire():
                lock._held().released(lock._key(thread_id))
        except errors.StatehubError:
            pass  # the original exception matters more

    def wait_for(
        self, predicate: Callable[[], T], timeout: float | None = None
    ) -> T | bool:
        """Waits until ``predicate()`` is true (it is called in this client,
        holding the lock) or the timeout passes, and returns its last value.
        The timeout bounds the whole call, across as many waits as it takes
        (the predicate may still run once after it passes, as in Python)."""
        end: float | None = None
        remaining = timeout
        result = predicate()
        while not result:
            if remaining is not None:
                if end is None:
                    end = time.monotonic() + remaining
                else:
                    remaining = end - time.monotonic()
                    if remaining <= 0:
                        break
            self.wait(remaining)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        """Wakes up to n waiters (none when n <= 0). RuntimeError if this
        thread does not hold the lock."""
        self._call(
            "Notify",
            sync_pb2.ConditionNotifyRequest(
                name=self._token.name, n=n, thread_id=threading.get_ident()
            ),
        )

    def notify_all(self) -> None:
        """Wakes every waiter. RuntimeError if this thread does not hold the
        lock."""
        self._call(
            "Notify",
            sync_pb2.ConditionNotifyRequest(
                name=self._token.name, all=True, thread_id=threading.get_ident()
            ),
        )

    notifyAll = notify_all  # noqa: N815 - threading's old alias

    def _str(self) -> str:
        return f"<Condition {self._token.name!r}>"
