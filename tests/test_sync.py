"""Logs replayed into the store with `nbtrack sync`: complete, idempotent, never a step backwards
(a truncated or older log, a live run), and every intact row of a damaged log at its own line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

import nbtrack
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import store_url
from nbtrack.store import RunRow, Store
from nbtrack.store.schema import history, metadata, runs
from nbtrack.sync import find_logs, sync_log
from nbtrack.txlog import BLOCK_SIZE, FILE_HEADER, HEADER_SIZE, iter_records
from tests import serving
from tests.helpers import stored_history, stored_run
from tests.internal_driver import Driver
from tests.serving import ServerProcess

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")


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


def rows_after_the_last_summary(log: Path) -> int:
    """History rows the log holds after its last summary record (all of them if it has none)."""
    rows = 0
    for record in iter_records(log):
        rows = 0 if record.HasField("summary") else rows + record.HasField("history")
    return rows


def test_a_killed_runs_summary_is_rebuilt_from_the_rows_after_its_last_summary_record(root: Path) -> None:
    driver = Driver(root, "killed")
    try:
        driver.start()
        driver.send(pb.Record(metric=pb.MetricRecord(name="loss", summary="max")))
        driver.log([{"loss": 100.0, "acc": 0.0}])
        # A summary set by the user is written at once (with the row before it); rows logged right
        # after it wait for the next, at most once a second. Log until the log ends with such rows
        # (the first batch, unless the machine stalls for a second), each handed to the OS.
        driver.send(pb.Record(summary=pb.SummaryRecord(update_json=b'{"note": "kept"}')))
        logged = 1
        while not rows_after_the_last_summary(driver.log_path):
            driver.log([{"loss": -float(i), "acc": i / 100} for i in range(logged, logged + 50)])
            logged += 50
            assert driver.wait_for(lambda r, seq=logged: r.HasField("ack") and r.ack.seq >= seq, 30)
            assert logged < 1000, "every batch was followed by a summary record"
        driver.process.kill()  # SIGKILL: no exit record, no last summary
        assert driver.eof.wait(30)
    finally:
        driver.close()

    subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(driver.log_path), "--dir", str(root)],
        capture_output=True,
        check=True,
    )
    stored = stored_run(root, "killed")
    assert (stored.state, stored.history_line_count) == ("crashed", logged)
    # The last value of each key, the largest loss (define_metric's rule), and the user's value.
    assert stored.summary == {"loss": {"max": 100.0}, "acc": (logged - 1) / 100, "note": "kept"}


# ---- never backwards, live runs, damaged logs (SQLite, and PostgreSQL when it is there) -----------


@pytest.fixture(params=["sqlite", "postgresql"])
def destination(request: pytest.FixtureRequest, root: Path) -> str:
    """The URL of an empty store that logs are synced into."""
    if request.param == "sqlite":
        return store_url(root)
    if not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to sync into PostgreSQL too")
    engine = create_engine(POSTGRES_URL)
    metadata.drop_all(engine)  # a fresh schema per test
    engine.dispose()
    return POSTGRES_URL


def read_run(url: str, run_id: str) -> tuple[RunRow, list[dict[str, Any]]]:
    with Store(url) as store:
        row = store.get_run(None, "test", run_id)
        assert row is not None
        return row, store.read_history(row.entity, "test", run_id)


def stored_lines(url: str, run_id: str) -> list[tuple[int, int]]:
    """(line, step) of each stored history line of the run, in line order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            pk = conn.scalar(select(runs.c.pk).where(runs.c.run_id == run_id))
            query = select(history.c.line, history.c.step).where(history.c.run_pk == pk)
            return [(line, step) for line, step in conn.execute(query.order_by(history.c.line))]
    finally:
        engine.dispose()


def copy_of(log: Path, tmp_path: Path, data: bytes) -> Path:
    """data as the log of a run folder of its own (the original's folder name and file name)."""
    folder = tmp_path / "copies" / log.parent.name
    folder.mkdir(parents=True)
    (folder / log.name).write_bytes(data)
    return folder / log.name


def test_a_truncated_log_of_a_finished_run_leaves_it_finished_with_everything(
    root: Path, tmp_path: Path, destination: str
) -> None:
    run = offline_run(root, 5000, "whole")
    log = next(run.dir.glob("*.nbt"))
    assert sync_log(log, destination).state == "finished"
    before, history = read_run(destination, "whole")

    truncated = copy_of(log, tmp_path, log.read_bytes()[: log.stat().st_size // 2])
    report = sync_log(truncated, destination)
    assert (report.error, report.delivered, report.complete) == (None, False, False)
    assert 0 < report.rows < 5000 and report.state == "finished"
    assert "already holds more of this run (5000 history lines, finished)" in report.note

    after, history_after = read_run(destination, "whole")
    assert (after.state, after.exit_code, after.summary, after.config) == (
        "finished",
        0,
        {"loss": {"min": 10.0 - 4999}},
        {"lr": 0.1},
    )
    assert history_after == history and len(history) == 5000
    assert after.updated_at == before.updated_at  # not even touched


def test_the_cli_says_the_store_already_has_more(root: Path, tmp_path: Path) -> None:
    run = offline_run(root, 300, "said")
    log = next(run.dir.glob("*.nbt"))
    sync_log(log, store_url(root))
    truncated = copy_of(log, tmp_path, log.read_bytes()[:2000])
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(truncated), "--dir", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "local/test/said" in out and ", finished; the destination already holds more of this run" in out
    assert "nothing delivered" in out and "marked crashed" not in out
    assert stored_run(root, "said").state == "finished"


def test_a_longer_log_of_a_crashed_run_delivers_the_rest_and_finishes_it(root: Path, tmp_path: Path) -> None:
    run = offline_run(root, 3000, "rest")
    log = next(run.dir.glob("*.nbt"))
    first = sync_log(copy_of(log, tmp_path, log.read_bytes()[: log.stat().st_size // 3]), store_url(root))
    assert first.state == "crashed" and stored_run(root, "rest").state == "crashed"

    report = sync_log(log, store_url(root))
    assert (report.error, report.delivered, report.state) == (None, True, "finished")
    stored = stored_run(root, "rest")
    assert (stored.state, stored.summary) == ("finished", {"loss": {"min": 10.0 - 2999}})
    assert [row["_step"] for row in stored_history(root, "rest")] == list(range(3000))


def test_an_earlier_segment_of_a_resumed_run_does_not_undo_the_later_one(root: Path, tmp_path: Path) -> None:
    first = nbtrack.init(project="test", dir=root, id="seg", config={"lr": 0.1})
    for i in range(100):
        first.log({"i": i})
    first.finish(exit_code=1)  # failed, then resumed and finished
    again = nbtrack.init(project="test", dir=root, id="seg", resume="must")
    again.summary["note"] = "second"
    again.finish()
    logs = list(find_logs(root / "runs"))
    assert len(logs) == 2
    assert stored_run(root, "seg").state == "finished"

    report = sync_log(logs[0], store_url(root))  # the first segment: failed, and older
    assert (report.error, report.delivered, report.state) == (None, False, "finished")
    stored = stored_run(root, "seg")
    assert (stored.state, stored.summary["note"]) == ("finished", "second")

    copy = tmp_path / "copy"  # both segments, in order, into a fresh store: the same run
    for log in logs:
        assert sync_log(log, store_url(copy)).error is None
    replayed = stored_run(copy, "seg")
    assert (replayed.state, replayed.summary["note"]) == ("finished", "second")
    assert [row["i"] for row in stored_history(copy, "seg")] == list(range(100))


def test_lines_the_store_lacks_are_filled_in_and_nothing_else_changes(root: Path, destination: str) -> None:
    run = offline_run(root, 3000, "holes")
    log = next(run.dir.glob("*.nbt"))
    sync_log(log, destination)
    engine = create_engine(destination)  # rows a store refused mid-run: a hole in the history
    with engine.begin() as conn:
        conn.execute(history.delete().where(history.c.line.between(1000, 1999)))
    engine.dispose()
    before, _ = read_run(destination, "holes")

    report = sync_log(log, destination)
    assert (report.error, report.delivered, report.state) == (None, True, "finished")
    assert "but lines it lacked" in report.note
    after, _ = read_run(destination, "holes")
    assert stored_lines(destination, "holes") == [(s, s) for s in range(3000)]
    assert (after.state, after.summary, after.runtime) == (before.state, before.summary, before.runtime)


def test_a_live_run_is_waited_for_then_refused_and_left_running(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root, id="live")
    for i in range(200):
        run.log({"i": i})
    run.status()
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(run.dir), "--dir", str(root), "--wait", "1"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert 1.0 <= time.monotonic() - started < 30
    assert "waiting up to 1 s for the process writing" in out.stderr
    message = out.stdout
    assert "the run is still being written: process " in message and "nothing was synced" in message
    pid = int(message.split("process ")[1].split()[0])
    assert pid != os.getpid() and Path(f"/proc/{pid}").exists()  # the run's internal process
    assert stored_run(root, "live").state == "running"

    for i in range(200, 300):
        run.log({"i": i})
    run.finish()
    stored = stored_run(root, "live")
    assert stored.state == "finished"
    assert [row["i"] for row in stored_history(root, "live")] == list(range(300))


def test_a_sync_waits_for_a_live_run_that_ends_meanwhile(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root, id="ends")
    for i in range(50):
        run.log({"i": i})
    log = run.dir / f"run-{run.id}.nbt"
    finisher = threading.Timer(0.5, run.finish)
    finisher.start()
    notices: list[str] = []
    report = sync_log(log, store_url(root), wait=60, on_notice=notices.append)
    finisher.join()
    assert report.error is None and len(notices) == 1 and "waiting up to 60 s" in notices[0]
    assert report.state == "finished" and stored_run(root, "ends").state == "finished"


def flip(log: Path, offset: int) -> None:
    data = bytearray(log.read_bytes())
    data[offset] ^= 0xFF
    log.write_bytes(bytes(data))


def intact_steps(log: Path) -> list[int]:
    return [r.history.step for r in iter_records(log) if r.HasField("history")]


def test_a_flipped_byte_in_the_first_record_still_delivers_every_intact_row(
    root: Path, destination: str
) -> None:
    run = offline_run(root, 5000, "flip")
    log = next(run.dir.glob("*.nbt"))
    flip(log, len(FILE_HEADER) + HEADER_SIZE + 2)  # inside the log's first record
    steps = intact_steps(log)
    assert 4000 < len(steps) < 5000 and steps == list(range(steps[0], 5000))  # what `nbtrack dump` shows

    refused = sync_log(log, destination)  # the run record is gone, and the store does not know the run
    assert refused.error is not None and "name its project with --project" in refused.error
    report = sync_log(log, destination, project="test")
    assert report.error is None and report.run.endswith("/test/flip")
    assert (report.rows, report.rows_lost, report.damaged_ranges) == (len(steps), steps[0], 1)
    assert report.state == "finished" and len(report.corruption) >= 1

    stored, history = read_run(destination, "flip")
    assert stored.state == "finished" and stored.history_line_count == 5000
    assert [row["loss"] for row in history] == [10.0 - s for s in steps]
    # Each row at the line it had: the run counted its own steps, so a row's line is its step.
    assert stored_lines(destination, "flip") == [(s, s) for s in steps]


def test_a_damaged_log_of_a_run_the_store_knows_fills_in_what_it_lacks(
    root: Path, tmp_path: Path, destination: str
) -> None:
    run = offline_run(root, 6000, "known")
    log = next(run.dir.glob("*.nbt"))
    start = sync_log(copy_of(log, tmp_path, log.read_bytes()[: log.stat().st_size // 4]), destination)
    assert start.state == "crashed" and 0 < start.rows < 3000
    flip(log, len(FILE_HEADER) + HEADER_SIZE + 2)  # the run record is lost: the store names the run
    flip(log, 3 * BLOCK_SIZE + 100)  # and a block in the middle
    steps = intact_steps(log)

    report = sync_log(log, destination)
    assert report.error is None and report.run.endswith("/test/known") and report.state == "finished"
    assert report.damaged_ranges == 2 and report.rows_lost == 6000 - len(steps)
    stored, history = read_run(destination, "known")
    assert stored.state == "finished" and stored.config == {"lr": 0.1}
    kept = set(range(start.rows))  # the store's own rows stay, the log's intact rows join them
    assert [row["_step"] for row in history] == sorted(kept | set(steps))
    assert stored_lines(destination, "known") == [(s, s) for s in sorted(kept | set(steps))]


def test_a_damaged_middle_block_places_the_rows_after_it_at_their_lines(root: Path) -> None:
    run = offline_run(root, 5000, "mid")
    log = next(run.dir.glob("*.nbt"))
    flip(log, 2 * BLOCK_SIZE + 5000)
    steps = intact_steps(log)
    assert len(steps) < 5000

    out = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(log), "--dir", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"local/test/mid {len(steps)} rows, finished; " in out
    assert f"; {5000 - len(steps)} rows lost in 1 of them" in out
    assert stored_lines(store_url(root), "mid") == [(s, s) for s in steps]  # the lost lines stay a gap
    assert stored_run(root, "mid").history_line_count == 5000


# ---- the same over HTTP, into a real `nbtrack server` -----------------------------------------------

server = serving.server  # the fixture


def test_a_truncated_log_synced_to_a_server_leaves_its_finished_run_alone(
    server: ServerProcess, root: Path, tmp_path: Path
) -> None:
    run = offline_run(root, 3000, "far")
    log = next(run.dir.glob("*.nbt"))
    assert sync_log(log, base_url=server.url).state == "finished"

    truncated = copy_of(log, tmp_path, log.read_bytes()[: log.stat().st_size // 2])
    report = sync_log(truncated, base_url=server.url)
    assert (report.error, report.delivered, report.state) == (None, False, "finished")
    assert "already holds more of this run (3000 history lines, finished)" in report.note
    stored = nbtrack.Api(base_url=server.url).run("test/far")
    assert (stored.state, stored.config) == ("finished", {"lr": 0.1})
    assert stored.summary == {"loss": {"min": 10.0 - 2999}}
    assert [row["_step"] for row in stored.history()] == list(range(3000))


def test_a_damaged_log_synced_to_a_server_fills_in_what_it_lacks(
    server: ServerProcess, root: Path, tmp_path: Path
) -> None:
    run = offline_run(root, 6000, "gaps")
    log = next(run.dir.glob("*.nbt"))
    start = sync_log(copy_of(log, tmp_path, log.read_bytes()[: log.stat().st_size // 4]), base_url=server.url)
    assert start.state == "crashed"
    flip(log, len(FILE_HEADER) + HEADER_SIZE + 2)  # the server knows the run: it names it
    flip(log, 3 * BLOCK_SIZE + 100)
    steps = intact_steps(log)

    report = sync_log(log, base_url=server.url)
    assert (report.error, report.state, report.damaged_ranges) == (None, "finished", 2)
    stored = nbtrack.Api(base_url=server.url).run("test/gaps")
    assert (stored.state, stored.config) == ("finished", {"lr": 0.1})
    assert stored.row.history_line_count == 6000
    assert [row["_step"] for row in stored.history()] == sorted(set(range(start.rows)) | set(steps))


def test_a_resumed_segment_whose_run_record_is_lost_starts_where_the_one_before_ended(
    root: Path, tmp_path: Path
) -> None:
    first = nbtrack.init(project="test", dir=root, id="two")
    for i in range(3000):
        first.log({"i": i})
    first.finish()
    again = nbtrack.init(project="test", dir=root, id="two", resume="must")
    for i in range(3000, 6000):
        again.log({"i": i})
    again.finish()
    logs = list(find_logs(root / "runs"))
    flip(logs[1], len(FILE_HEADER) + HEADER_SIZE + 2)  # the second segment's run record
    steps = intact_steps(logs[1])

    copy = store_url(tmp_path / "copy")  # the project comes from the first segment's run record
    reports = [sync_log(log, copy) for log in logs]
    assert [(r.error, r.run, r.state) for r in reports] == [(None, "local/test/two", "finished")] * 2
    assert reports[1].rows_lost == 6000 - 3000 - len(steps)
    assert stored_lines(copy, "two") == [(s, s) for s in [*range(3000), *steps]]
