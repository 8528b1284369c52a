"""The run's connection to its internal process under faults (transport/connection.py): rapid
kills, a hung (stopped) process, and an outbox past its memory limit. Every test logs finite,
NaN/inf and media rows and asserts the exact stored history, the final state, and that what the
user was told is true."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nbtrack
from nbtrack.sync import sync_log
from tests.helpers import stored_history, stored_run

pytestmark = pytest.mark.timeout(300)


def row(i: int) -> dict[str, Any]:
    """Row i as logged: mostly finite; every 97th holds NaN and infinity; every 1001st an image."""
    if i % 97 == 0:
        return {"i": i, "x": math.nan, "y": math.inf if i % 2 else -math.inf}
    if i % 1001 == 0:
        return {"i": i, "image": nbtrack.Image(np.full((4, 4), i % 256, dtype=np.uint8))}
    return {"i": i, "x": i * 0.5}


def check_history(stored: list[dict[str, Any]], rows: int) -> None:
    """Every row once, in order, with its values (NaN and infinities included; media as files)."""
    assert len(stored) == rows, f"{len(stored)} rows stored, {rows} logged"
    assert [r["_step"] for r in stored] == list(range(rows))
    for i, got in enumerate(stored):
        assert got["i"] == i
        if i % 97 == 0:
            assert math.isnan(got["x"]) and got["y"] == (math.inf if i % 2 else -math.inf)
        elif i % 1001 == 0:
            assert got["image"]["_type"] == "image-file" and got["image"]["path"].endswith(".png")
        else:
            assert got["x"] == i * 0.5


def internal_pid(run: nbtrack.Run) -> int:
    assert run._connection is not None and run._connection.process.pid is not None
    return run._connection.process.pid


def spilling_run(root: Path, monkeypatch: pytest.MonkeyPatch, run_id: str) -> tuple[nbtrack.Run, int, Any]:
    """A run whose internal process is stopped (SIGSTOP) and whose outbox spills past 2 MB: the
    run, the stopped process's pid and the outbox."""
    monkeypatch.setenv("NBTRACK_MAX_MEMORY_MB", "2")
    monkeypatch.setenv("NBTRACK_HANG_TIMEOUT", "600")  # stopped on purpose: not replaced for it
    run = nbtrack.init(project="test", dir=root, id=run_id)
    time.sleep(1.5)
    pid = internal_pid(run)
    os.kill(pid, signal.SIGSTOP)
    assert run._connection is not None
    return run, pid, run._connection.outbox


def wait_for_new_process(run: nbtrack.Run, old: int, seconds: float = 30.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid = internal_pid(run)
        if pid != old:
            return pid
        time.sleep(0.01)
    raise AssertionError(f"no new internal process within {seconds} s")


def test_rapid_repeated_kills_lose_and_duplicate_nothing(root: Path) -> None:
    """8 SIGKILLs 0.4 s apart, each maybe landing while the previous restart is still re-sending."""
    rows = 50_000
    run = nbtrack.init(project="test", dir=root, id="rapid")
    kills = 0

    def killer() -> None:
        nonlocal kills
        time.sleep(0.3)
        for _ in range(8):
            os.kill(internal_pid(run), signal.SIGKILL)
            kills += 1
            time.sleep(0.4)

    thread = threading.Thread(target=killer)
    thread.start()
    for i in range(rows):
        run.log(row(i))
        if i % 1000 == 999:
            time.sleep(0.03)  # bursts of 1,000 rows
    thread.join()
    run.finish()
    assert kills == 8 and run.restarts >= 1
    check_history(stored_history(root, "rapid"), rows)
    assert stored_run(root, "rapid").state == "finished"
    assert run.state == "finished" and run.rows_lost == 0
    assert not [n for n in run.notices if "NOT stored" in n]
    # The log, reopened after each kill, replays to the same run.
    copy = root.parent / "replayed"
    report = sync_log(run.dir / "run-rapid.nbt", f"sqlite:///{copy / 'nbtrack.db'}")
    assert report.error is None and report.complete
    check_history(stored_history(copy, "rapid"), rows)


def test_a_hung_internal_process_is_replaced_and_nothing_is_lost(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGSTOP: the process lives but says nothing. After NBTRACK_HANG_TIMEOUT it is killed and a
    new one takes over from the log and the outbox; finish() then completes."""
    monkeypatch.setenv("NBTRACK_HANG_TIMEOUT", "3")
    rows = 200_000
    run = nbtrack.init(project="test", dir=root, id="hung")
    for i in range(100):
        run.log(row(i))
    time.sleep(1.5)  # a heartbeat has arrived: the process has one to miss
    stopped = internal_pid(run)
    os.kill(stopped, signal.SIGSTOP)
    try:
        for i in range(100, rows):
            run.log(row(i))
        started = time.monotonic()
        run.finish()
        waited = time.monotonic() - started
    finally:
        with contextlib.suppress(ProcessLookupError):  # killed and reaped by now
            os.kill(stopped, signal.SIGCONT)
    assert internal_pid(run) != stopped and run.restarts >= 1
    check_history(stored_history(root, "hung"), rows)
    assert stored_run(root, "hung").state == "finished" and run.state == "finished"
    said = [n for n in run.notices if "stopped answering for 3 s and was killed" in n]
    assert len(said) == 1, run.notices
    assert waited < 60


def test_the_outbox_spills_past_its_memory_limit_and_delivers_everything(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the internal process stopped, waiting rows stay under NBTRACK_MAX_MEMORY_MB in memory;
    the rest goes to the run folder's spill file, and all of it is stored once it resumes."""
    rows = 150_000
    run, pid, outbox = spilling_run(root, monkeypatch, "spill")
    try:
        peak = 0
        for i in range(rows):
            run.log(row(i))
            if i % 5000 == 0:
                peak = max(peak, outbox.retained_bytes)
        deadline = time.monotonic() + 30
        while outbox.calls_encoded < rows and time.monotonic() < deadline:
            time.sleep(0.05)  # the encoder catches up
        peak = max(peak, outbox.retained_bytes)
        assert outbox.spilled_bytes > 4 * 2**20  # most of the ~8 MB went to the file
        assert peak <= 2 * 2**20
        # The encoder thread writes a record to the file before it counts it: wait until they agree.
        spill = run.dir / "outbox.spill"
        deadline = time.monotonic() + 10
        while spill.stat().st_size != outbox.spilled_bytes and time.monotonic() < deadline:
            time.sleep(0.05)
        assert spill.stat().st_size == outbox.spilled_bytes
    finally:
        os.kill(pid, signal.SIGCONT)
    run.finish()
    check_history(stored_history(root, "spill"), rows)
    assert stored_run(root, "spill").state == "finished"
    assert not (run.dir / "outbox.spill").exists()
    assert not [n for n in run.notices if "waiting" in n]  # log() never had to wait


def test_a_restart_does_not_store_nan_or_media_rows_twice(root: Path) -> None:
    """Rows that take the exact encoder are numbered like any other: a recovering process knows
    they are in its log already."""
    run = nbtrack.init(project="test", dir=root, id="nanrestart")
    for i in range(3000):
        run.log(row(i))
    time.sleep(0.5)  # in the log and acknowledged
    old = internal_pid(run)
    os.kill(old, signal.SIGKILL)
    wait_for_new_process(run, old)
    for i in range(3000, 6000):
        run.log(row(i))
    run.finish()
    check_history(stored_history(root, "nanrestart"), 6000)


def test_a_suspended_user_process_does_not_take_its_internal_process_for_hung(tmp_path: Path) -> None:
    """Stopping the *user* process (a debugger, a suspended laptop) makes the silence its own: when
    it resumes, the internal process's heartbeats are waiting in the pipe, and nothing is replaced."""
    import subprocess
    import sys

    script = (
        "import sys, time, nbtrack\n"
        "run = nbtrack.init(project='test', dir=sys.argv[1], id='paused')\n"
        "for i in range(1000): run.log({'i': i})\n"
        "print('logging', flush=True)\n"
        "sys.stdin.readline()\n"  # the test stops this process here, then resumes it
        "for i in range(1000, 2000): run.log({'i': i})\n"
        "run.finish()\n"
        "print(run.restarts, len(run.notices), flush=True)\n"
    )
    env = {**os.environ, "NBTRACK_HANG_TIMEOUT": "2"}
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "root")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    assert child.stdout.readline().strip() == "logging"
    time.sleep(1.5)  # heartbeats are flowing
    child.send_signal(signal.SIGSTOP)
    time.sleep(5)  # well past the hang timeout
    child.send_signal(signal.SIGCONT)
    child.stdin.write("\n")
    child.stdin.flush()
    out, _ = child.communicate(timeout=60)
    assert out.split() == ["0", "0"]  # no restart, nothing said
    assert [r["i"] for r in stored_history(tmp_path / "root", "paused")] == list(range(2000))


def test_a_process_that_hangs_while_finish_waits_is_replaced_and_finish_completes(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped a moment after finish() began (before its first heartbeat, maybe): the run's first
    answer already armed the watchdog, so it is replaced and finish() stores every row."""
    monkeypatch.setenv("NBTRACK_HANG_TIMEOUT", "2")
    run = nbtrack.init(project="test", dir=root, id="finishhang")
    for i in range(40_000):
        run.log(row(i))
    pid = internal_pid(run)
    stopper = threading.Timer(0.1, os.kill, (pid, signal.SIGSTOP))
    stopper.start()
    run.finish()
    stopper.join()
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
    assert run.restarts == 1 and run.state == "finished"
    check_history(stored_history(root, "finishhang"), 40_000)


def test_a_damaged_spill_file_costs_its_rows_only_and_says_how_many(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spill file cut short while the internal process is stopped, then that process killed:
    the new one gets every row the file still holds intact and none of the damaged bytes. The rows
    lost are counted exactly, said, and the run ends crashed, not finished."""
    rows = 150_000
    run, pid, outbox = spilling_run(root, monkeypatch, "cut")
    for i in range(rows):
        run.log(row(i))
    deadline = time.monotonic() + 30
    while outbox.calls_encoded < rows and time.monotonic() < deadline:
        time.sleep(0.05)
    spill = run.dir / "outbox.spill"
    os.truncate(spill, spill.stat().st_size // 2)
    os.kill(pid, signal.SIGKILL)
    wait_for_new_process(run, pid)
    run.finish()

    stored = stored_history(root, "cut")
    kept = [r["i"] for r in stored]
    assert kept == sorted(set(kept)), "a row stored twice or out of order"
    assert 0 < rows - len(kept) < rows
    assert run.rows_lost == rows - len(kept)
    assert run.restarts == 1  # the damaged bytes never reached (and killed) a new process
    assert stored_run(root, "cut").state == "crashed" and run.state == "crashed"
    said = [n for n in run.notices if "spill file" in n]
    assert len(said) == 2 and "the rows kept there are lost" in said[0]  # once when found, once at the end
    assert f"{run.rows_lost} logged rows were lost" in said[-1] and "marked crashed" in said[-1]
    for got in stored:  # the rows kept are the rows logged
        if got["i"] % 97 and got["i"] % 1001:
            assert got["x"] == got["i"] * 0.5


def test_a_run_that_loses_its_process_for_good_counts_exactly_the_rows_its_log_lacks(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed more often than the restart budget allows, mid-burst: the rows the run says it lost
    are exactly the logged rows its transaction log lacks (acknowledgements lag the log; the log
    is what counts), and finish() returns with the command that delivers the rest."""
    from nbtrack import jsonutil, txlog
    from nbtrack.transport import connection

    monkeypatch.setattr(connection, "MAX_RESTARTS", 2)
    run = nbtrack.init(project="test", dir=root, id="doomed")
    logged = 0
    for _kill in range(3):
        pid = internal_pid(run)
        for _ in range(20):
            for _ in range(500):
                run.log({"i": logged, "x": logged * 0.5})
                logged += 1
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(AssertionError):
            wait_for_new_process(run, pid, seconds=10)
    deadline = time.monotonic() + 10
    while run._connection is not None and run._connection.lost_reason is None and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(100):  # after the run lost its process: counted, not queued
        run.log({"i": logged, "x": logged * 0.5})
        logged += 1
    started = time.monotonic()
    run.finish()
    assert time.monotonic() - started < 5

    log = run._settings.log_path
    in_log = [
        jsonutil.loads(record.history.data_json)["i"]
        for record in txlog.iter_records(log)
        if record.HasField("history")
    ]
    assert in_log == list(range(len(in_log))), "the log holds a prefix of the rows, once each"
    assert run.rows_lost == logged - len(in_log)
    assert f"{run.rows_lost} logged rows are in no transaction log" in run.notices[-1]
    assert f"`nbtrack sync {log}` delivers them" in run.notices[-1]
    report = sync_log(log, f"sqlite:///{root / 'nbtrack.db'}")
    assert report.error is None
    assert [r["i"] for r in stored_history(root, "doomed")] == in_log


def test_finish_timeout_with_big_rows_still_in_this_process_loses_none_and_says_where_they_are(
    root: Path,
) -> None:
    """finish(timeout=1) while 100 MB of rows are still being handed over (the store locked, so it
    cannot end in time): it returns on time, says how many rows are still in this process, and
    this process goes on handing them over: the log gets every one, in order."""  # 400 MB
    from nbtrack import jsonutil, txlog
    from tests.helpers import Locker

    rows, pad = 2000, "x" * 200_000
    run = nbtrack.init(project="test", dir=root, id="big")
    run.log({"i": -1})
    run.status()
    locker = Locker(root / "nbtrack.db", seconds=120)
    locker.start()
    assert locker.locked.wait(30)
    try:
        for i in range(rows):
            run.log({"i": i, "pad": pad})
        started = time.monotonic()
        run.finish(timeout=1)
        took = time.monotonic() - started
        assert run._connection is not None
        process = run._connection.process
        assert process.join(120)  # it writes everything it was handed to the log, then exits
    finally:
        locker.stop_now()
    assert took < 2.5, f"finish(timeout=1) took {took:.1f} s"
    said = [n for n in run.notices if "finish() stopped waiting" in n]
    assert len(said) == 1 and f"`nbtrack sync {run._settings.log_path}`" in said[0], run.notices
    logged = [
        jsonutil.loads(r.history.data_json)["i"]
        for r in txlog.iter_records(run._settings.log_path)
        if r.HasField("history")
    ]
    assert logged == list(range(-1, rows)) and run.rows_lost == 0
