"""The near cache: a process's copy of what it has read of a shared dict,
value or namespace, kept correct by the server's pushed invalidations
(``m.dict(cache=True)``, ``m.named.dict(name, cache=True)``,
``m.Value(..., cache=True)``, ``statehub.cached(proxy)``; docs/watches.md,
"The near cache").

How it stays correct:

- A daemon thread watches the dict (a watch of its own, statehub._watch's
  stream); every change event drops the keys it names, and a ``clear``, a
  deletion or a broken watch drops everything. Until the watch has started,
  and while it is broken, nothing is cached: every read goes to the server.
- A read that misses registers a placeholder for its key before it asks the
  server. An invalidation of the key that arrives while the read is in
  flight spoils the placeholder, and the reply is then returned but not
  kept: a reply older than an invalidation is never cached (the race the
  Redis client-side caching docs describe).
- This process's own writes drop the key before they are sent and again
  when they are answered, so a thread's next read after its write goes to
  the server (read-your-writes).
- The cache holds at most ``max_entries`` keys (the oldest go first).
- A thread that reads the cache applies the events waiting on the watch's
  connection itself every :data:`_CATCH_UP_EVERY` lookups (lane only), so
  that an invalidation does not wait for the watch thread to get the GIL
  from a thread reading in a tight loop; and a process with a cache
  switches threads at least every :data:`SWITCH_INTERVAL` (0.2 ms, not
  CPython's 5 ms).

Only scalar values and plain containers of them are kept (a hit returns a
copy of a container, as Manager returns a fresh object each time); a value
holding a proxy is read from the server every time.

Thread safety: hits read a dict without a lock (atomic under the GIL);
misses, invalidations and flushes take the cache's lock.
"""

from __future__ import annotations

import copy
import functools
import os
import sys
import threading
import time
import weakref
from typing import Any, NamedTuple

from . import _codec, _metrics, errors
from ._cells import ValueProxy
from ._connection import connection_for
from ._dict import DictProxy
from ._namespace import NamespaceProxy
from ._proto import watch_pb2
from ._proxy import BaseProxy, Options, Token

#: Keys a cache keeps by default.
DEFAULT_MAX_ENTRIES = 100_000
#: The pause between attempts to watch again, at most.
_MAX_PAUSE = 1.0
#: The interpreter's thread switch interval while a cache runs, at most
#: (sys.setswitchinterval; CPython's default is 5 ms). A thread that reads
#: a cached dict in a loop holds the GIL; the cache's watch thread, woken by
#: an invalidation, gets it after at most this long.
SWITCH_INTERVAL = 0.0002
#: A thread that reads the cache looks for events waiting on the watch's
#: connection every this many lookups (a poll(2) each), and applies them
#: itself when they were waiting at the look before too and the watch
#: thread drained nothing since: it waits for the GIL the reader holds.
_CATCH_UP_EVERY = 32

_MISS: Any = object()
_ABSENT: Any = object()  # a key the server said is not there
_SCALARS = (int, float, str, bytes, bool, complex, type(None))

_caches: weakref.WeakSet[NearCache] = weakref.WeakSet()


def _cacheable(value: Any, depth: int = 0) -> bool:
    """Whether a value may be kept: scalars, and plain containers of them."""
    if isinstance(value, _SCALARS):
        return True
    if depth > 8 or isinstance(value, BaseProxy):
        return False
    if type(value) in (list, tuple, set, frozenset):
        return all(_cacheable(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(
            _cacheable(k, depth + 1) and _cacheable(v, depth + 1)
            for k, v in value.items()
        )
    return False


class _Placeholder:
    """A read in flight; ``valid`` is False once an invalidation spoilt
    it. Compared by identity."""

    __slots__ = ("sent", "valid")

    def __init__(self) -> None:
        self.valid = True
        self.sent = time.monotonic()  # before the read went out


class CacheInfo(NamedTuple):
    """A near cache's counters (``d.cache_info()``)."""

    hits: int
    misses: int
    invalidations: int
    size: int
    max_entries: int


class NearCache:
    """One process's cache of one shared dict."""

    def __init__(
        self, token: Token, options: Options, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.entries: dict[Any, Any] = {}
        # The kept entries that expire (a dict's entries with a ttl): when,
        # by time.monotonic(); never served from then on.
        self.deadlines: dict[Any, float] = {}
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.max_entries = max_entries
        self._token = token
        self._options = options
        self._lock = threading.Lock()
        # Reads in flight, by key.
        self._inflight: dict[Any, list[_Placeholder]] = {}
        self._live = False  # the watch runs: what is kept stays right
        self._closed = False
        self._running = False  # a thread runs the watch (or will again)
        self._stream: Any = None
        # The lane watch stream that a reading thread may drain itself
        # (_catch_up), and the lock that lets one thread at a time read it.
        self._drainable: Any = None
        self._drain_lock = threading.Lock()
        self._countdown = _CATCH_UP_EVERY
        self._drains = 0  # drains that applied something, by any thread
        # _drains when a reading thread last saw events waiting; None when
        # it saw none.
        self._stalled: int | None = None
        self._pid = 0
        _caches.add(self)
        self._start()

    # -- the watch ------------------------------------------------------------

    def _start(self) -> None:
        self._pid = os.getpid()
        self._running = True
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        threading.Thread(
            target=self._run,
            name=f"statehub-cache {self._token.name}",
            daemon=True,
        ).start()

    def _run(self) -> None:
        pause = 0.05
        request = watch_pb2.WatchRequest(name=self._token.name)
        pid = self._pid
        while pid == os.getpid() and not self.closed():
            try:
                conn = connection_for(self._token.address)
                stream = conn.open_watch(request)
            except errors.StatehubError:
                time.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE)
                continue
            with self._lock:
                self._stream = stream
            if self.closed():  # close() may have missed the stream
                stream.close()
                return
            try:
                self._follow(stream)
                pause = 0.05
            except errors.StatehubError:
                # Broken, too old, or the dict is gone: start over.
                time.sleep(pause)
                pause = min(pause * 2, _MAX_PAUSE)
            finally:
                stream.close()
                self._go_dark()
            if conn.closed:
                # The program closed the connection (close_all, the last
                # manager's shutdown): no new one from here; the next read
                # that misses starts the watch again.
                with self._lock:
                    self._running = False
                return

    def _follow(self, stream: Any) -> None:
        started = stream.next(None)
        if started is None or not started.started:
            return
        self.flush(live=True)
        if not hasattr(stream, "ready"):  # gRPC: a thread of its own reads
            while True:
                self._apply_all(stream.next(None))
        with self._lock:
            self._drainable = stream
        while True:
            # Waits without reading, so that a reading thread that finds
            # the events first applies them at once (_catch_up) instead of
            # waiting for this thread to get the GIL.
            stream.ready(None)
            with self._drain_lock:
                self._drain(stream)

    def _drain(self, stream: Any) -> None:
        """Applies every event that can be read without waiting."""
        if not stream.ready(0):
            return
        while True:
            self._apply_all(stream.next(None))
            if not stream.ready(0):
                break
        self._drains += 1

    def _catch_up(self) -> None:
        """From a reading thread, every few dozen lookups: applies the
        events that were already waiting at its last look, with the watch
        thread having drained nothing since (it waits for the GIL), unless
        the watch thread is at it now. Events the watch thread keeps up
        with (a reader that waits on the server between reads lets it run)
        are left to it: applying them here would only add their cost to
        the reads (a read-mostly load of 8 processes lost a quarter of its
        ops/s when every look applied what it found)."""
        self._countdown = _CATCH_UP_EVERY
        stream = self._drainable
        if stream is None or not stream.ready(0):
            self._stalled = None
            return
        if self._stalled != self._drains:  # first seen: the watch thread's
            self._stalled = self._drains
            return
        self._stalled = None
        if not self._drain_lock.acquire(blocking=False):
            return
        try:
            if stream is self._drainable:
                self._drain(stream)
        except Exception:  # whatever broke it, the read goes on
            # The watch thread finds the stream closed and starts over.
            stream.close()
            self._go_dark()
        finally:
            self._drain_lock.release()

    def _apply_all(self, response: Any) -> None:
        if response is not None:
            for event in response.events:
                self._apply(event.change)

    def _apply(self, record: Any) -> None:
        change = record.WhichOneof("change")
        if change == "entries_set":
            keys = [e.key for e in record.entries_set.entries]
        elif change == "entries_removed":
            keys = list(record.entries_removed.keys)
        else:  # a clear, a deletion, anything else: drop everything
            self.flush()
            return
        for key in keys:
            self.invalidate(
                _codec.decode(key, self._token.address, self._options)
            )

    def _go_dark(self) -> None:
        """The watch broke: nothing cached can be trusted until it runs again."""
        with self._lock:
            self._live = False
            self._stream = None
            self._drainable = None
            self._drop_all_locked()

    # -- entries ----------------------------------------------------------------

    def _drop_all_locked(self) -> None:
        self.entries.clear()
        self.deadlines.clear()
        for cells in self._inflight.values():
            for cell in cells:
                cell.valid = False

    def flush(self, *, live: bool | None = None) -> None:
        """Drops every entry and spoils every read in flight."""
        with self._lock:
            self._drop_all_locked()
            self.invalidations += 1
            if live is not None:
                self._live = live

    def invalidate(self, key: Any) -> None:
        """Drops ``key`` and spoils the reads of it in flight."""
        try:
            hash(key)
        except TypeError:
            return
        with self._lock:
            self.entries.pop(key, None)
            self.deadlines.pop(key, None)
            for cell in self._inflight.get(key, ()):
                cell.valid = False
            self.invalidations += 1

    def begin(self, key: Any) -> _Placeholder | None:
        """A placeholder for a read of ``key`` about to be sent; None when
        its reply must not be kept (no watch running, or not hashable)."""
        self.misses += 1
        if self._pid != os.getpid():
            self._after_fork()
        if not self._live:
            if not self._running:
                self._restart()
            return None
        try:
            hash(key)
        except TypeError:
            return None
        cell = _Placeholder()
        with self._lock:
            self._inflight.setdefault(key, []).append(cell)
        return cell

    def finish(
        self, key: Any, cell: _Placeholder | None, value: Any,
        ttl: float | None = None,
    ) -> None:
        """Keeps a read's reply unless an invalidation spoilt it; with
        ``ttl`` (the seconds the entry had left when the server answered)
        only until then, counted from when the read went out."""
        if cell is None:
            return
        with self._lock:
            cells = self._inflight.get(key)
            if cells is not None:
                cells.remove(cell)
                if not cells:
                    del self._inflight[key]
            if not (cell.valid and self._live):
                return
            if value is not _ABSENT and not _cacheable(value):
                return
            if not isinstance(value, _SCALARS) and value is not _ABSENT:
                value = copy.deepcopy(value)  # the caller may change its own
            entries = self.entries
            if key not in entries and len(entries) >= self.max_entries:
                oldest = next(iter(entries))
                del entries[oldest]
                self.deadlines.pop(oldest, None)
            entries[key] = value
            if ttl is not None:
                self.deadlines[key] = cell.sent + ttl
            elif self.deadlines:
                self.deadlines.pop(key, None)

    def lookup(self, key: Any) -> Any:
        """The kept value, _ABSENT, or _MISS."""
        if self._drainable is not None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._catch_up()
        try:
            value = self.entries.get(key, _MISS)
        except TypeError:  # unhashable: the server says why
            return _MISS
        if value is _MISS:
            return _MISS
        if self.deadlines and self._expired(key):
            return _MISS
        self.hits += 1
        if isinstance(value, _SCALARS) or value is _ABSENT:
            return value
        return copy.deepcopy(value)

    def _expired(self, key: Any) -> bool:
        """Drops ``key`` if its ttl ran out (by this process's clock)."""
        deadline = self.deadlines.get(key)
        if deadline is None or time.monotonic() < deadline:
            return False
        with self._lock:
            if self.deadlines.get(key) == deadline:
                del self.deadlines[key]
                self.entries.pop(key, None)
        return True

    def info(self) -> CacheInfo:
        return CacheInfo(
            self.hits, self.misses, self.invalidations, len(self.entries),
            self.max_entries,
        )

    def _restart(self) -> None:
        """Starts the watch again after its connection was closed."""
        with self._lock:
            if self._running or self._closed:
                return
            self._start()

    def _after_fork(self) -> None:
        """In a forked child: the parent's watch thread did not come along."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._live = False
            self._stream = None
            self._drainable = None
            self._drop_all_locked()
            self._inflight.clear()
            self._start()

    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._live = False
            self._drainable = None
            self._drop_all_locked()
            stream = self._stream
        if stream is not None:
            stream.close()


def _counters() -> list[tuple[str, int, int, int, int]]:
    return [
        (c._token.name, c.hits, c.misses, c.invalidations, len(c.entries))
        for c in list(_caches)
    ]


_metrics.cache_counters.append(_counters)


def _forget_in_child() -> None:
    for cache in list(_caches):
        # Only the forking thread came along: a lock the parent's watch
        # thread held stays held here, and the watch's socket is the
        # parent's (reading it would take the parent's events).
        cache._lock = threading.Lock()
        cache._drain_lock = threading.Lock()
        cache._drainable = None
        cache._stream = None
        cache.entries.clear()
        cache.deadlines.clear()
        cache._live = False


os.register_at_fork(after_in_child=_forget_in_child)


def read_through(
    cache: NearCache, key: Any, fetch: Any, absent: type[Exception]
) -> Any:
    """The value of ``fetch()`` served from ``cache`` under ``key``: a hit
    from memory, a miss from the server (kept unless spoilt). ``fetch``
    returns the value and the seconds it has left (None: no ttl);
    ``absent`` is the exception by which it says the key is not there
    (remembered too, and raised again by the server's own call, for its
    message)."""
    value = cache.lookup(key)
    if value is _MISS:
        cell = cache.begin(key)
        try:
            value, ttl = fetch()
        except absent:
            cache.finish(key, cell, _ABSENT)
            raise
        cache.finish(key, cell, value, ttl)
        return value
    if value is _ABSENT:
        return fetch()[0]
    return value


def _around(base: Any, before_after: Any) -> Any:
    """``base`` wrapped so that ``before_after(self, args)`` runs before it
    and after it, whatever it raises: a write drops what it changes from
    the cache when it is sent and again when it is answered."""

    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        before_after(self, args)
        try:
            return base(self, *args, **kwargs)
        finally:
            before_after(self, args)

    write.__name__ = getattr(base, "__name__", "write")
    write.__doc__ = base.__doc__
    return write


def _drop_key(self: Any, args: tuple[Any, ...]) -> None:
    self._near.invalidate(args[0])


def _drop_all(self: Any, args: tuple[Any, ...]) -> None:
    self._near.flush()


class _Cached:
    """What cached proxies share: their NearCache, started with the proxy,
    closed when it goes; its counters. First among the bases, so that its
    ``__init__`` wraps the proxy's."""

    __slots__ = ()
    _near: NearCache
    #: The keys kept when ``cache=True`` names no number.
    _entries_default = DEFAULT_MAX_ENTRIES

    def __init__(
        self,
        token: Token,
        options: Options,
        *,
        held: bool,
        max_entries: int | None = None,
    ) -> None:
        super().__init__(token, options, held=held)  # type: ignore[call-arg]
        if self._entries_default == 1 or max_entries is None:
            max_entries = self._entries_default
        cache = NearCache(token, options, max_entries)
        object.__setattr__(self, "_near", cache)
        weakref.finalize(self, cache.close)

    def cache_info(self) -> CacheInfo:
        """Hits, misses, invalidations and size of this process's cache."""
        return self._near.info()

    def cache_clear(self) -> None:
        """Drops what this process keeps (the next reads go to the server)."""
        self._near.flush()


class CachedDictProxy(_Cached, DictProxy[Any, Any]):
    """A DictProxy whose ``d[k]``, ``d.get(k)`` and ``k in d`` are served
    from this process's memory after the first read, and stay correct
    because the server pushes an invalidation when an entry changes
    (statehub._cache). Every other method is DictProxy's."""

    __slots__ = ("_near",)
    _manager_class = "DictProxy"

    def __getitem__(self, key: Any) -> Any:
        return read_through(self._near, key, lambda: self._timed_get(key), KeyError)

    def _timed_get(self, key: Any) -> tuple[Any, float | None]:
        reply = self._get_reply(key)
        ttl = reply.ttl_seconds if reply.HasField("ttl_seconds") else None
        return self._dec(reply.value), ttl

    def get(self, key: Any, default: Any = None, /) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISS) is not _MISS


for _name in (
    "__setitem__",
    "__delitem__",
    "pop",
    "setdefault",
    "increment",
    "compare_and_set",
    "get_and_set",
    "set",
    "expire",
):
    if hasattr(DictProxy, _name):
        setattr(CachedDictProxy, _name, _around(getattr(DictProxy, _name), _drop_key))
for _name in ("update", "clear", "popitem", "__ior__"):
    if hasattr(DictProxy, _name):
        setattr(CachedDictProxy, _name, _around(getattr(DictProxy, _name), _drop_all))


class CachedValueProxy(_Cached, ValueProxy[Any]):
    """A ValueProxy whose ``v.value`` and ``v.get()`` are served from this
    process's memory after the first read (statehub._cache)."""

    __slots__ = ("_near",)
    _manager_class = "ValueProxy"

    _entries_default = 1  # one value: nothing else to keep

    def get(self) -> Any:
        return read_through(
            self._near, None, lambda: (ValueProxy.get(self), None), LookupError
        )

    set = _around(ValueProxy.set, _drop_all)
    value = property(get, set, doc="The value (from memory once read).")
    increment = _around(ValueProxy.increment, _drop_all)
    compare_and_set = _around(ValueProxy.compare_and_set, _drop_all)
    get_and_set = _around(ValueProxy.get_and_set, _drop_all)


class CachedNamespaceProxy(_Cached, NamespaceProxy):
    """A NamespaceProxy whose attribute reads are served from this
    process's memory after the first (statehub._cache)."""

    __slots__ = ("_near",)
    _manager_class = "NamespaceProxy"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            return NamespaceProxy.__getattr__(self, name)
        return read_through(
            self._near,
            name,
            lambda: (NamespaceProxy.__getattr__(self, name), None),
            AttributeError,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            NamespaceProxy.__setattr__(self, name, value)
            return
        self._near.invalidate(name)
        try:
            NamespaceProxy.__setattr__(self, name, value)
        finally:
            self._near.invalidate(name)

    def __delattr__(self, name: str) -> None:
        if name.startswith("_"):
            NamespaceProxy.__delattr__(self, name)
            return
        self._near.invalidate(name)
        try:
            NamespaceProxy.__delattr__(self, name)
        finally:
            self._near.invalidate(name)


_CACHED: dict[type[BaseProxy], Any] = {
    DictProxy: CachedDictProxy,
    ValueProxy: CachedValueProxy,
    NamespaceProxy: CachedNamespaceProxy,
}


def cached_class(proxy_class: type[BaseProxy], cache: bool | int) -> Any:
    """The proxy class (or factory) for ``cache=``: None for False (the
    class registered for the type), else the cached class of
    ``proxy_class`` keeping at most ``cache`` keys (True: the default)."""
    if cache is False:
        return None
    if cache is not True and (
        isinstance(cache, bool) or not isinstance(cache, int) or cache < 1
    ):
        raise ValueError(
            f"cache must be True, False or a number of keys >= 1, not {cache!r}"
        )
    cls = _CACHED[proxy_class]
    if cache is True:
        return cls
    return functools.partial(cls, max_entries=cache)


def cached(proxy: Any, max_entries: int | None = None) -> Any:
    """A proxy of the same shared dict, value or namespace whose reads are
    served from this process's memory after the first, kept correct by the
    server's invalidations (docs/watches.md, "The near cache"). The way to
    cache a namespace, whose keyword arguments are its attributes."""
    for base, cls in _CACHED.items():
        if type(proxy) is base:
            token = proxy._token
            kwargs = {} if max_entries is None else {"max_entries": max_entries}
            return cls(token, proxy._options, held=token.anonymous, **kwargs)
        if type(proxy) is cls:
            return proxy
    raise TypeError(
        f"only dict, Value and Namespace proxies can be cached, not "
        f"{type(proxy).__name__}"
    )
