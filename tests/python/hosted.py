"""Classes registered on managers, and what child processes do with their
proxies (importable under spawn and forkserver, which import them by module
name). Used by test_register.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import statehub
from statehub.managers import BaseManager, BaseProxy


class FooBar:
    """CPython's _TestMyManager.FooBar: a public method, one that raises,
    and a private one."""

    def f(self) -> str:
        return "f()"

    def g(self) -> None:
        raise ValueError("g() raises")

    def _h(self) -> str:
        return "_h()"


def baz() -> Iterator[int]:
    yield from (i * i for i in range(10))


class IteratorProxy(BaseProxy):
    _exposed_ = ("__next__",)

    def __iter__(self) -> IteratorProxy:
        return self

    def __next__(self) -> Any:
        return self._callmethod("__next__")


class Counter:
    """A stateful object: the count lives in the Python host."""

    def __init__(self, start: int = 0) -> None:
        self.count = start

    def add(self, n: int = 1) -> int:
        self.count += n
        return self.count

    def pid(self) -> int:
        return os.getpid()


class Maker:
    """Makes objects of another registered type (method_to_typeid)."""

    def counter(self, start: int) -> Counter:
        return Counter(start)

    def plain(self, start: int) -> Counter:
        return Counter(start)


class Holder:
    """Keeps one item: a statehub proxy, say."""

    def __init__(self) -> None:
        self.item: Any = None

    def put(self, item: Any) -> None:
        self.item = item

    def get(self) -> Any:
        return self.item


class MyManager(statehub.SyncManager):
    """statehub's SyncManager with types of its own."""


MyManager.register("Foo", callable=FooBar)
MyManager.register("Bar", callable=FooBar, exposed=("f", "_h"))
MyManager.register("baz", callable=baz, proxytype=IteratorProxy)
MyManager.register("Counter", Counter)
MyManager.register("CounterOnly", create_method=False)
MyManager.register("Maker", Maker, method_to_typeid={"counter": "CounterOnly"})
MyManager.register("Holder", Holder)


class OtherManager(statehub.SyncManager):
    """A sibling subclass that registers nothing."""


class QueueManager(BaseManager):
    """statehub.managers.BaseManager, serving one queue."""


def get_queue() -> Any:
    import queue

    global _queue
    if _queue is None:
        _queue = queue.Queue()
    return _queue


_queue: Any = None
QueueManager.register("get_queue", callable=get_queue)


class QueueClient(BaseManager):
    """Knows the queue's typeid only, as the remote recipe's clients do."""


QueueClient.register("get_queue")


# -- what child processes do ---------------------------------------------------


def use_hosted(counter: Any, foo: Any, results: Any) -> None:
    """Uses proxies of Python-hosted objects passed by the parent."""
    results["add"] = counter.add(10)
    results["f"] = foo.f()
    try:
        foo.g()
    except ValueError as e:
        results["g"] = str(e)
    results["host"] = counter.pid()


def use_hosted_from_dict(shared: Any) -> None:
    """Reads a hosted object's proxy out of a statehub dict and uses it."""
    shared["added"] = shared["counter"].add(5)


def square(x: int) -> int:
    return x * x


def worker_pid(_: object) -> int:
    return os.getpid()


def use_pool(pool: Any, results: Any) -> None:
    """Runs tasks on the parent's pool: methods that return values, and
    those that return proxies (AsyncResult, Iterator)."""
    results["map"] = pool.map(square, range(4))
    results["apply"] = pool.apply(square, (5,))
    results["apply_async"] = pool.apply_async(square, (6,)).get(30)
    results["map_async"] = pool.map_async(square, [7]).get(30)
    results["imap"] = list(pool.imap(square, [8, 9]))


def put_through_remote(address: Any, authkey: bytes, item: Any) -> None:
    """Connects to a BaseManager by address, as another host would."""
    manager = QueueClient(address=address, authkey=authkey)
    manager.connect()
    manager.get_queue().put(item)
