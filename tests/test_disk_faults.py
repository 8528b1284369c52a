"""When the disk fills or the run's folder vanishes: the user is told once (and once more when it
is over), log() never raises, rows wait until space comes back and are then stored exactly once,
and a run that ends while the disk is still full says exactly which rows it could not keep."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.internal import writer as writer_module
from nbtrack.internal.feed import Feed
from nbtrack.internal.trouble import Trouble
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import store_url
from nbtrack.store import Store
from nbtrack.sync import sync_log
from nbtrack.txlog import iter_records
from tests.helpers import stored_history, stored_run
from tests.internal_driver import Driver


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


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at mount for the test (skipped where mounting is not allowed)."""
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs: the run's log and its store share it."""
    with tmpfs(tmp_path / "small", "20m") as mount:
        yield mount


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte with a ballast file; delete it to free the space."""
    ballast = disk / "ballast"
    chunk = bytes(1 << 20)
    with open(ballast, "wb", buffering=0) as file:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    file.write(chunk[:size])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return ballast


def steps_text(steps: list[int]) -> str:
    """Ranges as the exit result gives them: "120-340, 500"."""
    spans: list[list[int]] = []
    for step in sorted(steps):
        if spans and spans[-1][1] + 1 == step:
            spans[-1][1] = step
        else:
            spans.append([step, step])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


ROWS = 30_000


@pytest.mark.timeout(300)
def test_a_disk_filled_mid_run_then_freed_stores_every_row_once_and_says_so_twice(small_disk: Path) -> None:
    run = nbtrack.init(project="test", dir=small_disk, id="full")
    for i in range(ROWS // 3):
        run.log({"i": i, "x": i * 0.5})
    run.status()
    ballast = fill(small_disk)
    for i in range(ROWS // 3, ROWS):
        run.log({"i": i, "x": i * 0.5})
        if i % 1000 == 0:
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while not run.notices and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.status().rows_logged == ROWS  # the run goes on while the disk is full
    time.sleep(3)
    ballast.unlink()
    run.finish()

    assert [r["i"] for r in stored_history(small_disk, "full")] == list(range(ROWS))
    assert stored_run(small_disk, "full").state == "finished"
    # The log caught up once space came back: it replays to the same history.
    copy = small_disk.parent / "replayed"
    report = sync_log(run.dir / f"run-{run.id}.nbt", store_url(copy))
    assert report.error is None and report.complete and report.corruption == []
    assert [r["i"] for r in stored_history(copy, "full")] == list(range(ROWS))
    # One sentence when the disk filled, one when it was written again, and nothing else.
    assert len(run.notices) == 2, run.notices
    assert "cannot write" in run.notices[0] and "waiting for space" in run.notices[0]
    assert "written again" in run.notices[1]


@pytest.mark.timeout(300)
def test_a_disk_that_stays_full_through_a_shutdown_reports_exactly_the_rows_lost(small_disk: Path) -> None:
    driver = Driver(small_disk, "stuck")
    try:
        driver.start()
        for first in range(0, ROWS // 3, 1000):
            driver.log([{"i": i, "x": i * 0.5} for i in range(first, first + 1000)])
        assert driver.wait_for(lambda r: r.HasField("ack") and r.ack.seq == ROWS // 3, 30) is not None
        fill(small_disk)
        for first in range(ROWS // 3, ROWS, 1000):
            driver.log([{"i": i, "x": i * 0.5} for i in range(first, first + 1000)])
        time.sleep(2)
        driver.exit()
        time.sleep(2)  # what finish(timeout=2) would wait before it sends the shutdown
        answer = driver.request(pb.Request(shutdown=pb.ShutdownRequest()), timeout=10)
        assert answer is not None
        assert driver.process.join(5)
        assert driver.acknowledged() < ROWS  # what the log did not get was never acknowledged
    finally:
        driver.close()
    left = answer.shutdown.exit_result
    with Store.at_root(small_disk) as store:
        stored = {r["i"] for r in store.read_history("local", "test", "stuck")}
        state = store.get_run(None, "test", "stuck").state
    logged = {
        json.loads(r.history.data_json)["i"] for r in iter_records(driver.log_path) if r.HasField("history")
    }
    missing = sorted(set(range(ROWS)) - stored - logged)
    assert missing, "the disk was not full after all"
    assert (left.rows_lost, left.lost_steps) == (len(missing), steps_text(missing))
    assert f"{len(missing)} rows" in left.error.message
    assert state != "finished" and left.state == state  # never a plain "finished" with holes


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs for a writer driven in this process."""
    with tmpfs(tmp_path / "tiny", "1m") as mount:
        yield mount


def test_the_writer_waits_for_space_past_its_bound_and_acknowledges_only_what_is_written(
    tiny_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "MAX_UNWRITTEN", 200_000)
    acks: list[int] = []
    notices: list[str] = []
    fatal: list[BaseException] = []
    writer = writer_module.WriterThread(
        Feed(), Trouble(notices.append), acks.append, lambda _, e: fatal.append(e)
    )
    path = tiny_disk / "run.nbt"
    writer.open(pb.SetupRequest(mode="offline", log_path=str(path)))
    assert writer.flush(5) == 0
    ballast = fill(tiny_disk)

    def produce() -> None:
        for batch in range(20):  # 20,000 rows, about 1.2 MB: six times the bound
            rows = [
                pb.Record(history=pb.HistoryRecord(step=i, data_json=b'{"i": %d, "pad": "xxxxxxxx"}' % i))
                for i in range(batch * 1000, batch * 1000 + 1000)
            ]
            writer.put(rows)
            writer.mark(batch + 1)

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(3)
    assert producer.is_alive(), "the writer did not push back"  # bounded: it waits for space
    assert writer.flush(0.1) > 0 and not acks  # nothing it could not write is acknowledged
    assert len(notices) == 1 and "waiting for space" in notices[0], notices
    ballast.unlink()
    producer.join(30)
    assert writer.flush(30) == 0
    deadline = time.monotonic() + 5
    while (not acks or acks[-1] < 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert acks[-1] == 20 and acks == sorted(acks)
    assert len(notices) == 2 and "written again" in notices[1], notices
    assert writer.stop(5) and not fatal
    steps = [r.history.step for r in iter_records(path) if r.HasField("history")]
    assert steps == list(range(20_000))


@pytest.mark.timeout(300)
def test_finish_on_a_disk_that_stays_full_says_exactly_which_rows_are_lost(small_disk: Path) -> None:
    """The user's view of the same fault: finish(timeout=) returns on time, the run is not stored
    as a plain `finished`, and what finish() says is lost is exactly what neither the store nor
    the log has; it never claims the log holds those rows."""
    run = nbtrack.init(project="test", dir=small_disk, id="userfull")
    for i in range(ROWS // 3):
        run.log({"i": i, "x": i * 0.5})
    run.status()
    fill(small_disk)
    for i in range(ROWS // 3, ROWS):
        run.log({"i": i, "x": i * 0.5})
    started = time.monotonic()
    run.finish(timeout=3)
    assert time.monotonic() - started < 4.5
    said = [n for n in run.notices if "finish() stopped waiting" in n]
    assert len(said) == 1, run.notices
    process = run._connection.process
    assert process.join(60)  # it stops on its own once it has said what it could keep
    with Store.at_root(small_disk) as store:
        stored = {r["i"] for r in store.read_history("local", "test", "userfull")}
        state = store.get_run(None, "test", "userfull").state
    logged = {
        json.loads(r.history.data_json)["i"]
        for r in iter_records(run.dir / "run-userfull.nbt")
        if r.HasField("history")
    }
    missing = sorted(set(range(ROWS)) - stored - logged)
    assert state != "finished" and run.state != "finished"
    if "are lost" in said[0]:
        assert f"{len(missing)} rows (steps {steps_text(missing)})" in said[0], (said, len(missing))
        assert run.rows_lost == len(missing)
    else:  # no account from the process in time: then it must not claim the rows are in the log
        assert "not in the transaction log" in said[0] and "every one of them is in" not in said[0]
