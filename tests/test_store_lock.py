"""A store that another process keeps locked for seconds mid-run: the sender retries until it
accepts (every row stored exactly once, in order), the log never waits for it, and the user hears
one sentence when it starts and one when it is over, with no SQL or traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack.txlog import iter_records
from tests.helpers import Locker, stored_history, stored_run

pytestmark = pytest.mark.timeout(180)

LOCK_SECONDS = 8.0


def logged_rows(log: Path) -> list[int]:
    """The rows the run's transaction log holds so far (a live log reads up to its torn tail)."""
    return [r.history.step for r in iter_records(log) if r.HasField("history")]


def test_a_store_locked_for_8_seconds_mid_run_stores_every_row_once(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root, id="locked")
    log = run.dir / f"run-{run.id}.nbt"
    for i in range(2000):
        run.log({"i": i, "x": i * 0.5})
    run.status()
    locker = Locker(root / "nbtrack.db", LOCK_SECONDS)
    locker.start()
    assert locker.locked.wait(30)
    for i in range(2000, 6000):
        run.log({"i": i, "x": i * 0.5})
        if i % 500 == 0:
            time.sleep(0.1)
    # The writer never waits for the sender: while the store is still locked, the log has every row.
    deadline = time.monotonic() + LOCK_SECONDS
    while len(logged_rows(log)) < 6000 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not locker.released.is_set(), "the lock was released before the check: too slow a machine"
    assert logged_rows(log) == list(range(6000))
    assert run.status().rows_stored < 6000  # the store was really locked
    run.finish()
    locker.join(30)

    assert [r["i"] for r in stored_history(root, "locked")] == list(range(6000))
    assert stored_run(root, "locked").state == "finished"
    failing = [n for n in run.notices if "database is locked" in n]
    back = [n for n in run.notices if "written again" in n]
    assert len(failing) == 1 and len(back) == 1, run.notices
    assert "retrying until it accepts" in failing[0] and "in the transaction log" in failing[0]
    assert len(run.notices) == 2, run.notices
    assert not any("Traceback" in n or "[SQL" in n for n in run.notices), run.notices


def test_a_store_locked_when_a_run_starts_fails_init_in_one_sentence(root: Path) -> None:
    nbtrack.init(project="test", dir=root, id="before").finish()  # the store exists
    locker = Locker(root / "nbtrack.db", 60.0)
    locker.start()
    assert locker.locked.wait(30)
    try:
        with pytest.raises(nbtrack.InternalProcessError) as raised:
            nbtrack.init(project="test", dir=root, id="blocked")
    finally:
        locker.stop_now()
    message = str(raised.value)
    assert "could not start the run: the store: database is locked" in message, message
    assert "[SQL" not in message and "\n" not in message
