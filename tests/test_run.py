"""The record flow through a real internal process into the real store: init, log, config,
summary, define_metric, finish, and the step rules."""

from __future__ import annotations

import math
import time
from pathlib import Path

import psutil
import pytest

import nbtrack
from nbtrack.errors import UsageError
from tests.helpers import Locker, stored_history, stored_run


def test_init_log_finish_stores_every_row_config_and_summary(root: Path) -> None:
    run = nbtrack.init(
        project="test", dir=root, config={"lr": 0.1, "layers": [64, 32]}, tags=["a"], notes="n"
    )
    assert nbtrack.run is run
    for i in range(100):
        run.log({"loss": 1 / (i + 1), "nested": {"acc": i / 100}})
    assert run._connection.process is not None
    internal_pid = run._connection.process.pid
    run.finish()
    assert nbtrack.run is None
    assert run.state == "finished"
    assert internal_pid is not None and not psutil.pid_exists(internal_pid)  # no orphan left behind

    stored = stored_run(root, run.id)
    assert stored.state == "finished"
    assert stored.config == {"lr": 0.1, "layers": [64, 32]}
    assert stored.tags == ["a"] and stored.notes == "n"
    assert stored.summary["loss"] == 1 / 100 and stored.summary["nested/acc"] == 0.99
    rows = stored_history(root, run.id)
    assert [r["_step"] for r in rows] == list(range(100))
    assert rows[5]["loss"] == 1 / 6 and rows[5]["nested/acc"] == 0.05
    assert all(r["_runtime"] >= 0 and r["_timestamp"] > 1e9 for r in rows)


def test_run_properties_and_its_folder(root: Path) -> None:
    with nbtrack.init(project="test", name="first", id="abc123", dir=root) as run:
        assert (run.id, run.name, run.project, run.entity, run.mode) == (
            "abc123",
            "first",
            "test",
            "local",
            "local",
        )
        assert run.url is None
        assert run.dir.parent == root / "runs"
    logs = list(run.dir.glob("*.nbt"))
    assert logs == [run.dir / "run-abc123.nbt"]


def test_commit_false_merges_into_one_row(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"a": 1}, commit=False)
        run.log({"b": 2}, commit=False)
        run.log({"c": 3})
        run.log({"a": 4})
    rows = stored_history(root, run.id)
    assert [(r["_step"], r.get("a"), r.get("b"), r.get("c")) for r in rows] == [
        (0, 1, 2, 3),
        (1, 4, None, None),
    ]


def test_explicit_steps_jump_forward_and_a_step_below_is_refused_with_a_warning(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"x": 0})
        run.log({"x": 10}, step=10)
        run.log({"x": 5}, step=5)  # backwards: refused, named in a notice
        run.log({"x": 11})
    rows = stored_history(root, run.id)
    assert [(r["_step"], r["x"]) for r in rows] == [(0, 0), (10, 10), (11, 11)]
    assert len(run.notices) == 1 and "step 5 is not after step 10, the last step logged" in run.notices[0]


def test_a_pending_row_is_committed_when_the_step_moves_on(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"a": 1}, step=3, commit=False)
        run.log({"b": 2}, step=3, commit=False)
        run.log({"c": 3}, step=7, commit=False)  # completes step 3
    rows = stored_history(root, run.id)  # finish() commits the row pending at step 7
    assert [(r["_step"], {k: v for k, v in r.items() if not k.startswith("_")}) for r in rows] == [
        (3, {"a": 1, "b": 2}),
        (7, {"c": 3}),
    ]


def test_define_metric_summaries(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.define_metric("loss", summary="min")
        run.define_metric("acc", summary="max,last")
        run.define_metric("val/*", summary="mean")
        run.define_metric("noise", summary="none")
        for loss, acc in [(3.0, 0.1), (1.0, 0.9), (2.0, 0.5)]:
            run.log({"loss": loss, "acc": acc, "val/a": loss, "noise": 7, "plain": acc})
        assert run.summary["loss"] == {"min": 1.0}
    summary = stored_run(root, run.id).summary
    assert summary["loss"] == {"min": 1.0}
    assert summary["acc"] == {"max": 0.9, "last": 0.5}
    assert summary["val/a"] == {"mean": 2.0}
    assert "noise" not in summary
    assert summary["plain"] == 0.5


def test_define_metric_rejects_an_unknown_summary(root: Path) -> None:
    with (
        nbtrack.init(project="test", dir=root) as run,
        pytest.raises(ValueError, match="unknown summary 'median'"),
    ):
        run.define_metric("loss", summary="median")


def test_summary_set_by_the_user_and_read_back(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"loss": 0.5})
        run.summary["best"] = 0.25
        run.summary.update({"note": "ok"})
        assert run.summary["best"] == 0.25
        assert dict(run.summary) == {"loss": 0.5, "best": 0.25, "note": "ok"}
    assert stored_run(root, run.id).summary == {"loss": 0.5, "best": 0.25, "note": "ok"}
    assert run.summary["best"] == 0.25  # still readable after finish


def test_config_updates_and_conflicts(root: Path) -> None:
    with nbtrack.init(project="test", dir=root, config={"lr": 0.1}) as run:
        run.config["batch"] = 32
        run.config.update({"opt": {"name": "adam", "betas": [0.9, 0.99]}})
        run.config.lr = 0.1  # the same value again is fine
        with pytest.raises(UsageError, match=r"config key 'lr' is already 0\.1"):
            run.config["lr"] = 0.2
        with pytest.raises(TypeError, match=r"config\['bad'\]"):
            run.config.update({"ok": 1, "bad": object()})
        assert "ok" not in run.config  # all-or-nothing
        assert run.config.batch == 32
    assert stored_run(root, run.id).config == {
        "lr": 0.1,
        "batch": 32,
        "opt": {"name": "adam", "betas": [0.9, 0.99]},
    }


def test_nan_and_infinities_round_trip_exactly(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"a": 1.0})
        run.log({"a": float("nan"), "b": float("inf"), "c": -math.inf, "d": [1.0, float("nan")]})
        run.log({"a": 2.0})
    rows = stored_history(root, run.id)
    assert math.isnan(rows[1]["a"]) and rows[1]["b"] == math.inf and rows[1]["c"] == -math.inf
    assert rows[1]["d"][0] == 1.0 and math.isnan(rows[1]["d"][1])
    assert [r["_step"] for r in rows] == [0, 1, 2]


def test_an_exception_in_a_with_block_marks_the_run_failed(root: Path) -> None:
    with pytest.raises(RuntimeError), nbtrack.init(project="test", dir=root) as run:
        run.log({"a": 1})
        raise RuntimeError("boom")
    assert run.state == "failed"
    assert stored_run(root, run.id).state == "failed"


def test_calls_in_the_wrong_order_get_clear_errors(root: Path) -> None:
    with pytest.raises(UsageError, match=r"call nbtrack.init\(\) first"):
        nbtrack.log({"a": 1})
    run = nbtrack.init(project="test", dir=root)
    nbtrack.log({"a": 1})
    nbtrack.finish()
    with pytest.raises(UsageError, match="is finished; start a new one"):
        run.log({"a": 2})
    with pytest.raises(UsageError, match="is finished"):
        run.config["x"] = 1
    run.finish()  # a second finish is a no-op
    assert [r["a"] for r in stored_history(root, run.id)] == [1]


def test_a_bad_call_logs_nothing_and_the_next_good_call_works(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        run.log({"a": 1})
        with pytest.raises(TypeError, match="'bad'"):
            run.log({"a": 2, "bad": {1, 2}})
        run.log({"a": 3})
    assert [(r["_step"], r["a"]) for r in stored_history(root, run.id)] == [(0, 1), (1, 3)]


def test_sampled_history_is_bounded_and_ends_at_the_last_step(root: Path) -> None:
    with nbtrack.init(project="test", dir=root) as run:
        for i in range(5000):
            run.log({"x": float(i)})
        sampled = run.sampled_history()
        status = run.status()
    steps, values = sampled["x"]
    assert len(steps) <= 513 and steps[0] == 0 and steps[-1] == 4999 and values[-1] == 4999.0
    assert steps == sorted(steps)
    assert status.rows_logged == 5000 and status.step == 4999


def test_offline_mode_writes_only_the_log(root: Path) -> None:
    with nbtrack.init(project="test", dir=root, mode="offline") as run:
        run.log({"a": 1})
    assert run.state == "finished"
    assert len(list(run.dir.glob("*.nbt"))) == 1
    assert not (root / "nbtrack.db").exists()


def test_disabled_mode_accepts_every_call_and_stores_nothing(root: Path) -> None:
    with nbtrack.init(project="test", dir=root, mode="disabled") as run:
        run.log({"a": 1})
        run.config["b"] = 2
        run.define_metric("a", summary="max")
    assert run.state == "finished"
    assert not root.exists()


def test_environment_settings_apply_and_arguments_win(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBTRACK_PROJECT", "from-env")
    monkeypatch.setenv("NBTRACK_DIR", str(root))
    monkeypatch.setenv("NBTRACK_MODE", "offline")
    with nbtrack.init() as run:
        assert (run.project, run.mode) == ("from-env", "offline")
        assert run.dir.is_relative_to(root)
    with nbtrack.init(project="arg", mode="local") as run:
        assert (run.project, run.mode) == ("arg", "local")


def test_a_killed_internal_process_is_replaced_and_nothing_is_lost(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root, id="phoenix")
    run.log({"a": 1})
    run.summary["note"] = "kept"
    assert run._connection.process is not None
    run._connection.process.kill()
    assert run.summary["a"] == 1  # answered by the new process, rebuilt from the log
    run.log({"a": 2})
    run.finish()
    assert run.restarts == 1
    assert any("a new one took over" in notice for notice in run.notices)
    assert [r["a"] for r in stored_history(root, "phoenix")] == [1, 2]
    stored = stored_run(root, "phoenix")
    assert (stored.state, stored.summary["note"], stored.summary["a"]) == ("finished", "kept", 2)


def test_an_irreplaceable_internal_process_never_hangs_the_user(root: Path) -> None:
    import time

    from nbtrack.errors import InternalProcessError
    from nbtrack.transport.restart import MAX_RESTARTS
    from nbtrack.txlog import iter_records

    run = nbtrack.init(project="test", dir=root)
    run.log({"a": 1})
    run._connection.restarts = MAX_RESTARTS  # the budget is spent: this death is final
    assert run._connection.process is not None
    run._connection.process.kill()
    started = time.monotonic()
    with pytest.raises(InternalProcessError, match="internal process has exited"):
        run.summary["a"]
    run.log({"a": 2})  # does not raise into the training loop; counted and reported as lost
    in_log = sum(1 for r in iter_records(run._settings.log_path) if r.HasField("history"))
    assert run.rows_lost == 2 - in_log  # {"a": 1} too, if the kill came before the log had it
    assert any("NOT stored" in notice for notice in run.notices)
    run.finish()  # returns: the training script is not failed for the tracker's trouble
    assert time.monotonic() - started < 5
    said = run.notices[-1]
    assert "could not be ended" in said and f"{2 - in_log} logged rows are in no transaction log" in said
    assert f"nbtrack sync {run.dir}" in said and run.state == "running"


def test_a_run_id_cannot_be_reused_by_accident(root: Path) -> None:
    with nbtrack.init(project="test", dir=root, id="same") as run:
        run.log({"a": 1})
    with pytest.raises(UsageError, match="run id 'same' is already taken"):
        nbtrack.init(project="test", dir=root, id="same")
    with pytest.raises(UsageError, match="resume='must' but there is no stored run 'other'"):
        nbtrack.init(project="test", dir=root, id="other", resume="must")
    assert [r["a"] for r in stored_history(root, "same")] == [1]  # untouched (resuming: test_resume.py)


def test_poll_exit_reports_what_is_pending(root: Path) -> None:
    from nbtrack.proto import nbtrack_pb2 as pb

    run = nbtrack.init(project="test", dir=root)
    run.log({"x": -1})
    deadline = time.monotonic() + 30
    while not stored_history(root, run.id) and time.monotonic() < deadline:
        time.sleep(0.05)  # the run and its first row are in the store
    locker = Locker(root / "nbtrack.db", seconds=120)  # from now on the store takes nothing
    locker.start()
    assert locker.locked.wait(30)
    try:
        for i in range(2000):
            run.log({"x": i})
        deadline = time.monotonic() + 30
        while True:  # every row reaches the internal process, and none the store
            poll = run._request(pb.Request(poll_exit=pb.PollExitRequest()), "polling").response.poll_exit
            if (poll.rows_pending == 2000 and poll.retrying) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not poll.done  # no exit record yet
        assert poll.rows_pending == 2000 and poll.bytes_pending == 0  # bytes count for servers only
        assert poll.retrying  # the store refuses for now
    finally:
        locker.stop_now()
    run.finish()
    assert [r["x"] for r in stored_history(root, run.id)] == list(range(-1, 2000))


def test_finish_waits_out_a_large_backlog(root: Path) -> None:
    run = nbtrack.init(project="test", dir=root)
    rows = 200_000
    for i in range(rows):
        run.log({"i": i})
    run.finish()  # the rows are mostly still in flight here
    assert run.state == "finished"
    assert [r["i"] for r in stored_history(root, run.id)] == list(range(rows))


def test_live_results_are_pushed_while_the_run_changes_and_stay_bounded(root: Path) -> None:
    import itertools
    import time

    from nbtrack.sdk.run import Run
    from nbtrack.settings import resolve_settings

    received = []
    run = Run(resolve_settings(project="test", dir=root), live_interval=0.1)
    run.on_live = received.append
    for i in range(20):
        for j in range(2000):
            run.log({f"k{k}": float(i * 2000 + j) for k in range(20)})
        time.sleep(0.05)
    run.finish()
    assert len(received) >= 5
    last = received[-1]
    assert last.rows_logged == 40000 and last.step == 39999
    assert len(last.series) <= 16 and all(len(s.steps) <= 100 for s in last.series)
    assert last.series[0].steps[-1] == 39999
    # Never faster than the interval while the run logs: finish() forces one push at once.
    running = [live for live in received if live.state == "running"]
    gaps = [b.runtime - a.runtime for a, b in itertools.pairwise(running)]
    assert len(running) >= 5 and min(gaps) >= 0.09
    assert last.state == "finishing"


def test_ctrl_c_in_finish_leaves_the_run_finishing_and_a_second_finish_completes(root: Path) -> None:
    import _thread
    import signal
    import threading

    # interrupt_main() does nothing unless Python's own SIGINT handler is installed.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGINT)

    run = nbtrack.init(project="test", dir=root, id="hasty")
    for i in range(200_000):
        run.log({"i": i})
    locker = Locker(root / "nbtrack.db", seconds=120)  # finish() cannot end before the Ctrl-C
    locker.start()
    assert locker.locked.wait(30)
    threading.Timer(0.3, _thread.interrupt_main).start()  # Ctrl-C while finish() waits
    try:
        with pytest.raises(KeyboardInterrupt):
            run.finish()
    finally:
        locker.stop_now()
    with pytest.raises(UsageError, match="finished"):
        run.log({"i": -1})  # finishing: no more rows
    run.finish()
    assert run.state == "finished"
    assert [r["i"] for r in stored_history(root, "hasty")] == list(range(200_000))
    assert stored_run(root, "hasty").state == "finished"


def test_finish_timeout_is_honoured_and_names_what_is_left(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The store is locked (another process holds an EXCLUSIVE transaction on it): finish(timeout=3)
    returns in about 3 s, says how many rows are not stored and the command that delivers them;
    that command then stores every row exactly once."""
    import subprocess
    import sys

    from nbtrack.settings import store_url
    from nbtrack.sync import sync_log

    run = nbtrack.init(project="test", dir=root, id="timeout")
    for i in range(100):
        run.log({"i": i})
    deadline = time.monotonic() + 30
    while run.status().rows_stored < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    lock = (
        "import sqlite3, sys, time\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "time.sleep(8)\n"
        "db.execute('COMMIT')\n"
    )
    locker = subprocess.Popen(
        [sys.executable, "-c", lock, str(root / "nbtrack.db")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        for i in range(100, 5000):
            run.log({"i": i})
        started = time.monotonic()
        run.finish(timeout=3)
        took = time.monotonic() - started
    finally:
        locker.wait(30)
    assert took < 4.0, f"finish(timeout=3) took {took:.1f} s"
    # stderr is not a terminal here: progress comes as whole lines, not rewritten in place.
    progress = [line for line in capfd.readouterr().err.splitlines() if "waiting for" in line]
    assert len(progress) == 1 and "\r" not in progress[0], progress
    log = run.dir / "run-timeout.nbt"
    said = [n for n in run.notices if "finish() stopped waiting" in n]
    assert len(said) == 1 and f"`nbtrack sync {log}`" in said[0], run.notices
    assert run.state == "running"
    # The internal process writes what it holds to the log, then exits on its own.
    process = run._connection.process
    assert process.join(60)
    report = sync_log(log, store_url(root))
    assert report.error is None and report.complete
    assert [r["i"] for r in stored_history(root, "timeout")] == list(range(5000))
    assert stored_run(root, "timeout").state == "finished"
