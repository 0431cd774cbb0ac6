"""What every blocking call sends: who is calling, and how long it may wait.

Python's synchronization types disagree on negative timeouts, and statehub
follows each one: ``Lock.acquire`` and ``queue.Queue`` raise ValueError
(``Lock.acquire`` takes -1 as "forever"), while ``Condition.wait``,
``Event.wait``, ``Semaphore.acquire`` and ``Barrier.wait`` treat a negative
timeout as 0. The server itself refuses negative timeouts, so the client
applies these rules before sending.
"""

from __future__ import annotations

import math
import os
import socket
import threading

from google.protobuf import duration_pb2

from ._wire import string_field, varint

#: A wait's call deadline is its timeout plus this, so the server's answer
#: ("timed out") arrives before the client gives up on the call.
DEADLINE_MARGIN = 5.0

#: Timeouts longer than this (about three years; threading.TIMEOUT_MAX is
#: larger) wait forever: no call deadline could be that far away.
_FOREVER = 1e8

_host = socket.gethostname()


def caller() -> tuple[int, str]:
    """The calling thread's id (``threading.get_ident()``, which the server
    uses for RLock ownership) and its label, ``host:pid:thread-name``."""
    return (
        threading.get_ident(),
        f"{_host}:{os.getpid()}:{threading.current_thread().name}",
    )


class _CallerForms(threading.local):
    """The calling thread's :func:`caller` in wire form, by field tags,
    while the thread keeps its name."""

    def __init__(self) -> None:
        # Run in each thread on its first use: the thread is its own.
        self.thread = threading.current_thread()
        self.name = self.thread.name
        self.forms: dict[tuple[bytes, bytes | None], bytes | None] = {}


_caller_forms = _CallerForms()


def _forget_caller_forms() -> None:
    # A forked child's labels carry its own pid.
    global _caller_forms
    _caller_forms = _CallerForms()


os.register_at_fork(after_in_child=_forget_caller_forms)


def caller_fields(id_tag: bytes, label_tag: bytes | None = None) -> bytes | None:
    """The calling thread's id as a uint64 field (``id_tag`` its key byte)
    and, with ``label_tag``, its label as a string field after it: the
    bytes a request's ``thread_id`` and ``label`` serialize to, made once
    per thread (a varint of a thread id and the label's f-string cost more
    than the rest of a parked call's request). None if the label cannot be
    encoded (a thread name with lone surrogates)."""
    cache = _caller_forms
    if cache.name != cache.thread.name:  # renamed since
        cache.name = cache.thread.name
        cache.forms = {}
    tags = (id_tag, label_tag)
    try:
        return cache.forms[tags]
    except KeyError:
        pass
    thread_id, label = caller()
    text = b"" if label_tag is None else string_field(label_tag, label)
    form = None if text is None else id_tag + varint(thread_id) + text
    cache.forms[tags] = form
    return form


def duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration of ``seconds`` (>= 0)."""
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(seconds * 1e9))
    return out


def call_deadline(timeout: float | None) -> float | None:
    """The deadline of a call that may wait ``timeout`` seconds on the
    server (None: no deadline)."""
    return None if timeout is None else timeout + DEADLINE_MARGIN


def _number(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        try:
            return float(timeout)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise TypeError(
                f"timeout must be a number or None, not {type(timeout).__name__}"
            ) from None
    if math.isnan(timeout):
        raise ValueError("timeout cannot be NaN")
    return float(timeout)


def clamp(timeout: float | None) -> float | None:
    """A timeout as Condition.wait, Event.wait, Semaphore.acquire and
    Barrier.wait take it: None waits forever, a negative value is 0."""
    if timeout is None:
        return None
    seconds = _number(timeout)
    if seconds > _FOREVER:
        return None
    return max(seconds, 0.0)


def lock_timeout(blocking: bool, timeout: float | None) -> float | None:
    """A timeout as threading.Lock.acquire takes it (None and -1: forever).
    Raises ValueError as threading does."""
    if timeout is None:
        return None
    seconds = _number(timeout)
    if not blocking and seconds != -1:
        raise ValueError("can't specify a timeout for a non-blocking call")
    if seconds < 0 and seconds != -1:
        raise ValueError("timeout value must be a non-negative number")
    if seconds == -1 or seconds > _FOREVER:
        return None
    return seconds


def queue_timeout(block: bool, timeout: float | None) -> float | None:
    """A timeout as queue.Queue's put and get take it: ignored when not
    blocking, ValueError when negative."""
    if not block or timeout is None:
        return None
    seconds = _number(timeout)
    if seconds < 0:
        raise ValueError("'timeout' must be a non-negative number")
    if seconds > _FOREVER:
        return None
    return seconds
