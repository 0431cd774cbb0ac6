"""Event and Barrier proxies on ``statehub.v1.Events`` and ``Barriers``.

Example::

    ready = m.Event()
    barrier = m.Barrier(3, action=report, timeout=30)
    ...
    ready.wait(5)            # True once set, False after 5 s
    index = barrier.wait()   # 0 for the first arrival, 2 for the last

Both are safe to use from several threads and processes. Waits park on the
server; Ctrl-C while one waits cancels it there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._proto import sync_pb2, value_pb2
from ._proxy import BaseProxy, Options, Token, register
from ._waits import call_deadline, clamp
from ._watch import Watchable


@register(value_pb2.EVENT)
class EventProxy(Watchable, BaseProxy):
    """A shared ``threading.Event`` (``m.Event()``): a flag that waiters
    wait for."""

    __slots__ = ()
    _service = "Events"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        r = self._call("IsSet", sync_pb2.EventIsSetRequest(name=self._token.name))
        return bool(r.set)

    isSet = is_set  # noqa: N815 - threading's old alias

    def set(self) -> None:
        """Sets the flag and wakes every waiter."""
        self._call("Set", sync_pb2.EventSetRequest(name=self._token.name))

    def clear(self) -> None:
        """Clears the flag."""
        self._call("Clear", sync_pb2.EventClearRequest(name=self._token.name))

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the flag is set or the timeout passes (a negative
        timeout is 0, as in Python); returns the flag, so False means the
        timeout passed."""
        seconds = clamp(timeout)
        response = self._park(
            "Wait", sync_pb2.EventWaitRequest, seconds, call_deadline(seconds)
        )
        return bool(response.set)

    def _getvalue(self) -> Any:
        raise TypeError("cannot copy a shared Event")

    def _str(self) -> str:
        return f"<Event {self._token.name!r} {'set' if self.is_set() else 'unset'}>"


@register(value_pb2.BARRIER)
class BarrierProxy(Watchable, BaseProxy):
    """A shared ``threading.Barrier`` (``m.Barrier(parties, action=None,
    timeout=None)``).

    ``wait()`` returns the arrival index, 0 for the first caller to arrive
    and ``parties - 1`` for the last. ``action`` is a client-side callable
    that the last party to arrive runs, as in CPython, before any party is
    released: the server holds the others until it reports back. If it
    raises (or its process dies first), the barrier breaks: the others get
    BrokenBarrierError, as do later waits until :meth:`reset`, and the
    exception propagates from that ``wait()``. The action and the default
    ``timeout`` travel with the proxy when it is pickled to another process
    (so a spawned child needs an action it can import, e.g. a module-level
    function).
    """

    __slots__ = ("_action", "_timeout")
    _service = "Barriers"
    _manager_class = "BarrierProxy"

    _action: Callable[[], object] | None
    _timeout: float | None

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        super().__init__(token, options, held=held)
        object.__setattr__(self, "_action", None)
        object.__setattr__(self, "_timeout", None)

    def _reduce_extra(self) -> Any:
        if self._action is None and self._timeout is None:
            return None
        return (self._action, self._timeout)

    def _restore_extra(self, extra: Any) -> None:
        action, timeout = extra
        object.__setattr__(self, "_action", action)
        object.__setattr__(self, "_timeout", timeout)

    def wait(self, timeout: float | None = None) -> int:
        """Waits until ``parties`` callers have arrived and returns this
        caller's arrival index. ``timeout`` (default: the barrier's) bounds
        the wait; when it passes the barrier breaks, as in Python (negative
        is 0). Raises threading.BrokenBarrierError (statehub's subclass) if
        the barrier is or becomes broken."""
        seconds = clamp(self._timeout if timeout is None else timeout)
        response = self._park(
            "Wait",
            sync_pb2.BarrierWaitRequest,
            seconds,
            call_deadline(seconds),
            # BarrierWaitRequest.run_action is field 5.
            wire=b"\x28\x01" if self._action is not None else b"",
        )
        if response.run_action:
            assert self._action is not None
            try:
                self._action()
            except BaseException:
                self._action_done(failed=True)
                raise
            self._action_done(failed=False)
        return int(response.index)

    def _action_done(self, *, failed: bool) -> None:
        """Tells the server the action ran (the others pass) or failed (the
        barrier breaks)."""
        self._call(
            "ActionDone",
            sync_pb2.BarrierActionDoneRequest(name=self._token.name, failed=failed),
        )

    def abort(self) -> None:
        """Breaks the barrier: waiters and later callers get
        BrokenBarrierError until :meth:`reset`."""
        self._call("Abort", sync_pb2.BarrierAbortRequest(name=self._token.name))

    def reset(self) -> None:
        """Fails the current waiters with BrokenBarrierError and makes the
        barrier usable again."""
        self._call("Reset", sync_pb2.BarrierResetRequest(name=self._token.name))

    def _state(self) -> Any:
        return self._call("State", sync_pb2.BarrierStateRequest(name=self._token.name))

    @property
    def parties(self) -> int:
        """The number of callers the barrier waits for."""
        return int(self._state().parties)

    @property
    def n_waiting(self) -> int:
        """The number of callers waiting now."""
        return int(self._state().n_waiting)

    @property
    def broken(self) -> bool:
        """Whether the barrier is broken."""
        return bool(self._state().broken)

    def _getvalue(self) -> Any:
        raise TypeError("cannot copy a shared Barrier")

    def _str(self) -> str:
        s = self._state()
        return (
            f"<Barrier {self._token.name!r} waiters={s.n_waiting}/{s.parties}"
            f"{' broken' if s.broken else ''}>"
        )
