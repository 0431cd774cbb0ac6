"""Lock, RLock and Condition proxies in one process (threads): Manager's
behaviour, timeouts, fencing tokens, cancellation by Ctrl-C, errors."""

from __future__ import annotations

import _thread
import pickle
import threading
import time
from typing import Any

import pytest
import statehub

from conftest import wait_until

# The server answers a timed-out wait no earlier than the timeout; the
# tolerance only absorbs clock granularity between the two processes.
EARLY = 0.005


def test_lock_acquire_release_like_threading(manager: statehub.SyncManager) -> None:
    lock = manager.Lock()
    assert isinstance(lock, statehub.AcquirerProxy)
    assert repr(lock).startswith("<AcquirerProxy object, typeid 'Lock' at 0x")
    assert lock.acquire() is True
    assert lock.locked()
    assert lock.acquire(False) is False
    lock.release()
    assert not lock.locked()
    with lock as entered:
        assert entered is True
        assert lock.locked()
    assert not lock.locked()


def test_lock_may_be_released_by_another_thread(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    lock.acquire()
    releaser = threading.Thread(target=lock.release)
    releaser.start()
    releaser.join()
    assert not lock.locked()


def test_release_of_an_unheld_lock_is_runtime_error(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    with pytest.raises(RuntimeError, match="release unlocked lock") as caught:
        lock.release()
    assert isinstance(caught.value, statehub.StatehubRuntimeError)
    assert caught.value.kind == "RUNTIME_ERROR"
    rlock = manager.RLock()
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        rlock.release()


def test_rlock_is_reentrant_and_owned_by_its_thread(
    manager: statehub.SyncManager,
) -> None:
    rlock = manager.RLock()
    assert repr(rlock).startswith("<AcquirerProxy object, typeid 'RLock'")
    with rlock, rlock:
        assert rlock.state().recursion == 2
        assert rlock.fencing_token > 0
        outcome: list[object] = []

        def other() -> None:
            outcome.append(rlock.acquire(timeout=0.05))
            try:
                rlock.release()
            except RuntimeError as e:
                outcome.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert outcome[0] is False
        assert isinstance(outcome[1], RuntimeError)
    assert not rlock.locked()


def test_timed_out_acquire_returns_false_not_before_the_timeout(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    lock.acquire()
    started = time.monotonic()
    assert lock.acquire(timeout=0.3) is False
    assert time.monotonic() - started >= 0.3 - EARLY
    assert lock.acquire(True, 0) is False
    lock.release()


def test_timeouts_are_checked_as_threading_does(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    with pytest.raises(ValueError, match="non-negative"):
        lock.acquire(timeout=-2)
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(False, 1)
    assert lock.acquire(True, -1) is True  # -1 is "forever", as in threading
    lock.release()
    cond = manager.Condition()
    with cond:
        assert cond.wait(-1) is False  # negative is 0, as in threading


def test_waiters_are_served_in_order(manager: statehub.SyncManager) -> None:
    lock = manager.Lock()
    lock.acquire()
    order: list[int] = []

    def waiter(i: int) -> None:
        with lock:
            order.append(i)

    threads = []
    for i in range(3):
        t = threading.Thread(target=waiter, args=(i,), name=f"waiter-{i}")
        t.start()
        threads.append(t)
        assert wait_until(lambda n=i: len(lock.state().waiters) == n + 1)
    labels = [w.label for w in lock.state().waiters]
    assert [label.rsplit(":", 1)[1] for label in labels] == [
        "waiter-0",
        "waiter-1",
        "waiter-2",
    ]
    lock.release()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2]


def test_fencing_tokens_grow_per_acquisition(manager: statehub.SyncManager) -> None:
    lock = manager.Lock()
    tokens = []
    for _ in range(3):
        with lock:
            tokens.append(lock.fencing_token)
            assert lock.owner_died is False
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    assert lock.state().holder is None


def test_ctrl_c_during_a_parked_acquire_cancels_it_on_the_server(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    lock.acquire()

    def interrupt_once_parked() -> None:
        if wait_until(lambda: len(lock.state().waiters) == 1):
            _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_parked)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            lock.acquire()  # no timeout: parked until interrupted
    finally:
        interrupter.join()
    # The cancelled waiter is gone, and a release does not hand it the lock.
    assert wait_until(lambda: lock.state().waiters == ())
    lock.release()
    assert not lock.locked()
    assert lock.acquire(False) is True
    lock.release()


def test_ctrl_c_during_a_condition_wait_reacquires_the_lock(
    manager: statehub.SyncManager,
) -> None:
    cond = manager.Condition(manager.Lock())
    ready = threading.Event()

    def interrupt_once_waiting() -> None:
        ready.wait(10)
        # The wait released the lock on the server: then it is parked.
        if wait_until(lambda: not cond.lock.locked()):
            _thread.interrupt_main()

    interrupter = threading.Thread(target=interrupt_once_waiting)
    interrupter.start()
    try:
        # As with threading.Condition, the interrupted wait reacquires the
        # lock, so leaving the `with` releases it instead of raising
        # RuntimeError over the KeyboardInterrupt.
        with pytest.raises(KeyboardInterrupt), cond:
            ready.set()
            cond.wait()
    finally:
        interrupter.join()
    assert not cond.lock.locked()
    with cond:
        cond.notify()  # no waiter left behind to wake


def test_condition_wait_and_notify(manager: statehub.SyncManager) -> None:
    cond = manager.Condition()
    assert repr(cond).startswith("<ConditionProxy object, typeid 'Condition'")
    items = manager.list()

    def producer() -> None:
        for i in range(3):
            with cond:
                items.append(i)
                cond.notify()

    t = threading.Thread(target=producer)
    with cond:
        t.start()
        assert cond.wait_for(lambda: len(items) == 3, 10) is True
    t.join()


def test_condition_wait_for_honours_its_deadline(
    manager: statehub.SyncManager,
) -> None:
    cond = manager.Condition(manager.Lock())
    calls = []

    def predicate() -> bool:
        calls.append(1)
        return False

    def notifier(stop: threading.Event) -> None:
        # Spurious wakeups: each sends wait_for round its loop again.
        while not stop.wait(0.05):
            with cond:
                cond.notify_all()

    stop = threading.Event()
    t = threading.Thread(target=notifier, args=(stop,))
    t.start()
    try:
        with cond:
            started = time.monotonic()
            assert cond.wait_for(predicate, 0.4) is False
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        t.join()
    assert elapsed >= 0.4 - EARLY
    assert len(calls) >= 2


def test_condition_notify_all_wakes_every_waiter(
    manager: statehub.SyncManager,
) -> None:
    cond = manager.Condition()
    ready: list[int] = []
    woken: list[bool] = []

    def waiter() -> None:
        with cond:
            ready.append(1)
            woken.append(cond.wait(10))

    threads = [threading.Thread(target=waiter) for _ in range(3)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(ready) == 3)
    # Each waiter holds the lock from its append until its wait releases
    # it: once we hold it, all three are waiting.
    with cond:
        cond.notify_all()
    for t in threads:
        t.join(10)
    assert woken == [True, True, True]


def test_condition_needs_its_lock(manager: statehub.SyncManager) -> None:
    cond = manager.Condition()
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        cond.wait(0.1)
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        cond.notify()
    with pytest.raises(TypeError, match="shared Lock or RLock"):
        manager.Condition(threading.Lock())  # type: ignore[arg-type]


def test_condition_wait_reacquires_with_a_new_token(
    manager: statehub.SyncManager,
) -> None:
    lock = manager.Lock()
    cond = manager.Condition(lock)
    with cond:
        first = lock.fencing_token
        assert cond.wait(0.05) is False
        assert lock.locked()
        assert lock.fencing_token > first


def test_named_locks_and_conditions_are_shared_by_name(
    manager: statehub.SyncManager,
) -> None:
    try:
        a = manager.named.Lock("test-locks-named")
        b = manager.named.Lock("test-locks-named")
        a.acquire()
        assert b.acquire(False) is False
        b.release()  # any caller may release a Lock
        c1 = manager.named.Condition("test-locks-cond")
        c2 = manager.named.Condition("test-locks-cond")
        assert c1.lock._token.name == c2.lock._token.name == "test-locks-cond/lock"
        with c1:
            assert c2.lock.locked()
        with pytest.raises(TypeError, match="cannot open as a"):
            manager.named.RLock("test-locks-named")
    finally:
        for name in ("test-locks-named", "test-locks-cond", "test-locks-cond/lock"):
            manager.named.delete(name)


def test_sync_proxies_pickle(manager: statehub.SyncManager) -> None:
    lock = manager.Lock()
    cond = manager.Condition(lock)
    clone = pickle.loads(pickle.dumps(cond))
    assert clone.lock._token == lock._token
    with clone:
        assert lock.locked()
    assert not lock.locked()


def test_locks_inside_shared_objects(manager: statehub.SyncManager) -> None:
    holder = manager.list([manager.Lock(), manager.RLock()])
    lock, rlock = holder[0], holder[1]
    assert isinstance(lock, statehub.LockProxy)
    with lock, rlock:
        assert holder[0].locked() and holder[1].locked()


def test_condition_read_back_from_a_dict_finds_its_lock(
    manager: statehub.SyncManager,
) -> None:
    condition = manager.Condition()
    shared = manager.dict(c=condition)
    again = shared["c"]
    with again:  # acquires the condition's own RLock, learnt from the server
        assert condition.lock.state().locked
        assert again.notify() is None  # RuntimeError unless the lock is held
    assert not condition.lock.state().locked
    assert again.lock._token.name == condition.lock._token.name


def test_named_condition_keeps_the_lock_it_was_created_with(
    manager: statehub.SyncManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = manager.named.Lock("cond-lock-a")
    second = manager.named.Lock("cond-lock-b")
    created = manager.named.Condition("cond-bound", first)
    reopened = manager.named.Condition("cond-bound", second)
    described: list[str] = []
    describe = statehub.ConditionProxy._describe

    def counted(self: statehub.ConditionProxy, name: str) -> Any:
        described.append(name)
        return describe(self, name)

    monkeypatch.setattr(statehub.ConditionProxy, "_describe", counted)
    assert reopened.lock._token.name == created.lock._token.name == "cond-lock-a"
    # The Open reply named the lock: only the lock is described (its type).
    assert described == ["cond-lock-a"]
