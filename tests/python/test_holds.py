"""Reference counting of anonymous objects: every read that returns a ref
comes with a server hold, and the proxy made from it gives that hold back
when it is garbage collected, so counts always return to their start."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pytest
import statehub

from conftest import wait_until

READS: list[tuple[str, Callable[[Any, Any], Any]]] = [
    ("dict get", lambda s, target: s["d"]["k"]),
    ("dict get default", lambda s, target: s["d"].get("missing", target)),
    ("dict values", lambda s, target: s["d"].values()),
    ("dict items", lambda s, target: s["d"].items()),
    ("dict copy", lambda s, target: s["d"].copy()),
    ("dict setdefault existing", lambda s, target: s["d"].setdefault("k", 0)),
    ("dict pop default", lambda s, target: s["d"].pop("missing", target)),
    ("dict compare_and_set", lambda s, target: s["d"].compare_and_set("k", 0, 0)),
    ("dict get_and_set", lambda s, target: s["d"].get_and_set("k2", target)),
    ("dict str", lambda s, target: str(s["d"])),
    ("list get", lambda s, target: s["l"][0]),
    ("list slice", lambda s, target: s["l"][:]),
    ("list iter", lambda s, target: list(s["l"])),
    ("list reversed", lambda s, target: list(reversed(s["l"]))),
    ("list pop and put back", lambda s, target: s["l"].append(s["l"].pop())),
    ("namespace get", lambda s, target: s["ns"].a),
    ("namespace vars", lambda s, target: vars(s["ns"])),
    ("value get", lambda s, target: s["v"].value),
    ("value compare_and_set", lambda s, target: s["v"].compare_and_set(target, target)),
    ("value get_and_set", lambda s, target: s["v"].get_and_set(target)),
]


@pytest.mark.parametrize(("label", "read"), READS, ids=[r[0] for r in READS])
def test_reads_of_refs_balance_their_holds(
    manager: statehub.SyncManager, label: str, read: Callable[[Any, Any], Any]
) -> None:
    target = manager.list([1])
    containers = {
        "d": manager.dict(k=target),
        "l": manager.list([target]),
        "ns": manager.Namespace(a=target),
        "v": manager.Value("x", target),
    }
    start = manager.describe(target)
    result = read(containers, target)
    del result
    gc.collect()
    assert wait_until(lambda: manager.describe(target).holders == start.holders), label
    assert target[0] == 1


def test_nested_proxies_like_managers(manager: statehub.SyncManager) -> None:
    outer = manager.dict()
    outer["inner"] = manager.list()
    outer["inner"].append(1)  # the nested proxy writes through
    outer["inner"] += [2]
    assert outer["inner"][:] == [1, 2]
    assert type(outer["inner"]) is statehub.ListProxy
    outer["ns"] = manager.Namespace(x=1)
    outer["ns"].y = 2
    assert str(outer["ns"]) == "Namespace(x=1, y=2)"
    snapshot = outer.copy()
    assert isinstance(snapshot["inner"], statehub.ListProxy)
    assert str(outer).startswith("{'inner': <ListProxy object, typeid 'list' at 0x")
