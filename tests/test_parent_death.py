"""When the user process dies, its internal process delivers everything it was handed, marks the
run crashed, and exits: no lost rows, no orphan process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from tests.helpers import stored_history, stored_run

SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import nbtrack
    run = nbtrack.init(project="test", dir=sys.argv[1], id="victim")
    for i in range(int(sys.argv[2])):
        run.log({"i": i, "x": i * 0.5})
    run.status()  # a round trip: every row before it has reached the handler
    print(run._connection.process.pid, flush=True)
    time.sleep(60)
    """
)


def wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_killed_user_process_leaves_a_crashed_run_with_every_row(root: Path) -> None:
    rows = 20000
    user = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(root), str(rows)], stdout=subprocess.PIPE, text=True
    )
    assert user.stdout is not None
    internal_pid = int(user.stdout.readline())
    os.kill(user.pid, signal.SIGKILL)
    user.wait(10)

    assert wait_for(
        lambda: not psutil.pid_exists(internal_pid) or psutil.Process(internal_pid).status() == "zombie", 30
    )
    run = stored_run(root, "victim")
    assert run.state == "crashed"
    history = stored_history(root, "victim")
    assert [r["i"] for r in history] == list(range(rows))
