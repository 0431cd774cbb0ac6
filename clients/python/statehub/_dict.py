"""DictProxy: Manager's DictProxy on ``statehub.v1.Dicts``.

Every method is one rpc, atomic on the server (docs/methods.md). Like
Manager's proxy, ``keys()``, ``values()`` and ``items()`` return lists (a
snapshot taken in one reply) and ``copy()`` a plain dict; ``iter(d)`` pages
through the dict and raises RuntimeError, as a dict does, if the dict
changes size after ``iter(d)`` (:class:`KeyIterator`).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, Generic, TypeVar, overload

from . import _codec
from ._codec import MISSING, encode_key
from ._proto import dict_pb2, value_pb2
from ._proxy import BaseProxy, register
from ._watch import Watchable
from ._wire import value_field

# The dict requests' Value fields (statehub._wire): key 2, value 3; a null
# default (DictGetRequest.default = Value(), field 3).
_KEY, _VALUE, _NULL_DEFAULT = b"\x12", b"\x1a", b"\x1a\x00"

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

#: Entries per page when iterating.
ITER_PAGE = 1000


@register(value_pb2.DICT)
class DictProxy(Watchable, BaseProxy, Generic[K, V]):
    """A shared dict. Supports every method of Manager's DictProxy, plus
    atomic :meth:`increment`, :meth:`compare_and_set` and :meth:`get_and_set`,
    and entries that expire (:meth:`set` with a ``ttl``, :meth:`expire`,
    :meth:`ttl`).

    Safe to use from several threads and processes; each method is one atomic
    server operation. Compound expressions are not: ``d[k] += 1`` is a read
    and then a write, so use ``d.increment(k)``.
    """

    __slots__ = ()
    _service = "Dicts"

    # -- helpers ------------------------------------------------------------

    def _enc(self, obj: object) -> value_pb2.Value:
        return _codec.encode(obj, self._token.address, self._options)

    def _dec(self, value: value_pb2.Value) -> Any:
        return _codec.decode(value, self._token.address, self._options)

    def _items(self, *, keys_only: bool) -> Any:
        return self._call(
            "Items",
            dict_pb2.DictItemsRequest(
                name=self._token.name, keys_only=keys_only, columns=True
            ),
        )

    def _entries(self, *, keys_only: bool = False) -> list[tuple[Any, Any]]:
        response = self._items(keys_only=keys_only)
        if response.HasField("columns"):
            return _codec.decode_columns(response.columns, keys_only)
        return _codec.decode_entries(
            response.entries, self._token.address, self._options
        )

    # -- the mapping protocol -----------------------------------------------

    def __getitem__(self, key: K) -> V:
        reply = self._call_wire(
            "Get", dict_pb2.DictGetRequest, value_field(_KEY, key), key=key
        )
        if reply is None:
            return self._dec(self._get_reply(key).value)  # type: ignore[no-any-return]
        return _codec.reply_value(  # type: ignore[no-any-return]
            reply, dict_pb2.DictGetResponse, self._token.address, self._options
        )

    def _get_reply(self, key: K) -> Any:
        """The server's DictGetResponse for d[key] (KeyError if missing)."""
        return self._call(
            "Get",
            self._encoded(dict_pb2.DictGetRequest, value_field(_KEY, key))
            or dict_pb2.DictGetRequest(name=self._token.name, key=encode_key(key)),
            key=key,
        )

    def __setitem__(self, key: K, value: V) -> None:
        if (
            self._call_wire(
                "Set",
                dict_pb2.DictSetRequest,
                value_field(_KEY, key),
                value_field(_VALUE, value),
            )
            is None
        ):
            self._call(
                "Set",
                dict_pb2.DictSetRequest(
                    name=self._token.name, key=encode_key(key), value=self._enc(value)
                ),
            )

    def __delitem__(self, key: K) -> None:
        self._call(
            "Delete",
            dict_pb2.DictDeleteRequest(name=self._token.name, key=encode_key(key)),
            key=key,
        )

    def __contains__(self, key: object) -> bool:
        response = self._call(
            "Contains",
            self._encoded(dict_pb2.DictContainsRequest, value_field(_KEY, key))
            or dict_pb2.DictContainsRequest(name=self._token.name, key=encode_key(key)),
        )
        return bool(response.contains)

    def __len__(self) -> int:
        response = self._call("Len", dict_pb2.DictLenRequest(name=self._token.name))
        return int(response.length)

    def __iter__(self) -> Iterator[K]:
        """An iterator over the keys that raises RuntimeError, as a dict's
        does, if the dict's size changes after ``iter(d)`` (see
        :class:`KeyIterator`); ``iter(d)`` itself is one round trip."""
        return KeyIterator(self)

    def _keys_page(
        self, cursor: int, limit: int, size_version: int
    ) -> dict_pb2.DictItemsResponse:
        """One page of keys from cursor; RuntimeError (RUNTIME_ERROR) if
        size_version is set and the dict's size has changed since."""
        return self._call(  # type: ignore[no-any-return]
            "Items",
            dict_pb2.DictItemsRequest(
                name=self._token.name,
                cursor=cursor,
                limit=limit,
                size_version=size_version,
                keys_only=True,
            ),
        )

    def __reversed__(self) -> Iterator[K]:
        """The keys in reverse insertion order, from one snapshot (CPython
        3.12+ proxies serve ``reversed(d)`` the same way)."""
        return reversed(self.keys())

    # -- dict methods -------------------------------------------------------

    def fromkeys(self, iterable: Iterable[Any], value: Any = None, /) -> dict[Any, Any]:
        """``dict.fromkeys(iterable, value)``: a new plain dict, as CPython's
        proxy returns (the shared dict is not changed)."""
        return dict.fromkeys(iterable, value)

    def keys(self) -> list[K]:
        """The keys, in insertion order, as a list (as Manager returns)."""
        return [k for k, _ in self._entries(keys_only=True)]

    def values(self) -> list[V]:
        """The values, in insertion order, as a list (as Manager returns)."""
        return [v for _, v in self._entries()]

    def items(self) -> list[tuple[K, V]]:
        """The (key, value) pairs, in insertion order, as a list."""
        return self._entries()

    def copy(self) -> dict[K, V]:
        """A plain dict with the current contents (one atomic snapshot)."""
        response = self._items(keys_only=False)
        if response.HasField("columns"):
            return _codec.columns_dict(response.columns)
        return dict(
            _codec.decode_entries(response.entries, self._token.address, self._options)
        )

    @overload
    def get(self, key: K, /) -> V | None: ...
    @overload
    def get(self, key: K, default: D, /) -> V | D: ...

    def get(self, key: K, default: Any = None, /) -> Any:
        """d[key] if key is in d, else default (the object passed, as dict does)."""
        # The server is sent a null default and says whether the key was
        # found, so the default never crosses the wire: a missing key returns
        # the very object given, and a proxy default takes no server hold.
        response = self._call(
            "Get",
            self._encoded(
                dict_pb2.DictGetRequest, value_field(_KEY, key), _NULL_DEFAULT
            )
            or dict_pb2.DictGetRequest(
                name=self._token.name, key=encode_key(key), default=value_pb2.Value()
            ),
        )
        if not response.found:
            return default
        return self._dec(response.value)

    def pop(self, key: K, default: Any = MISSING, /) -> Any:
        """Removes key and returns its value; default if missing and given,
        else KeyError."""
        request = dict_pb2.DictPopRequest(name=self._token.name, key=encode_key(key))
        if default is not MISSING:
            request.default.SetInParent()  # null: see get()
        response = self._call("Pop", request, key=key)
        if not response.found:
            return default
        return self._dec(response.value)

    def popitem(self) -> tuple[K, V]:
        """Removes and returns the last inserted (key, value); KeyError if empty."""
        response = self._call(
            "PopItem", dict_pb2.DictPopItemRequest(name=self._token.name)
        )
        pair = _codec.decode_many(
            (response.key, response.value), self._token.address, self._options
        )
        return (pair[0], pair[1])

    def setdefault(self, key: K, default: Any = None, /) -> Any:
        """d[key], first setting it to default if missing (atomically)."""
        response = self._call(
            "SetDefault",
            dict_pb2.DictSetDefaultRequest(
                name=self._token.name, key=encode_key(key), default=self._enc(default)
            ),
        )
        return self._dec(response.value)

    def update(self, other: Any = (), /, **kwargs: V) -> None:
        """Sets every entry of other (a mapping or (key, value) pairs) and
        then of kwargs, in one atomic operation."""
        request = dict_pb2.DictUpdateRequest(name=self._token.name)
        # dict() applies Python's rules (a mapping or pairs, later duplicates
        # win, first spelling of a key kept) and raises Python's errors; the
        # server then sets the entries in one operation.
        entries = dict(_plain(other), **kwargs)
        if not _codec.encode_columns(entries, request.columns):
            _codec.encode_entries(
                entries.items(), request.entries, self._token.address, self._options
            )
        self._call("Update", request)

    def clear(self) -> None:
        """Removes every entry."""
        self._call("Clear", dict_pb2.DictClearRequest(name=self._token.name))

    def __or__(self, other: Any) -> dict[Any, Any]:
        if not isinstance(other, (Mapping, DictProxy)):
            return NotImplemented
        merged = self.copy()
        merged.update(_plain(other))
        return merged

    def __ror__(self, other: Any) -> dict[Any, Any]:
        if not isinstance(other, (Mapping, DictProxy)):
            return NotImplemented
        merged = dict(_plain(other))
        merged.update(self.copy())
        return merged

    def __ior__(self, other: Any) -> DictProxy[K, V]:
        self.update(other)
        return self

    # -- atomic extras (statehub) -------------------------------------------

    def increment(self, key: K, delta: int | float = 1) -> Any:
        """Atomically adds delta to d[key] and returns the new value.

        A missing key counts as 0 (unlike ``d[k] += 1``). int + int stays an
        int (overflowing int64 is ValueError, leaving the value unchanged);
        a float either side gives a float. TypeError if d[key] is not a number.
        """
        response = self._call(
            "Increment",
            dict_pb2.DictIncrementRequest(
                name=self._token.name, key=encode_key(key), delta=self._enc(delta)
            ),
        )
        return self._dec(response.value)

    def compare_and_set(self, key: K, expected: Any, new: V) -> bool:
        """Atomically sets d[key] = new if d[key] == expected; returns whether
        it did. ``expected=statehub.MISSING`` means "only if key is missing"."""
        request = dict_pb2.DictCompareAndSetRequest(
            name=self._token.name, key=encode_key(key), desired=self._enc(new)
        )
        if expected is not MISSING:
            request.expected.CopyFrom(self._enc(expected))
        response = self._call("CompareAndSet", request)
        # Decoded for its side effect: a ref in it came with a server hold.
        self._dec(response.current)
        return bool(response.swapped)

    def get_and_set(self, key: K, value: V, default: Any = None) -> Any:
        """Atomically sets d[key] = value and returns the previous value, or
        default if the key was missing."""
        response = self._call(
            "GetAndSet",
            dict_pb2.DictGetAndSetRequest(
                name=self._token.name, key=encode_key(key), value=self._enc(value)
            ),
        )
        if not response.HasField("previous"):
            return default
        return self._dec(response.previous)

    # -- entries with a ttl (statehub) --------------------------------------

    def set(self, key: K, value: V, ttl: float | None = None) -> None:
        """Sets d[key] = value. With ``ttl`` (seconds) the entry expires that
        long from now and is never returned after; without it, any ttl the
        key had is cleared, as ``d[key] = value`` clears it.

        ValueError unless ``ttl`` is a finite number of seconds > 0 and at
        most 100 years; TypeError if it is not a number. Which other writes
        keep a ttl: docs/methods.md, "TTL".
        """
        if ttl is None:
            self[key] = value
            return
        self._call(
            "Set",
            dict_pb2.DictSetRequest(
                name=self._token.name,
                key=encode_key(key),
                value=self._enc(value),
                ttl_seconds=_seconds(ttl),
            ),
        )

    def expire(self, key: K, seconds: float) -> bool:
        """Makes the entry under ``key`` expire ``seconds`` from now (its
        value and place stay; a ttl it had is replaced). Returns True, or
        False if ``key`` is missing (then nothing changes). ValueError and
        TypeError for a bad ``seconds``, as :meth:`set`'s ``ttl``."""
        response = self._call(
            "Expire",
            dict_pb2.DictExpireRequest(
                name=self._token.name, key=encode_key(key), seconds=_seconds(seconds)
            ),
        )
        return bool(response.existed)

    def ttl(self, key: K) -> float | None:
        """The seconds left before the entry under ``key`` expires, or None
        if it has no ttl. KeyError if ``key`` is missing (or expired)."""
        response = self._call(
            "Ttl",
            dict_pb2.DictTtlRequest(name=self._token.name, key=encode_key(key)),
            key=key,
        )
        if not response.HasField("seconds"):
            return None
        return float(response.seconds)

    # -- Manager's extras ---------------------------------------------------

    def _getvalue(self) -> dict[K, V]:
        return self.copy()

    def _str(self) -> str:
        return repr(self.copy())


MutableMapping.register(DictProxy)


class KeyIterator(Generic[K]):
    """A dict's key iterator over a shared dict (issue 14).

    ``iter(d)`` records the dict's size version (it changes whenever the
    number of entries does). The first ``next()`` reads the first page of
    :data:`ITER_PAGE` keys, later pages are read as they are needed, and a
    ``next()`` after the last key checks once more; each of these calls
    fails with RuntimeError ("dictionary changed size during iteration") if
    the size has changed since ``iter(d)``, as a dict's iterator does, even
    before the first key. So ``list(d)`` of up to ITER_PAGE keys is three
    round trips. Unlike a dict's, a change within a page is seen only at the
    next page; after a RuntimeError every ``next()`` raises it again, and
    after StopIteration every ``next()`` stops, as with a dict.
    """

    __slots__ = ("_cursor", "_dict", "_keys", "_size_version")

    def __init__(self, proxy: DictProxy[K, Any]) -> None:
        self._dict: DictProxy[K, Any] | None = proxy
        self._size_version = proxy._keys_page(0, 1, 0).size_version
        self._keys: collections.deque[K] = collections.deque()
        # Where the next page starts; None once the last page has been read.
        self._cursor: int | None = 0

    def __iter__(self) -> KeyIterator[K]:
        return self

    def __next__(self) -> K:
        proxy = self._dict
        if proxy is None:
            raise StopIteration
        while not self._keys:
            if self._cursor is None:
                # After the last key: one more check, as a dict notices a
                # size change made while its last key was being used.
                proxy._keys_page(0, 1, self._size_version)
                self._dict = None
                raise StopIteration
            page = proxy._keys_page(self._cursor, ITER_PAGE, self._size_version)
            self._keys.extend(
                _codec.decode_many(
                    (e.key for e in page.entries),
                    proxy._token.address,
                    proxy._options,
                )
            )
            self._cursor = page.next_cursor or None
        return self._keys.popleft()


def _seconds(ttl: object) -> float:
    """A ttl as the float the server checks (it refuses 0, negatives, NaN,
    infinities and more than 100 years with ValueError)."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(
            f"a ttl must be a number of seconds, not {type(ttl).__name__!r}"
        )
    try:
        return float(ttl)
    except OverflowError:
        raise ValueError(
            f"a ttl must be at most 100 years of seconds, not {ttl}"
        ) from None


def _plain(other: Any) -> Any:
    return other.copy() if isinstance(other, DictProxy) else other
