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
    environ = env.environ()
    environ["NBTRACK_TEST_RESULT"] = str(env.home / "unused.json")
    # Its own process group: the kill takes wandb-core with it, as a killed job's would.
    client = subprocess.Popen(
        [str(require_wandb()), "-c", _PRELUDE + textwrap.dedent(KILLED)],
        env=environ,
        cwd=env.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
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
