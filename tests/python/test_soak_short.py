"""A short run of the soak test (tests/soak/soak.py): 20 client processes
for 15 seconds, SIGKILLed at random, then every check the long run makes:
no sessions, waiters or unreferenced anonymous objects left, every lock
free, the counter consistent, the server's memory back near its steady
state. The long run (200 processes, minutes) is a separate command."""

from __future__ import annotations

import pytest

from conftest import run_soak


@pytest.mark.processes
def test_a_short_soak_leaves_nothing_behind() -> None:
    result = run_soak(
        "soak.py", "--procs=20", "--seconds=15", "--warmup=8", "--kill-every=0.5"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "soak: OK" in result.stdout
