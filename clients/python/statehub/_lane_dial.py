"""Opening a lane link: where a statehub address leads, the HELLO a link
opens with, and the errors for a server that cannot be reached or refuses
the session (``api/LANE.md``, "Hello")."""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from . import _transport, errors
from ._frames import PROTOCOL_VERSION, Link, LinkError, Refused
from ._lane_session import CONNECT_TIMEOUT
from ._proto import lane_pb2, session_pb2
from ._status import lane_error
from ._transport import Credentials

_host = socket.gethostname()


def target(address: str) -> tuple[int, Any]:
    """The socket family and address of a normalized target."""
    if address.startswith("unix-abstract:"):
        return socket.AF_UNIX, "\0" + address[len("unix-abstract:") :]
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if path.startswith("//"):
            path = path[2:]  # unix:///abs/path
        return socket.AF_UNIX, path
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if address.startswith(prefix):
            address = address[len(prefix) :]
            break
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(
            f"cannot reach {address!r} on the lane: a statehub address is "
            "'unix:///path' or 'host:port'"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return socket.AF_INET, (host or "127.0.0.1", int(port))


class Dialer:
    """Opens links to the server at ``address`` for the process ``pid``:
    each says hello with the protocol version, the process's label and the
    credentials' token."""

    def __init__(self, address: str, credentials: Credentials, pid: int) -> None:
        self.address = address
        self.family, self._sockaddr = target(address)
        self._token = credentials.token
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        self._label = f"{_host}:{pid}:{program or 'python'}"

    @property
    def unix(self) -> bool:
        """Whether the server is reached on a Unix socket."""
        return self.family == socket.AF_UNIX

    def dial(self, hello: lane_pb2.LaneHello) -> tuple[Link, session_pb2.Welcome]:
        """A new link, welcomed. Raises the server's refusal as the gRPC
        session would, or ConnectionError."""
        hello.protocol_version = PROTOCOL_VERSION
        hello.label = self._label
        if self._token:
            hello.token = self._token
        try:
            link = Link.dial(self.family, self._sockaddr, CONNECT_TIMEOUT)
        except OSError as failed:
            raise self._unreachable(failed) from None
        try:
            welcome = link.hello(hello)
        except Refused as refused:
            link.close()
            raise self._refusal(refused.error) from None
        except (OSError, LinkError) as failed:
            link.close()
            raise self._unreachable(failed) from None
        except BaseException:
            link.close()
            raise
        return link, welcome

    def _unreachable(self, failed: BaseException) -> errors.ConnectionError:
        return errors.ConnectionError(
            _transport.cannot_open_session(self.address, failed), code="UNAVAILABLE"
        )

    def _refusal(self, failure: lane_pb2.LaneError) -> errors.StatehubError:
        """The exception for a refused HELLO, as the gRPC session says it."""
        return errors.restated(
            lane_error(failure, self.address),
            f"cannot open a session with statehub-server at {self.address}: "
            f"{failure.message}",
        )
