"""Runs one operation on a proxy and on the plain Python object it mirrors,
and checks both behave the same: equal results, or the same exception type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_VIEWS = (type({}.keys()), type({}.values()), type({}.items()))


def _normalize(value: Any) -> Any:
    # Manager's proxies return lists where a dict returns views, and plain
    # copies where a list returns iterators.
    if isinstance(value, _VIEWS):
        return list(value)
    if type(value).__name__ in ("list_reverseiterator", "list_iterator"):
        return list(value)
    return value


def check_same(
    op: Callable[[Any], Any], proxy: Any, plain: Any, label: str = ""
) -> Any:
    """Applies op to both; asserts equal results or matching exception types."""
    expected_error: BaseException | None = None
    expected: Any = None
    try:
        expected = _normalize(op(plain))
    except Exception as e:
        expected_error = e
    try:
        got = _normalize(op(proxy))
    except Exception as e:
        if expected_error is None:
            raise AssertionError(
                f"{label}: proxy raised {e!r}, Python returned {expected!r}"
            ) from e
        assert isinstance(e, type(expected_error)), (
            f"{label}: proxy raised {e!r}, Python raised {expected_error!r}"
        )
        return e
    assert expected_error is None, (
        f"{label}: proxy returned {got!r}, Python raised {expected_error!r}"
    )
    assert got == expected and type(got) is type(expected), (
        f"{label}: proxy gave {got!r}, Python gave {expected!r}"
    )
    return got
