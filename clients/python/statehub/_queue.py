"""Queue and JoinableQueue proxies on ``statehub.v1.Queues``.

Manager serves both ``Queue()`` and ``JoinableQueue()`` as a
``queue.Queue``, so both have ``task_done()`` and ``join()`` here too.
Items are values as everywhere in statehub (None, bool, int, float, str,
bytes, list, tuple, dict, proxies; other objects as pickles when the manager
allows pickling): a proxy put on a queue comes out as a proxy of the same
object, and keeps an anonymous object alive while it is queued.

Example::

    q = m.Queue(maxsize=10)
    q.put({"job": 1})
    try:
        item = q.get(timeout=5)
    except queue.Empty:
        ...

Safe to use from several threads and processes; blocking puts and gets park
on the server, and Ctrl-C while one waits cancels it there.
"""

from __future__ import annotations

import queue
from typing import Any, Generic, TypeVar

from . import _codec
from ._proto import queue_pb2, value_pb2
from ._proxy import BaseProxy, register
from ._waits import call_deadline, queue_timeout
from ._watch import Watchable
from ._wire import bytes_field, value_field

T = TypeVar("T")


@register(value_pb2.QUEUE)
class QueueProxy(Watchable, BaseProxy, Generic[T]):
    """A shared ``queue.Queue`` (``m.Queue(maxsize=0)``), with Manager's
    methods: put, get (block, timeout), put_nowait, get_nowait, qsize,
    empty, full, task_done, join. A full or empty queue raises queue.Full
    or queue.Empty, as Python's does."""

    __slots__ = ()
    _service = "Queues"
    _manager_class = "AutoProxy[Queue]"

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Puts item, waiting while the queue is full (up to timeout seconds
        if given). Raises queue.Full when it stays full; ValueError for a
        negative timeout."""
        seconds = queue_timeout(block, timeout)
        # QueuePutRequest: item is field 2, block field 3.
        item_field = value_field(b"\x12", item)
        if item_field is None:  # not a scalar: the Value message
            item_field = bytes_field(
                b"\x12",
                _codec.encode(
                    item, self._token.address, self._options
                ).SerializeToString(),
            )
        response = self._park(
            "Put",
            queue_pb2.QueuePutRequest,
            seconds,
            call_deadline(seconds if block else 0),
            wire=item_field + (b"\x18\x01" if block else b""),
        )
        if not response.stored:
            raise queue.Full

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Removes and returns the oldest item, waiting while the queue is
        empty (up to timeout seconds if given). Raises queue.Empty when it
        stays empty; ValueError for a negative timeout."""
        seconds = queue_timeout(block, timeout)
        response = self._park(
            "Get",
            queue_pb2.QueueGetRequest,
            seconds,
            call_deadline(seconds if block else 0),
            wire=b"\x10\x01" if block else b"",  # block is field 2
        )
        if not response.got:
            raise queue.Empty
        return _codec.decode(  # type: ignore[no-any-return]
            response.item, self._token.address, self._options
        )

    def put_nowait(self, item: T) -> None:
        """put(item, block=False): queue.Full if the queue is full."""
        self.put(item, False)

    def get_nowait(self) -> T:
        """get(block=False): queue.Empty if the queue is empty."""
        return self.get(False)

    def _size(self) -> Any:
        return self._call("Size", queue_pb2.QueueSizeRequest(name=self._token.name))

    def qsize(self) -> int:
        """The number of items queued now."""
        return int(self._size().size)

    def empty(self) -> bool:
        """Whether the queue is empty now."""
        return bool(self._size().size == 0)

    def full(self) -> bool:
        """Whether the queue is full now (never, for maxsize <= 0)."""
        size = self._size()
        return bool(0 < size.maxsize <= size.size)

    @property
    def maxsize(self) -> int:
        """The queue's bound (<= 0: unbounded)."""
        return int(self._size().maxsize)

    def task_done(self) -> None:
        """Marks one item taken as done. ValueError if called more times
        than items were put."""
        self._call("TaskDone", queue_pb2.QueueTaskDoneRequest(name=self._token.name))

    def join(self, timeout: float | None = None) -> bool:
        """Waits until every item put has been marked done. Python's join
        has no timeout; with one, returns False if it passed first."""
        seconds = None if timeout is None else queue_timeout(True, timeout)
        response = self._park(
            "Join", queue_pb2.QueueJoinRequest, seconds, call_deadline(seconds)
        )
        return bool(response.done)

    def _getvalue(self) -> Any:
        raise TypeError(f"cannot copy a shared {self._token.typeid}")

    def _str(self) -> str:
        size = self._size()
        return f"<{self._token.typeid} {self._token.name!r} size={size.size}>"


@register(value_pb2.JOINABLE_QUEUE)
class JoinableQueueProxy(QueueProxy[T]):
    """A shared queue from ``m.JoinableQueue(maxsize=0)``: the same methods
    as :class:`QueueProxy` (Manager serves both as ``queue.Queue``)."""

    __slots__ = ()
    _manager_class = "AutoProxy[JoinableQueue]"
