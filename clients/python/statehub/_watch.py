"""Watches: the changes of a shared object, or the names created and
deleted under a prefix, as the server makes them (``docs/watches.md``).

A :class:`Watch` reads a stream of ``statehub.v1.WatchResponse`` messages
(``api/statehub/v1/watch.proto``) from its transport (a lane connection of
its own, or a gRPC stream), turns each change record into
:class:`WatchEvent` objects, and remembers the revision it has seen: when
the connection breaks (the server restarted, the network blinked), it
watches again from there, so that a program sees a pause and then the
changes it missed, in order, none twice. When the server no longer keeps
them, it raises :class:`statehub.WatchTooOld`.

Thread safety: one thread reads a watch; :meth:`Watch.close` may be called
from any thread.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from . import _codec, errors
from ._connection import connection_for
from ._proto import change_pb2, value_pb2, watch_pb2

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

    from ._proxy import Options, Token

#: How long a broken watch tries to watch again before it gives up.
RESUME_FOR = 30.0


class WatchEvent(NamedTuple):
    """One change, as a watch delivers it.

    ``op`` says what happened, by the type of the object:

    - dicts and namespaces: ``set`` (``key``, ``value``), ``delete``
      (``key``), ``expire`` (``key``: its TTL ran out), ``clear``;
    - lists and arrays: ``set`` (``key`` is the index, ``value`` the item),
      ``insert`` (``key`` is the index of the first new item, ``value`` the
      list of items: an append inserts at the end), ``remove`` (``key`` is
      the first index, ``removed`` how many), ``splice`` (both: a sort, a
      slice assignment), ``clear``;
    - values: ``set`` (``value``);
    - queues: ``put`` (``value``), ``get``, ``tasks`` (``value`` is the
      count of unfinished tasks);
    - locks and rlocks: ``acquire`` (``value`` is the holder's label) and
      ``release``; semaphores: ``semaphore`` (``value`` is the count free);
      events: ``set`` and ``clear``; barriers: ``barrier`` (``value`` is the
      generation);
    - any object: ``created`` (``value`` is its type, e.g. ``"dict"``) and
      ``deleted``. A prefix watch sees only these, with ``object`` naming
      the object.

    ``revision`` is the server-wide revision of the change (the events of
    one change, such as an ``update()`` of several keys, share it);
    ``session`` the label of the session that made it ("" for the server's
    own changes, such as an expiry).
    """

    revision: int
    op: str
    key: Any = None
    value: Any = None
    session: str = ""
    object: str = ""
    removed: int = 0


class WatchStream(Protocol):
    """A transport's stream of WatchResponses for one watch."""

    def next(self, timeout: float | None) -> watch_pb2.WatchResponse | None:
        """The next response; None if none came within ``timeout``. Raises
        the server's error that ended the watch, or ConnectionError."""

    def close(self) -> None:
        """Ends the watch; idempotent, any thread."""


def type_name(object_type: int) -> str:
    """``"dict"`` for OBJECT_TYPE_DICT."""
    return value_pb2.ObjectType.Name(object_type).removeprefix("OBJECT_TYPE_").lower()


class _Decoder:
    """Turns change records into events."""

    def __init__(self, address: str, options: Options) -> None:
        self._address = address
        self._options = options

    def value(self, value: value_pb2.Value) -> Any:
        return _codec.decode(value, self._address, self._options)

    def events(self, record: change_pb2.ChangeRecord, label: str) -> list[WatchEvent]:
        r, o = record.revision, record.object
        change = record.WhichOneof("change")
        decode = self.value

        def event(
            op: str, key: Any = None, value: Any = None, removed: int = 0
        ) -> WatchEvent:
            return WatchEvent(r, op, key, value, label, o, removed)

        if change == "entries_set":
            return [
                event("set", decode(e.key), decode(e.value))
                for e in record.entries_set.entries
            ]
        if change == "entries_removed":
            op = "expire" if record.entries_removed.expired else "delete"
            return [event(op, decode(k)) for k in record.entries_removed.keys]
        if change == "items_spliced":
            s = record.items_spliced
            items = [decode(i) for i in s.items]
            if s.removed == 1 and len(items) == 1:
                return [event("set", s.start, items[0])]
            if s.removed == 0:
                return [event("insert", s.start, items)]
            if not items:
                return [event("remove", s.start, None, s.removed)]
            return [event("splice", s.start, items, s.removed)]
        if change == "cell_set":
            return [event("set", None, decode(record.cell_set.value))]
        if change == "cleared":
            return [event("clear")]
        if change == "created":
            return [event("created", None, type_name(record.created.type))]
        if change == "deleted":
            return [event("deleted")]
        if change == "queue_put":
            return [event("put", None, decode(record.queue_put.item))]
        if change == "queue_taken":
            return [event("get")]
        if change == "tasks_changed":
            return [event("tasks", None, record.tasks_changed.unfinished)]
        if change == "lock_changed":
            lock = record.lock_changed
            if lock.held:
                return [event("acquire", None, lock.holder_label)]
            return [event("release")]
        if change == "semaphore_changed":
            return [event("semaphore", None, record.semaphore_changed.value)]
        if change == "event_changed":
            return [event("set" if record.event_changed.set else "clear")]
        if change == "barrier_changed":
            return [event("barrier", None, record.barrier_changed.generation)]
        return [event(change or "unknown")]

    def initial(
        self, records: Any, by_prefix: bool
    ) -> dict[str, str] | dict[Any, Any] | list[Any] | Any:
        """The initial contents: for a prefix, {name: type}; for an object,
        a dict (dicts, namespaces), a list (lists, arrays, queues), the
        value (values), or None (synchronization objects)."""
        if by_prefix:
            return {r.object: type_name(r.created.type) for r in records}
        for r in records:
            if not r.HasField("created"):
                continue
            created = r.created
            kind = type_name(created.type)
            if kind in ("dict", "namespace"):
                return {self.value(e.key): self.value(e.value) for e in created.entries}
            if kind in ("list", "array", "queue", "joinable_queue"):
                return [self.value(i) for i in created.items]
            if kind == "value":
                return self.value(created.value)
            return None
        return None


class Watch:
    """The changes of one object (``proxy.watch()``) or of the names under a
    prefix (``manager.watch(prefix)``), as an iterator of
    :class:`WatchEvent`.

    ``for event in watch`` blocks for each next event; :meth:`next` takes a
    timeout and returns None when nothing came. ``initial`` holds the
    contents as of the start when asked for (``initial=True``), and
    ``revision`` the last revision seen: ``watch(since=w.revision)`` later
    goes on where ``w`` stopped, while the server keeps those changes. Use
    it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        opener: Any,
        request: watch_pb2.WatchRequest,
        address: str,
        options: Options,
    ) -> None:
        self._opener = opener
        self._request = request
        self._decoder = _Decoder(address, options)
        self._by_prefix = request.WhichOneof("target") == "prefix"
        self._events: collections.deque[WatchEvent] = collections.deque()
        self._closed = False
        self._lock = threading.Lock()
        #: The contents as of the start revision (``initial=True``), else None.
        self.initial: Any = None
        #: The last revision seen: every change up to it was delivered.
        self.revision = 0
        #: The revision the watch started at.
        self.start_revision = 0
        self._stream: WatchStream = opener(request)
        try:
            self._started(self._stream.next(None))
        except BaseException:
            self._stream.close()
            raise

    def _started(self, response: watch_pb2.WatchResponse | None) -> None:
        if response is None or not response.started:
            raise errors.StatehubError("the server did not start the watch")
        self.start_revision = self.revision = response.revision
        if self._request.initial:
            self.initial = self._decoder.initial(response.initial, self._by_prefix)

    def _take(self, response: watch_pb2.WatchResponse) -> None:
        for event in response.events:
            self._events.extend(self._decoder.events(event.change, event.session_label))
        self.revision = max(self.revision, response.revision)

    def next(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event; None if none came within ``timeout`` seconds
        (None: wait for one). Raises WatchTooOld when the server can no
        longer deliver every change in order, ValueError once closed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._events:
            if self._closed:
                raise ValueError("the watch is closed")
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                response = self._stream.next(left)
            except errors.ConnectionError:
                if self._closed:
                    raise ValueError("the watch is closed") from None
                self._resume()
                continue
            if response is None:
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                continue
            self._take(response)
        return self._events.popleft()

    def _resume(self) -> None:
        """Watches again after the last revision seen, for up to
        RESUME_FOR seconds while the server is away."""
        self._stream.close()
        request = watch_pb2.WatchRequest()
        request.CopyFrom(self._request)
        request.initial = False
        request.since = self.revision
        give_up = time.monotonic() + RESUME_FOR
        pause = 0.05
        while True:
            try:
                stream = self._opener(request)
                response = stream.next(RESUME_FOR)
                if response is None or not response.started:
                    stream.close()
                    raise errors.ConnectionError(
                        "the server did not start the watch again"
                    )
            except errors.ConnectionError:
                if self._closed or time.monotonic() + pause > give_up:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            with self._lock:
                if self._closed:
                    stream.close()
                    raise ValueError("the watch is closed")
                self._stream = stream
            return

    def __iter__(self) -> Iterator[WatchEvent]:
        return self

    def __next__(self) -> WatchEvent:
        event = self.next(None)
        assert event is not None
        return event

    def close(self) -> None:
        """Ends the watch. Idempotent."""
        with self._lock:
            self._closed = True
            stream = self._stream
        stream.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        target = self._request.WhichOneof("target")
        what = getattr(self._request, target or "name")
        return f"<statehub.Watch of {target} {what!r} at revision {self.revision}>"


def open_watch(
    address: str,
    options: Options,
    *,
    name: str | None = None,
    prefix: str | None = None,
    since: int | None = None,
    initial: bool = False,
) -> Watch:
    """Starts a watch of object ``name``, or of the names under ``prefix``."""
    request = watch_pb2.WatchRequest(initial=initial)
    if prefix is not None:
        request.prefix = prefix
    else:
        request.name = name or ""
    if since is not None:
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise ValueError(f"since must be a revision (an int >= 0), not {since!r}")
        request.since = since
    return Watch(connection_for(address).open_watch, request, address, options)


class Watchable:
    """What proxies of watchable objects share: :meth:`watch`."""

    __slots__ = ()

    _token: Token
    _options: Options

    def watch(self, since: int | None = None, initial: bool = False) -> Watch:
        """Watches this object: a :class:`Watch` whose events are its
        changes, in order, none twice.

        ``initial=True`` fills ``watch.initial`` with the contents as of the
        start, and every change after them follows as events: nothing is
        missed between reading and watching. ``since=`` a revision (a
        previous watch's ``revision``) delivers the changes after it
        instead, while the server keeps them (else WatchTooOld). Raises
        ObjectNotFound if the object does not exist.
        """
        return open_watch(
            self._token.address,
            self._options,
            name=self._token.name,
            since=since,
            initial=initial,
        )
