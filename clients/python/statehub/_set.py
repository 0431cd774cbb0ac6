"""SetProxy: a shared set (``SyncManager.set()``, new in CPython 3.14).

A statehub set is a shared dict whose keys are the members (each mapped to
None), so C++ and other clients see it as a dict of its members. Each of
add, discard, remove, pop, clear and update is one atomic server operation;
the other in-place updates (``intersection_update``, ``difference_update``,
``symmetric_difference_update`` and ``&=``, ``-=``, ``^=``) read the members
and then add or remove them one at a time. Operators that make a new set
(``|``, ``&``, ``-``, ``^``, ``union()``, ...) and comparisons work on one
snapshot of the members and return plain sets, as CPython's proxy does.

A set proxy pickles as a set proxy; one read back from inside another shared
object is a :class:`~statehub.DictProxy` of the same members.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, MutableSet
from typing import Any, Generic, TypeVar

from ._dict import DictProxy
from ._proxy import BaseProxy, Options, Token
from ._watch import Watchable

T = TypeVar("T")


class SetProxy(Watchable, BaseProxy, Generic[T]):
    """A shared set: every method and operator of ``set``, as CPython 3.14's
    ``SetProxy`` has them (see the module for which are atomic)."""

    __slots__ = ("_members",)
    _service = "Dicts"
    _members: DictProxy[T, None]

    def __init__(self, token: Token, options: Options, *, held: bool) -> None:
        super().__init__(token, options, held=held)
        # The members, as the keys of the dict; this proxy holds the object.
        object.__setattr__(self, "_members", DictProxy(token, options, held=False))

    # -- one server operation each -----------------------------------------

    def add(self, element: T) -> None:
        self._members[element] = None

    def discard(self, element: T) -> None:
        self._members.pop(element, None)

    def remove(self, element: T) -> None:
        del self._members[element]

    def pop(self) -> T:
        try:
            return self._members.popitem()[0]
        except KeyError:
            raise KeyError("pop from an empty set") from None

    def clear(self) -> None:
        self._members.clear()

    def update(self, *others: Iterable[T]) -> None:
        self._members.update(dict.fromkeys(itertools.chain(*others)))

    def __contains__(self, element: object) -> bool:
        return element in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[T]:
        return iter(self._members.keys())

    def copy(self) -> set[T]:
        """A plain set of the members (one snapshot)."""
        return set(self._members.keys())

    _getvalue = copy

    def _snapshot(self) -> Any:
        # A set has the reflected operators that typeshed leaves out.
        return self.copy()

    # -- read, then change member by member --------------------------------

    def difference_update(self, *others: Iterable[Any]) -> None:
        for element in set(itertools.chain(*others)):
            self.discard(element)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        members = self.copy()
        for element in members - members.intersection(*others):
            self.discard(element)

    def symmetric_difference_update(self, other: Iterable[T]) -> None:
        members = self.copy()
        for element in set(other):
            if element in members:
                self.discard(element)
            else:
                self.add(element)

    # -- on a snapshot, returning plain sets -------------------------------

    def union(self, *others: Iterable[T]) -> set[T]:
        return self.copy().union(*others)

    def intersection(self, *others: Iterable[Any]) -> set[T]:
        return self.copy().intersection(*others)

    def difference(self, *others: Iterable[Any]) -> set[T]:
        return self.copy().difference(*others)

    def symmetric_difference(self, other: Iterable[T]) -> set[T]:
        return self.copy().symmetric_difference(other)

    def isdisjoint(self, other: Iterable[Any]) -> bool:
        return self.copy().isdisjoint(other)

    def issubset(self, other: Iterable[Any]) -> bool:
        return self.copy().issubset(other)

    def issuperset(self, other: Iterable[Any]) -> bool:
        return self.copy().issuperset(other)

    def __or__(self, other: Any) -> Any:
        return self.copy().__or__(_plain(other))

    def __ror__(self, other: Any) -> Any:
        return self._snapshot().__ror__(_plain(other))

    def __and__(self, other: Any) -> Any:
        return self.copy().__and__(_plain(other))

    def __rand__(self, other: Any) -> Any:
        return self._snapshot().__rand__(_plain(other))

    def __sub__(self, other: Any) -> Any:
        return self.copy().__sub__(_plain(other))

    def __rsub__(self, other: Any) -> Any:
        return self._snapshot().__rsub__(_plain(other))

    def __xor__(self, other: Any) -> Any:
        return self.copy().__xor__(_plain(other))

    def __rxor__(self, other: Any) -> Any:
        return self._snapshot().__rxor__(_plain(other))

    def __le__(self, other: Any) -> Any:
        return self.copy().__le__(_plain(other))

    def __lt__(self, other: Any) -> Any:
        return self.copy().__lt__(_plain(other))

    def __ge__(self, other: Any) -> Any:
        return self.copy().__ge__(_plain(other))

    def __gt__(self, other: Any) -> Any:
        return self.copy().__gt__(_plain(other))

    # In place: the proxy itself is the result, as with CPython's.
    def __ior__(self, other: Any) -> Any:
        other = _plain(other)
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        self.update(other)
        return self

    def __iand__(self, other: Any) -> Any:
        other = _plain(other)
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        self.intersection_update(other)
        return self

    def __isub__(self, other: Any) -> Any:
        other = _plain(other)
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        self.difference_update(other)
        return self

    def __ixor__(self, other: Any) -> Any:
        other = _plain(other)
        if not isinstance(other, (set, frozenset)):
            return NotImplemented
        self.symmetric_difference_update(other)
        return self

    def __repr__(self) -> str:
        return f"<SetProxy object, typeid 'set' at {id(self):#x}>"

    def _str(self) -> str:
        return repr(self.copy())


MutableSet.register(SetProxy)


def _plain(other: Any) -> Any:
    """Another set proxy as a plain set; anything else as it is (so that
    set's own operators return NotImplemented where they would)."""
    return other.copy() if isinstance(other, SetProxy) else other

