"""A compacted run through a real server (`nbtrack server compact` on its store and files): the
real wandb client's scan_history (parquetHistory) and history (sampledHistory), nbtrack.Api's
history and chart (the web UI's chart query), a resumed run's rows, and deletion removing the
parquet file. On SQLite with a folder and on PostgreSQL (a database of the test's own: compact
takes every run of it) with S3 (SeaweedFS)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack import jsonutil
from tests import serving
from tests.pg_database import fresh_database
from tests.wandb_client import WandbEnv, _make_env, require_wandb

WHERE = ("sqlite-folder", "postgresql-s3")


@pytest.fixture(params=WHERE)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[serving.ServerProcess]:
    if request.param == "sqlite-folder":
        server = serving.start_server(tmp_path)
        try:
            yield server
        finally:
            server.stop()
        return
    base = os.environ.get("NBTRACK_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the compaction tests on PostgreSQL")
    with fresh_database(base, "nbtrack_compact") as url:
        server = serving.start_server(tmp_path, db_url=url, files=serving.files_on("s3"))
        try:
            yield server
        finally:
            server.stop()


def compact(server: serving.ServerProcess) -> str:
    """`nbtrack server compact` on the server's store and files (every run that ended); its output."""
    store = ["--db", server.db_url] if server.db_url else ["--dir", str(server.dir)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbtrack.cli",
            "server",
            "compact",
            *store,
            "--files",
            server.files,
            "--older-than",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=serving.subprocess_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def archived(server: serving.ServerProcess) -> list[str]:
    return [key for key in server.stored_files("~history") if "/compacted/" in key]


def row(i: int) -> dict[str, Any]:
    values: dict[str, Any] = {"_step": i, "_runtime": i * 0.1, "_timestamp": 1.7e9 + i, "loss": 1 / (i + 1)}
    if i % 40 == 3:
        values["loss"] = math.nan
    if i % 10 == 0:
        values["img"] = {"_type": "image-file", "path": f"media/images/i_{i}.png"}
    return values


def test_api_chart_resume_and_delete_of_a_compacted_run(served: serving.ServerProcess) -> None:
    client = serving.Client(served.url)
    client.upsert("p", "r")
    rows = [row(i) for i in range(600)]
    for start in range(0, 600, 200):
        lines = [jsonutil.dumps_str(r) for r in rows[start : start + 200]]
        body = {"files": {"wandb-history.jsonl": {"offset": start, "content": lines}}}
        assert client.stream("p", "r", body).status_code == 200
    assert client.stream("p", "r", {"complete": True, "exitcode": 0}).status_code == 200
    api = nbtrack.Api(base_url=served.url)
    before = api.run("local/p/r")
    history, chart = before.history(), before.chart(points=50)
    assert same(history, rows)

    assert "compacted" in compact(served)
    assert len(archived(served)) == 1
    after = nbtrack.Api(base_url=served.url).run("local/p/r")
    assert same(after.history(), rows)
    assert same(after.history(keys=["img"]), before.history(keys=["img"]))
    assert same(after.chart(points=50), chart)

    # Resumed through the server: its new rows follow the archived ones.
    client.upsert("p", "r", state="running")
    more = [{"_step": 600 + i, "loss": 0.25} for i in range(5)]
    body = {
        "files": {"wandb-history.jsonl": {"offset": 600, "content": [jsonutil.dumps_str(r) for r in more]}}
    }
    assert client.stream("p", "r", body).status_code == 200
    assert same(nbtrack.Api(base_url=served.url).run("local/p/r").history(), rows + more)

    nbtrack.Api(base_url=served.url).run("local/p/r").delete(force=True)
    assert served.stored_files("~history") == []  # the archive went with the run


SCAN = """
import math, os, wandb
run = wandb.init(project="wb")
for i in range(300):
    row = {"loss": 0.5 * i, "odd": [math.nan, math.inf, -math.inf][i % 3], "big": 2**62 + i,
           "flag": i % 2 == 0, "text": f"t{i}", "vec": [i, 2.5]}
    if i % 10 == 0:
        row["img"] = {"_type": "image-file", "path": f"m/{i}.png"}
    run.log(row)
run.finish()
emit({"id": run.id})
"""

READ = """
import os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/wb/RUN_ID")
emit({
    "all": list(r.scan_history()),
    "keys": list(r.scan_history(keys=["odd", "big"], page_size=50)),
    "sampled": r.history(keys=["loss"], samples=40, pandas=False),
})
"""


def _drop_nulls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def test_the_wandb_client_reads_a_compacted_run(served: serving.ServerProcess, tmp_path: Path) -> None:
    """Compacted before wandb's first read: its parquetHistory segments are made from the archive."""
    require_wandb()
    env: WandbEnv = _make_env(served, tmp_path)
    run_id = env.run(SCAN)["id"]
    assert "compacted" in compact(served)
    out = env.run(READ.replace("RUN_ID", run_id))
    logged = nbtrack.Api(base_url=served.url, api_key=env.key).run(f"{env.entity}/wb/{run_id}").history()
    assert len(logged) == 300 and same(_drop_nulls(out["all"]), logged)
    assert [row["big"] for row in out["all"]] == [2**62 + i for i in range(300)]
    odd = [row["odd"] for row in out["all"][:3]]
    assert math.isnan(odd[0]) and odd[1:] == [math.inf, -math.inf]
    assert out["all"][10]["img"] == {"_type": "image-file", "path": "m/10.png"}
    assert same(out["keys"], [{"_step": r["_step"], "odd": r["odd"], "big": r["big"]} for r in logged])
    sampled = out["sampled"]
    assert len(sampled) == 40 and sampled[0]["_step"] == 0 and sampled[-1]["_step"] == 299
    assert all(r["loss"] == 0.5 * r["_step"] for r in sampled)
