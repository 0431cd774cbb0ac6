"""Requests in wire form, written without building protobuf messages.

The hottest calls (a dict's get and set, a namespace's attribute, a value's
get and set) carry the object's name and one or two scalars. Building their
request messages field by field costs more than the rest of the call's
Python, so a proxy keeps its name's field encoded once and these calls
write the scalars' bytes straight after it: the bytes ``SerializeToString``
would give for the same message (tests/python/test_wire.py checks that
they are equal). Anything that is not an exact scalar (a subclass, a
container, a proxy, a str with lone surrogates) returns None here, and the
caller builds the message as usual.

An :class:`Encoded` request travels through the connection's funnel like a
message: the lane sends its bytes as they are; gRPC parses them back into
the message first.
"""

from __future__ import annotations

import struct
from typing import Any, Final

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64: Final = 2**64
_DOUBLE = struct.Struct("<d").pack

# One byte each for 0 .. 127.
_BYTES: Final = tuple(bytes((i,)) for i in range(128))
# Value{int_value: i} for 0 .. 127: the most common ints, ready made.
_SMALL_INTS: Final = tuple(b"\x18" + _BYTES[i] for i in range(128))


def varint(n: int) -> bytes:
    """The base-128 varint of ``n`` (0 <= n < 2**64)."""
    if n < 0x80:
        return _BYTES[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def bytes_field(tag: bytes, data: bytes) -> bytes:
    """A length-delimited field (``tag`` its key byte) holding ``data``: a
    bytes or string field, or a message serialized."""
    return tag + varint(len(data)) + data


def string_field(tag: bytes, text: str) -> bytes | None:
    """A string field (``tag`` its key byte) holding ``text``; None if
    ``text`` is not valid Unicode (lone surrogates), which protobuf refuses
    with its own error. An empty string is no field at all, as in proto3."""
    try:
        data = text.encode()
    except UnicodeEncodeError:
        return None
    return bytes_field(tag, data) if data else b""


def scalar_value(obj: Any) -> bytes | None:
    """The serialized ``statehub.v1.Value`` of an exact scalar (None, bool,
    an int64 int, float, str, bytes), as statehub._codec would encode it;
    None for anything else."""
    t = type(obj)
    if t is str:
        try:
            data: bytes = obj.encode()
        except UnicodeEncodeError:
            return None
        n = len(data)
        return b"\x2a" + (_BYTES[n] if n < 0x80 else varint(n)) + data
    if t is int:
        if 0 <= obj < 0x80:
            small: bytes = _SMALL_INTS[obj]
            return small
        if _INT64_MIN <= obj <= _INT64_MAX:
            return b"\x18" + varint(obj % _UINT64)
        return None
    if t is float:
        return b"\x21" + _DOUBLE(obj)
    if obj is None:
        return b""
    if t is bool:
        return b"\x10\x01" if obj else b"\x10\x00"
    if t is bytes:
        raw: bytes = obj
        return b"\x32" + varint(len(raw)) + raw
    return None


def value_field(tag: bytes, obj: object) -> bytes | None:
    """A Value field (``tag`` its key byte) holding the exact scalar
    ``obj``; None if ``obj`` is not one."""
    # The commonest first, ready made: a str under 126 bytes, an int 0..127.
    # (No typing.cast: a call to it costs as much as a line here.)
    t = type(obj)
    if t is str:
        text: str = obj  # type: ignore[assignment]
        try:
            data = text.encode()
        except UnicodeEncodeError:
            return None
        n = len(data)
        if n < 126:
            return tag + _SHORT_STRING_HEADS[n] + data
    elif t is int:
        i: int = obj  # type: ignore[assignment]
        if 0 <= i < 0x200000:  # a varint of one to three bytes
            if i < 0x80:
                return tag + _SMALL_INT_FIELDS[i]
            if i < 0x4000:
                return tag + bytes((3, 0x18, i & 0x7F | 0x80, i >> 7))
            return tag + bytes(
                (4, 0x18, i & 0x7F | 0x80, i >> 7 & 0x7F | 0x80, i >> 14)
            )
    inner = scalar_value(obj)
    if inner is None:
        return None
    n = len(inner)
    return tag + (_BYTES[n] if n < 0x80 else varint(n)) + inner


# A Value field's length and then Value{string_value: n bytes}'s head, for
# n < 126; and the length and Value{int_value: i}, for 0 <= i < 128.
_SHORT_STRING_HEADS: Final = tuple(bytes((n + 2, 0x2A, n)) for n in range(126))
_SMALL_INT_FIELDS: Final = tuple(b"\x02" + _SMALL_INTS[i] for i in range(128))


def duration_field(tag: bytes, seconds: float) -> bytes:
    """A ``google.protobuf.Duration`` field (``tag`` its key byte) of
    ``seconds`` (>= 0), present even when zero, as ``CopyFrom`` makes it."""
    whole, nanos = divmod(round(seconds * 1e9), 1_000_000_000)
    body = (b"\x08" + varint(whole) if whole else b"") + (
        b"\x10" + varint(nanos) if nanos else b""
    )
    return bytes_field(tag, body)


class Encoded:
    """A request already serialized: ``body``, the bytes of a
    ``message_type`` message whose ``name`` (the object's) errors quote."""

    __slots__ = ("body", "message_type", "name")

    def __init__(self, message_type: Any, name: str, body: bytes) -> None:
        self.message_type = message_type
        self.name = name
        self.body = body

    def message(self) -> Any:
        """The request as a message (for a transport that needs one)."""
        return self.message_type.FromString(self.body)


def as_message(request: Any) -> Any:
    """``request`` as a message, whether it is one or an :class:`Encoded`
    (for the few paths that read a request's fields)."""
    return request.message() if type(request) is Encoded else request


#: What :func:`scalar_reply` returns for a reply it leaves to protobuf.
NOT_SCALAR: Final = object()
_DOUBLE_AT = struct.Struct("<d").unpack_from


def _varint_at(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it."""
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def scalar_reply(reply: bytes) -> Any:
    """The exact scalar that field 1 (a ``Value``) of a serialized reply
    holds (a DictGetResponse, ValueGetResponse, NamespaceGetResponse; the
    fields after it are not read), as statehub._codec would decode it.
    NOT_SCALAR for any other Value (a container, a ref, a blob) or bytes
    not in the form the server writes (field 1 first, each field once):
    the caller then parses the message."""
    # The commonest first: an int 0 .. 2**21 - 1, a str under 126 bytes.
    if len(reply) > 3 and reply[0] == 0x0A:
        size = reply[1]
        if size < 0x80 and size + 2 <= len(reply):
            tag = reply[2]
            if tag == 0x18:
                low = reply[3]
                if size == 2 and low < 0x80:
                    return low
                if size == 3 and low >= 0x80 and reply[4] < 0x80:
                    return low & 0x7F | reply[4] << 7
                if size == 4 and low >= 0x80 and reply[4] >= 0x80 and reply[5] < 0x80:
                    return low & 0x7F | (reply[4] & 0x7F) << 7 | reply[5] << 14
            elif tag == 0x2A and reply[3] == size - 2:
                try:
                    return reply[4 : size + 2].decode()
                except UnicodeDecodeError:
                    return NOT_SCALAR
    return _any_scalar_reply(reply)


def _any_scalar_reply(reply: bytes) -> Any:
    """scalar_reply for every scalar kind and size."""
    try:
        if not reply:
            return None  # no field 1: an empty Value
        if reply[0] != 0x0A:
            return NOT_SCALAR
        size, pos = _varint_at(reply, 1)
        end = pos + size
        if size == 0:
            return None
        if end > len(reply):
            return NOT_SCALAR
        tag = reply[pos]
        if tag == 0x18:  # int_value (int64, two's complement)
            n, after = _varint_at(reply, pos + 1)
            if after != end:
                return NOT_SCALAR
            return n - _UINT64 if n > _INT64_MAX else n
        if tag in {0x2A, 0x32}:  # string_value, bytes_value
            n, after = _varint_at(reply, pos + 1)
            if after + n != end:
                return NOT_SCALAR
            data = reply[after:end]
            return data.decode() if tag == 0x2A else data
        if tag == 0x21:  # double_value
            if pos + 9 != end:
                return NOT_SCALAR
            return _DOUBLE_AT(reply, pos + 1)[0]
        if tag == 0x10:  # bool_value
            if pos + 2 != end or reply[pos + 1] > 1:
                return NOT_SCALAR
            return reply[pos + 1] == 1
    except (IndexError, UnicodeDecodeError):
        pass  # cut short or not UTF-8: protobuf says what is wrong
    return NOT_SCALAR
