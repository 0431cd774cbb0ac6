"""A lane call interrupted while its reply is owed (``api/LANE.md``,
"Cancel"): a deadline that passed, Ctrl-C, any other exception raised in
the thread that waits. A parked call is withdrawn with CANCEL and its link
read until the reply comes, so that the link stays in step; what the
server granted just before the CANCEL reached it (a lock, a semaphore
unit, a barrier's action) is given back, since the caller never learns it
got it."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from . import errors
from ._frames import CANCEL, RESPONSE, Link, LinkError, Refused, parse_reply
from ._proto import lane_pb2, sync_pb2
from ._reconnect import LinkBroken
from ._wire import as_message

if TYPE_CHECKING:
    from ._lane import LaneConnection

#: How long an interrupted call waits for its reply after CANCEL.
DRAIN_WAIT = 10.0


def _undo_lock(request: Any, response: Any) -> tuple[str, str, Any] | None:
    if not response.acquired:
        return None
    return (
        "Locks",
        "Release",
        sync_pb2.LockReleaseRequest(name=request.name, thread_id=request.thread_id),
    )


def _undo_semaphore(request: Any, response: Any) -> tuple[str, str, Any] | None:
    if not response.acquired:
        return None
    return (
        "Semaphores",
        "Release",
        sync_pb2.SemaphoreReleaseRequest(name=request.name, n=1),
    )


def _undo_barrier(request: Any, response: Any) -> tuple[str, str, Any] | None:
    if not response.run_action:
        return None
    # Told to run the action, which now never runs: the barrier breaks
    # rather than hold the other parties.
    return (
        "Barriers",
        "ActionDone",
        sync_pb2.BarrierActionDoneRequest(name=request.name, failed=True),
    )


# What gives back the result of an interrupted call that the server served
# before the CANCEL reached it: the caller never learns it acquired, so it
# must not keep the lock or unit (nor leave the other parties of a barrier
# waiting for an action it will not run).
_UNDO = {
    ("Locks", "Acquire"): _undo_lock,
    ("Semaphores", "Acquire"): _undo_semaphore,
    ("Barriers", "Wait"): _undo_barrier,
}


def interrupted(
    conn: LaneConnection,
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
    ``interrupt`` was raised. Raises the exception the call ends with, or
    returns the reply when a parked call's deadline passed but the server
    answered after all."""
    if isinstance(interrupt, Refused):
        conn._drop(link)
        raise conn._translate(interrupt.error) from None
    timed_out = isinstance(interrupt, TimeoutError)
    if isinstance(interrupt, (OSError, LinkError)) and not timed_out:
        conn._drop(link)
        raise LinkBroken(interrupt, sent=True) from interrupt
    if timed_out and not parked:
        # The server is still working on it: no CANCEL applies.
        conn._drop(link)
        raise _deadline_exceeded(conn, timeout) from None
    reply = _withdraw(conn, link, request_id, parked, response_class)
    if timed_out:
        if reply is not None and reply[1] is None:
            return reply  # served just as the deadline passed
        raise _deadline_exceeded(conn, timeout) from None
    if reply is not None and reply[1] is None:
        _undo(conn, rpc, request, reply[0])
    raise interrupt


def _deadline_exceeded(
    conn: LaneConnection, timeout: float | None
) -> errors.DeadlineExceeded:
    return errors.DeadlineExceeded(
        f"statehub-server at {conn.address}: no reply within {timeout:g}s",
        code="DEADLINE_EXCEEDED",
    )


def _withdraw(
    conn: LaneConnection,
    link: Link,
    request_id: int,
    parked: bool,
    response_class: Any,
) -> tuple[Any, lane_pb2.LaneError | None] | None:
    """Cancels a parked call and reads until its reply, so the link stays in
    step; returns the reply, or None if the link was lost."""
    deadline = time.monotonic() + DRAIN_WAIT
    try:
        if parked:
            link.set_timeout(DRAIN_WAIT)
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
            response = parse_reply(response_class, payload)
            conn._give_back(link)
            return response, None
        failure = lane_pb2.LaneError.FromString(payload)
    except BaseException:
        conn._drop(link)
        return None
    conn._finish(link, failure)
    return None, failure


def _undo(
    conn: LaneConnection, rpc: tuple[str, str], request: Any, response: Any
) -> None:
    undo = _UNDO.get(rpc)
    if undo is None:
        return
    given_back = undo(as_message(request), response)
    if given_back is None:
        return
    # Best effort: the interrupt matters more, and the session's end frees
    # it anyway.
    with contextlib.suppress(BaseException):
        conn.call(*given_back)
