"""Functions that run in child processes (importable under spawn and
forkserver, which import them by module name)."""

from __future__ import annotations

import os
import time
from typing import Any

import statehub

INCREMENTS = 500


def fill(index: int, shared: Any, items: Any, counter: Any, nested: Any) -> None:
    """Real work on objects the parent created: a dict, a list, a counter
    and a list nested in a dict."""
    for _ in range(INCREMENTS):
        counter.increment("n")
    shared[index] = os.getpid()
    items.append(index)
    nested["sub"].append(index)


def pool_task(args: tuple[Any, int]) -> int:
    shared, index = args
    shared[f"task-{index}"] = index * index
    return shared.increment("tasks")


def hold_until_released(proxy: Any, started: Any, release: Any, done: Any) -> None:
    """Keeps a proxy alive until told, then uses it and ends."""
    started.set()
    release.wait(30)
    proxy["child"] = os.getpid()
    done.set()


def die_holding(proxy: Any, started: Any) -> None:
    """Uses a proxy, then dies without a goodbye."""
    proxy["dying"] = True
    started.set()
    time.sleep(60)


def use_named(address: str, name: str) -> None:
    m = statehub.Manager(address)
    m.named.dict(name).increment("children")
    m.shutdown()
