"""The lane's wire format (``api/LANE.md``): the preface, the 12-byte frame
header, the frame kinds, the method ids, and :class:`Link`, one socket that
speaks them.

A frame is ``struct.pack("<IIHBB", length, request_id, method, kind, 0)``
followed by ``length`` bytes of body, a ``statehub.v1`` message. Method ids
come from each rpc's ``(statehub.v1.lane_method)`` option, read once at
import from the service descriptors, so that the funnel finds a method's id
and response class with one dict lookup.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import threading
from typing import Any, cast

from google.protobuf import message_factory

from ._proto import (
    cell_pb2,
    dict_pb2,
    lane_pb2,
    list_pb2,
    namespace_pb2,
    objects_pb2,
    queue_pb2,
    session_pb2,
    sync_pb2,
    watch_pb2,
)

#: The client's first four bytes on a new connection.
PREFACE = b"SHLN"
#: The lane version this client speaks.
PROTOCOL_VERSION = 1
#: length, request_id, method, kind, flags (all little-endian).
HEADER = struct.Struct("<IIHBB")
HEADER_SIZE = HEADER.size
#: The REQUEST flag of a numbered call, and what its body starts with: the
#: call's number and the client's seen (api/LANE.md, "Numbered calls").
NUMBERED = 0x01
NUMBER = struct.Struct("<QQ")

HELLO = 1
WELCOME = 2
REQUEST = 3
RESPONSE = 4
ERROR = 5
CANCEL = 6
PING = 7
PONG = 8
RELEASE = 9
GOODBYE = 10
EVENT = 11

# Linux sockets raise EPIPE rather than SIGPIPE with it (Python ignores
# SIGPIPE anyway, but an embedding program may not).
SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)

# A link's receive buffer: most replies fit in one recv_into of it; a larger
# frame grows it, and it shrinks back once that frame is consumed.
_BUFFER_SIZE = 16 * 1024
# struct timeval (Linux, 64-bit): seconds, microseconds.
_TIMEVAL = struct.Struct("@ll")
_MAX_KEPT_BUFFER = 256 * 1024

_SERVICE_MODULES = (
    objects_pb2,
    dict_pb2,
    list_pb2,
    namespace_pb2,
    cell_pb2,
    sync_pb2,
    queue_pb2,
    watch_pb2,
)


def _method_table() -> dict[tuple[str, str], tuple[int, Any]]:
    table: dict[tuple[str, str], tuple[int, Any]] = {}
    for module in _SERVICE_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(lane_pb2.lane_method):
                    continue  # Sessions.Connect: HELLO, PING, RELEASE instead
                table[(service.name, method.name)] = (
                    options.Extensions[lane_pb2.lane_method],
                    message_factory.GetMessageClass(method.output_type),
                )
    return table


#: (service, method) -> (method id, response class), e.g.
#: ``METHODS["Dicts", "Get"] == (16, dict_pb2.DictGetResponse)``.
METHODS = _method_table()


def _read_only() -> frozenset[tuple[str, str]]:
    return frozenset(
        (service.name, method.name)
        for module in _SERVICE_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if method.GetOptions().Extensions[lane_pb2.read_only]
    )


#: The (service, method) pairs whose ``(statehub.v1.read_only)`` option says
#: they change nothing, e.g. ``("Dicts", "Get")``.
READ_ONLY = _read_only()

#: Calls that may park and are numbered all the same: a put is answered at
#: once unless its queue is full, and a retry must not put the item twice.
#: The other calls that park are made again by their proxies
#: (statehub._reconnect.REPARKABLE) or fail.
NUMBERED_PARKED = frozenset({("Queues", "Put")})


class CallNumbers:
    """A connection's numbers for the calls that change state, where the
    server advises numbering (docs/durability.md, "Exactly once"): a number
    stays unseen from :meth:`take` until :meth:`done`, and ``seen`` tells
    the server that every answer below it reached the client. Thread-safe."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._unseen: set[int] = set()
        self._lock = threading.Lock()

    def take(self, rpc: tuple[str, str], parked: bool) -> tuple[int, int]:
        """(number, seen) for a call of ``rpc``; (0, 0) for one that is not
        numbered (it changes nothing, or parks and is made again)."""
        if rpc in READ_ONLY or (parked and rpc not in NUMBERED_PARKED):
            return 0, 0
        number = next(self._next)
        with self._lock:
            self._unseen.add(number)
            return number, min(self._unseen)

    def stamp(
        self, rpc: tuple[str, str], parked: bool, body: bytes
    ) -> tuple[int, bytes]:
        """:meth:`take`, and ``body`` with the number in front (``NUMBER``)
        when the call is numbered: (0, ``body``) when it is not."""
        number, seen = self.take(rpc, parked)
        return number, NUMBER.pack(number, seen) + body if number else body

    def done(self, number: int) -> None:
        """The call numbered ``number`` returned or failed for good."""
        with self._lock:
            self._unseen.discard(number)


class LinkError(Exception):
    """The connection broke or fell out of step with the protocol."""


class Refused(Exception):
    """The server answered with an ERROR frame that is not a call's reply
    (request id 0: a refused HELLO, a connection-level error)."""

    def __init__(self, error: lane_pb2.LaneError) -> None:
        super().__init__(error.message)
        self.error = error


def parse_reply(response_class: Any, payload: Any) -> Any:
    """A RESPONSE's body as a ``response_class`` message, or as bytes when
    that is ``bytes`` (the payload may be a view of a link's buffer)."""
    if response_class is bytes:
        return bytes(payload)
    return response_class.FromString(payload)


def _timeval(timeout: float | None) -> bytes:
    """A socket timeout as SO_RCVTIMEO/SO_SNDTIMEO take it (None: block)."""
    if timeout is None:
        return _TIMEVAL.pack(0, 0)
    whole = max(timeout, 1e-3)
    return _TIMEVAL.pack(int(whole), int((whole % 1) * 1e6))


class Link:
    """One lane connection: a socket, its receive buffer, its request ids.

    Not thread-safe: one thread uses a link at a time (the pool hands it
    out). A read interrupted by an exception (Ctrl-C, a timeout) keeps what
    it had received, so the next read goes on from there.
    """

    __slots__ = (
        "_buf",
        "_end",
        "_next_id",
        "_start",
        "_view",
        "generation",
        "receive_timeout",
        "send_timeout",
        "sock",
    )

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        # Blocking at Python's level, with the timeouts in the kernel
        # (SO_RCVTIMEO, SO_SNDTIMEO): a Python socket timeout polls before
        # every send and receive, twice the system calls of a round trip.
        sock.settimeout(None)
        self.sock = sock
        #: The session generation this link belongs to (its connection's).
        self.generation = 0
        #: The timeouts of sends and of receives now (set_timeouts).
        self.send_timeout: float | None = -1.0
        self.receive_timeout: float | None = -1.0
        self.set_timeout(timeout)
        self._next_id = 0
        self._buf = bytearray(_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0

    @classmethod
    def dial(cls, family: int, sockaddr: Any, timeout: float) -> Link:
        """Connects (AF_UNIX, or TCP with TCP_NODELAY). Raises OSError."""
        if family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(sockaddr)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection(sockaddr, timeout=timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except BaseException:
                sock.close()
                raise
        return cls(sock, timeout)

    def hello(self, hello: lane_pb2.LaneHello) -> session_pb2.Welcome:
        """Sends the preface and HELLO; returns the WELCOME. Raises Refused
        (the server's ERROR), LinkError or OSError."""
        body = hello.SerializeToString()
        self.sock.sendall(
            PREFACE + HEADER.pack(len(body), 0, 0, HELLO, 0) + body, SEND_FLAGS
        )
        while True:
            request_id, kind, payload = self.read_frame()
            if request_id != 0:
                raise LinkError(f"a frame for call {request_id} before WELCOME")
            if kind == WELCOME:
                return session_pb2.Welcome.FromString(payload)
            if kind == ERROR:
                raise Refused(lane_pb2.LaneError.FromString(payload))
            if kind < EVENT:
                raise LinkError(f"frame kind {kind} before WELCOME")
            # Kinds 11 and up with id 0: frames a newer server starts.

    def next_id(self) -> int:
        """A request id for a new call (1 .. 2**32 - 1, then around)."""
        request_id = self._next_id + 1
        if request_id > 0xFFFFFFFF:
            request_id = 1
        self._next_id = request_id
        return request_id

    def set_timeout(self, timeout: float | None) -> None:
        """The timeout of each next send and receive (None: block). A receive
        that times out raises TimeoutError; a send, an OSError."""
        self.set_timeouts(timeout, timeout)

    def set_timeouts(self, send: float | None, receive: float | None) -> None:
        """The timeouts of each next send and of each next receive, each set
        on the socket only when it changes (a system call each)."""
        if send != self.send_timeout:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(send))
            self.send_timeout = send
        if receive != self.receive_timeout:
            self.sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(receive)
            )
            self.receive_timeout = receive

    def send(self, kind: int, request_id: int = 0, body: bytes = b"") -> None:
        """Sends one frame that is not a REQUEST."""
        self.sock.sendall(
            HEADER.pack(len(body), request_id, 0, kind, 0) + body, SEND_FLAGS
        )

    def buffered(self) -> int:
        """How many received bytes wait in the buffer, not read yet."""
        return self._end - self._start

    def read_frame(self) -> tuple[int, int, bytes]:
        """Reads the next frame: (request id, kind, body). The body is a
        memoryview of the receive buffer (protobuf parses it as it parses
        bytes, without a copy), valid until the next read. Raises LinkError
        when the server closes the connection, OSError (TimeoutError) from
        the socket."""
        start = self._start
        if self._end - start < HEADER_SIZE:
            self._fill(HEADER_SIZE)
            start = self._start
        length, request_id, _method, kind, _flags = HEADER.unpack_from(self._buf, start)
        total = HEADER_SIZE + length
        if self._end - start < total:
            self._fill(total)
            start = self._start
        body = cast(bytes, self._view[start + HEADER_SIZE : start + total])
        start += total
        if start == self._end:
            start = self._end = 0
            if len(self._buf) > _MAX_KEPT_BUFFER:
                # The body still refers to the big buffer; drop it after.
                self._buf = bytearray(_BUFFER_SIZE)
                self._view = memoryview(self._buf)
        self._start = start
        return request_id, kind, body

    def read_reply(self, request_id: int) -> tuple[int, bytes]:
        """Reads frames until the reply (RESPONSE or ERROR) of call
        ``request_id``: (kind, body). Raises Refused for a connection-level
        ERROR (request id 0); skips frames that the server starts."""
        while True:
            rid, kind, body = self.read_frame()
            if rid == request_id and kind in (RESPONSE, ERROR):
                return kind, body
            if rid == 0 and kind == ERROR:
                raise Refused(lane_pb2.LaneError.FromString(body))
            # EVENT and later kinds, a PONG, a stale reply: not ours.

    def quick_reply(self, request_id: int) -> bytes | None:
        """With nothing buffered: receives once, and returns the body of
        call ``request_id``'s RESPONSE if that came whole and alone, as a
        reply to the only call on a link almost always does; otherwise None,
        with what was received buffered for :meth:`read_reply`. Raises as
        :meth:`read_frame` does."""
        try:
            received = self.sock.recv_into(self._view)
        except BlockingIOError:
            raise TimeoutError("timed out") from None  # SO_RCVTIMEO
        if not received:
            raise LinkError("the server closed the connection")
        if received >= HEADER_SIZE:
            length, rid, _method, kind, _flags = HEADER.unpack_from(self._buf)
            if (
                received == HEADER_SIZE + length
                and rid == request_id
                and kind == RESPONSE
            ):
                return bytes(self._view[HEADER_SIZE:received])
        self._start = 0
        self._end = received
        return None

    def _fill(self, need: int) -> None:
        """Receives until ``need`` bytes are buffered from ``_start``."""
        start, end = self._start, self._end
        if start + need > len(self._buf):
            pending = end - start
            if need > len(self._buf):
                grown = bytearray(max(need, _BUFFER_SIZE))
                grown[:pending] = self._view[start:end]
                self._buf = grown
                self._view = memoryview(grown)
            else:
                self._view[:pending] = bytes(self._view[start:end])
            start, end = 0, pending
            self._start, self._end = 0, pending
        view = self._view
        recv_into = self.sock.recv_into
        while end - start < need:
            try:
                received = recv_into(view[end:])
            except BlockingIOError:
                raise TimeoutError("timed out") from None  # SO_RCVTIMEO
            if not received:
                raise LinkError("the server closed the connection")
            end += received
            self._end = end

    def shutdown(self) -> None:
        """Wakes any thread blocked on this link (no I/O to the server
        beyond the FIN); the link is unusable afterwards."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Closes this process's descriptor of the socket."""
        self.sock.close()
