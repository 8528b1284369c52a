"""run.log_artifact / run.use_artifact of online runs against a real `nbtrack server` (SQLite, and
PostgreSQL): the sender delivers the version through online/artifact_upload.py while the file
stream goes on, a second run uses it (lineage on the server), and `nbtrack sync` of the logs, or
of an offline run's, stores each version once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.settings import store_url
from nbtrack.store import Store
from nbtrack.store.artifact_rows import ArtifactsError
from nbtrack.sync import sync_log
from nbtrack.sync.replay import _deliver_artifacts
from nbtrack.txlog import iter_records
from tests import serving
from tests.serving import ServerProcess, create_key, unique_name

server, pg_server = serving.server, serving.pg_server  # the fixtures


def make_files(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.txt").write_text("beta\n")
    (folder / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    return folder


def dataset(folder: Path) -> nbtrack.Artifact:
    art = nbtrack.Artifact("ds", type="dataset", metadata={"rows": 3})
    art.add_dir(folder)
    return art


def same_files(a: Path, b: Path) -> bool:
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    return names_a == names_b and all((a / n).read_bytes() == (b / n).read_bytes() for n in names_a)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_an_online_run_logs_an_artifact_another_uses_it_and_a_sync_adds_nothing(
    database: str, root: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    served: ServerProcess = request.getfixturevalue("server" if database == "sqlite" else "pg_server")
    entity = unique_name("arts")
    key = create_key(served, entity)
    project = unique_name("p")
    files = make_files(tmp_path / "data")
    with nbtrack.init(project=project, dir=root, id="maker", base_url=served.url, api_key=key) as run:
        for step in range(200):
            run.log({"loss": 1.0 / (step + 1)})
            if step == 100:
                run.log_artifact(dataset(files), aliases=["best"])
    assert run.state == "finished" and not [n for n in run.notices if "artifact" in n]
    api = nbtrack.Api(base_url=served.url, api_key=key)
    got = api.artifact(f"{entity}/{project}/ds:best")
    assert (got.name, got.logged_by().id, got.metadata) == ("ds:v0", "maker", {"rows": 3})
    assert sorted(got.aliases) == ["best", "latest"]
    assert same_files(files, got.download(tmp_path / "out"))
    assert len(api.run(f"{entity}/{project}/maker").history()) == 200  # the rows went on meanwhile

    with nbtrack.init(project=project, dir=root, id="user", base_url=served.url, api_key=key) as run:
        used = run.use_artifact("ds:best", type="dataset")
        assert used.name == "ds:v0"
        assert same_files(files, used.download(tmp_path / "used"))
        with pytest.raises(UsageError, match=r"no artifact .*/ds:nope on http"):
            run.use_artifact("ds:nope")
    assert [r.id for r in api.artifact(f"{entity}/{project}/ds:v0").used_by()] == ["user"]
    # A run of another project uses it by its full name: recorded as that run's use (W&B's
    # useArtifact names the using run's project).
    other = unique_name("q")
    with nbtrack.init(project=other, dir=root, id="elsewhere", base_url=served.url, api_key=key) as run:
        assert run.use_artifact(f"{project}/ds:v0").name == "ds:v0"
    assert [r.path for r in api.artifact(f"{entity}/{project}/ds:v0").used_by()] == [
        f"{entity}/{project}/user",
        f"{entity}/{other}/elsewhere",
    ]
    assert run.state == "finished" and not [n for n in run.notices if "artifact" in n], run.notices
    # Lineage both ways, as W&B's Api reads it: runs from an artifact, artifacts from a run.
    maker, user = api.run(f"{entity}/{project}/maker"), api.run(f"{entity}/{project}/user")
    logger = api.artifact(f"{entity}/{project}/ds:v0").logged_by()
    assert logger is not None and (logger.id, logger.name, logger.state) == ("maker", maker.name, "finished")
    assert [a.name for a in maker.logged_artifacts()] == ["ds:v0"] and maker.used_artifacts() == []
    assert [a.name for a in user.used_artifacts()] == ["ds:v0"] and user.logged_artifacts() == []
    assert same_files(files, user.used_artifacts()[0].download(tmp_path / "again"))

    # The logs delivered again (a retry after a lost answer): still one version, one use.
    for name in ("maker", "user"):
        log = next((root / "runs").glob(f"run-*-{name}/run-{name}.nbt"))
        assert sync_log(log, base_url=served.url, api_key=key).error is None
    versions = api.artifact(f"{entity}/{project}/ds:latest").versions()
    assert [v.name for v in versions] == ["ds:v0"]
    assert [r.id for r in api.artifact(f"{entity}/{project}/ds:v0").used_by()] == ["user", "elsewhere"]


def test_an_offline_run_s_artifact_syncs_to_a_server_once(
    root: Path, tmp_path: Path, server: ServerProcess
) -> None:
    entity = unique_name("arts")
    key = create_key(server, entity)
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="off", mode="offline") as run:
        run.log({"x": 1})
        run.log_artifact(dataset(files), aliases=["best"])
    log = next(run.dir.glob("*.nbt"))
    api = nbtrack.Api(base_url=server.url, api_key=key)
    for _ in range(2):
        assert sync_log(log, base_url=server.url, api_key=key).error is None
        got = api.artifact(f"{entity}/p/ds:best")
        assert [v.name for v in got.versions()] == ["ds:v0"] and got.logged_by().id == "off"
    assert same_files(files, got.download(tmp_path / "out"))


def test_sync_to_a_server_holding_the_run_restores_an_artifact_it_lacks(
    root: Path, tmp_path: Path, server: ServerProcess
) -> None:
    entity = unique_name("arts")
    key = create_key(server, entity)
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="gone", base_url=server.url, api_key=key) as run:
        run.log({"x": 1})
        run.log_artifact(dataset(files))
    assert server.dir is not None
    with Store(store_url(server.dir)) as store:  # the version is gone from the server (deleted)
        row = store.find_artifact_version(entity, "p", "ds", "v0")
        assert row is not None
        store.delete_artifact_version(row.id, delete_aliases=True)
    api = nbtrack.Api(base_url=server.url, api_key=key)
    with pytest.raises(ArtifactsError, match="no artifact ds:latest"):
        api.artifact(f"{entity}/p/ds:latest")
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):  # the rows are all there; the artifact is delivered, once
        assert sync_log(log, base_url=server.url, api_key=key).error is None
        assert [v.name for v in api.artifact(f"{entity}/p/ds:latest").versions()] == ["ds:v1"]
    assert same_files(files, api.artifact(f"{entity}/p/ds:v1").download(tmp_path / "out"))
    # What a sync does when the server holds every row (a plan that delivers nothing else): the
    # log's artifact records alone, idempotent too.
    scan_run = next(r.run for r in iter_records(log) if r.WhichOneof("record_type") == "run")
    for _ in range(2):
        assert _deliver_artifacts(log, scan_run, entity, None, server.url, key) is None
        assert [v.name for v in api.artifact(f"{entity}/p/ds:latest").versions()] == ["ds:v1"]
