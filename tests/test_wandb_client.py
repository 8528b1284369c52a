"""The real wandb client (0.31.0, its own venv: tests/wandb_client.py) against a real `nbtrack server`.

Each case writes with wandb and reads back with nbtrack's own API (and, where it works yet, with
wandb.Api), comparing values exactly, NaN and infinities included; each runs on SQLite and, with
NBTRACK_TEST_POSTGRES_URL set, on PostgreSQL. What the client sends is in docs/wandb-compat.md,
captured by tests/capture_proxy.py (test_capture_* keep that record honest).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbtrack
from nbtrack.run_names import readable_name
from tests import serving
from tests.capture_proxy import CaptureProxy
from tests.wandb_client import WandbEnv, require_wandb

STRANGE = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": 2**62, "tiny": 5e-324}


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WandbEnv]:
    """The wandb client against a fresh server, on SQLite and on PostgreSQL (skipped without it)."""
    require_wandb()
    if request.param == "postgres" and not serving.POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
    served = serving.start_server(
        tmp_path, db_url=serving.POSTGRES_URL if request.param == "postgres" else None
    )
    try:
        entity = serving.unique_name("wb")
        home = tmp_path / "wandb-home"
        home.mkdir()
        yield WandbEnv(served, entity, serving.create_key(served, entity), home)
    finally:
        served.stop()


def same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN. A whole float may come back an int: wandb's client writes 1.0 as 1."""
    numbers = (int, float)
    if (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def rows_without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("_runtime", "_timestamp")} for row in rows]


LOG = """
import math, wandb
strange = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": 2**62, "tiny": 5e-324}
run = wandb.init(project="wb", config={"lr": 0.01, "layers": [1, 2]}, tags=["t1"], notes="n")
for i in range(4):
    run.log({"loss": 1.0 / (i + 1), **strange})
open("notes.txt", "w").write("saved by wandb.save")
wandb.save("notes.txt", policy="now")
run.alert(title="loss is low", text="below 0.3", level=wandb.AlertLevel.WARN)
run.alert(title="loss is low", text="held back: the same title within 60 s", level=wandb.AlertLevel.WARN)
run.alert(title="done", text="", wait_duration=0)
run.finish()
api = wandb.Api(overrides={"base_url": run.settings.base_url})
viewer = api.viewer
read = api.run(f"{viewer.entity}/wb/{run.id}")
emit({"id": run.id, "viewer": viewer.username, "entity": viewer.entity, "name": run.name,
      "read_name": read.name})
"""


def test_log_save_alert_and_viewer(env: WandbEnv) -> None:
    out = env.run(LOG)
    assert out["viewer"] == env.entity and out["entity"] == env.entity

    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{out['id']}")
    assert stored.state == "finished"
    # exactly what the user set: the client's own "_wandb" entry is not the user's config
    assert stored.config == {"lr": 0.01, "layers": [1, 2]}
    assert stored.tags == ["t1"] and stored.notes == "n"
    expected = [{"_step": i, "loss": 1.0 / (i + 1), **STRANGE} for i in range(4)]
    assert same(rows_without_times(stored.history()), expected)
    assert same({k: stored.summary[k] for k in STRANGE}, STRANGE)

    run = env.client.run("wb", out["id"], "files { name sizeBytes } alerts { title text severity createdAt }")
    names = {file["name"] for file in run["files"]}
    # wandb.save()'s file, and the files every run uploads (config, metadata, summary)
    assert {"notes.txt", "config.yaml", "wandb-metadata.json", "wandb-summary.json"} <= names
    assert stored.file("notes.txt") == b"saved by wandb.save"
    assert [(a["title"], a["text"], a["severity"]) for a in run["alerts"]] == [
        ("loss is low", "below 0.3", "WARN"),
        ("done", "", "INFO"),
    ]
    assert [(a.title, a.text, a.level) for a in stored.alerts] == [
        ("loss is low", "below 0.3", "WARN"),
        ("done", "", "INFO"),
    ]
    # A run started without a name gets a readable one, the same for wandb and nbtrack.
    assert out["name"] == out["read_name"] == stored.name == readable_name(out["id"])


RESUME = """
import wandb
run = wandb.init(project="wb", id="resumed-run")
run.log({"x": 1.0}); run.log({"x": 2.0})
run.finish()
run = wandb.init(project="wb", id="resumed-run", resume="allow")
start = run.starting_step
run.log({"x": float("-inf")})
run.finish()
emit({"start": start, "resumed": run.resumed})
"""


def test_resume_allow_continues_the_run(env: WandbEnv) -> None:
    out = env.run(RESUME)
    assert out == {"start": 2, "resumed": True}
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/resumed-run")
    assert same([(r["_step"], r["x"]) for r in stored.history()], [(0, 1.0), (1, 2.0), (2, -math.inf)])
    assert stored.state == "finished"


def test_login_relogin(env: WandbEnv) -> None:
    out = env.run(
        """
import os, subprocess, sys
done = subprocess.run(
    [sys.executable, "-m", "wandb", "login", "--relogin", "--host", os.environ["WANDB_BASE_URL"],
     os.environ["WANDB_API_KEY"]], capture_output=True, text=True, timeout=60)
emit({"status": done.returncode, "err": done.stderr[-2000:]})
"""
    )
    assert out["status"] == 0, out["err"]


def test_capture_init_log_finish(wandb_capture_env: tuple[WandbEnv, CaptureProxy]) -> None:
    """What a plain run sends (docs/wandb-compat.md), and that the server takes all of it."""
    env, proxy = wandb_capture_env
    env.run(LOG)
    operations = [record.operation for record in proxy.graphql()]
    assert {"UpsertBucket", "CreateRunFiles", "NotifyScriptableRunAlert", "Viewer"} <= set(operations)
    refused = [(r.method, r.path, r.operation, r.answer) for r in proxy.records if r.status >= 400]
    assert not refused
    # A run started without a name: the client sends no displayName (the server makes one).
    upserts = [r.variables for r in proxy.graphql() if r.operation == "UpsertBucket"]
    assert upserts and not any(u.get("displayName") for u in upserts), upserts
    [files] = [r.variables for r in proxy.graphql() if r.operation == "CreateRunFiles"][:1]
    assert set(files) == {"entity", "project", "run", "files"}
    streams = [r.body for r in proxy.records if r.path.endswith("/file_stream")]
    assert streams[-1]["complete"] is True and streams[-1]["exitcode"] == 0
    assert any("wandb-history.jsonl" in body["files"] for body in streams)


@pytest.fixture
def wandb_capture_env(tmp_path: Path) -> Iterator[tuple[WandbEnv, CaptureProxy]]:
    require_wandb()
    served = serving.start_server(tmp_path)
    try:
        entity = serving.unique_name("wb")
        home = tmp_path / "wandb-home"
        home.mkdir()
        with CaptureProxy(served.url) as proxy:
            yield WandbEnv(served, entity, serving.create_key(served, entity), home, proxy.url), proxy
    finally:
        served.stop()


READ = """
import math, os, wandb
ids = []
for lr, tag in [(0.1, "a"), (0.01, "b"), (0.001, "a")]:
    run = wandb.init(project="wb", config={"lr": lr}, tags=[tag], reinit="finish_previous")
    for i in range(3):
        run.log({"loss": lr * (i + 1), "odd": [math.nan, math.inf, -math.inf][i]})
    run.finish()
    ids.append(run.id)
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
path = os.environ["WANDB_ENTITY"] + "/wb"
out = {
    "ids": ids,
    "by_lr": [r.id for r in api.runs(path, filters={"config.lr": 0.01})],
    "tag_a_oldest_first": [
        r.id for r in api.runs(path, filters={"tags": {"$in": ["a"]}}, order="+created_at")],
    "by_loss": [r.id for r in api.runs(path, order="-summary_metrics.loss")],
    "either": [
        r.id for r in api.runs(path, {"$or": [{"config.lr": 0.1}, {"config.lr": 0.001}]}, "+created_at")],
    "projects": [p.name for p in api.projects()],
}
run = api.run(path + "/" + ids[0])
out["history"] = run.history(pandas=False)
out["summary_loss"] = run.summary["loss"]
run.summary["extra"] = 5
run.tags.append("edited")
run.update()
again = api.run(path + "/" + ids[0])
out["updated"] = [again.tags, again.summary["extra"]]
emit(out)
"""


def test_public_api_reads_runs_history_projects_and_updates(env: WandbEnv) -> None:
    out = env.run(READ)
    first, second, third = out["ids"]
    assert out["by_lr"] == [second]
    assert out["tag_a_oldest_first"] == [first, third]
    assert out["by_loss"] == [first, second, third]  # 0.3, 0.03, 0.003
    assert out["either"] == [first, third]
    assert out["projects"] == ["wb"]
    expected = [
        {"_step": i, "loss": 0.1 * (i + 1), "odd": [math.nan, math.inf, -math.inf][i]} for i in range(3)
    ]
    assert same(rows_without_times(out["history"]), expected)
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/wb/{first}")
    assert same(rows_without_times(stored.history()), expected)
    assert same(out["summary_loss"], stored.summary["loss"])
    assert out["updated"] == [["a", "edited"], 5]
    assert stored.tags == ["a", "edited"] and stored.summary["extra"] == 5
