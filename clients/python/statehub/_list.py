"""ListProxy: Manager's ListProxy on ``statehub.v1.Lists``.

Every method is one rpc, atomic on the server (docs/methods.md). As with
Manager, slices, ``l + x`` and ``l * n`` return plain lists; ``l += x`` and
``l *= n`` change the shared list and return the proxy; ``iter(l)`` reads
one item per ``next()``, live, as Manager's proxy does.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Iterable, Iterator, MutableSequence
from typing import Any, Final, Generic, SupportsIndex, TypeVar, overload

from . import _codec
from ._codec import _INT64_MAX, _INT64_MIN, MISSING
from ._proto import list_pb2, value_pb2
from ._proxy import BaseProxy, register
from ._watch import Watchable
from ._wire import bytes_field, value_field

T = TypeVar("T")

# A Subscript field (ListDeleteRequest.at, field 2) holding the slice [:].
_WHOLE_SLICE: Final = b"\x12\x02\x12\x00"


def _int64(value: int) -> int:
    """value clamped to the wire's int64 range."""
    return min(max(value, _INT64_MIN), _INT64_MAX)


def _slice_bound(bound: Any) -> int:
    try:
        value = operator.index(bound)
    except TypeError:
        raise TypeError(
            "slice indices must be integers or None or have an __index__ method"
        ) from None
    # Python clamps slice bounds to the length; any int64 bound past a real
    # length means the same thing.
    return _int64(value)


def subscript(index: Any, what: str = "list") -> list_pb2.Subscript:
    """The wire form of ``[index]``: an int (``__index__``) or a slice."""
    if isinstance(index, slice):
        wire = list_pb2.Slice()
        if index.start is not None:
            wire.start = _slice_bound(index.start)
        if index.stop is not None:
            wire.stop = _slice_bound(index.stop)
        if index.step is not None:
            wire.step = _slice_bound(index.step)
        return list_pb2.Subscript(slice=wire)
    try:
        position = operator.index(index)
    except TypeError:
        raise TypeError(
            f"{what} indices must be integers or slices, not {type(index).__name__}"
        ) from None
    if not _INT64_MIN <= position <= _INT64_MAX:
        raise IndexError("cannot fit 'int' into an index-sized integer")
    return list_pb2.Subscript(index=position)


@register(value_pb2.LIST)
class ListProxy(Watchable, BaseProxy, Generic[T]):
    """A shared list. Supports every method of Manager's ListProxy, plus
    ``clear()`` and ``copy()`` (a plain list, in one reply).

    Safe to use from several threads and processes; each method is one atomic
    server operation, except ``sort(key=...)`` (see :meth:`sort`).
    """

    __slots__ = ()
    _service = "Lists"

    def _enc(self, obj: object) -> value_pb2.Value:
        return _codec.encode(obj, self._token.address, self._options)

    def _dec(self, value: value_pb2.Value) -> Any:
        return _codec.decode(value, self._token.address, self._options)

    def _sequence_value(self, items: Iterable[Any]) -> value_pb2.Value:
        value = value_pb2.Value()
        value.list_value.SetInParent()
        _codec.encode_items(
            items, value.list_value.items, self._token.address, self._options
        )
        return value

    # -- the sequence protocol ---------------------------------------------

    def __len__(self) -> int:
        response = self._call("Len", list_pb2.ListLenRequest(name=self._token.name))
        return int(response.length)

    @overload
    def __getitem__(self, index: SupportsIndex) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._slice(subscript(index))
        response = self._call(
            "Get", list_pb2.ListGetRequest(name=self._token.name, at=subscript(index))
        )
        return self._dec(response.value)

    def _slice(self, at: list_pb2.Subscript | None) -> list[Any]:
        """The items of slice ``at`` (None: all) in one reply; in one column
        when they are all ints, floats or strs (ItemColumns)."""
        request = list_pb2.ListGetRequest(name=self._token.name, at=at, columns=True)
        response = self._call("Get", request)
        if response.HasField("columns"):
            return _codec.column_items(response.columns)
        return self._dec(response.value)  # type: ignore[no-any-return]

    @overload
    def __setitem__(self, index: SupportsIndex, value: T) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[T]) -> None: ...

    def __setitem__(self, index: Any, value: Any) -> None:
        request = list_pb2.ListSetRequest(name=self._token.name, at=subscript(index))
        if isinstance(index, slice):
            if not isinstance(value, Iterable):
                raise TypeError("can only assign an iterable")
            request.value.CopyFrom(self._sequence_value(value))
        else:
            request.value.CopyFrom(self._enc(value))
        self._call("Set", request)

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        # del l[:] as ListDeleteRequest{at: {slice: {}}} (field 2, its
        # field 2), in wire form.
        if (
            type(index) is slice
            and index.start is None
            and index.stop is None
            and index.step is None
            and self._call_wire("Delete", list_pb2.ListDeleteRequest, _WHOLE_SLICE)
            is not None
        ):
            return
        self._call(
            "Delete",
            list_pb2.ListDeleteRequest(name=self._token.name, at=subscript(index)),
        )

    def __contains__(self, value: object) -> bool:
        response = self._call(
            "Contains",
            list_pb2.ListContainsRequest(name=self._token.name, value=self._enc(value)),
        )
        return bool(response.contains)

    def __iter__(self) -> Iterator[T]:
        """A live iterator, as Python's list iterator and Manager's proxy:
        each ``next()`` reads the item at the next index (one round trip),
        so it sees changes made while it runs. Use :meth:`copy` to iterate
        over a snapshot taken in one reply."""
        return ListIterator(self)

    def __reversed__(self) -> Iterator[T]:
        return iter(self._slice(list_pb2.Subscript(slice=list_pb2.Slice(step=-1))))

    # -- list methods -------------------------------------------------------

    def append(self, value: T) -> None:
        """Appends value."""
        # ListAppendRequest.value is field 2.
        if (
            self._call_wire(
                "Append", list_pb2.ListAppendRequest, value_field(b"\x12", value)
            )
            is None
        ):
            self._call(
                "Append",
                list_pb2.ListAppendRequest(
                    name=self._token.name, value=self._enc(value)
                ),
            )

    def extend(self, values: Iterable[T]) -> None:
        """Appends every item of values, in one atomic operation."""
        items = list(_items(values))
        columns = _codec.item_columns_form(items)
        # ListExtendRequest.columns is field 3.
        if (
            columns is not None
            and self._call_wire(
                "Extend", list_pb2.ListExtendRequest, bytes_field(b"\x1a", columns)
            )
            is not None
        ):
            return
        request = list_pb2.ListExtendRequest(name=self._token.name)
        if not _codec.encode_item_columns(items, request.columns):
            _codec.encode_items(
                items, request.items, self._token.address, self._options
            )
        self._call("Extend", request)

    def insert(self, index: SupportsIndex, value: T) -> None:
        """Inserts value before index (clamped, as Python does)."""
        position = _int64(operator.index(index))
        self._call(
            "Insert",
            list_pb2.ListInsertRequest(
                name=self._token.name, index=position, value=self._enc(value)
            ),
        )

    def pop(self, index: Any = MISSING, /) -> T:
        """Removes and returns l[index] (default the last item)."""
        request = list_pb2.ListPopRequest(name=self._token.name)
        if index is not MISSING:
            request.index = subscript(index).index
        response = self._call("Pop", request)
        return self._dec(response.value)  # type: ignore[no-any-return]

    def remove(self, value: T) -> None:
        """Removes the first item equal to value; ValueError if none is."""
        self._call(
            "Remove",
            list_pb2.ListRemoveRequest(name=self._token.name, value=self._enc(value)),
        )

    def index(
        self, value: T, start: SupportsIndex = 0, stop: SupportsIndex = sys.maxsize, /
    ) -> int:
        """The first position of value in l[start:stop]; ValueError if absent."""
        response = self._call(
            "Index",
            list_pb2.ListIndexRequest(
                name=self._token.name,
                value=self._enc(value),
                start=_slice_bound(start),
                stop=_slice_bound(stop),
            ),
        )
        return int(response.index)

    def count(self, value: T) -> int:
        """How many items equal value."""
        response = self._call(
            "Count",
            list_pb2.ListCountRequest(name=self._token.name, value=self._enc(value)),
        )
        return int(response.count)

    def reverse(self) -> None:
        """Reverses the list in place."""
        self._call("Reverse", list_pb2.ListReverseRequest(name=self._token.name))

    def sort(
        self, *, key: Callable[[T], Any] | None = None, reverse: bool = False
    ) -> None:
        """Sorts in place, stably.

        Without ``key`` the server sorts, atomically, in Python's natural
        order; items that cannot be compared raise TypeError and leave the
        list unchanged. With ``key`` the function runs here: the list is
        read, sorted and written back whole, which is *not* atomic.
        """
        if key is None:
            self._call(
                "Sort",
                list_pb2.ListSortRequest(name=self._token.name, reverse=bool(reverse)),
            )
            return
        items = sorted(self.copy(), key=key, reverse=bool(reverse))
        self._call(
            "Set",
            list_pb2.ListSetRequest(
                name=self._token.name, value=self._sequence_value(items)
            ),
        )

    def clear(self) -> None:
        """Removes every item."""
        if self._call_wire("Clear", list_pb2.ListClearRequest) is None:
            self._call("Clear", list_pb2.ListClearRequest(name=self._token.name))

    def copy(self) -> list[T]:
        """A plain list with the current items (one atomic snapshot)."""
        return self._slice(None)

    def __iadd__(self, values: Iterable[T]) -> ListProxy[T]:
        self.extend(values)
        return self

    def __imul__(self, times: SupportsIndex) -> ListProxy[T]:
        self._call(
            "Repeat",
            list_pb2.ListRepeatRequest(
                name=self._token.name, times=_int64(operator.index(times))
            ),
        )
        return self

    def __add__(self, other: list[T]) -> list[T]:
        return self.copy() + other

    def __mul__(self, times: SupportsIndex) -> list[T]:
        return self.copy() * times

    def __rmul__(self, times: SupportsIndex) -> list[T]:
        return self.copy() * times

    # -- Manager's extras ---------------------------------------------------

    def _getvalue(self) -> list[T]:
        return self.copy()

    def _str(self) -> str:
        return repr(self.copy())


MutableSequence.register(ListProxy)


class ListIterator(Generic[T]):
    """Python's list iterator over a shared list: index-based, so it sees
    items changed, added or removed while it runs, and stops for good once
    the index reaches the list's length (issue 14)."""

    __slots__ = ("_index", "_list")

    def __init__(self, proxy: ListProxy[T]) -> None:
        self._list: ListProxy[T] | None = proxy
        self._index = 0

    def __iter__(self) -> ListIterator[T]:
        return self

    def __next__(self) -> T:
        if self._list is None:
            raise StopIteration
        # A one-item slice is empty past the end, where l[i] would raise:
        # the end costs no error reply.
        items = self._list[self._index : self._index + 1]
        if not items:
            self._list = None  # exhausted, as Python's: later growth is not seen
            raise StopIteration
        self._index += 1
        return items[0]


def _items(values: Iterable[Any]) -> Iterable[Any]:
    """A proxy's items in one reply; any other iterable as it is."""
    if isinstance(values, ListProxy):
        return values.copy()
    return values
