"""Dict entries with a ttl (docs/methods.md, "TTL"): ``d.set(k, v, ttl=s)``,
``d.expire(k, s)`` and ``d.ttl(k)`` on both transports, anonymous and named
dicts. What a user would check: the entry is gone after its ttl and never
returned by any read, ``ttl()`` counts down, a write without a ttl clears
it, bad ttls are clear errors, and with a data dir the expiry is a record
in the log and deadlines survive a restart.

Expiry is polled with a deadline, never timed: these tests hold on a slow
machine."""

from __future__ import annotations

import glob
import math
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import statehub
from statehub._cache import _MISS
from statehub._connection import close_all, connection_for
from statehub._proto import change_pb2, dict_pb2, value_pb2

from conftest import RunningServer, start_server, wait_until

FILE_HEADER = 28  # docs/storage-format.md
FRAME_HEADER = 20


@pytest.fixture(params=["manager", "grpc_manager"])
def m(request: pytest.FixtureRequest) -> statehub.SyncManager:
    """A manager on the shared server, over the lane and over gRPC."""
    manager: statehub.SyncManager = request.getfixturevalue(request.param)
    return manager


def gone(d: Any, key: Any) -> bool:
    """Waits (up to 10 s) for ``key`` to leave ``d``; whether it did."""
    return wait_until(lambda: key not in d)


def test_an_entry_is_gone_after_its_ttl(m: statehub.SyncManager) -> None:
    d = m.dict()
    d["stays"] = 1
    d.set("k", "v", ttl=0.2)
    assert gone(d, "k")
    assert d.get("k") is None
    with pytest.raises(KeyError) as caught:
        d["k"]
    assert caught.value.args == ("k",)
    assert len(d) == 1
    assert d.items() == [("stays", 1)]
    assert d.keys() == ["stays"] and d.values() == [1]
    assert list(d) == ["stays"] and d.copy() == {"stays": 1}


def test_expired_entries_are_never_returned_by_any_method(
    m: statehub.SyncManager,
) -> None:
    d = m.dict()
    d["live"] = 0
    for key in ("get", "pop", "sd", "cas", "inc", "gas", "exp", "ttl", "del"):
        d.set(key, "old", ttl=0.05)
    # Past every deadline; whether the server reclaimed them yet or not,
    # no call may see them.
    assert wait_until(lambda: len(d) == 1)
    assert d.get("get", "default") == "default"
    assert d.pop("pop", "default") == "default"
    assert d.setdefault("sd", "new") == "new"
    assert d.compare_and_set("cas", statehub.MISSING, "new")
    assert d.increment("inc") == 1
    assert d.get_and_set("gas", "new") is None
    assert d.expire("exp", 10) is False
    with pytest.raises(KeyError):
        d.ttl("ttl")
    with pytest.raises(KeyError):
        del d["del"]
    # The keys written again are new keys: at the end, in order.
    assert d.copy() == {"live": 0, "sd": "new", "cas": "new", "inc": 1, "gas": "new"}
    assert list(d) == ["live", "sd", "cas", "inc", "gas"]


def test_ttl_counts_down(m: statehub.SyncManager) -> None:
    d = m.dict()
    d.set("k", 1, ttl=100)
    first = d.ttl("k")
    assert first is not None and 0 < first <= 100
    time.sleep(0.05)
    second = d.ttl("k")
    assert second is not None and second < first


def test_ttl_is_none_without_one_and_keyerror_when_missing(
    m: statehub.SyncManager,
) -> None:
    d = m.dict({"k": 1})
    assert d.ttl("k") is None
    with pytest.raises(KeyError) as caught:
        d.ttl("missing")
    assert caught.value.args == ("missing",)


def test_a_write_without_a_ttl_clears_it_and_increment_keeps_it(
    m: statehub.SyncManager,
) -> None:
    d = m.dict()
    for key in ("setitem", "set", "update", "gas", "cas", "sd", "inc"):
        d.set(key, 1, ttl=100)
    d["setitem"] = 2
    d.set("set", 2)
    d.update({"update": 2})
    d.get_and_set("gas", 2)
    assert d.compare_and_set("cas", 1, 2)
    cleared = ("setitem", "set", "update", "gas", "cas")
    assert [d.ttl(k) for k in cleared] == [None] * len(cleared)
    # setdefault of a present key changes nothing; increment keeps the ttl
    # (a counter of a time window), as Redis's INCR does.
    assert d.setdefault("sd", 5) == 1
    assert d.increment("inc", 2) == 3
    assert all(0 < (d.ttl(k) or 0) <= 100 for k in ("sd", "inc"))
    # set with a ttl replaces one.
    d.set("sd", 1, ttl=5)
    assert 0 < (d.ttl("sd") or 0) <= 5


def test_expire_gives_an_existing_entry_a_ttl(m: statehub.SyncManager) -> None:
    d = m.dict({"k": "v", "after": 2})
    assert d.expire("missing", 10) is False
    assert "missing" not in d
    assert d.expire("k", 100) is True
    assert d.items() == [("k", "v"), ("after", 2)]  # value and place unchanged
    assert 0 < (d.ttl("k") or 0) <= 100
    assert d.expire("k", 0.2) is True
    assert gone(d, "k")
    assert d.copy() == {"after": 2}


@pytest.mark.parametrize(
    "ttl", [0, -1, -0.5, math.nan, math.inf, -math.inf, 1e12], ids=repr
)
def test_bad_ttls_are_value_errors_naming_dict_and_key(
    m: statehub.SyncManager, ttl: float
) -> None:
    d = m.dict({"k": 1})
    with pytest.raises(ValueError, match=r"dict \"_anon/.*\": key 'x': a ttl must"):
        d.set("x", 1, ttl=ttl)
    with pytest.raises(ValueError, match=r"key 'k': a ttl must"):
        d.expire("k", ttl)
    # Nothing changed.
    assert d.copy() == {"k": 1}
    assert d.ttl("k") is None


def test_a_ttl_must_be_a_number_and_at_most_a_century(
    m: statehub.SyncManager,
) -> None:
    d = m.dict({"k": 1})
    for wrong in ("1", True, [1]):
        with pytest.raises(TypeError, match="a ttl must be a number"):
            d.set("x", 1, ttl=wrong)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            d.expire("k", wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="100 years"):
        d.set("x", 1, ttl=10**400)
    # The cap itself is a ttl.
    d.set("x", 1, ttl=100 * 365.25 * 86400)
    assert (d.ttl("x") or 0) > 99 * 365 * 86400
    # ttl=None is a plain set.
    d.set("x", 2, ttl=None)
    assert d.ttl("x") is None and d["x"] == 2


def test_a_ttl_on_a_non_dict_is_a_type_error(m: statehub.SyncManager) -> None:
    items = m.list([1])
    request = dict_pb2.DictSetRequest(
        name=items._token.name,
        key=value_pb2.Value(string_value="k"),
        value=value_pb2.Value(int_value=1),
        ttl_seconds=5,
    )
    with pytest.raises(TypeError, match="list"):
        connection_for(items._token.address).call("Dicts", "Set", request)
    assert list(items) == [1]


def test_named_dicts_take_ttls_too(m: statehub.SyncManager) -> None:
    name = f"ttl/{uuid.uuid4().hex}"
    d = m.named.dict(name)
    d.set("k", 1, ttl=0.2)
    # Another proxy of the same dict sees the same entry and ttl.
    other = m.named.dict(name)
    assert 0 < (other.ttl("k") or 0.0) <= 0.2 or "k" not in other
    assert gone(other, "k")
    assert len(d) == 0
    m.named.delete(name)


def test_many_short_ttls_all_expire(m: statehub.SyncManager) -> None:
    d = m.dict()
    for i in range(500):
        d.set(i, i, ttl=0.05 + (i % 10) * 0.01)
    d["stays"] = True
    assert wait_until(lambda: len(d) == 1)
    assert d.copy() == {"stays": True}


# -- watches and the near cache -------------------------------------------------


def test_an_expiry_is_a_watch_event_of_the_server(m: statehub.SyncManager) -> None:
    d = m.dict()
    with d.watch() as watch:
        d.set("k", "v", ttl=0.2)
        d.expire("k", 0.2)  # a new ttl: the entry's value again
        events = []
        while len(events) < 3:
            event = watch.next(10)
            assert event is not None, f"only {events}"
            events.append(event)
    assert [(e.op, e.key, e.value) for e in events] == [
        ("set", "k", "v"),
        ("set", "k", "v"),
        ("expire", "k", None),
    ]
    assert events[0].session and events[2].session == ""  # the server's own
    assert events[0].revision < events[1].revision < events[2].revision


def _cached_live(m: statehub.SyncManager) -> Any:
    d = m.dict(cache=True)
    d["_warm"] = 0
    assert wait_until(lambda: (d.get("_warm"), d.cache_info().size > 0)[1])
    return d


def _kept(d: Any, key: Any) -> bool:
    """Reads ``key`` until the cache keeps it (the write's own invalidation
    may come after the first read); whether it did within 10 s."""
    return wait_until(lambda: (d.get(key), key in d._near.entries)[1])


def test_a_cached_entry_is_not_served_past_its_ttl(m: statehub.SyncManager) -> None:
    d = _cached_live(m)
    d.set("k", "v", ttl=1)
    assert _kept(d, "k")
    near = d._near
    assert d["k"] == "v"  # from memory, with the entry's deadline
    assert "k" in near.deadlines
    started = time.monotonic()
    assert near.deadlines["k"] <= started + 1
    # The kept copy's deadline is at or before the server's: past it, the
    # copy is dropped by this process's own clock, before the server's
    # expiry (and its invalidation) can have come.
    deadline = near.deadlines["k"]
    while time.monotonic() < deadline:
        time.sleep(0.001)
    assert near.lookup("k") is _MISS
    assert "k" not in near.entries
    assert gone(d, "k")
    assert d.get("k") is None


def test_a_write_without_a_ttl_keeps_the_cached_entry_for_good(
    m: statehub.SyncManager,
) -> None:
    d = _cached_live(m)
    d.set("k", 1, ttl=60)
    assert _kept(d, "k")
    assert "k" in d._near.deadlines
    d["k"] = 2  # clears the ttl
    assert d["k"] == 2
    assert _kept(d, "k")
    assert d["k"] == 2 and "k" not in d._near.deadlines
    assert d.ttl("k") is None


def test_expire_drops_the_cached_copy(m: statehub.SyncManager) -> None:
    d = _cached_live(m)
    d["k"] = 1
    assert _kept(d, "k")
    assert d.expire("k", 0.2)
    assert gone(d, "k")


# -- with a data dir: the log and restarts ------------------------------------


class DurableServer:
    """A server on a data dir that a test kills and starts again."""

    def __init__(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="statehub-ttl-")
        self.flags = (f"--data_dir={self.data_dir}", "--fsync=always")
        self.server: RunningServer = start_server(*self.flags)

    def kill(self) -> None:
        self.server.kill()

    def start(self) -> None:
        self.server = start_server(*self.flags, directory=self.server.directory)

    def records(self) -> list[change_pb2.ChangeRecord]:
        """Every record of the log's segments, in order (the format of
        docs/storage-format.md; checksums are the storage tests' concern)."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.data_dir, "log-*.log"))):
            with open(path, "rb") as f:
                data = f.read()
            at = FILE_HEADER
            while at + FRAME_HEADER <= len(data):
                _, length, _, _ = struct.unpack_from("<IIQI", data, at)
                record = change_pb2.ChangeRecord()
                record.ParseFromString(
                    data[at + FRAME_HEADER : at + FRAME_HEADER + length]
                )
                out.append(record)
                at += FRAME_HEADER + length
        return out

    def expired(self, name: str) -> list[change_pb2.ChangeRecord]:
        return [
            r
            for r in self.records()
            if r.object == name and r.entries_removed.expired
        ]


@pytest.fixture
def durable() -> Iterator[DurableServer]:
    running = DurableServer()
    yield running
    close_all()
    running.server.stop()
    shutil.rmtree(running.data_dir, ignore_errors=True)


def test_an_expiry_is_a_record_of_the_server_in_the_log(
    durable: DurableServer,
) -> None:
    d = statehub.Manager(durable.server.unix).named.dict("jobs")
    d.set("soon", 1, ttl=0.2)
    d["plain"] = 2
    assert gone(d, "soon")
    assert wait_until(lambda: durable.expired("jobs"))
    [record] = durable.expired("jobs")
    assert record.session == 0  # the server's own change
    assert [k.string_value for k in record.entries_removed.keys] == ["soon"]
    # The set that gave it the ttl recorded its absolute deadline.
    [setting] = [
        r
        for r in durable.records()
        if r.object == "jobs"
        and any(e.key.string_value == "soon" for e in r.entries_set.entries)
    ]
    assert abs(setting.entries_set.deadlines[0] / 1e6 - time.time()) < 60


def test_deadlines_survive_a_restart_and_expire_while_down(
    durable: DurableServer,
) -> None:
    d = statehub.Manager(durable.server.unix).named.dict("jobs")
    d.set("soon", 1, ttl=0.5)
    d.set("later", 2, ttl=3600)
    d["plain"] = 3
    before = d.ttl("later")
    assert before is not None
    durable.kill()
    time.sleep(0.7)  # past "soon"'s deadline while the server is down
    durable.start()
    # The deadline is absolute: "later" did not start over.
    after = d.ttl("later")
    assert after is not None and 3500 < after < before
    assert d.ttl("plain") is None
    assert "soon" not in d and d.copy() == {"later": 2, "plain": 3}
    # Its expiry, right after the start, is in the log: a second restart
    # does not bring it back.
    assert wait_until(lambda: durable.expired("jobs"))
    durable.kill()
    durable.start()
    assert d.copy() == {"later": 2, "plain": 3}
