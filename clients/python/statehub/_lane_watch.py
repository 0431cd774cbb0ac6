"""A watch on the lane: a link of its own that joins the session, one
Watches.Watch REQUEST, then the EVENT frames that carry the call's request
id until an ERROR frame ends it (``api/LANE.md``, "Watches").

The link carries nothing else, so a reader that waits for events never
holds up a call, and closing the link ends the watch on the server.
"""

from __future__ import annotations

import contextlib
import select
import threading
from typing import Any

from . import errors
from ._frames import ERROR, EVENT, HEADER, METHODS, REQUEST, SEND_FLAGS, Link, LinkError
from ._proto import lane_pb2, watch_pb2

_WATCH_METHOD = METHODS["Watches", "Watch"][0]
#: A receive timeout of 0 would block (SO_RCVTIMEO): the shortest wait.
_SHORTEST = 0.001


class LaneWatchStream:
    """One watch's stream on its own link (statehub._watch.WatchStream)."""

    def __init__(
        self, connection: Any, link: Link, request: watch_pb2.WatchRequest
    ) -> None:
        self._connection = connection
        self._link = link
        self._id = link.next_id()
        self._closed = False
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._poll.register(link.sock, select.POLLIN)
        body = request.SerializeToString()
        try:
            link.sock.sendall(
                HEADER.pack(len(body), self._id, _WATCH_METHOD, REQUEST, 0) + body,
                SEND_FLAGS,
            )
        except OSError as failed:
            self.close()
            raise self._broken(failed) from None

    def _broken(self, cause: BaseException) -> errors.ConnectionError:
        return errors.ConnectionError(
            f"the watch's connection to statehub-server at "
            f"{self._connection.address} broke: {cause}",
            code="UNAVAILABLE",
        )

    def next(self, timeout: float | None) -> watch_pb2.WatchResponse | None:
        link = self._link
        if timeout is not None:
            timeout = max(timeout, _SHORTEST)
        link.set_timeouts(None, timeout)
        while True:
            try:
                request_id, kind, body = link.read_frame()
            except TimeoutError:
                return None
            except (OSError, LinkError) as failed:
                self.close()
                raise self._broken(failed) from None
            if request_id == self._id and kind == EVENT:
                return watch_pb2.WatchResponse.FromString(body)
            if kind == ERROR and request_id in (self._id, 0):
                failure = lane_pb2.LaneError.FromString(body)
                self.close()
                raise self._connection._translate(failure)
            # A PONG, or a frame kind this client does not know: not ours.

    def ready(self, timeout: float | None = 0) -> bool:
        """Whether :meth:`next` has something to read (a frame, or the end
        of the connection) without waiting for the server, after waiting up
        to ``timeout`` seconds (None: until there is). Reads nothing: a
        thread that reads a near cache asks this every few dozen hits.
        Only one thread may wait (a timeout other than 0) at a time."""
        if self._closed or self._link.buffered():
            return True
        try:
            if timeout == 0:  # any thread: a poll object of its own
                poll = select.poll()
                poll.register(self._link.sock, select.POLLIN)
                return bool(poll.poll(0))
            return bool(self._poll.poll(None if timeout is None else timeout * 1000))
        except (OSError, ValueError):  # closed meanwhile: next() says how
            return True

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Wakes a reader blocked on the link; the server ends the watch
        # when the connection closes.
        self._link.shutdown()
        with contextlib.suppress(Exception):
            self._connection._drop(self._link)
