"""Python values <-> ``statehub.v1.Value``.

=====================  ===========================================
Python                 Value
=====================  ===========================================
``None``               no kind set (the empty message)
``bool``               ``bool_value``
``int``                ``int_value`` (int64; outside it OverflowError)
``float``              ``double_value``
``str`` / ``bytes``    ``string_value`` / ``bytes_value``
``list`` / ``tuple``   ``list_value`` / ``tuple_value``
``dict``               ``map_value`` (keys: scalars or tuples of them)
a statehub proxy       ``ref_value`` (read back as a proxy)
:class:`Blob`          ``blob_value`` as is
anything else          ``blob_value`` with codec ``"pickle"``, only when
                       pickling is enabled; otherwise TypeError
=====================  ===========================================

Exact builtin types map to the neutral kinds. Instances of *subclasses*
(an ``IntEnum``, a namedtuple, an ``OrderedDict``) are pickled when pickling
is enabled, so they come back as they went in, as with Manager; with
pickling off they travel as their base kind (as ``json`` would). Dict keys
always travel as their base kind: a blob cannot be a key.

Refs stored inside a pickled blob are invisible to the server, so they do not
keep an anonymous object alive; store proxies directly in shared containers.
"""

from __future__ import annotations

import pickle
import struct
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any, Final

from ._proto import value_pb2
from ._proxy import ANONYMOUS_PREFIX, BaseProxy, Options, Token, make_proxy
from ._wire import NOT_SCALAR, bytes_field, scalar_reply

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
# Deeper than the server's default --max_depth (64): a self-referencing list
# fails here instead of exhausting the stack.
_MAX_DEPTH: Final = 200

PICKLE_CODEC: Final = "pickle"

Value = value_pb2.Value


class _Missing:
    """The type of :data:`MISSING`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "statehub.MISSING"

    def __reduce__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: Stands for "no value": a missing key for ``compare_and_set``, or "no
#: default" where ``None`` would be a real default.
MISSING: Final = _Missing()


@dataclass(frozen=True)
class Blob:
    """An opaque value in a client codec, as stored on the server.

    Reads return a Blob for a codec this client does not decode (e.g. from a
    C++ client), or for a pickle when pickling is off; storing a Blob writes
    it back unchanged.
    """

    codec: str
    data: bytes


def check_int(value: int) -> int:
    """Returns ``value`` if it fits the wire's int64, else OverflowError."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError("int too large to convert to statehub's int64")
    return value


def _pickle_refused(obj: object) -> TypeError:
    return TypeError(
        f"cannot store a {type(obj).__qualname__!r} object in statehub: only "
        "None, bool, int, float, str, bytes, list, tuple, dict and statehub "
        "proxies travel as plain values, and pickling other objects is off "
        "for this connection. If you trust every client of this server, "
        "enable it: statehub.Manager(address, allow_pickle=True)"
    )


def encode_key(key: object, out: Value | None = None) -> Value:
    """Encodes a dict key: a scalar or a tuple of keys."""
    value = Value() if out is None else out
    if key is None:
        return value
    if isinstance(key, bool):
        value.bool_value = bool(key)
    elif isinstance(key, int):
        value.int_value = check_int(int(key))
    elif isinstance(key, float):
        value.double_value = float(key)
    elif isinstance(key, str):
        value.string_value = str(key)
    elif isinstance(key, bytes):
        value.bytes_value = bytes(key)
    elif isinstance(key, tuple):
        items = value.tuple_value.items
        value.tuple_value.SetInParent()
        for item in key:
            encode_key(item, items.add())
    elif isinstance(key, (list, dict, set, bytearray, BaseProxy)) or (
        getattr(type(key), "__hash__", None) is None
    ):
        raise TypeError(f"unhashable type: '{type(key).__name__}'")
    else:
        raise TypeError(
            "statehub dict keys are None, bool, int, float, str, bytes or "
            f"tuples of them, not '{type(key).__name__}'"
        )
    return value


def encode(obj: object, address: str, options: Options) -> Value:
    """Encodes a Python value; see the module docstring for the mapping."""
    value = Value()
    _encode_into(obj, value, address, options, 0)
    return value


def encode_into(obj: object, out: Value, address: str, options: Options) -> None:
    """Encodes into an existing (empty) message, e.g. a repeated field's item."""
    _encode_into(obj, out, address, options, 0)


def encode_items(
    items: Iterable[object], out: Any, address: str, options: Options
) -> None:
    """Appends every item to ``out``, a repeated Value field (a list's items,
    a request's values)."""
    _encode_items(items, out, address, options, 0)


def encode_entries(
    pairs: Iterable[tuple[object, object]], out: Any, address: str, options: Options
) -> None:
    """Appends every (key, value) pair to ``out``, a repeated MapEntry field."""
    _encode_entries(pairs, out, address, options, 0)


# Bulk calls (update, extend, copy of nested values) spend their time here.
# A batch whose keys are strs and whose values are all ints, all floats or
# all strs travels in columns (EntryColumns, ItemColumns in value.proto),
# each built or read with a C call or two: strs joined and split on U+0000,
# numbers through struct and array.array. A 1,000-entry update encodes in about half
# the time of a protobuf field per item, a copy decodes in two thirds
# (docs/benchmarks.md). Everything else takes the full path.

_TERMINATOR: Final = "\0"
_SWAP: Final = sys.byteorder == "big"  # columns are little-endian


def _joined(strs: list[Any]) -> str | None:
    """``strs`` each followed by U+0000, as a column holds them; None when
    one is not a str (a subclass is joined as a str, as it travels) or
    holds U+0000 itself."""
    try:
        joined = _TERMINATOR.join(strs)
    except TypeError:
        return None
    if joined.count(_TERMINATOR) != len(strs) - 1:
        return None
    return joined + _TERMINATOR


def _split(column: str) -> list[str]:
    """The strs of a column of strs each followed by U+0000."""
    strs = column.split(_TERMINATOR)
    strs.pop()  # the empty string after the last terminator
    return strs


def _numbers(code: str, values: list[Any]) -> bytes:
    """``values`` as a column of 8-byte little-endian numbers (``code``: "q"
    for ints, "d" for floats); struct.error for an int beyond int64. struct
    converts an int three times faster than array.array."""
    return struct.pack(f"<{len(values)}{code}", *values)


def _from_numbers(code: str, column: bytes) -> list[Any]:
    """The numbers of a column of 8-byte little-endian ones."""
    numbers = array(code)
    numbers.frombytes(column)
    if _SWAP:
        numbers.byteswap()
    return numbers.tolist()


def _column(values: list[Any]) -> tuple[str, Any] | None:
    """The value column of ``values`` (its field's name in EntryColumns and
    ItemColumns, and its data: bytes of numbers, or a joined str) when they
    are all ints within int64, all floats or all strs without U+0000,
    exactly (not a bool, not a subclass); None when they are none of
    these."""
    types = list(map(type, values))  # counted, not put in a set: faster
    t = types[0]
    if types.count(t) != len(types):
        return None
    try:
        if t is int:
            return "ints", _numbers("q", values)
        if t is float:
            return "doubles", _numbers("d", values)
    except struct.error:  # beyond int64
        return None
    if t is str:
        joined = _joined(values)
        return None if joined is None else ("strings", joined)
    return None


def _fill_column(values: list[Any], out: Any) -> bool:
    """Sets the value column of ``out`` (an EntryColumns or ItemColumns
    message) to ``values`` (:func:`_column`); False, with ``out``
    untouched, when they do not fit one."""
    column = _column(values)
    if column is None:
        return False
    try:
        setattr(out, *column)
    except ValueError:  # a str not UTF-8 (a lone surrogate)
        return False
    return True


# ItemColumns' key bytes, by column (ints 4, doubles 5, strings 6: bytes and
# string fields).
_ITEM_COLUMN_KEYS: Final = {"ints": b"\x22", "doubles": b"\x2a", "strings": b"\x32"}


def item_columns_form(items: list[Any]) -> bytes | None:
    """``items`` as a serialized ItemColumns message, as
    :func:`encode_item_columns` would lay them out; None when they do not
    fit a column (or there are none)."""
    column = _column(items) if items else None
    if column is None:
        return None
    which, data = column
    raw: bytes = data
    if which == "strings":
        try:
            raw = data.encode()
        except UnicodeEncodeError:  # a lone surrogate
            return None
    return bytes_field(_ITEM_COLUMN_KEYS[which], raw)


def _column_values(columns: Any, which: str | None) -> list[Any]:
    """The values of the value column ``which`` of an EntryColumns or
    ItemColumns batch (none: no values)."""
    if which == "ints":
        return _from_numbers("q", columns.ints)
    if which == "doubles":
        return _from_numbers("d", columns.doubles)
    if which == "strings":
        return _split(columns.strings)
    return []


def encode_columns(mapping: dict[Any, Any], out: Any) -> bool:
    """Lays ``mapping`` out in ``out``, an EntryColumns message, when every
    key is a str and the values fit a column (``_fill_column``). Returns
    False, with ``out`` left empty, when the mapping does not fit."""
    if not mapping:
        return False
    keys = _joined(list(mapping))
    if keys is None or not _fill_column(list(mapping.values()), out):
        return False
    try:
        out.keys = keys
    except ValueError:  # a str not UTF-8 (a lone surrogate)
        out.Clear()
        return False
    return True


def encode_item_columns(items: list[Any], out: Any) -> bool:
    """Lays ``items`` out in ``out``, an ItemColumns message, when they fit
    a column (``_fill_column``). Returns False, with ``out`` left empty,
    when they do not (a subclass, a bool, a mix, a big int)."""
    return bool(items) and _fill_column(items, out)


def column_items(columns: Any) -> list[Any]:
    """The items of an ItemColumns batch, as a list."""
    return _column_values(columns, columns.WhichOneof("items"))


def columns_dict(columns: Any) -> dict[Any, Any]:
    """The dict an EntryColumns batch holds, built straight from its columns
    (a copy() of a big dict spends most of its time here)."""
    values = _column_values(columns, columns.WhichOneof("values"))
    return dict(zip(_split(columns.keys), values, strict=True))


def decode_columns(columns: Any, keys_only: bool) -> list[tuple[Any, Any]]:
    """The (key, value) pairs of an EntryColumns batch (value None for a
    keys-only one)."""
    keys = _split(columns.keys)
    if keys_only:
        return [(k, None) for k in keys]
    values = _column_values(columns, columns.WhichOneof("values"))
    return list(zip(keys, values, strict=True))


def _encode_items(
    items: Iterable[object], out: Any, address: str, options: Options, depth: int
) -> None:
    add = out.add
    for item in items:
        value = add()
        t = type(item)
        if t is str:
            value.string_value = item
        elif t is int and _INT64_MIN <= item <= _INT64_MAX:  # type: ignore[operator]
            value.int_value = item
        elif t is float:
            value.double_value = item
        else:
            _encode_into(item, value, address, options, depth)


def _encode_entries(
    pairs: Iterable[tuple[object, object]],
    out: Any,
    address: str,
    options: Options,
    depth: int,
) -> None:
    add = out.add
    for key, item in pairs:
        entry = add()
        if type(key) is str:
            entry.key.string_value = key
        else:
            encode_key(key, entry.key)
        t = type(item)
        if t is str:
            entry.value.string_value = item
        elif t is int and _INT64_MIN <= item <= _INT64_MAX:  # type: ignore[operator]
            entry.value.int_value = item
        elif t is float:
            entry.value.double_value = item
        else:
            _encode_into(item, entry.value, address, options, depth)


def _encode_into(
    obj: object, out: Value, address: str, options: Options, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("value nested too deeply (or refers to itself)")
    t = type(obj)
    if obj is None:
        return
    if t is bool:
        out.bool_value = obj  # type: ignore[assignment]
    elif t is int:
        out.int_value = check_int(obj)  # type: ignore[arg-type]
    elif t is float:
        out.double_value = obj  # type: ignore[assignment]
    elif t is str:
        out.string_value = obj  # type: ignore[assignment]
    elif t is bytes:
        out.bytes_value = obj  # type: ignore[assignment]
    elif t is list or t is tuple:
        container = out.list_value if t is list else out.tuple_value
        container.SetInParent()
        _encode_items(obj, container.items, address, options, depth + 1)  # type: ignore[arg-type]
    elif t is dict:
        out.map_value.SetInParent()
        _encode_entries(
            obj.items(),  # type: ignore[attr-defined]
            out.map_value.entries,
            address,
            options,
            depth + 1,
        )
    elif isinstance(obj, BaseProxy):
        token = obj._token
        if token.address != address:
            raise ValueError(
                f"cannot store a proxy of an object on {token.address} in an "
                f"object on {address}: refs name objects of one server"
            )
        out.ref_value.name = token.name
        out.ref_value.type = token.type
    elif isinstance(obj, Blob):
        out.blob_value.codec = obj.codec
        out.blob_value.data = obj.data
    elif options.allow_pickle:
        out.blob_value.codec = PICKLE_CODEC
        out.blob_value.data = bytes(ForkingPickler.dumps(obj))
    elif isinstance(obj, bool):
        out.bool_value = bool(obj)
    elif isinstance(obj, int):
        out.int_value = check_int(int(obj))
    elif isinstance(obj, float):
        out.double_value = float(obj)
    elif isinstance(obj, str):
        out.string_value = str(obj)
    elif isinstance(obj, bytes):
        out.bytes_value = bytes(obj)
    elif isinstance(obj, (list, tuple)):
        _encode_into(
            list(obj) if isinstance(obj, list) else tuple(obj),
            out,
            address,
            options,
            depth,
        )
    elif isinstance(obj, dict):
        _encode_into(dict(obj), out, address, options, depth)
    else:
        raise _pickle_refused(obj)


class _Decoder:
    """Decodes one reply. Every ref becomes a proxy even if a later part of
    the value fails to decode, so no server hold is left unaccounted for
    (a proxy that is dropped releases its hold)."""

    __slots__ = ("address", "error", "options")

    def __init__(self, address: str, options: Options) -> None:
        self.address = address
        self.options = options
        self.error: BaseException | None = None

    def decode(self, value: Value) -> Any:
        kind = value.WhichOneof("kind")
        if kind is None:
            return None
        if kind == "int_value":
            return value.int_value
        if kind == "string_value":
            return value.string_value
        if kind == "double_value":
            return value.double_value
        if kind == "bool_value":
            return value.bool_value
        if kind == "bytes_value":
            return value.bytes_value
        if kind == "list_value":
            return [self.decode(item) for item in value.list_value.items]
        if kind == "tuple_value":
            return tuple(self.decode(item) for item in value.tuple_value.items)
        if kind == "map_value":
            return {
                self.decode(entry.key): self.decode(entry.value)
                for entry in value.map_value.entries
            }
        if kind == "ref_value":
            ref = value.ref_value
            return make_proxy(
                Token(self.address, ref.name, ref.type),
                self.options,
                held=ref.name.startswith(ANONYMOUS_PREFIX),
            )
        if kind == "blob_value":
            blob = value.blob_value
            if blob.codec == PICKLE_CODEC and self.options.allow_pickle:
                try:
                    return pickle.loads(blob.data)
                except Exception as e:
                    if self.error is None:
                        self.error = e
                    return None
            return Blob(blob.codec, blob.data)
        raise ValueError(f"unknown statehub value kind {kind!r}")


def decode(value: Value, address: str, options: Options) -> Any:
    """Decodes a Value read from the server at ``address``."""
    decoder = _Decoder(address, options)
    result = decoder.decode(value)
    if decoder.error is not None:
        raise decoder.error
    return result


def reply_value(
    reply: bytes, response_type: Any, address: str, options: Options
) -> Any:
    """The decoded ``value`` (field 1) of a ``response_type`` reply in wire
    form, read without protobuf when it is a scalar (statehub._wire)."""
    value = scalar_reply(reply)
    if value is NOT_SCALAR:
        return decode(response_type.FromString(reply).value, address, options)
    return value


def decode_many(values: Any, address: str, options: Options) -> list[Any]:
    """Decodes a sequence of Values (e.g. a repeated field)."""
    decoder = _Decoder(address, options)
    result = [decoder.decode(v) for v in values]
    if decoder.error is not None:
        raise decoder.error
    return result


def decode_entries(
    entries: Any, address: str, options: Options
) -> list[tuple[Any, Any]]:
    """Decodes repeated MapEntry into (key, value) pairs."""
    decoder = _Decoder(address, options)
    result = [(decoder.decode(e.key), decoder.decode(e.value)) for e in entries]
    if decoder.error is not None:
        raise decoder.error
    return result
