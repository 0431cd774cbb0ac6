"""What only this process's session can hold, and what a lost session took
with it (:class:`statehub.errors.SessionLost`). Used by both transports.

The server releases a session's locks, rlock levels and semaphore units
when the session ends, and an acquire's reply carries nothing that would
tell a later session the hold was its own. So the client counts them
itself: the lock proxies note each acquire and release here. When a
reconnect gets a *new* session instead of resuming the old one
(:meth:`Held.session_replaced`), what was counted becomes lost, as do the
anonymous objects the new session could not take back
(:meth:`Held.objects_gone`). Then:

- :meth:`Held.check`, at the start of every call, raises SessionLost once
  in each thread that existed at the loss (statehub's own threads aside);
- :meth:`Held.take_lost`, in a release, consumes a lost acquisition: the
  proxy raises SessionLost instead of releasing on the server what another
  process may hold by now.

Nothing is lost, and nothing raised, when the old session held nothing.
``check`` costs one attribute test while no loss is pending.
"""

from __future__ import annotations

import dataclasses
import threading

from . import errors

#: (kind, object name, thread id): kind is "lock", "rlock" or "semaphore";
#: the thread id is the owning thread's for an rlock, 0 otherwise (a Lock
#: or a semaphore unit may be released by any thread of the process).
Key = tuple[str, str, int]

#: How long a thread told of a lost session waits for the new session to
#: take back the anonymous objects before it raises without naming them.
_SETTLE_WAIT = 10.0


@dataclasses.dataclass
class _Loss:
    address: str
    old: str
    new: str
    ttl: float | None
    # Descriptions of the lost holds ('lock "L"', ...), and their names.
    holds: list[str] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)
    objects: list[str] = dataclasses.field(default_factory=list)
    # Set once the new session took back what it could (objects_gone):
    # until then the anonymous objects that are gone are not known.
    settled: threading.Event = dataclasses.field(default_factory=threading.Event)

    def error(self) -> errors.SessionLost:
        lease = f"the lease of {self.ttl:g} s" if self.ttl else "its lease"
        parts = []
        if self.holds:
            parts.append(
                "the server released what it held for this process: "
                + ", ".join(self.holds)
                + (
                    " (another process may hold it now)"
                    if len(self.holds) == 1
                    else " (other processes may hold them now)"
                )
            )
        if self.objects:
            parts.append(
                "anonymous objects it held are gone: "
                + ", ".join(f'"{name}"' for name in self.objects)
            )
        return errors.SessionLost(
            f"statehub-server at {self.address}: session {self.old} ended while "
            f"the client was away (the server restarted without --data_dir, or "
            f"{lease} passed); {'; '.join(parts)}. Calls go on in the new "
            f"session {self.new}",
            session_id=self.old,
            new_session_id=self.new,
            released=tuple(dict.fromkeys(self.names)),
            objects=tuple(self.objects),
            object=(self.names or self.objects or [""])[0],
            code="FAILED_PRECONDITION",
        )


def _describe(key: Key, count: int) -> str:
    kind, name, _ = key
    if kind == "semaphore":
        return f'{count} unit{"s" if count != 1 else ""} of semaphore "{name}"'
    if kind == "rlock" and count > 1:
        return f'rlock "{name}" ({count} levels)'
    return f'{kind} "{name}"'


class Held:
    """A connection's count of what only its session holds, and the losses
    of sessions that ended behind its back. Thread-safe."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._lock = threading.Lock()
        self._held: dict[Key, int] = {}
        # Lost acquisitions not released yet: key -> [count, loss].
        self._lost: dict[Key, tuple[int, _Loss]] = {}
        self._loss: _Loss | None = None
        # Threads (idents) not yet told about the last loss.
        self._untold: set[int] = set()

    # -- counting ------------------------------------------------------------

    def acquired(self, key: Key, n: int = 1) -> None:
        """This process acquired ``key`` (``n`` units)."""
        with self._lock:
            self._held[key] = self._held.get(key, 0) + n

    def released(self, key: Key, n: int = 1) -> None:
        """This process released ``key`` (``n`` units; a semaphore may be
        released by a process that never acquired it: the count stays at 0)."""
        with self._lock:
            left = self._held.get(key, 0) - n
            if left > 0:
                self._held[key] = left
            else:
                self._held.pop(key, None)

    def count(self, key: Key) -> int:
        """How many acquisitions of ``key`` this process holds now."""
        with self._lock:
            return self._held.get(key, 0)

    def take_lost(self, key: Key, n: int = 1) -> tuple[int, errors.SessionLost | None]:
        """Consumes up to ``n`` lost acquisitions of ``key``: how many, and
        the SessionLost to raise for them (None when there were none)."""
        if not self._lost:  # the usual case, without the lock
            return 0, None
        with self._lock:
            entry = self._lost.get(key)
            if entry is None:
                return 0, None
            count, loss = entry
            taken = min(n, count)
            if count - taken > 0:
                self._lost[key] = (count - taken, loss)
            else:
                del self._lost[key]
            return taken, loss.error()

    # -- losses ---------------------------------------------------------------

    def session_replaced(
        self, old: str, new: str, ttl: float | None
    ) -> errors.SessionLost | None:
        """Session ``old`` ended and ``new`` replaced it: whatever was held
        is lost. Called before any call can run in the new session. Returns
        the error, or None if nothing was held."""
        with self._lock:
            loss = _Loss(self._address, old, new, ttl)
            for key, count in self._held.items():
                loss.holds.append(_describe(key, count))
                loss.names.append(key[1])
                before = self._lost.get(key, (0, loss))[0]
                self._lost[key] = (before + count, loss)
            self._held.clear()
            self._loss = loss
            if loss.holds:
                self._tell_everyone()
                return loss.error()
            return None

    def objects_gone(self, new: str, names: list[str]) -> None:
        """The anonymous objects ``names``, which the session that ``new``
        replaced held, no longer exist."""
        with self._lock:
            loss = self._loss
            if loss is None or loss.new != new:
                return
            if names:
                loss.objects.extend(names)
                self._tell_everyone()
        loss.settled.set()

    def _tell_everyone(self) -> None:
        self._untold = self._untold | {
            thread.ident
            for thread in threading.enumerate()
            if thread.ident is not None and not thread.name.startswith("statehub-")
        }

    def check(self) -> None:
        """Raises SessionLost if the calling thread has not been told of the
        last loss yet (once per thread)."""
        if not self._untold:
            return
        ident = threading.get_ident()
        if ident not in self._untold:
            return
        with self._lock:
            loss = self._loss
        if loss is None:
            return
        # The thread that opened the new session is taking the anonymous
        # objects back: the error names those that are gone.
        loss.settled.wait(_SETTLE_WAIT)
        with self._lock:
            if ident not in self._untold or self._loss is None:
                return
            self._untold = self._untold - {ident}
            error = self._loss.error()
        raise error
