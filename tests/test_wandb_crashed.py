"""The real wandb client (0.31.0) killed mid-run, with its wandb-core, against a server that marks
silent runs crashed (`--crashed-after`): wandb.Api and nbtrack.Api read `crashed`, and resuming
the run brings it back to `running`, then `finished`, every row kept once. On SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from tests import serving
from tests.wandb_client import _PRELUDE, WandbEnv, _make_env, require_wandb

KILLED = """
import wandb, time, sys
run = wandb.init(project="wb", id="killed")
for i in range(50):
    run.log({"i": i})
print("logged", flush=True)
time.sleep(300)  # killed here
"""

RESUMED = """
import os, wandb
def api():  # a new Api for each read: one caches the runs it read
    return wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
path = os.environ["WANDB_ENTITY"] + "/wb/killed"
before = api().run(path).state
run = wandb.init(project="wb", id="killed", resume="must")
during = api().run(path).state
for i in range(50, 60):
    run.log({"i": i})
run.finish()
after = api().run(path)
emit({"before": before, "during": during, "after": after.state,
      "i": [row["i"] for row in after.scan_history(keys=["i"])]})
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WandbEnv]:
    require_wandb()
    db_url = None
    if request.param == "postgresql":
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
        db_url = serving.POSTGRES_URL
    served = serving.start_server(tmp_path, db_url=db_url, extra_args=["--crashed-after", "3"])
    try:
        yield _make_env(served, tmp_path)
    finally:
        served.stop()


def test_a_killed_wandb_run_reads_crashed_and_resuming_it_runs_again(env: WandbEnv) -> None:
    client = _start(env, KILLED)
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "logged", client.stderr.read() if client.stderr else ""
        reader = nbtrack.Api(base_url=env.server.url, api_key=env.key)
        path = f"{env.entity}/wb/killed"
        # wandb-core posts history every few seconds: wait until the 50 rows are there.
        wait_for(lambda: len(reader.run(path).history()) == 50, 60, "the 50 rows stored")
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait(10)
    wait_for(lambda: reader.run(path).state == "crashed", 30, "the killed run marked crashed")
    assert "marked crashed: nothing heard from it" in env.server.log()

    out = env.run(RESUMED)
    assert out["before"] == "crashed"
    assert out["during"] == "running"
    assert out["after"] == "finished"
    assert out["i"] == list(range(60))
    stored = reader.run(path)
    assert stored.state == "finished"
    assert [row["i"] for row in stored.history()] == list(range(60))


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


FINISHED = """
import wandb
run = wandb.init(project="wb", id="again")
for i in range(5):
    run.log({"i": i})
run.finish()
"""

RESUMED_THEN_KILLED = """
import os, wandb, time
run = wandb.init(project="wb", id="again", resume="must")
# read at once, before the client posted anything: what the resume itself made of the run
state = wandb.Api().run(os.environ["WANDB_ENTITY"] + "/wb/again").state
for i in range(5, 10):
    run.log({"i": i})
print(state, flush=True)
time.sleep(300)  # killed here
"""


def test_a_resumed_finished_run_reads_running_and_crashed_once_killed(env: WandbEnv) -> None:
    """Resuming a finished run left it `finished` while the resumed client ran (the resume's
    upsert, carrying the run's id, was taken for an edit), so when that client was killed the
    run stayed `finished` forever, the rows logged after the resume with it. W&B reads a resumed
    run `running`, and this server's silent-run check must then see it."""
    env.run(FINISHED)
    client = _start(env, RESUMED_THEN_KILLED)
    reader = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    path = f"{env.entity}/wb/again"
    try:
        assert client.stdout is not None
        during = client.stdout.readline().strip()
        wait_for(lambda: len(reader.run(path).history()) == 10, 60, "the 10 rows stored")
    finally:
        os.killpg(client.pid, signal.SIGKILL)
        client.wait(10)
    assert during == "running", client.stderr.read() if client.stderr else ""
    wait_for(lambda: reader.run(path).state == "crashed", 30, "the killed resumed run marked crashed")
    assert [row["i"] for row in reader.run(path).history()] == list(range(10))


def _start(env: WandbEnv, code: str) -> subprocess.Popen[str]:
    """The snippet in a process group of its own: a kill takes wandb-core with it."""
    environ = env.environ()
    environ["NBTRACK_TEST_RESULT"] = str(env.home / "unused.json")
    return subprocess.Popen(
        [str(require_wandb()), "-c", _PRELUDE + textwrap.dedent(code)],
        env=environ,
        cwd=env.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
