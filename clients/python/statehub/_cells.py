"""ValueProxy and ArrayProxy: Manager's Value and Array on
``statehub.v1.Values`` and ``statehub.v1.Arrays``.

A Value is one cell holding any value (its typecode, as in Manager, is only
shown by repr()). An Array has a fixed length and a typecode that fixes what
each cell holds, converted as ``array.array`` converts.
"""

from __future__ import annotations

import array
import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, Generic, SupportsIndex, TypeVar, overload

from . import _codec
from ._list import subscript
from ._proto import cell_pb2, objects_pb2, value_pb2
from ._proxy import BaseProxy, Options, Token, register
from ._watch import Watchable
from ._wire import value_field

T = TypeVar("T")

# array.array cannot hold 'c' (one-byte bytes) cells; slices of such an
# array are bytes, as with multiprocessing.Array('c', ...).
_ARRAY_MODULE_TYPECODES = frozenset(array.typecodes)


class _TypecodeMixin(Watchable, BaseProxy):
    """Knows its object's typecode, asking the server (Describe) at most once
    when the token did not carry it."""

    __slots__ = ("_typecode",)

    _typecode: str | None

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        super().__init__(token, options, held=held)
        object.__setattr__(self, "_typecode", token.typecode or None)

    def _known_typecode(self) -> str:
        if self._typecode is None:
            response = self._call(
                "Describe",
                objects_pb2.DescribeRequest(name=self._token.name),
                service="Objects",
            )
            object.__setattr__(self, "_typecode", response.info.typecode)
        return self._typecode or ""

    def _reduce_token(self) -> Token:
        if self._typecode and not self._token.typecode:
            return dataclasses.replace(self._token, typecode=self._typecode)
        return self._token


@register(value_pb2.VALUE)
class ValueProxy(_TypecodeMixin, Generic[T]):
    """A shared value: ``v.value`` reads it, ``v.value = x`` writes it.

    Plus atomic :meth:`increment`, :meth:`compare_and_set` and
    :meth:`get_and_set`. Safe to use from several threads and processes.
    """

    __slots__ = ()
    _service = "Values"

    def _dec(self, value: value_pb2.Value) -> Any:
        return _codec.decode(value, self._token.address, self._options)

    def _enc(self, obj: object) -> value_pb2.Value:
        return _codec.encode(obj, self._token.address, self._options)

    def get(self) -> T:
        """Returns the value."""
        reply = self._call_wire("Get", cell_pb2.ValueGetRequest)
        if reply is None:
            response = self._call(
                "Get", cell_pb2.ValueGetRequest(name=self._token.name)
            )
            return self._dec(response.value)  # type: ignore[no-any-return]
        return _codec.reply_value(  # type: ignore[no-any-return]
            reply, cell_pb2.ValueGetResponse, self._token.address, self._options
        )

    def set(self, value: T) -> None:
        """Replaces the value."""
        # ValueSetRequest.value is field 2.
        if (
            self._call_wire(
                "Set", cell_pb2.ValueSetRequest, value_field(b"\x12", value)
            )
            is None
        ):
            self._call(
                "Set",
                cell_pb2.ValueSetRequest(name=self._token.name, value=self._enc(value)),
            )

    value = property(get, set, doc="The value (one read or one write).")

    def increment(self, delta: int | float = 1) -> Any:
        """Atomically adds delta and returns the new value (the number rules
        of :meth:`DictProxy.increment`)."""
        response = self._call(
            "Increment",
            cell_pb2.ValueIncrementRequest(
                name=self._token.name, delta=self._enc(delta)
            ),
        )
        return self._dec(response.value)

    def compare_and_set(self, expected: Any, new: T) -> bool:
        """Atomically stores new if the value equals expected; returns whether
        it did."""
        response = self._call(
            "CompareAndSet",
            cell_pb2.ValueCompareAndSetRequest(
                name=self._token.name,
                expected=self._enc(expected),
                desired=self._enc(new),
            ),
        )
        # Decoded for its side effect: a ref in it came with a server hold.
        self._dec(response.current)
        return bool(response.swapped)

    def get_and_set(self, value: T) -> T:
        """Atomically stores value and returns the previous one."""
        response = self._call(
            "GetAndSet",
            cell_pb2.ValueGetAndSetRequest(
                name=self._token.name, value=self._enc(value)
            ),
        )
        return self._dec(response.previous)  # type: ignore[no-any-return]

    def _getvalue(self) -> Any:
        from multiprocessing import managers

        return managers.Value(  # type: ignore[attr-defined]
            self._known_typecode() or None, self.get()
        )

    def _str(self) -> str:
        # Manager's Value repr: Value('i', 3).
        return f"Value({self._known_typecode() or None!r}, {self.get()!r})"


@register(value_pb2.ARRAY)
class ArrayProxy(_TypecodeMixin, Generic[T]):
    """A shared fixed-length array of one typecode (Manager's ArrayProxy):
    ``len(a)``, ``a[i]``, ``a[i:j]``, ``a[i] = x``, ``a[i:j] = seq``.

    Slices come back as ``array.array`` (as Manager's do; ``bytes`` for
    typecode 'c'). A slice assignment must keep the length (ValueError).
    Safe to use from several threads and processes.
    """

    __slots__ = ()
    _service = "Arrays"

    def __len__(self) -> int:
        response = self._call("Len", cell_pb2.ArrayLenRequest(name=self._token.name))
        return int(response.length)

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Any: ...

    def __getitem__(self, index: Any) -> Any:
        response = self._call(
            "Get",
            cell_pb2.ArrayGetRequest(
                name=self._token.name, at=subscript(index, "array")
            ),
        )
        result = _codec.decode(response.value, self._token.address, self._options)
        if isinstance(index, slice):
            return self._as_array(result)
        return result

    @overload
    def __setitem__(self, index: SupportsIndex, value: T) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...

    def __setitem__(self, index: Any, value: Any) -> None:
        request = cell_pb2.ArraySetRequest(
            name=self._token.name, at=subscript(index, "array")
        )
        if isinstance(index, slice):
            if not isinstance(value, Iterable):
                raise TypeError("can only assign an iterable to an array slice")
            if isinstance(value, (bytes, bytearray)):
                # b"ab" is two one-byte cells, not two ints.
                items: list[Any] = [bytes([b]) for b in value]
            else:
                items = list(value)
            request.value.list_value.SetInParent()
            _codec.encode_items(
                items,
                request.value.list_value.items,
                self._token.address,
                self._options,
            )
        else:
            request.value.CopyFrom(
                _codec.encode(value, self._token.address, self._options)
            )
        self._call("Set", request)

    def __iter__(self) -> Iterator[T]:
        """Iterates over a snapshot of the array, taken in one reply."""
        return iter(self._items())

    def _items(self) -> list[Any]:
        response = self._call("Get", cell_pb2.ArrayGetRequest(name=self._token.name))
        items = _codec.decode(response.value, self._token.address, self._options)
        return list(items)

    def _as_array(self, items: list[Any]) -> Any:
        typecode = self._known_typecode()
        if typecode in _ARRAY_MODULE_TYPECODES:
            return array.array(typecode, items)
        if typecode == "c":
            return b"".join(items)
        return items

    def _getvalue(self) -> Any:
        return self._as_array(self._items())

    def _str(self) -> str:
        value = self._getvalue()
        if isinstance(value, array.array):
            return repr(value)
        return f"array({self._known_typecode()!r}, {value!r})"
