"""Online mode end to end: runs stream to a real `nbtrack server` on a loopback port, through
outages (a fault-injecting proxy, a server killed and restarted), and are read back exactly."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

import nbtrack
from nbtrack import faults
from nbtrack.errors import InternalProcessError, UsageError
from tests.faultproxy import FaultProxy, Faults
from tests.serving import POSTGRES_URL, Client, ServerProcess, create_key, start_server, unique_name

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real `nbtrack server` (SQLite under tmp_path) on a free loopback port."""
    served = start_server(tmp_path / "server")
    yield served
    served.stop()


def read_back(url: str, project: str, run_id: str, api_key: str | None = None) -> Any:
    return nbtrack.Api(base_url=url, api_key=api_key).run(f"{project}/{run_id}")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_run_streams_to_a_server_and_reads_back_exactly(database: str, tmp_path: Path) -> None:
    if database == "postgresql" and not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server on PostgreSQL")
    server = start_server(tmp_path / "server", db_url=POSTGRES_URL if database == "postgresql" else None)
    try:
        # The PostgreSQL database is shared with other tests, which create keys: use one of our own.
        entity = "local" if database == "sqlite" else unique_name("team")
        key = None if database == "sqlite" else create_key(server, entity)
        _stream_and_read_back(server, tmp_path, unique_name("e2e"), entity, key)
    finally:
        server.stop()


def _stream_and_read_back(
    server: ServerProcess, tmp_path: Path, project: str, entity: str, key: str | None
) -> None:
    rows = 100_000
    config = {"lr": 0.1, "layers": [1, 2]}
    run = nbtrack.init(base_url=server.url, api_key=key, project=project, name="exact", config=config)
    assert (run.mode, run.entity) == ("online", entity)
    assert run.url == f"{server.url}/{entity}/{project}/runs/{run.id}"
    specials = {10: float("nan"), 11: float("inf"), 12: float("-inf")}
    for i in range(rows):
        run.log({"loss": specials.get(i, 1.0 / (i + 1)), "i": i})
    run.config["batch"] = 32
    run.summary["best"] = 0.5
    model = tmp_path / "model.txt"
    model.write_text("weights v1")
    assert run.save(model, name="ckpt/model.txt") == "ckpt/model.txt"
    model.write_text("changed after save()")  # the run keeps what was saved
    run.finish()
    assert run.state == "finished"

    stored = read_back(server.url, project, run.id, api_key=key)
    assert stored.state == "finished"
    assert stored.name == "exact"
    assert stored.config == {"lr": 0.1, "layers": [1, 2], "batch": 32}
    assert stored.summary["best"] == 0.5
    assert stored.summary["i"] == rows - 1
    assert stored.url == run.url
    history = stored.history()
    assert len(history) == rows
    assert [row["_step"] for row in history] == list(range(rows))
    assert [row["i"] for row in history] == list(range(rows))
    assert math.isnan(history[10]["loss"])
    assert history[11]["loss"] == math.inf and history[12]["loss"] == -math.inf
    assert history[99]["loss"] == 1.0 / 100
    auth = ("api", key) if key else None
    download = requests.get(
        f"{server.url}/files/{entity}/{project}/{run.id}/ckpt/model.txt", auth=auth, timeout=10
    )
    assert download.status_code == 200 and download.content == b"weights v1"


def test_online_mode_needs_a_usable_base_url() -> None:
    with pytest.raises(UsageError, match="base_url"):
        nbtrack.init(mode="online")
    with pytest.raises(UsageError, match="http"):
        nbtrack.init(base_url="ftp://example.org")


def test_a_wrong_key_fails_init_in_one_sentence_and_a_right_key_names_the_entity(tmp_path: Path) -> None:
    served = start_server(tmp_path / "keyed")
    try:
        key = create_key(served, "alice")
        with pytest.raises(InternalProcessError, match="refused the API key"):
            nbtrack.init(base_url=served.url, api_key="nbt_" + "0" * 40, project="p")
        run = nbtrack.init(base_url=served.url, api_key=key, project="p")
        assert run.entity == "alice"
        assert run.url == f"{served.url}/alice/p/runs/{run.id}"
        run.log({"x": 1})
        run.finish()
        assert read_back(served.url, "p", run.id, api_key=key).history() == [
            {
                "_step": 0,
                "_runtime": pytest.approx(0, abs=60),
                "_timestamp": pytest.approx(time.time(), abs=60),
                "x": 1,
            }
        ]
    finally:
        served.stop()


def test_every_row_arrives_exactly_once_when_30_percent_of_requests_fail(server: ServerProcess) -> None:
    faults = Faults(fail_rate=0.3, kinds=("drop", "reset", "500", "429", "503", "drop_after_forward"), seed=4)
    rows = 20_000
    with FaultProxy(server.url, faults) as proxy:
        run = nbtrack.init(base_url=proxy.url, project="faults")
        for i in range(rows):
            run.log({"x": i})
            if i % 2000 == 0:
                time.sleep(0.3)  # spread the rows over many posts
        run.finish(timeout=180)
        injected = sum(count for kind, count in proxy.stats.items() if kind != "forwarded")
    assert run.state == "finished"
    assert injected >= 3, proxy.stats
    stored = read_back(server.url, "faults", run.id)
    assert stored.state == "finished"
    history = stored.history()
    assert [row["x"] for row in history] == list(range(rows))
    assert [row["_step"] for row in history] == list(range(rows))


def test_a_server_killed_for_10_seconds_mid_run_loses_nothing(tmp_path: Path) -> None:
    served = start_server(tmp_path / "outage")
    try:
        run = nbtrack.init(base_url=served.url, project="outage")
        for i in range(5000):
            run.log({"x": i})
        wait_for(lambda: run.status().rows_stored == 5000, 30, "the first rows to arrive")
        served.kill()
        down_since = time.monotonic()
        i = 5000
        while time.monotonic() - down_since < 10:
            for _ in range(500):
                run.log({"x": i})
                i += 1
            time.sleep(0.05)
        assert run.status().state == "retrying"
        assert any("retrying" in notice for notice in run.notices)
        served.start()
        for _ in range(5000):
            run.log({"x": i})
            i += 1
        run.finish(timeout=120)
        assert run.state == "finished"
        history = read_back(served.url, "outage", run.id).history()
        assert [row["x"] for row in history] == list(range(i))
    finally:
        served.stop()


def test_finish_gives_up_after_its_timeout_and_sync_delivers_the_rest(tmp_path: Path) -> None:
    served = start_server(tmp_path / "later")
    try:
        run = nbtrack.init(base_url=served.url, project="later")
        for i in range(1000):
            run.log({"x": i})
        wait_for(lambda: run.status().rows_stored == 1000, 30, "the first rows to arrive")
        served.stop()
        for i in range(1000, 3000):
            run.log({"x": i})
        started = time.monotonic()
        run.finish(timeout=2)
        assert time.monotonic() - started < 20
        log_path = next(run.dir.glob("*.nbt"))
        said = [n for n in run.notices if "finish() stopped waiting" in n]
        assert len(said) == 1 and "nbtrack sync" in said[0] and str(log_path) in said[0], run.notices
        # The server has the first 1,000 rows: the other 2,000 are named, and the log has them.
        assert "2000 rows are not in the tracking server yet; every one of them is in" in said[0]

        served.start()
        assert len(read_back(served.url, "later", run.id).history()) < 3000
        for _ in range(2):  # a second sync replaces, never duplicates
            synced = subprocess.run(
                [sys.executable, "-m", "nbtrack.cli", "sync", str(log_path), "--base-url", served.url],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert synced.returncode == 0, synced.stderr
            assert "3000 rows, finished" in synced.stdout
            stored = read_back(served.url, "later", run.id)
            assert stored.state == "finished"
            assert [row["x"] for row in stored.history()] == list(range(3000))
    finally:
        served.stop()


def test_a_file_stream_thread_that_fails_says_so_once_and_sync_delivers_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Test-only fault injection: the FileStream thread (a Worker) raises after its second post.
    monkeypatch.setenv(faults.ENV, "filestream-raise-after:2")
    served = start_server(tmp_path / "broken")
    try:
        run = nbtrack.init(base_url=served.url, project="broken")
        for i in range(3000):
            run.log({"x": i})
            if i % 500 == 0:
                time.sleep(0.6)  # a post or two on the way
        started = time.monotonic()
        run.finish(timeout=30)
        assert time.monotonic() - started < 20  # nobody waits for a thread that is gone
        log_path = next(run.dir.glob("*.nbt"))
        said = [n for n in run.notices if "stopped after an internal error" in n]
        # Said once when it happened, and once more by finish(): where the rows are, how to sync.
        assert len(said) == 2 and "the transaction log keeps every row" in said[0], run.notices
        assert f"nbtrack sync {log_path}" in said[1]
        synced = subprocess.run(
            [sys.executable, "-m", "nbtrack.cli", "sync", str(log_path), "--base-url", served.url],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != faults.ENV},
        )
        assert synced.returncode == 0, synced.stderr
        stored = read_back(served.url, "broken", run.id)
        assert [row["x"] for row in stored.history()] == list(range(3000))
    finally:
        served.stop()


def test_an_offline_run_syncs_to_a_server(server: ServerProcess, root: Path) -> None:
    run = nbtrack.init(mode="offline", project="offline", dir=root, config={"a": 1})
    for i in range(500):
        run.log({"x": i * 0.5})
    run.finish()
    from nbtrack.sync import sync_log

    report = sync_log(next(run.dir.glob("*.nbt")), base_url=server.url)
    assert (report.error, report.rows, report.state) == (None, 500, "finished")
    stored = read_back(server.url, "offline", run.id)
    assert stored.config == {"a": 1}
    assert [row["x"] for row in stored.history()] == [i * 0.5 for i in range(500)]


def test_an_offline_run_synced_to_a_server_with_keys_is_the_keys_entitys(tmp_path: Path, root: Path) -> None:
    """An offline run names no entity ("local" in its log stands for the default): synced with a
    key, it becomes a run of the key's entity, every row once; the CLI says so."""
    served = start_server(tmp_path / "keyed")
    try:
        entity = unique_name("ent")
        key = create_key(served, entity)
        run = nbtrack.init(mode="offline", project="away", dir=root, config={"a": 1})
        for i in range(300):
            run.log({"x": i})
        run.finish()
        log = next(run.dir.glob("*.nbt"))
        command = [sys.executable, "-m", "nbtrack.cli", "sync", str(log), "--base-url", served.url]
        synced = subprocess.run([*command, "--api-key", key], capture_output=True, text=True, timeout=120)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert f"away/{run.id} 300 rows, finished" in synced.stdout, synced.stdout
        stored = nbtrack.Api(base_url=served.url, api_key=key).run(f"{entity}/away/{run.id}")
        assert stored.state == "finished" and stored.config == {"a": 1}
        assert [row["x"] for row in stored.history()] == list(range(300))
    finally:
        served.stop()


def test_a_sync_the_server_refuses_never_reports_the_run_finished(server: ServerProcess, root: Path) -> None:
    """The server refuses the run (it was deleted there, by force, while it ran): the report says
    the delivery failed and why, never the state the log would have given it."""
    run = nbtrack.init(mode="offline", project="refused", dir=root)
    run.log({"x": 1})
    run.finish()
    log = next(run.dir.glob("*.nbt"))
    api = nbtrack.Api(base_url=server.url)
    Client(server.url).upsert("refused", run.id)  # the run exists, running, on the server...
    api.run(f"refused/{run.id}").delete(force=True)  # ...and is deleted by force
    synced = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "sync", str(log), "--base-url", server.url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert synced.returncode == 1, synced.stdout + synced.stderr
    line = synced.stdout.splitlines()[0]
    assert "not (all) delivered" in line and "error:" in line and "finished" not in line, line
    assert "nothing synced" in synced.stdout


def test_api_reads_projects_and_runs_from_a_server(server: ServerProcess) -> None:
    for name in ("a", "b"):
        with nbtrack.init(base_url=server.url, project="listed", name=name) as run:
            run.log({"loss": 1.0})
    api = nbtrack.Api(base_url=server.url)
    assert [(p.entity, p.name, p.run_count) for p in api.projects()] == [("local", "listed", 2)]
    assert sorted(r.name for r in api.runs("listed")) == ["a", "b"]
    assert api.runs("listed")[0].history(keys=["loss"]) == [{"_step": 0, "loss": 1.0}]
    with pytest.raises(nbtrack.api.RunNotFoundError, match="missing"):
        api.run("listed/missing")
