"""The holds of this process's session on anonymous objects, and the
releases on their way to the server, for both transports (the lane's
RELEASE frames, gRPC's Release messages): :class:`Holds` counts them, so
that a new session can take them again (:func:`take_again`), and
:class:`ReleaseQueue` carries what proxies give back.

A proxy of an anonymous object releases its hold when it is collected, so
:meth:`ReleaseQueue.put` runs in a finalizer, on any thread, possibly one in
the middle of a call: it does no I/O and takes no lock, only a
``SimpleQueue.put`` (reentrant, never blocks). The transport's own thread or
its next call then :meth:`~ReleaseQueue.collect` s what was queued and sends
the names that are due.

A release of a proxy that may have been handed to another process (pickled,
or alive when this process forked) waits
:data:`statehub._transport.HANDOFF_GRACE` seconds first, so that the other
process can take its own hold before this one lets go; until then it waits
in a heap, by when it is due.

The transport's control messages (a stop, a goodbye) travel in the same
queue, after the releases put before them, as tuples whose first item is
neither ``"release"`` nor ``"release_later"``.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from . import _transport, errors
from ._proto import objects_pb2


class Holds:
    """The holds of this process's session: name -> [object type, count].

    :attr:`lock` is reentrant: a proxy's finalizer may run (from the
    garbage collector) on a thread that already holds it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._counts: dict[str, list[Any]] = {}

    def add(self, name: str, object_type: Any) -> None:
        """One more hold on ``name``."""
        with self.lock:
            entry = self._counts.get(name)
            if entry is None:
                self._counts[name] = [object_type, 1]
            else:
                entry[1] += 1

    def drop(self, name: str) -> None:
        """One hold on ``name`` fewer."""
        with self.lock:
            entry = self._counts.get(name)
            if entry is not None:
                entry[1] -= 1
                if entry[1] <= 0:
                    del self._counts[name]

    def copy(self) -> dict[str, list[Any]]:
        """A snapshot (one C-level copy: a finalizer could otherwise change
        the dict while Python iterates it)."""
        with self.lock:
            return {name: list(entry) for name, entry in self._counts.items()}


def take_again(call: Callable[..., Any], holds: dict[str, list[Any]]) -> list[str]:
    """After the server replaced an ended session with a new one, takes the
    holds ``holds`` (a :meth:`Holds.copy`) again with ``call`` (the
    transport's funnel: Objects.Open of each name); returns the names of
    the objects that are gone (best effort: other failures are not
    counted)."""
    gone = []
    for name, (object_type, count) in holds.items():
        for _ in range(count):
            try:
                call(
                    "Objects",
                    "Open",
                    objects_pb2.OpenRequest(name=name, type=object_type),
                )
            except errors.ObjectNotFound:
                gone.append(name)
                break
            except errors.StatehubError:
                break
    return gone


_NOW = "release"
_LATER = "release_later"


class ReleaseQueue:
    """Releases of one connection's session, and its control messages."""

    def __init__(self) -> None:
        #: Releases and control messages, in the order they were put.
        self.outbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        # Releases held back until their time: a heap of (due, name).
        self._later: list[tuple[float, str]] = []
        self._later_lock = threading.Lock()

    def put(self, name: str, *, handed_off: bool = False) -> None:
        """Queues the release of one hold on ``name``; ``handed_off`` holds
        it back for HANDOFF_GRACE seconds (read now: tests shorten it).
        Safe in a finalizer."""
        if handed_off:
            self.outbox.put((_LATER, time.monotonic() + _transport.HANDOFF_GRACE, name))
        else:
            self.outbox.put((_NOW, name))

    def pending(self) -> bool:
        """Whether anything is queued (releases or control messages)."""
        return not self.outbox.empty()

    def collect(
        self,
        names: list[str],
        first: tuple[Any, ...] | None = None,
        limit: int | None = None,
    ) -> tuple[Any, ...] | None:
        """Takes ``first`` (an item already taken from the outbox, if any)
        and then what is queued, without waiting: releases due now go into
        ``names``, held-back ones into the heap. Stops at the first control
        message, which it returns (taken out of the queue), or once
        ``names`` has ``limit`` names; returns None then and when the queue
        is empty."""
        item = first
        while True:
            if item is not None:
                if item[0] == _NOW:
                    names.append(item[1])
                elif item[0] == _LATER:
                    with self._later_lock:
                        heapq.heappush(self._later, (item[1], item[2]))
                else:
                    return item
            if limit is not None and len(names) >= limit:
                return None
            try:
                item = self.outbox.get_nowait()
            except queue.Empty:
                return None

    def due(
        self, names: list[str], now: float, limit: int | None = None
    ) -> float | None:
        """Moves the held-back releases due by ``now`` into ``names`` (up to
        ``limit`` names in all); returns when the next one is due, or None
        if none is held back."""
        with self._later_lock:
            later = self._later
            while (
                later and later[0][0] <= now and (limit is None or len(names) < limit)
            ):
                names.append(heapq.heappop(later)[1])
            return later[0][0] if later else None

    def hold(self, names: list[str], until: float) -> None:
        """Puts back releases that could not be sent, due at ``until``."""
        with self._later_lock:
            for name in names:
                heapq.heappush(self._later, (until, name))

    def clear(self) -> None:
        """Drops every queued and held-back release (a new session holds
        nothing of the old one's); control messages stay queued."""
        controls: list[tuple[Any, ...]] = []
        while True:
            try:
                item = self.outbox.get_nowait()
            except queue.Empty:
                break
            if item[0] not in (_NOW, _LATER):
                controls.append(item)
        for item in controls:
            self.outbox.put(item)
        with self._later_lock:
            self._later.clear()
