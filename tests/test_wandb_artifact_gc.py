"""Deleting artifact versions and editing aliases with the real wandb client (0.31, its own venv),
then `nbtrack server gc` (the command, as an operator runs it) freeing what no version needs, on
both storage setups: SQLite + a files folder, and PostgreSQL (a database of the test's own: gc
looks at every entity) + S3. Requests go through the capture proxy, so what the client sent for
Artifact.save() and Artifact.delete() is asserted, not assumed."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import serving
from tests.capture_proxy import CaptureProxy
from tests.pg_database import fresh_database
from tests.test_wandb_artifacts import SETUPS, Proxied
from tests.wandb_client import _make_env, require_wandb


@pytest.fixture(params=SETUPS)
def wb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Proxied, list[str]]]:
    """The proxied client, and the `nbtrack server gc` store options of its server."""
    require_wandb()
    with _database(request.param) as db_url:
        if db_url is None:
            served = serving.start_server(tmp_path)
            where = ["--dir", str(served.dir), "--files", served.files]
        else:
            served = serving.start_server(tmp_path, db_url=db_url, files=serving.files_on("s3"))
            where = ["--db", db_url, "--files", served.files]
        try:
            env = _make_env(served, tmp_path)
            with CaptureProxy(served.url) as proxy:
                env.base_url = proxy.url
                yield Proxied(env, proxy), where
        finally:
            served.stop()


@contextmanager
def _database(setup: str) -> Iterator[str | None]:
    """None for SQLite (the server's --dir), else a PostgreSQL database of the test's own."""
    if setup == "sqlite-folder":
        yield None
        return
    if not serving.POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the artifact tests on PostgreSQL")
    with fresh_database(serving.POSTGRES_URL, "nbtrack_gc") as url:
        yield url


_SHARED = b"shared by both versions " * 400
_ONLY_V0 = b"only in v0 " * 300
_ONLY_V1 = b"only in v1, freed once v1 is deleted " * 200

_LOG_TWO = """
import pathlib, wandb
for name, files in (("v0", {"shared.bin": SHARED, "mine.bin": ONLY_V0}),
                    ("v1", {"shared.bin": SHARED, "mine.bin": ONLY_V1})):
    src = pathlib.Path("src-" + name); src.mkdir()
    for path, data in files.items():
        (src / path).write_bytes(data)
    run = wandb.init(project="arts")
    art = wandb.Artifact("ds", type="dataset")
    art.add_dir(str(src))
    run.log_artifact(art)
    run.finish()
emit({"entity": run.entity})
"""

_EDIT = """
import hashlib, pathlib, wandb
api = wandb.Api()
v0 = api.artifact(f"{ENTITY}/arts/ds:v0")
v0.aliases.append("best")
v0.description = "the first"
v0.save()
run = wandb.init(project="arts")
best = run.use_artifact("ds:best")
got = best.download(root="got-best")
run.finish()
refused = None
try:
    api.artifact(f"{ENTITY}/arts/ds:v1").delete()
except Exception as exc:
    refused = str(exc)
api.artifact(f"{ENTITY}/arts/ds:v1").delete(delete_aliases=True)
v0 = api.artifact(f"{ENTITY}/arts/ds:v0")
v0.aliases.remove("best")
v0.save()
emit({
    "best": [best.version, best.description, (pathlib.Path(got) / "mine.bin").read_bytes().hex()],
    "refused": refused,
    "v0_aliases": sorted(api.artifact(f"{ENTITY}/arts/ds:v0").aliases),
    "exists": [api.artifact_exists(f"{ENTITY}/arts/ds:{name}") for name in ("v1", "best", "latest")],
})
"""

_DOWNLOAD_V0 = """
import hashlib, pathlib, wandb
got = pathlib.Path(wandb.Api().artifact(f"{ENTITY}/arts/ds:v0").download(root="again"))
emit({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(got.iterdir())})
"""

_FIGURES = re.compile(r"(would free|freed) (\d+) object\(s\), ([\d,]+) bytes: (\d+) unreferenced blob")


def _gc(where: list[str], *extra: str) -> tuple[int, int, int, str]:
    """(objects, bytes, blobs) that `nbtrack server gc` reports, and its output."""
    done = subprocess.run(
        [sys.executable, "-m", "nbtrack.cli", "server", "gc", *where, "--older-than", "0s", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = _FIGURES.search(done.stdout)
    assert found, done.stdout
    return int(found[2]), int(found[3].replace(",", "")), int(found[4]), done.stdout


def _with(code: str, **values: object) -> str:
    for name, value in values.items():
        code = code.replace(name, repr(value))
    return code


def test_deleting_a_version_frees_its_own_files_and_keeps_the_shared_ones(
    wb: tuple[Proxied, list[str]],
) -> None:
    client, where = wb
    entity = client.run(_with(_LOG_TWO, SHARED=_SHARED, ONLY_V0=_ONLY_V0, ONLY_V1=_ONLY_V1))["entity"]
    blobs = sorted(key for key in _server(client).stored_files("~artifacts/") if "/manifests/" not in key)
    assert len(blobs) == 3  # shared.bin stored once

    mark = client.mark()
    edited = client.run(_with(_EDIT, ENTITY=entity))
    # wandb.Api sends no operationName: the mutation's name is in its text.
    sent = [re.search(r"mutation (\w+)", r.query or "") for r in client.since(mark)]
    operations = [found[1] for found in sent if found and found[1] in _EDITS]
    assert operations == [
        *("AddAliases", "UpdateArtifact"),  # v0.aliases.append("best"); v0.save()
        *("DeleteArtifact", "DeleteArtifact"),  # v1.delete() refused, then delete(delete_aliases=True)
        *("DeleteAliases", "UpdateArtifact"),  # v0.aliases.remove("best"); v0.save()
    ]
    # The alias added through save() is what use_artifact("ds:best") resolves, with the new description.
    assert edited["best"] == ["v0", "the first", _ONLY_V0.hex()]
    assert edited["refused"] and "aliases (latest)" in edited["refused"]  # W&B's rule: not without asking
    assert edited["v0_aliases"] == ["latest"]  # latest moved back to v0 when v1 went; best removed
    assert edited["exists"] == [False, False, True]

    dry = _gc(where, "--dry-run")
    assert sorted(key for key in _server(client).stored_files("~artifacts/")) == blobs  # nothing changed
    done = _gc(where)
    assert dry[:3] == done[:3] == (1, len(_ONLY_V1), 1), (dry[3], done[3])
    left = [key for key in _server(client).stored_files("~artifacts/") if "/manifests/" not in key]
    gone = hashlib.md5(_ONLY_V1, usedforsecurity=False).hexdigest()
    assert sorted(left) == sorted(key for key in blobs if not key.endswith(gone))
    assert _gc(where)[:3] == (0, 0, 0)  # a second pass finds nothing more

    client.forget_cache()
    again = client.run(_with(_DOWNLOAD_V0, ENTITY=entity))
    assert again == {
        "mine.bin": hashlib.sha256(_ONLY_V0).hexdigest(),
        "shared.bin": hashlib.sha256(_SHARED).hexdigest(),
    }
    assert [r.path for r in client.proxy.records if r.status >= 400] == []


_EDITS = {"AddAliases", "DeleteAliases", "UpdateArtifact", "DeleteArtifact"}


def _server(client: Proxied) -> serving.ServerProcess:
    return client.env.server


_RUN_DELETE = """
import pathlib, wandb
pathlib.Path("m.bin").write_bytes(MODEL)
run = wandb.init(project="arts")
art = wandb.Artifact("m", type="model")
art.add_file("m.bin")
run.log_artifact(art, aliases=["prod"])
run.finish()
api = wandb.Api()
api.run(f"{run.entity}/arts/{run.id}").delete(delete_artifacts=True)
emit({"exists": [api.artifact_exists(f"{run.entity}/arts/m:{name}") for name in ("v0", "prod")]})
"""


def test_deleting_a_run_with_its_artifacts_lets_gc_free_their_files(wb: tuple[Proxied, list[str]]) -> None:
    client, where = wb
    model = b"weights " * 1000
    out = client.run(_with(_RUN_DELETE, MODEL=model))
    assert out["exists"] == [False, False]
    assert _gc(where)[:3] == (1, len(model), 1)
    assert [key for key in _server(client).stored_files("~artifacts/")] == []
