"""Resuming a run: `init(id=..., resume="allow" | "must")` continues a stored run where it stopped
(steps, lines, runtime, summary, config), locally, on a server, and after its kernel was killed."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.sync import find_logs, sync_log
from tests.helpers import stored_history, stored_run


def log_rows(run: nbtrack.Run, start: int, count: int) -> None:
    for i in range(start, start + count):
        run.log({"i": i, "loss": 1.0 / (i + 1)})


def test_resume_continues_steps_lines_config_and_summary(root: Path) -> None:
    first = nbtrack.init(project="test", dir=root, id="long", config={"lr": 0.1})
    log_rows(first, 0, 100)
    first.summary["best"] = 7
    first.finish()

    again = nbtrack.init(project="test", dir=root, id="long", resume="allow", config={"batch": 32})
    assert dict(again.config) == {"lr": 0.1, "batch": 32}
    log_rows(again, 100, 50)
    again.finish()

    history = stored_history(root, "long")
    assert [row["i"] for row in history] == list(range(150))
    assert [row["_step"] for row in history] == list(range(150))
    runtimes = [row["_runtime"] for row in history]
    assert runtimes == sorted(runtimes)  # _runtime goes on from where the first segment stopped
    run = stored_run(root, "long")
    assert run.state == "finished"
    assert run.config == {"lr": 0.1, "batch": 32}
    assert run.summary["best"] == 7  # set in the first segment, kept
    assert run.summary["i"] == 149
    assert run.created_at == pytest.approx(first._settings.start_time, abs=1.0)
    assert len(list(find_logs(root / "runs"))) == 2


def test_replaying_both_segments_rebuilds_the_same_run(root: Path, tmp_path: Path) -> None:
    first = nbtrack.init(project="test", dir=root, id="twice")
    log_rows(first, 0, 30)
    first.finish()
    again = nbtrack.init(project="test", dir=root, id="twice", resume="must")
    log_rows(again, 30, 20)
    again.log({"i": 50, "loss": math.nan})
    again.finish()

    copy = tmp_path / "copy"
    copy.mkdir()
    for log in find_logs(root / "runs"):
        assert sync_log(log, f"sqlite:///{copy / 'nbtrack.db'}").error is None
    replayed = stored_history(copy, "twice")
    original = stored_history(root, "twice")
    assert [r["_step"] for r in replayed] == list(range(51))
    assert [r["i"] for r in replayed] == [r["i"] for r in original] == list(range(51))
    assert math.isnan(replayed[-1]["loss"])


def test_resume_must_needs_a_stored_run_and_allow_starts_a_new_one(root: Path) -> None:
    with pytest.raises(UsageError, match="no stored run 'ghost'"):
        nbtrack.init(project="test", dir=root, id="ghost", resume="must")
    run = nbtrack.init(project="test", dir=root, id="ghost", resume="allow")
    log_rows(run, 0, 3)
    run.finish()
    assert [r["_step"] for r in stored_history(root, "ghost")] == [0, 1, 2]


def test_a_reused_id_without_resume_is_refused_and_says_how_to_resume(root: Path) -> None:
    nbtrack.init(project="test", dir=root, id="taken").finish()
    with pytest.raises(UsageError, match="resume='allow'"):
        nbtrack.init(project="test", dir=root, id="taken")


def test_a_resumed_run_refuses_a_changed_hyperparameter_before_starting(root: Path) -> None:
    nbtrack.init(project="test", dir=root, id="cfg", config={"lr": 0.1}).finish()
    with pytest.raises(UsageError, match="config key 'lr'"):
        nbtrack.init(project="test", dir=root, id="cfg", resume="allow", config={"lr": 0.2})
    assert len(list(find_logs(root / "runs"))) == 1  # nothing started


def test_offline_runs_cannot_resume(root: Path) -> None:
    nbtrack.init(project="test", dir=root, id="off", mode="offline").finish()
    with pytest.raises(UsageError, match="offline"):
        nbtrack.init(project="test", dir=root, id="off", mode="offline", resume="allow")


VICTIM = """
import sys, time
import nbtrack
run = nbtrack.init(project="test", dir=sys.argv[1], id="both")
for i in range(20000):
    run.log({"i": i})
run.status()  # a round trip: every row is with the internal process
time.sleep(0.2)  # and in its log (handed to the OS every 20 ms)
print(run._connection.process.pid, flush=True)
time.sleep(60)
"""


def test_resume_after_both_processes_died_replays_the_log(root: Path) -> None:
    user = subprocess.Popen([sys.executable, "-c", VICTIM, str(root)], stdout=subprocess.PIPE, text=True)
    assert user.stdout is not None
    internal = int(user.stdout.readline())
    os.kill(user.pid, signal.SIGSTOP)  # frozen: it cannot start a new internal process
    os.kill(internal, signal.SIGKILL)  # dies mid-run: the run is left "running"
    os.kill(user.pid, signal.SIGKILL)
    user.wait(10)
    assert stored_run(root, "both").state == "running"

    again = nbtrack.init(project="test", dir=root, id="both", resume="allow")
    log_rows(again, 20000, 100)
    again.finish()
    history = stored_history(root, "both")
    assert [r["i"] for r in history] == list(range(20100))  # what the store had not got came from the log
    assert [r["_step"] for r in history] == list(range(20100))


def test_resume_on_a_tracking_server(tmp_path: Path) -> None:
    from tests.serving import start_server

    server = start_server(tmp_path / "server")
    try:
        first = nbtrack.init(project="test", dir=tmp_path / "client", id="remote", base_url=server.url)
        log_rows(first, 0, 200)
        first.finish()
        again = nbtrack.init(
            project="test", dir=tmp_path / "client2", id="remote", base_url=server.url, resume="must"
        )
        log_rows(again, 200, 100)
        again.finish()
        api = nbtrack.Api(base_url=server.url)
        run = api.run("test/remote")
        history = run.history()
        assert [r["i"] for r in history] == list(range(300))
        assert [r["_step"] for r in history] == list(range(300))
        assert run.state == "finished"
    finally:
        server.stop()


def test_a_killed_kernel_leaves_a_crashed_run_that_a_new_kernel_resumes(tmp_path: Path, root: Path) -> None:
    pytest.importorskip("ipykernel")
    from tests.test_kernel import Kernel

    k = Kernel(tmp_path, root)
    try:
        k.execute("%load_ext nbtrack")
        k.execute(
            "run = nbtrack.init(project='test', id='phoenix')\n"
            "for i in range(20000):\n    run.log({'i': i})\n"
            "_ = run.status()"  # a round trip: every row is with the internal process
        )
        k.manager.signal_kernel(signal.SIGKILL)  # no atexit, no finish()
    finally:
        k.client.stop_channels()
        k.manager.shutdown_kernel(now=True)  # reaps the dead kernel
    deadline = time.monotonic() + 60
    while (stored_run(root, "phoenix") is None or stored_run(root, "phoenix").state != "crashed") and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert stored_run(root, "phoenix").state == "crashed"
    assert [r["i"] for r in stored_history(root, "phoenix")] == list(range(20000))

    k = Kernel(tmp_path, root)
    try:
        k.execute("%load_ext nbtrack")
        reply, _ = k.execute(
            "run = %nbtrack resume phoenix --project test\n"
            "for i in range(20000, 20500):\n    run.log({'i': i})\n"
            "run.finish()"
        )
        assert reply["status"] == "ok", reply
        reply, _ = k.execute("%nbtrack resume phoenix --project test")  # finished, not live: resumes again
        assert reply["status"] == "ok", reply
        k.execute("nbtrack.sdk.run.finish()")
        reply, messages = k.execute("%nbtrack resume nosuchrun --project test")
        shown = " ".join(str(m["content"]) for m in messages)
        assert "%nbtrack resume: resume='must' but there is no stored run 'nosuchrun'" in shown, shown
    finally:
        k.close()
    history = stored_history(root, "phoenix")
    assert [r["i"] for r in history] == list(range(20500))
    assert [r["_step"] for r in history] == list(range(20500))
    assert stored_run(root, "phoenix").state == "finished"
