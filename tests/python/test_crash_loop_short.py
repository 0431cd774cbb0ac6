"""A short run of the crash loop (tests/soak/crash_loop.py): 8 SIGKILLs of a
server on a --fsync=always data dir while 3 client processes increment
counters, append to a list, put on a queue and hold a lock each, then every
check the long run makes: nothing acknowledged lost, nothing applied twice,
every lock and session kept, a clean server log. The long run (50 cycles,
about a minute) is a separate command."""

from __future__ import annotations

import pytest

from conftest import run_soak


@pytest.mark.processes
def test_a_short_crash_loop_loses_nothing_acknowledged() -> None:
    result = run_soak("crash_loop.py", "--cycles=8", "--workers=3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "crash loop: OK" in result.stdout
