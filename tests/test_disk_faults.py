"""When the disk fills or the run's folder vanishes: the user is told once, log() never raises, the
run finishes without hanging, and what was written stays readable."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.internal.txlog import iter_records
from nbtrack.store import Store
from tests.helpers import stored_history


def test_a_removed_run_folder_is_reported_once_and_the_store_still_gets_every_row(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root, id="orphan")
    for i in range(1000):
        run.log({"i": i})
    run.status()
    shutil.rmtree(run.dir)
    for i in range(1000, 2000):
        run.log({"i": i})
        if i % 100 == 0:
            time.sleep(0.15)  # the writer looks for its log once a second
    run.finish()
    deleted = [n for n in run.notices if "was deleted" in n]
    assert len(deleted) == 1, run.notices
    assert str(run.dir) in deleted[0] and "a crash could now lose them" in deleted[0]
    assert [r["i"] for r in stored_history(root, "orphan")] == list(range(2000))


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs: the run's log and store share it and fill it."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_reported_once_and_what_was_written_stays_readable(full_disk: Path) -> None:
    rows = 4000
    run = nbtrack.init(project="test", dir=full_disk, id="full")
    started = time.monotonic()
    for i in range(rows):
        run.log({"i": i, "text": "x" * 1000})  # ~4 MB into a 1 MB disk; never raises
    run.finish(timeout=60)
    assert time.monotonic() - started < 60
    full = [n for n in run.notices if "No space left on device" in n or "disk is full" in n]
    assert 1 <= len(full) <= 3, run.notices  # the writer once, the store once (and the exit report)
    assert len(run.notices) <= 4
    # The log failed too: nobody is told that it keeps the rows.
    assert not any("keeps every row" in n for n in run.notices), run.notices
    assert any("the rows not stored are lost" in n for n in run.notices), run.notices

    # The log holds an intact prefix of the rows (damage, if any, only at the torn tail).
    logged = [r.history.step for r in iter_records(run.dir / f"run-{run.id}.nbt") if r.HasField("history")]
    assert logged == list(range(len(logged))) and len(logged) > 0
    # The store stays readable, and holds a prefix too: no row twice, none out of order.
    with Store.at_root(full_disk) as store:
        stored = [r["i"] for r in store.read_history("local", "test", "full")]
    assert stored == list(range(len(stored)))
