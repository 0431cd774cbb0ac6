"""CPython's own Manager tests, run with statehub.Manager in place of
multiprocessing.Manager, and compared with multiprocessing (issue 14).

Lib/test/_test_multiprocessing.py tests Manager through its ``WithManager*``
classes: ManagerMixin makes ``cls.manager = multiprocessing.Manager()`` per
class, and every list, dict, Namespace, queue, lock, barrier and pool the
tests use comes from it. This module installs those classes into itself, as
test/test_multiprocessing_fork.py does (``install_tests_in_module_dict``,
only the "manager" type), and runs them for one start method in two passes,
each in a child process of its own: once as CPython ships them, once with
``multiprocessing.Manager`` replaced by ``statehub.Manager``. It prints each
test's outcome under both managers, then the tests statehub fails that
multiprocessing passes. Example::

    python tests/python/cpython_manager_suite.py fork
    python tests/python/cpython_manager_suite.py spawn --json out.json
    python tests/python/cpython_manager_suite.py forkserver -k Containers

TestSyncManagerTypes (as WithManagerTestSyncManagerTypes) starts a
SyncManager per test, which the statehub pass makes statehub's. The
MyManager, RemoteManager and ManagerRestart classes test BaseManager
subclasses of their own (MyManager, QueueManager, QueueManager2): the
statehub pass replaces them with the same subclasses of
statehub.managers.BaseManager, registered the same way, in this process and
in every child (it sets $STATEHUB_SUITE_PASS, which children inherit). The
statehub pass starts one private server per class, found as
statehub.Manager() finds it ($STATEHUB_SERVER, $PATH,
build/server/statehub-server).

Each pass runs under a watchdog: a test that runs past ``--test-timeout``
seconds, or whose process dies, is recorded as "timeout" or "crash"; its
pass is killed with its process group and run again from the next test. The
exit status is 1 when statehub fails a test that multiprocessing passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import statehub
import statehub.managers
import test._test_multiprocessing as cpython

MANAGERS = ("multiprocessing", "statehub")
START_METHODS = ("fork", "spawn", "forkserver")
#: Outcomes that count as passing.
PASSING = frozenset({"pass", "xfail"})

# The classes, for this process and for every child that unpickles a test's
# target by name (spawn and forkserver import this module as __mp_main__).
# They do not depend on the start method; setUpModule, which does, is
# installed again by run_pass() for the method asked for.
cpython.install_tests_in_module_dict(globals(), "fork", only_type="manager")


# -- one pass (a child process) -----------------------------------------------


class SuiteManager(statehub.SyncManager):
    """statehub's manager, plus the two debugging methods of BaseManager that
    ManagerMixin.tearDownClass calls (both private, so statehub.Manager has
    neither): the objects the server still has, read with Objects.List."""

    def _number_of_objects(self) -> int:
        return len(self.objects(include_anonymous=True))

    def _debug_info(self) -> str:
        return "\n".join(
            f"  {o.name} ({o.type}): holders={o.holders} referrers={o.referrers}"
            for o in self.objects(include_anonymous=True)
        )


class MyManager(statehub.managers.BaseManager):
    """CPython's _TestMyManager.MyManager on statehub's BaseManager."""


MyManager.register("Foo", callable=cpython.FooBar)
MyManager.register("Bar", callable=cpython.FooBar, exposed=("f", "_h"))
MyManager.register("baz", callable=cpython.baz, proxytype=cpython.IteratorProxy)


class QueueManager(statehub.managers.BaseManager):
    """CPython's _TestRemoteManager.QueueManager on statehub's BaseManager."""


QueueManager.register("get_queue", callable=cpython.get_queue)


class QueueManager2(statehub.managers.BaseManager):
    """CPython's QueueManager2: the same interface, no callable."""


QueueManager2.register("get_queue")

class WithManagerTestSyncManagerTypes(cpython.TestSyncManagerTypes):
    """CPython's TestSyncManagerTypes: every type, made by a SyncManager the
    test starts itself and used in a child (a lock or semaphore unit taken
    there and released here, a pool entered there). It is no WithManager*
    class, so it is installed here by hand; the statehub pass gives it
    statehub's SyncManager."""


#: Set in the statehub pass, for its children too.
PASS_ENV = "STATEHUB_SUITE_PASS"


def use_statehub_base_managers() -> None:
    """The statehub pass: CPython's tests find statehub's BaseManager
    subclasses under the names they use (module globals of
    test._test_multiprocessing)."""
    cpython.MyManager = MyManager  # type: ignore[misc]
    cpython.QueueManager = QueueManager  # type: ignore[misc]
    cpython.QueueManager2 = QueueManager2  # type: ignore[misc]


if os.environ.get(PASS_ENV) == "statehub":
    use_statehub_base_managers()


def statehub_manager() -> SuiteManager:
    """Stands in for multiprocessing.Manager() in the statehub pass."""
    manager = SuiteManager()
    manager.start()
    return manager


def test_classes() -> list[type[unittest.TestCase]]:
    """The WithManager* classes installed above, in name order."""
    return [
        value
        for name, value in sorted(globals().items())
        if name.startswith("WithManager")
        and isinstance(value, type)
        and issubclass(value, unittest.TestCase)
    ]


def test_id(test: unittest.TestCase) -> str:
    """``Class.test_method``; ``Class.setUpClass`` (and the like) for a
    fixture's error, ``setUpModule`` for the module's."""
    if isinstance(test, unittest.TestCase):
        return f"{type(test).__name__}.{test._testMethodName}"
    # unittest reports a fixture's failure as an _ErrorHolder whose id is
    # "setUpClass (module.Class)" or "setUpModule (module)".
    match = re.fullmatch(r"(\w+) \(([\w.]+)\)", test.id())
    if match is None:
        return test.id()
    fixture, where = match.groups()
    if fixture.endswith("Module"):
        return fixture
    return f"{where.rsplit('.', 1)[-1]}.{fixture}"


def all_test_ids(patterns: Iterable[str] = ()) -> list[str]:
    """Every test of the WithManager* classes whose id contains one of
    patterns (all of them when there are none)."""
    loader = unittest.TestLoader()
    ids = [
        f"{cls.__name__}.{name}"
        for cls in test_classes()
        for name in loader.getTestCaseNames(cls)
    ]
    patterns = list(patterns)
    return [i for i in ids if not patterns or any(p in i for p in patterns)]


class Recorder(unittest.TestResult):
    """Writes one JSON line per event to ``out``: ``{"start": id}`` when a
    test starts, then ``{"test": id, "outcome": ..., "detail": ...,
    "seconds": ...}`` (also for a fixture's error or skip, without a start).
    The watchdog reads them as they come."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out
        self._started = 0.0
        # The first failed subtest of the running test: unittest reports no
        # outcome of the test itself then.
        self._subtest_failure: str | None = None
        self._ended = False

    def _write(self, record: dict[str, Any]) -> None:
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def _end(self, test: Any, outcome: str, detail: str = "") -> None:
        self._ended = True
        seconds = 0.0
        if isinstance(test, unittest.TestCase):  # not a fixture's error
            seconds = time.monotonic() - self._started
        self._write(
            {
                "test": test_id(test),
                "outcome": outcome,
                "detail": detail,
                "seconds": round(seconds, 3),
            }
        )

    def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802 - unittest's
        super().startTest(test)
        self._started = time.monotonic()
        self._subtest_failure = None
        self._ended = False
        self._write({"start": test_id(test)})

    def stopTest(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().stopTest(test)
        if not self._ended:
            self._end(test, "fail", self._subtest_failure or "")

    def addSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().addSuccess(test)
        self._end(test, "pass")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        super().addFailure(test, err)
        self._end(test, "fail", _describe(err))

    def addError(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        super().addError(test, err)
        self._end(test, "error", _describe(err))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:  # noqa: N802
        super().addSkip(test, reason)
        self._end(test, "skip", reason)

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        super().addExpectedFailure(test, err)
        self._end(test, "xfail")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        super().addUnexpectedSuccess(test)
        self._end(test, "xpass")

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:  # noqa: N802
        super().addSubTest(test, subtest, err)
        if err is not None and self._subtest_failure is None:
            self._subtest_failure = f"{subtest.id()}: {_describe(err)}"


def _describe(err: Any) -> str:
    """The exception's last line and the innermost frame it came from."""
    kind, value, tb = err
    where = ""
    frames = traceback.extract_tb(tb)
    if frames:
        last = frames[-1]
        where = f" ({os.path.basename(last.filename)}:{last.lineno})"
    text = "".join(traceback.format_exception_only(kind, value)).strip()
    return text.splitlines()[-1][:300] + where if text else kind.__name__ + where


def run_pass(
    start_method: str, manager: str, results: TextIO, tests: Iterable[str]
) -> None:
    """Runs ``tests`` (ids) with ``manager``'s Manager under ``start_method``,
    recording to ``results``."""
    # setUpModule sets the start method (and the forkserver's preloads), as
    # in test/test_multiprocessing_<method>.py.
    cpython.install_tests_in_module_dict(globals(), start_method, only_type="manager")
    if manager == "statehub":
        # ManagerMixin.setUpClass calls multiprocessing.Manager() when each
        # class starts.
        multiprocessing.Manager = statehub_manager  # type: ignore[assignment]
        WithManagerTestSyncManagerTypes.manager_class = SuiteManager
        os.environ[PASS_ENV] = "statehub"
        use_statehub_base_managers()
    module = sys.modules[__name__]
    suite = unittest.TestSuite(
        unittest.defaultTestLoader.loadTestsFromName(test, module) for test in tests
    )
    suite.run(Recorder(results))


# -- the watchdog (the parent) -------------------------------------------------


def watch_pass(
    start_method: str,
    manager: str,
    tests: list[str],
    test_timeout: float,
    log: TextIO,
) -> dict[str, dict[str, Any]]:
    """Runs one pass in child processes until every test has an outcome;
    returns ``{id: record}``. Fixture errors get records of their own."""
    records: dict[str, dict[str, Any]] = {}
    remaining = list(tests)
    while remaining:
        last: dict[str, Any] = {}
        for last in _one_child(start_method, manager, remaining, test_timeout, log):
            records[last["test"]] = last
        if last.get("outcome") not in ("timeout", "crash") or last["test"] not in tests:
            break
        # The rest of the pass runs again, in a new child, after the test
        # that killed it.
        remaining = remaining[remaining.index(last["test"]) + 1 :]
    for test in tests:
        records.setdefault(
            test,
            {
                "test": test,
                "outcome": "not run",
                "detail": _fixture_error(test, records),
            },
        )
    return records


def _fixture_error(test: str, records: dict[str, dict[str, Any]]) -> str:
    cls = test.split(".", 1)[0]
    for fixture in (f"{cls}.setUpClass", "setUpModule"):
        if fixture in records:
            return f"{fixture}: {records[fixture]['detail']}"
    return "not reached: its pass ended before it"


def _one_child(
    start_method: str,
    manager: str,
    tests: list[str],
    test_timeout: float,
    log: TextIO,
) -> Iterator[dict[str, Any]]:
    """Starts a pass over ``tests`` and yields its records; a test that
    overruns test_timeout or dies gets a "timeout" or "crash" record and
    ends the child."""
    with tempfile.TemporaryDirectory(prefix="cpython-manager-") as directory:
        results_path = os.path.join(directory, "results.jsonl")
        tests_path = os.path.join(directory, "tests.txt")
        with open(tests_path, "w") as f:
            f.write("\n".join(tests))
        open(results_path, "w").close()
        child = subprocess.Popen(
            [
                sys.executable,
                os.path.abspath(__file__),
                start_method,
                "--pass",
                manager,
                "--results",
                results_path,
                "--tests",
                tests_path,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # Its own process group, so a hung pass can be killed with every
            # process it started (a Manager's server, pool workers).
            start_new_session=True,
        )
        current: str | None = None
        heard = time.monotonic()
        with open(results_path) as results:
            pending = ""
            while True:
                exited = child.poll() is not None
                pending += results.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    record = json.loads(line)
                    heard = time.monotonic()
                    if "start" in record:
                        current = record["start"]
                    else:
                        if record["test"] == current:
                            current = None
                        yield record
                if exited:
                    break
                # Also between tests: a class fixture can hang too.
                if time.monotonic() - heard > test_timeout:
                    _kill_group(child)
                    yield {
                        "test": current or "(the pass)",
                        "outcome": "timeout",
                        "detail": f"nothing done for {test_timeout:g}s",
                    }
                    return
                time.sleep(0.05)
        _kill_group(child)
        if current is not None or child.returncode != 0:
            # Died in a test, or between tests (then the tests it did not
            # reach are "not run").
            yield {
                "test": current or "(the pass)",
                "outcome": "crash",
                "detail": f"the pass exited with status {child.returncode}",
            }


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def compare(
    results: dict[str, dict[str, dict[str, Any]]],
) -> list[str]:
    """The ids statehub fails and multiprocessing passes (a fixture error
    counts as a failed test, and its absence as a pass)."""
    ids = set(results["multiprocessing"]) | set(results["statehub"])
    return sorted(
        test
        for test in ids
        if _outcome(results["multiprocessing"], test) in PASSING
        and _outcome(results["statehub"], test) not in PASSING
    )


def _outcome(records: dict[str, dict[str, Any]], test: str) -> str:
    record = records.get(test)
    if record is None:
        # Only fixtures are missing from a pass: they ran without error.
        return "pass"
    return str(record["outcome"])


def report(
    start_method: str,
    tests: list[str],
    results: dict[str, dict[str, dict[str, Any]]],
    regressions: list[str],
    out: TextIO,
) -> None:
    """Prints one line per test (and per fixture error) and a summary."""
    ids = sorted(set(results["multiprocessing"]) | set(results["statehub"]))
    width = max(len(i) for i in ids) if ids else 10
    print(f"{'test':{width}}  {'multiprocessing':15}  statehub", file=out)
    for test in ids:
        mp, sh = (_outcome(results[m], test) if results[m] else "-" for m in MANAGERS)
        print(f"{test:{width}}  {mp:15}  {sh}", file=out)
    for manager in MANAGERS:
        if not results[manager]:
            continue
        passed = sum(_outcome(results[manager], t) in PASSING for t in tests)
        print(
            f"{start_method}: {manager}: {passed} of {len(tests)} tests passed",
            file=out,
        )
    print(
        f"{start_method}: statehub fails {len(regressions)} that "
        "multiprocessing passes" + (":" if regressions else ""),
        file=out,
    )
    for test in regressions:
        record = results["statehub"][test]
        print(f"  {test}: {record['outcome']}: {record['detail']}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("start_method", choices=START_METHODS)
    parser.add_argument("--json", help="also write every outcome to this file")
    parser.add_argument(
        "-k",
        dest="patterns",
        action="append",
        default=[],
        help="only the tests whose id contains this (repeatable)",
    )
    parser.add_argument(
        "--test-timeout",
        type=float,
        default=60.0,
        help="seconds one test may run before its pass is killed (default 60)",
    )
    parser.add_argument("--only", choices=MANAGERS, help="run one manager's pass")
    # Internal: one pass, run by the watchdog in a child process.
    parser.add_argument(
        "--pass", dest="run_one", choices=MANAGERS, help=argparse.SUPPRESS
    )
    parser.add_argument("--results", help=argparse.SUPPRESS)
    parser.add_argument("--tests", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.run_one:
        with open(args.tests) as f:
            tests = f.read().split()
        with open(args.results, "a") as records:
            run_pass(args.start_method, args.run_one, records, tests)
        return 0

    tests = all_test_ids(args.patterns)
    managers = [args.only] if args.only else list(MANAGERS)
    results: dict[str, dict[str, dict[str, Any]]] = {m: {} for m in MANAGERS}
    for manager in managers:
        began = time.monotonic()
        results[manager] = watch_pass(
            args.start_method, manager, tests, args.test_timeout, sys.stderr
        )
        print(
            f"{args.start_method}: {manager} pass took {time.monotonic() - began:.0f}s",
            file=sys.stderr,
        )
    regressions = compare(results) if len(managers) == 2 else []
    report(args.start_method, tests, results, regressions, sys.stdout)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "start_method": args.start_method,
                    "results": results,
                    "regressions": regressions,
                },
                f,
                indent=1,
            )
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
