"""A run whose writer died with its internal process (both killed, its machine gone) reads
`crashed`, not `running` forever; a live run that logs nothing stays `running` (its heartbeat);
a run that speaks again goes back to `running` (store/liveness.py, server/silent_runs.py).

Store-level tests run on SQLite and on a PostgreSQL database of their own (marking silent runs
looks at every run of a database, so a shared one would see other tests' runs)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.store import LineBatch, Store
from tests import serving
from tests.pg_database import own_pg_url

own_pg_url = own_pg_url  # a fixture
RUN = ("me", "p", "r1")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store.at_root(tmp_path / "root")
    else:
        opened = Store(request.getfixturevalue("own_pg_url"))
    yield opened
    opened.close()


def silent_for_a_moment() -> None:
    """Let time pass beyond the 0.05 s window the tests mark with."""
    time.sleep(0.1)


def test_only_silent_running_runs_are_marked_and_each_once(store: Store) -> None:
    store.upsert_run(*RUN, state="running")
    store.upsert_run("me", "p", "done", state="running")
    store.finish_run("me", "p", "done", state="finished", exit_code=0)
    silent_for_a_moment()
    store.upsert_run("me", "p", "fresh", state="running")  # heard from just now
    assert store.mark_silent_runs_crashed(0.05) == [RUN]
    assert store.mark_silent_runs_crashed(0.05) == []  # marked once
    run = store.get_run(*RUN)
    assert run is not None and (run.state, run.exit_code) == ("crashed", None)
    assert store.get_run("me", "p", "done").state == "finished"  # type: ignore[union-attr]
    assert store.get_run("me", "p", "fresh").state == "running"  # type: ignore[union-attr]
    assert store.mark_silent_runs_crashed(3600) == []


@pytest.mark.parametrize(
    "speak",
    [
        pytest.param(lambda s: s.write_history(*RUN, 0, ['{"_step": 0, "x": 1}'], steps=[0]), id="history"),
        pytest.param(lambda s: s.write_output(*RUN, 0, ["a line"]), id="output"),
        pytest.param(lambda s: s.write_events(*RUN, 0, ['{"cpu": 1}']), id="events"),
        pytest.param(lambda s: s.write_stream(*RUN), id="empty file-stream post"),
        pytest.param(lambda s: s.touch_run(*RUN), id="heartbeat"),
        pytest.param(lambda s: s.upsert_run_inserted(*RUN, by_writer=True, config={}), id="client upsert"),
    ],
)
def test_a_run_marked_silent_that_speaks_again_is_running(store: Store, speak: Any) -> None:
    store.upsert_run(*RUN, state="running")
    silent_for_a_moment()
    assert store.mark_silent_runs_crashed(0.05) == [RUN]
    speak(store)
    assert store.get_run(*RUN).state == "running"  # type: ignore[union-attr]


def test_edits_by_others_and_real_ends_are_not_revived(store: Store) -> None:
    store.upsert_run(*RUN, state="running")
    silent_for_a_moment()
    store.mark_silent_runs_crashed(0.05)
    # A rename or new tags (someone reading the run) do not bring a dead run back.
    store.upsert_run(*RUN, display_name="renamed", tags=["x"])
    store.write_summary(*RUN, {"best": 1})
    assert store.get_run(*RUN).state == "crashed"  # type: ignore[union-attr]
    # A run that ended crashed (its exit record says so, with an exit code) stays crashed.
    store.upsert_run("me", "p", "ended", state="running")
    store.finish_run("me", "p", "ended", state="crashed", exit_code=-1)
    store.write_history("me", "p", "ended", 0, ['{"_step": 0}'], steps=[0])
    assert store.get_run("me", "p", "ended").state == "crashed"  # type: ignore[union-attr]
    # Nor a finished one: a late post changes no state.
    store.upsert_run("me", "p", "fin", state="running")
    store.finish_run("me", "p", "fin", state="finished", exit_code=0)
    store.write_stream("me", "p", "fin", output_lines=LineBatch(0, ["late"]))
    assert store.get_run("me", "p", "fin").state == "finished"  # type: ignore[union-attr]


def test_replicas_marking_at_once_mark_each_run_once(own_pg_url: str) -> None:
    """Two server replicas share a database: marking at the same moment reports every run once."""
    stores = [Store(own_pg_url) for _ in range(4)]
    try:
        for i in range(50):
            stores[0].upsert_run("me", "p", f"r{i}", state="running")
        silent_for_a_moment()
        found: list[list[Any]] = []
        start = threading.Barrier(len(stores))

        def mark(store: Store) -> None:
            start.wait()
            found.append(store.mark_silent_runs_crashed(0.05))

        threads = [threading.Thread(target=mark, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        marked = [run for each in found for run in each]
        assert sorted(marked) == sorted(("me", "p", f"r{i}") for i in range(50))
    finally:
        for store in stores:
            store.close()


# -- a local run: its internal process's heartbeat, and a reader that marks silent runs ----------

IDLE_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import nbtrack
    run = nbtrack.init(project="p", dir=sys.argv[1], id="idle")
    run.log({"x": 1})
    run.status()
    print(run._connection.process.pid, flush=True)
    time.sleep(120)
    """
)


def test_a_local_run_killed_with_its_internal_process_reads_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    env = {
        **serving.subprocess_env(),
        "NBTRACK_ALIVE_INTERVAL": "0.3",  # an idle live run says so every 0.3 s
        "NBTRACK_STATS_INTERVAL": "0",  # no system samples: the heartbeat alone keeps it alive
    }
    # The internal process lives in a session of its own (a Ctrl-C for the user's group is not
    # for it), and marks the run crashed itself when its user process dies. Both killed at once
    # (a job's cgroup ended, the OOM killer, a lost machine) leave nobody to say so: the user
    # process stopped first, so that it cannot replace its internal process in between.
    user = subprocess.Popen(
        [sys.executable, "-c", IDLE_SCRIPT, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert user.stdout is not None
        internal = int(user.stdout.readline())
        monkeypatch.setenv("NBTRACK_CRASHED_AFTER", "2")
        # Idle but alive, for longer than the window: every reader still sees it running.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            with nbtrack.Api(dir=root) as api:
                assert api.run("p/idle").state == "running"
            time.sleep(0.5)
    finally:
        user.send_signal(signal.SIGSTOP)
        with contextlib.suppress(ProcessLookupError):
            os.kill(internal, signal.SIGKILL)
        user.kill()
        user.wait(10)

    def state() -> str:
        with nbtrack.Api(dir=root) as api:
            return api.run("p/idle").state

    wait_for(lambda: state() == "crashed", 20, "the killed run read as crashed")
    monkeypatch.setenv("NBTRACK_CRASHED_AFTER", "0")  # 0: never marks (and changes nothing here)
    assert state() == "crashed"


def test_crashed_after_must_be_a_number_of_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with nbtrack.init(project="p", dir=tmp_path / "root", id="a"):
        pass
    monkeypatch.setenv("NBTRACK_CRASHED_AFTER", "soon")
    with pytest.raises(nbtrack.errors.UsageError, match="NBTRACK_CRASHED_AFTER"):
        nbtrack.Api(dir=tmp_path / "root")


# -- the server: its SilentRuns thread, nbtrack's online heartbeat --------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def quick_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[serving.ServerProcess]:
    """A server that marks runs crashed after 2 s of silence."""
    db_url = None if request.param == "sqlite" else request.getfixturevalue("own_pg_url")
    served = serving.start_server(tmp_path, db_url=db_url, extra_args=["--crashed-after", "2"])
    yield served
    served.stop()


def test_server_marks_a_silent_run_crashed_and_a_post_brings_it_back(
    quick_server: serving.ServerProcess,
) -> None:
    client = serving.Client(quick_server.url)
    client.upsert("p", "gone", state="running")
    wait_for(lambda: client.run("p", "gone", "state")["state"] == "crashed", 20, "marked crashed")
    assert "marked crashed: nothing heard from it" in quick_server.log()
    # An edit through the API (upsertBucket by id, as wandb's run.update() sends it) is no sign of life.
    client.upsert("p", "gone", id="local/p/gone", tags=["looked-at"])
    assert client.run("p", "gone", "state")["state"] == "crashed"
    # wandb-core's heartbeat is an empty post (`{}`, every 30 s): the run is alive after all.
    assert client.stream("p", "gone", {}).status_code == 200
    assert client.run("p", "gone", "state")["state"] == "running"


def test_an_idle_online_run_stays_running_on_a_server_that_marks_silent_runs(
    quick_server: serving.ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBTRACK_ALIVE_INTERVAL", "0.3")
    monkeypatch.setenv("NBTRACK_STATS_INTERVAL", "0")
    client = serving.Client(quick_server.url)
    run = nbtrack.init(project="p", id="idle", base_url=quick_server.url, dir=tmp_path / "root")
    try:
        run.log({"x": 1})
        deadline = time.monotonic() + 5  # more than twice the server's 2 s window
        while time.monotonic() < deadline:
            assert client.run("p", "idle", "state")["state"] == "running"
            time.sleep(0.5)
    finally:
        run.finish()
    assert client.run("p", "idle", "state")["state"] == "finished"
