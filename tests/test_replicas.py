"""Two `nbtrack server` replicas on one PostgreSQL database and one files folder or S3 bucket behave
as one server: what goes through one is read through the other, posts of one run alternating between
them land exactly once and in order, and behind a real load balancer (Debian's nginx) a replica
killed mid-run costs no row.

Needs PostgreSQL (NBTRACK_TEST_POSTGRES_URL) and, for the load balancer, nginx (`.ci/run`
installs both)."""

from __future__ import annotations

import math
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nbtrack
from nbtrack import jsonutil
from tests import serving
from tests.load_balancer import load_balancer, nginx_binary
from tests.pg_database import own_pg_url
from tests.wandb_client import _make_env, require_wandb

own_pg_url = own_pg_url  # a fixture


@dataclass
class Replicas:
    a: serving.ServerProcess
    b: serving.ServerProcess
    files: str  # the folder or s3:// bucket both serve the run files from


@pytest.fixture(params=serving.FILE_BACKENDS)
def replicas(request: pytest.FixtureRequest, own_pg_url: str, tmp_path: Path) -> Iterator[Replicas]:
    files = serving.files_on(request.param) or str(tmp_path / "shared-files")
    started: list[serving.ServerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(serving.start_server(tmp_path / name, db_url=own_pg_url, files=files))
        yield Replicas(started[0], started[1], files)
    finally:
        for served in started:
            served.stop()


def rows(steps: range) -> list[dict[str, object]]:
    odd = [float("nan"), float("inf"), -float("inf")]
    return [{"loss": 1 / (s + 1), "odd": odd[s % 4] if s % 4 < 3 else s} for s in steps]


def test_a_run_streamed_through_one_replica_is_read_through_the_other(
    replicas: Replicas, tmp_path: Path
) -> None:
    logged = rows(range(2000))
    saved = tmp_path / "notes.txt"
    saved.write_bytes(os.urandom(100_000))
    with nbtrack.init(project="p", id="via-a", base_url=replicas.a.url, dir=tmp_path / "client") as run:
        for row in logged:
            run.log(row)
        run.save(str(saved))
    stored = nbtrack.Api(base_url=replicas.b.url).run("p/via-a")
    assert stored.state == "finished"
    history = stored.history()
    assert [row["_step"] for row in history] == list(range(2000))
    assert jsonutil.dumps_str([{k: r[k] for k in ("loss", "odd")} for r in history]) == jsonutil.dumps_str(
        logged
    )
    assert stored.file("notes.txt") == saved.read_bytes()


def test_posts_of_one_run_alternating_between_replicas_land_once_and_in_order(replicas: Replicas) -> None:
    clients = [serving.Client(replicas.a.url), serving.Client(replicas.b.url)]
    clients[0].upsert("p", "alt", state="running")
    lines = [jsonutil.dumps_str({"_step": s, "x": s}) for s in range(1000)]
    for n, offset in enumerate(range(0, 1000, 50)):
        body = {"files": {"wandb-history.jsonl": {"offset": offset, "content": lines[offset : offset + 50]}}}
        assert clients[n % 2].stream("p", "alt", body).status_code == 200
        # A retry of the same post through the other replica (its answer lost on the way) changes nothing.
        assert clients[(n + 1) % 2].stream("p", "alt", body).status_code == 200
    done = {"complete": True, "exitcode": 0}
    assert clients[1].stream("p", "alt", done).status_code == 200
    for client in clients:
        run = client.run("p", "alt", "state historyLineCount")
        assert run == {"state": "finished", "historyLineCount": 1000}
    history = nbtrack.Api(base_url=replicas.a.url).run("p/alt").history()
    assert [row["x"] for row in history] == list(range(1000))


# -- behind a load balancer ----------------------------------------------------------------------


@pytest.fixture
def balanced(replicas: Replicas, tmp_path: Path) -> Iterator[tuple[Replicas, str]]:
    if nginx_binary() is None:
        reason = "nginx is not installed (`apt-get install nginx-light`; .ci/run does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    upstreams = [server.url.removeprefix("http://") for server in (replicas.a, replicas.b)]
    with load_balancer(tmp_path / "nginx", serving.free_port(), upstreams) as balancer:
        yield replicas, balancer.url


def test_a_replica_killed_mid_run_behind_the_load_balancer_costs_no_row(
    balanced: tuple[Replicas, str], tmp_path: Path
) -> None:
    replicas, url = balanced
    total = 20_000
    logged = rows(range(total))
    killed = threading.Event()
    with nbtrack.init(project="p", id="lb", base_url=url, dir=tmp_path / "client") as run:
        for step, row in enumerate(logged):
            run.log(row)
            if step == total // 2:
                # Half-way, once some rows are stored: one replica dies, without a word.
                reader = nbtrack.Api(base_url=url)
                deadline = time.monotonic() + 60
                while len(reader.run("p/lb").history(keys=["loss"])) < 1000:
                    assert time.monotonic() < deadline, "no rows reached the replicas"
                    time.sleep(0.1)
                replicas.a.kill()
                killed.set()
            if step % 500 == 0:
                time.sleep(0.02)  # a training loop's pace, so the kill lands mid-stream
    assert killed.is_set() and replicas.a.returncode is not None
    # Requests did reach the dead replica, and the load balancer passed them on.
    assert "Connection refused" in (tmp_path / "nginx" / "error.log").read_text()
    assert run.rows_lost == 0
    stored = nbtrack.Api(base_url=url).run("p/lb")
    assert stored.state == "finished"
    history = stored.history()
    assert [row["_step"] for row in history] == list(range(total))
    assert jsonutil.dumps_str([{k: r[k] for k in ("loss", "odd")} for r in history]) == jsonutil.dumps_str(
        logged
    )


WANDB_KILLED_REPLICA = """
import math, sys, time, wandb
run = wandb.init(project="p", id="wb-lb")
for i in range(3000):
    run.log({"i": i, "odd": [math.nan, math.inf, -math.inf, i][i % 4]})
    if i == 1500:
        print("half", flush=True)
        sys.stdin.readline()  # the test kills a replica, then says go on
    if i % 100 == 0:
        time.sleep(0.05)
run.finish()
print("done", flush=True)
"""


def test_the_wandb_client_behind_the_load_balancer_survives_a_killed_replica(
    balanced: tuple[Replicas, str], tmp_path: Path
) -> None:
    replicas, url = balanced
    env = _make_env(replicas.b, tmp_path)
    env.base_url = url
    environ = env.environ()
    client = subprocess.Popen(
        [str(require_wandb()), "-c", WANDB_KILLED_REPLICA],
        env=environ,
        cwd=env.home,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None and client.stdout is not None
    try:
        assert client.stdout.readline().strip() == "half"
        replicas.a.kill()
        client.stdin.write("go\n")
        client.stdin.flush()
        out, err = client.communicate(timeout=180)
    finally:
        client.kill()
    assert client.returncode == 0 and out.strip() == "done", err[-3000:]
    assert "Connection refused" in (tmp_path / "nginx" / "error.log").read_text()
    stored = nbtrack.Api(base_url=url, api_key=env.key).run(f"{env.entity}/p/wb-lb")
    assert stored.state == "finished"
    history = stored.history()
    assert [row["i"] for row in history] == list(range(3000))
    odd = [row["odd"] for row in history[:4]]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf, 3]
