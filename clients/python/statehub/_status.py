"""The one translation from a failed call to the exception it raises.

Both transports end a failed call with the same three things: a status code
(gRPC's numbering, by name), a message, and a ``statehub.v1.ErrorDetail``
(the ``statehub-error-bin`` trailer on gRPC, the ``detail`` of a LaneError on
the lane). :func:`error_from_status` turns them into the exception of
:mod:`statehub.errors`, so a call raises the same thing on either transport.
"""

from __future__ import annotations

from typing import Any

from . import errors
from ._proto import value_pb2

#: google.rpc.Code names by number (the LaneError ``code``; grpc.StatusCode
#: uses the same names).
CODE_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)

#: A key passed to the funnel so a KEY_ERROR can carry it, as dict's KeyError.
NO_KEY: Any = object()

_CONNECTION_CODES = frozenset(
    ("UNAVAILABLE", "CANCELLED", "UNKNOWN", "INTERNAL", "ABORTED")
)


def code_name(code: int) -> str:
    """The name of a google.rpc.Code number ("" for 0, ``CODE_<n>`` if unknown)."""
    if code == 0:
        return ""
    if 0 < code < len(CODE_NAMES):
        return CODE_NAMES[code]
    return f"CODE_{code}"


def error_from_status(
    code: str,
    message: str,
    detail: value_pb2.ErrorDetail | None,
    address: str,
    *,
    key: Any = NO_KEY,
    attribute: str | None = None,
) -> errors.StatehubError:
    """The exception for a call that ended with status ``code`` (a name such
    as ``"NOT_FOUND"``), ``message`` and ``detail`` (None: none came).

    ``key`` (a dict key) and ``attribute`` (a namespace attribute) only
    decorate a KeyError or AttributeError the way Python's own would be.
    """
    if detail is not None and detail.kind == value_pb2.WATCH_TOO_OLD:
        return errors.WatchTooOld(
            message,
            object=detail.object,
            kind="WATCH_TOO_OLD",
            code=code,
            revision=detail.revision,
            oldest_revision=detail.oldest_revision,
        )
    if detail is not None and detail.kind != value_pb2.ERROR_KIND_UNSPECIFIED:
        return errors.error_for_kind(
            value_pb2.ErrorKind.Name(detail.kind),
            message,
            object=detail.object,
            limit=detail.limit,
            code=code,
            key=None if key is NO_KEY else key,
            has_key=key is not NO_KEY,
            attribute=attribute,
        )
    if code == "RESOURCE_EXHAUSTED":
        limit = detail.limit if detail is not None else ""
        lowered = message.lower()
        if (
            limit == "max_message_bytes"
            # gRPC refused the message before statehub saw it.
            or "message larger than max" in lowered
            # The lane refused a frame longer than the limit.
            or "max_message_bytes" in lowered
        ):
            return errors.LimitExceeded(
                f"statehub-server at {address}: the message exceeds the "
                f"server's --max_message_bytes ({message})",
                limit="max_message_bytes",
                code=code,
            )
        if limit:
            return errors.LimitExceeded(
                f"statehub-server at {address}: {message}", limit=limit, code=code
            )
    return transport_error(code, message, address)


def lane_error(
    failure: Any, address: str, key: Any = NO_KEY, attribute: str | None = None
) -> errors.StatehubError:
    """The exception for a lane ERROR frame's LaneError ``failure`` from the
    server at ``address`` (``key`` and ``attribute``: see
    error_from_status)."""
    return error_from_status(
        code_name(failure.code),
        failure.message,
        failure.detail if failure.HasField("detail") else None,
        address,
        key=key,
        attribute=attribute,
    )


def transport_error(code: str, message: str, address: str) -> errors.StatehubError:
    """The exception for a failed call that carries no statehub error kind."""
    text = f"statehub-server at {address}: {message}" if message else address
    if code == "DEADLINE_EXCEEDED":
        return errors.DeadlineExceeded(text, code=code)
    if code == "UNAUTHENTICATED":
        return errors.AuthenticationError(text, code=code)
    if code == "RESOURCE_EXHAUSTED":
        return errors.LimitExceeded(text, code=code)
    if code in _CONNECTION_CODES:
        return errors.ConnectionError(text, code=code)
    return errors.StatehubError(text, code=code)
