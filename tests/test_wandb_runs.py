"""The real wandb client (0.31.0) listing runs, syncing an offline run, and asking for artifacts.

On SQLite and (with NBTRACK_TEST_POSTGRES_URL) PostgreSQL: `api.runs(path, filters, order,
per_page)` answers as nbtrack's own reading of the same runs with wandb_query.py's rules, whether
SQL answers alone or a run holding NaN leaves it to Python; `wandb sync` of a run logged with
WANDB_MODE=offline arrives exactly (NaN and ±inf included); `run.log_code()` and `wandb.Table`
get a GraphQL error naming artifacts, and the run still completes with every row.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

import nbtrack
from nbtrack.server.wandb_query import select_runs
from tests import test_wandb_client as base
from tests.wandb_client import WandbEnv

env = base.env
same = base.same

LIST = """
import json, os, wandb
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
path = os.environ["WANDB_ENTITY"] + "/" + os.environ["PROJECT"]
out = []
for filters, order in json.loads(os.environ["CASES"]):
    runs = api.runs(path, filters=filters, order=order, per_page=2)
    out.append({"ids": [run.id for run in runs], "count": len(runs)})
emit(out)
"""

CASES: list[tuple[Any, str]] = [
    (None, "+created_at"),
    ({}, "-created_at"),
    ({"config.lr": 0.01}, "-created_at"),
    ({"config.lr": {"$gte": 0.01, "$lt": 1}}, "+config.lr"),
    ({"tags": {"$in": ["keep", "other"]}}, "-summary_metrics.loss"),
    ({"state": "finished"}, "+summary_metrics.loss"),
    ({"display_name": {"$regex": "^owl"}}, "-summary_metrics.loss"),
    ({"$or": [{"config.opt": "adam"}, {"tags": "keep"}]}, "-summary_metrics.loss"),
    ({"$and": [{"config.opt": {"$ne": None}}, {"summary_metrics.loss": {"$exists": True}}]}, "+display_name"),
    ({"summary_metrics.loss": {"$lt": 0.5}}, "-summary_metrics.loss"),
]


def _make_runs(env: WandbEnv, project: str, with_nan: bool) -> None:
    client = env.client
    losses: list[Any] = [0.5, 0.25, None, 2, "text", 0.25, 1.5]
    if with_nan:
        losses[2] = math.nan
    for i, loss in enumerate(losses):
        summary = {} if loss is None else {"loss": loss}
        client.upsert(
            project,
            f"run{i}",
            displayName=["owl-1", "owl-2", "fox-3", None, "owl-5", "fox-6", "ant-7"][i],
            config=json.dumps(
                {
                    "lr": {"value": [0.01, 0.1, 1, 0.01, 0.5, 0.01, 0.02][i]},
                    "opt": {"value": "adam" if i % 2 else None},
                }
            ),
            summaryMetrics=json.dumps(summary, allow_nan=True),
            tags=["keep"] if i in (1, 4) else [],
            state="finished" if i % 3 else "running",
        )


@pytest.mark.parametrize("with_nan", [False, True], ids=["sql", "nan-run"])
def test_runs_filters_order_and_pages(env: WandbEnv, with_nan: bool) -> None:
    project = "nan" if with_nan else "plain"
    _make_runs(env, project, with_nan)
    environ = {"PROJECT": project, "CASES": json.dumps(CASES)}
    out = env.run(_with_env(LIST, environ))
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key)
    rows = [run.row for run in stored.runs(f"{env.entity}/{project}")]
    for (filters, order), got in zip(CASES, out, strict=True):
        wanted = [run.run_id for run in select_runs(rows, filters, order)]
        assert got == {"ids": wanted, "count": len(wanted)}, (filters, order)
    assert out[9]["ids"] == ["run1", "run5"]
    # descending: text before numbers, ties oldest first; runs without a value (none, NaN) last
    assert out[7]["ids"] == ["run4", "run3", "run1", "run5"]
    assert out[4]["ids"] == ["run4", "run1"]
    assert out[1]["ids"] == [f"run{i}" for i in reversed(range(7))]


def _with_env(code: str, environ: dict[str, str]) -> str:
    return "import os\nos.environ.update(" + repr(environ) + ")\n" + code


SYNC = """
import glob, math, os, subprocess, sys, wandb
os.environ["WANDB_MODE"] = "offline"
run = wandb.init(project="sync", config={"lr": 0.01})
for i in range(6):
    run.log({"loss": 1.0 / (i + 1), "odd": [math.nan, math.inf, -math.inf][i % 3], "big": 2**62 + i})
run.summary["best"] = 0.125
run.finish()
[folder] = glob.glob(os.path.join(os.environ["WANDB_DIR"], "wandb", "offline-run-*"))
del os.environ["WANDB_MODE"]
cli = os.path.join(os.path.dirname(sys.executable), "wandb")
synced = subprocess.run([cli, "sync", folder], capture_output=True, text=True, timeout=120)
status = subprocess.run([cli, "status"], capture_output=True, text=True, timeout=60)
api = wandb.Api(overrides={"base_url": os.environ["WANDB_BASE_URL"]})
r = api.run(os.environ["WANDB_ENTITY"] + "/sync/" + run.id)
emit({"id": run.id, "sync": [synced.returncode, synced.stdout + synced.stderr],
      "status": [status.returncode, status.stdout], "rows": list(r.scan_history()),
      "state": r.state, "lr": r.config.get("lr"), "best": r.summary.get("best")})
"""


def test_sync_of_an_offline_run_and_status(env: WandbEnv) -> None:
    out = env.run(SYNC, timeout=240)
    code, said = out["sync"]
    assert code == 0 and "error" not in said.lower(), said
    code, status = out["status"]
    assert code == 0 and env.base_url in status
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/sync/{out['id']}")
    assert stored.state == out["state"] == "finished"
    assert stored.config["lr"] == out["lr"] == 0.01
    assert stored.summary["best"] == out["best"] == 0.125
    logged = base.rows_without_times(stored.history())
    assert [row["_step"] for row in logged] == list(range(6))
    assert [row["big"] for row in logged] == [2**62 + i for i in range(6)]
    assert same([row["odd"] for row in logged], [math.nan, math.inf, -math.inf] * 2)
    scanned = [{k: row[k] for k in ("_step", "loss", "odd", "big")} for row in out["rows"]]
    assert same(scanned, [{k: row[k] for k in ("_step", "loss", "odd", "big")} for row in logged])


ARTIFACTS = """
import os, wandb
run = wandb.init(project="art")
open("train.py", "w").write("print('hi')\\n")
errors = []
for name, call in (("log_code", lambda: run.log_code(".")),
                   ("table", lambda: run.log({"t": wandb.Table(columns=["a"], data=[[1], [2]])}))):
    try:
        call()
    except Exception as exc:
        errors.append(f"{name}: {exc}")
for i in range(3):
    run.log({"x": i})
run.finish()
emit({"id": run.id, "errors": errors})
"""


def test_log_code_and_a_table_are_stored_as_artifacts_and_the_run_completes(
    env: WandbEnv, tmp_path: Any
) -> None:
    from tests.capture_proxy import CaptureProxy

    with CaptureProxy(env.server.url) as proxy:
        proxied = WandbEnv(env.server, env.entity, env.key, env.home, proxy.url)
        out = proxied.run(ARTIFACTS, timeout=240)
    assert out["errors"] == []
    assert [r.operation for r in proxy.records if r.status >= 400] == []
    assert sum(r.operation == "CommitArtifact" for r in proxy.records) == 2  # the code, the table
    stored = nbtrack.Api(base_url=env.server.url, api_key=env.key).run(f"{env.entity}/art/{out['id']}")
    assert stored.state == "finished"
    rows = stored.history()
    assert [row["_step"] for row in rows] == [0, 1, 2, 3]
    assert rows[0]["t"]["_type"] == "table-file" and [row["x"] for row in rows[1:]] == [0, 1, 2]
    assert stored.file(rows[0]["t"]["path"])  # the table's own file arrived with the run's files
