"""`nbtrack server` as a process: what it prints, how it stops and restarts, its command line."""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests import serving
from tests.serving import POSTGRES_URL, Client, ServerProcess, create_key, start_server

server = serving.server


def nbtrack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_it_says_where_it_serves_in_one_line(server: ServerProcess) -> None:
    lines = server.log().splitlines()
    assert lines == [
        f"nbtrack server: serving {server.url} "
        f"(store: {server.dir / 'nbtrack.db'}, files: {server.files}, 0 keys)"  # type: ignore[operator]
    ]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_it_cleanly(server: ServerProcess, stop_signal: signal.Signals) -> None:
    assert server.process is not None
    server.process.send_signal(stop_signal)
    assert server.process.wait(15) == 0
    assert "Traceback" not in server.log()


def test_a_restart_on_the_same_port_serves_the_same_runs(server: ServerProcess) -> None:
    client = Client(server.url)
    client.upsert("p", "r1", state="finished")
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/healthz", timeout=5)
    server.start()
    assert client.run("p", "r1", "state") == {"state": "finished"}


def test_it_serves_the_store_local_mode_writes(tmp_path: Path) -> None:
    import nbtrack

    root = tmp_path / "root"
    with nbtrack.init(project="local-run", dir=root, mode="local") as run:
        for step in range(5):
            run.log({"loss": 1 / (step + 1)})
    served = start_server(tmp_path, extra_args=["--dir", str(root)])
    try:
        found = Client(served.url).run("local-run", run.id, "state historyLineCount")
    finally:
        served.stop()
    assert found == {"state": "finished", "historyLineCount": 5}


def test_a_busy_port_is_a_one_line_error(server: ServerProcess, tmp_path: Path) -> None:
    port = server.url.rpartition(":")[2]
    result = nbtrack("server", "--port", port, "--dir", str(tmp_path / "other"))
    assert (
        result.returncode == 1
        and result.stderr.startswith("nbtrack server: ")
        and "Traceback" not in result.stderr
    )


def test_key_create_and_list(tmp_path: Path) -> None:
    key = create_key(tmp_path, "alice")
    created = nbtrack("server", "key", "create", "bob", "--dir", str(tmp_path))
    assert created.returncode == 0
    listing = nbtrack("server", "--dir", str(tmp_path), "key", "list")
    assert listing.returncode == 0
    assert "alice" in listing.stdout and key[:10] in listing.stdout and key not in listing.stdout
    assert created.stdout.strip() not in listing.stdout
    refused = nbtrack("server", "key", "create", "no/such", "--dir", str(tmp_path))
    assert refused.returncode == 1 and "entity 'no/such'" in refused.stderr


def test_key_list_without_keys_says_what_to_do(tmp_path: Path) -> None:
    assert (
        "nbtrack server key create ENTITY" in nbtrack("server", "key", "list", "--dir", str(tmp_path)).stdout
    )


@pytest.mark.skipif(
    not POSTGRES_URL, reason="set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL"
)
def test_a_bare_postgresql_url_is_served_with_psycopg(tmp_path: Path) -> None:
    assert POSTGRES_URL is not None
    bare = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    entity = serving.unique_name("ent")
    key = create_key(bare, entity)
    served = start_server(tmp_path, db_url=bare)
    try:
        assert Client(served.url, entity, key).data("{ viewer { entity } }") == {"viewer": {"entity": entity}}
    finally:
        served.stop()
    assert "(store: postgresql+psycopg://" in served.log()


@pytest.mark.skipif(
    not POSTGRES_URL, reason="set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL"
)
def test_a_failing_store_is_a_logged_500_in_the_error_shape(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    assert POSTGRES_URL is not None
    schema = serving.unique_name("gone").replace("-", "_")
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    key = create_key(url, "alice")
    served = start_server(tmp_path, db_url=url)
    try:
        client = Client(served.url, "alice", key)
        client.upsert("p", "r1")
        with engine.begin() as conn:  # the database loses the server's tables under it
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        health = requests.get(f"{served.url}/healthz", timeout=10)
        assert health.status_code == 503 and health.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
        # The key was checked recently, so the request gets as far as the store.
        for response in [client.graphql("{ projects { name } }"), client.stream("p", "r1", {"files": {}})]:
            assert response.status_code == 500
            assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL"
    finally:
        served.stop()
        engine.dispose()
    assert "Traceback" in served.log() and key not in served.log()


def test_kept_alive_connections_answer_without_a_delayed_ack_stall(server: ServerProcess) -> None:
    session = requests.Session()
    session.get(f"{server.url}/healthz", timeout=10)
    times = []
    for _ in range(15):
        started = time.perf_counter()
        session.get(f"{server.url}/healthz", timeout=10)
        times.append(time.perf_counter() - started)
    # With Nagle left on, each answer on a reused connection waited ~40 ms for the client's ACK.
    assert statistics.median(times) < 0.03
