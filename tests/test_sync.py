"""Offline runs replayed into the store with `nbtrack sync`: complete, and idempotent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbtrack
from nbtrack.settings import store_url
from nbtrack.sync import sync_log
from tests.helpers import stored_history, stored_run


def offline_run(root: Path, rows: int, run_id: str) -> nbtrack.Run:
    with nbtrack.init(project="test", dir=root, mode="offline", id=run_id, config={"lr": 0.1}) as run:
        run.define_metric("loss", summary="min")
        for i in range(rows):
            run.log({"loss": 10.0 - i})
    return run


def test_sync_twice_stores_everything_once(root: Path) -> None:
    run = offline_run(root, 1234, "off1")
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):
        report = sync_log(log, store_url(root))
        assert (report.rows, report.state, report.complete, report.corruption) == (1234, "finished", True, [])
    stored = stored_run(root, "off1")
    assert stored.state == "finished" and stored.config == {"lr": 0.1}
    assert stored.summary["loss"] == {"min": 10.0 - 1233}
    assert [r["_step"] for r in stored_history(root, "off1")] == list(range(1234))


def test_sync_cli_takes_a_folder_of_logs(root: Path) -> None:
    offline_run(root, 10, "offa")
    offline_run(root, 20, "offb")
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(root / "runs"), "--dir", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "local/test/offa 10 rows, finished" in out and "local/test/offb 20 rows, finished" in out
    assert len(stored_history(root, "offa")) == 10 and len(stored_history(root, "offb")) == 20


def test_a_log_cut_short_syncs_what_it_holds_and_ends_crashed(root: Path) -> None:
    run = offline_run(root, 5000, "cut")
    log = next(run.dir.glob("*.nbt"))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])  # a torn tail: the exit record is gone
    report = sync_log(log, store_url(root))
    assert report.state == "crashed" and not report.complete
    history = stored_history(root, "cut")
    assert 0 < len(history) == report.rows < 5000
    assert [r["_step"] for r in history] == list(range(len(history)))
    assert stored_run(root, "cut").state == "crashed"
