"""Artifacts with the real wandb client (0.31, its own venv) against `nbtrack server`, on both
storage setups: SQLite + a files folder, and PostgreSQL + S3 (SeaweedFS). Each test goes through
the capture proxy, so what crossed the wire (uploads, downloads) is counted, not assumed.

Skipped without the wandb venv (NBTRACK_TEST_WANDB_PYTHON), PostgreSQL (NBTRACK_TEST_POSTGRES_URL)
or S3 (NBTRACK_TEST_S3_URL) for the setups that need them; under CI=true they fail instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import serving
from tests.capture_proxy import CaptureProxy, Record
from tests.wandb_client import WandbEnv, _make_env, require_wandb

SETUPS = ("sqlite-folder", "postgresql-s3")


@dataclass
class Proxied:
    env: WandbEnv
    proxy: CaptureProxy

    def run(self, code: str) -> Any:
        return self.env.run(code, timeout=180)

    def mark(self) -> int:
        return len(self.proxy.records)

    def since(self, mark: int) -> list[Record]:
        return self.proxy.records[mark:]

    def forget_cache(self) -> None:
        """Empty the client's file cache, so that a download really asks the server."""
        cache = self.env.home / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()


@pytest.fixture(params=SETUPS)
def wb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Proxied]:
    require_wandb()
    if request.param == "sqlite-folder":
        served = serving.start_server(tmp_path)
    else:
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the artifact tests on PostgreSQL")
        served = serving.start_server(tmp_path, db_url=serving.POSTGRES_URL, files=serving.files_on("s3"))
    try:
        env = _make_env(served, tmp_path)
        with CaptureProxy(served.url) as proxy:
            env.base_url = proxy.url
            yield Proxied(env, proxy)
    finally:
        served.stop()


def _uploads(records: list[Record]) -> list[Record]:
    return [r for r in records if r.method == "PUT" and r.path.startswith("/artifacts/")]


def _downloads(records: list[Record]) -> list[Record]:
    return [r for r in records if r.method == "GET" and r.path.startswith(("/artifacts/", "/artifactsV2/"))]


_DIGESTS = """
import hashlib, pathlib
def digests(root):
    root = pathlib.Path(root)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}
"""

_MAKE_FILES = (
    _DIGESTS
    + """
import random
src = pathlib.Path("src")
rng = random.Random(7)
for i in range(100):
    path = src / f"part{i // 10}" / f"f{i:03d}.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(rng.randbytes(1000 + i))
"""
)

_LOG = """
import wandb
@CHANGE@
run = wandb.init(project="arts")
art = wandb.Artifact("ds", type="dataset", metadata={"rows": 100, "note": "@NOTE@"})
art.add_dir("src")
run.log_artifact(art, aliases=["best"])
run.finish()
emit({"run": run.id, "files": digests("src")})
"""


def _log(change: str, note: str) -> str:
    return _MAKE_FILES + _LOG.replace("@CHANGE@", change).replace("@NOTE@", note)


_CHANGE_ONE = 'pathlib.Path("src/part4/f042.bin").write_bytes(b"changed " * 500)'

_USE = (
    _DIGESTS
    + """
import wandb
run = wandb.init(project="arts")
first = run.use_artifact("ds:v0").download(root="got-v0")
best = run.use_artifact("ds:best").download(root="got-best")
run.finish()
api = wandb.Api()
v0 = api.artifact(f"{run.entity}/arts/ds:v0")
v1 = api.artifact(f"{run.entity}/arts/ds:v1")
collection = api.artifact_collection("dataset", f"{run.entity}/arts/ds")
emit({
    "run": run.id,
    "v0": digests(first), "best": digests(best),
    "aliases": {"v0": sorted(v0.aliases), "v1": sorted(v1.aliases)},
    "metadata": v1.metadata, "type": v1.type,
    "versions": sorted(a.version for a in api.artifacts("dataset", f"{run.entity}/arts/ds")),
    "logged_by": {"v0": v0.logged_by().id, "v1": v1.logged_by().id},
    "used_by": sorted(r.id for r in v1.used_by()),
    "used": sorted(a.name for a in api.run(f"{run.entity}/arts/{run.id}").used_artifacts()),
    "collection": [a.version for a in collection.artifacts()],
    "collections": [c.name for c in api.artifact_collections("arts", "dataset")],
    "types": [t.name for t in api.artifact_types("arts")],
    "files": sum(1 for _ in v1.files()),
    "exists": [api.artifact_exists(f"{run.entity}/arts/ds:v{i}") for i in (1, 2)],
})
"""
)


def test_log_artifact_then_use_it_in_another_run_byte_identical_with_dedup_and_lineage(wb: Proxied) -> None:
    first = wb.run(_log("", "first"))
    mark = wb.mark()
    second = wb.run(_log(_CHANGE_ONE, "second"))
    uploaded = _uploads(wb.since(mark))
    # 100 files, one changed: only that file's bytes travel again (the server answered "stored"
    # for the 99 others), besides the manifest.
    assert len(uploaded) == 1, [r.path for r in uploaded]
    assert uploaded[0].size == len(b"changed " * 500)
    assert len(_uploads(wb.proxy.records[:mark])) == 100

    wb.forget_cache()
    mark = wb.mark()
    used = wb.run(_USE)
    assert len(_downloads(wb.since(mark))) >= 100  # from the server, not from the client's cache
    assert used["v0"] == first["files"] and used["best"] == second["files"] != first["files"]
    assert used["aliases"] == {"v0": [], "v1": ["best", "latest"]}  # best and latest moved to v1
    assert used["metadata"] == {"rows": 100, "note": "second"} and used["type"] == "dataset"
    assert used["versions"] == ["v0", "v1"]
    assert used["logged_by"] == {"v0": first["run"], "v1": second["run"]}
    assert used["used_by"] == [used["run"]]
    assert used["used"] == ["ds:v0", "ds:v1"]
    assert (
        used["collection"] == ["v1", "v0"] and used["collections"] == ["ds"] and used["types"] == ["dataset"]
    )
    assert used["files"] == 100 and used["exists"] == [True, False]


_TABLE_AND_MODEL = """
import os, pathlib, shutil, wandb
run = wandb.init(project="arts")
run.log({"t": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
pathlib.Path("model.bin").write_bytes(bytes(range(256)) * 40)
run.log_model(path="model.bin", name="m", aliases=["prod"])
run.finish()
shutil.rmtree(os.environ["WANDB_CACHE_DIR"])
os.makedirs(os.environ["WANDB_CACHE_DIR"])
run2 = wandb.init(project="arts")
got = pathlib.Path(run2.use_model("m:prod"))
run2.finish()
api = wandb.Api()
logged = api.run(f"{run.entity}/arts/{run.id}")
table = api.artifact(f"{run.entity}/arts/run-{run.id}-t:latest").get("t")
emit({
    "logged": sorted((a.name, a.type) for a in logged.logged_artifacts()),
    "columns": table.columns, "rows": table.data,
    "model": got.read_bytes() == bytes(range(256)) * 40,
    "model_used_by": [r.id for r in api.artifact(f"{run.entity}/arts/m:v0").used_by()],
    "run2": run2.id, "run": run.id,
})
"""


def test_a_logged_table_and_a_model_round_trip(wb: Proxied) -> None:
    out = wb.run(_TABLE_AND_MODEL)
    assert out["logged"] == [["m:v0", "model"], [f"run-{out['run']}-t:v0", "run_table"]]
    assert out["columns"] == ["a", "b"] and out["rows"] == [[1, "x"], [2, "y"]]
    assert out["model"] is True
    assert out["model_used_by"] == [out["run2"]]
    refused = [r for r in wb.proxy.records if r.status >= 400]
    assert refused == []
