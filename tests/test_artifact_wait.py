"""`art = run.log_artifact(art); art.wait(); art.version`, as W&B users write it: the version the
artifact became, asked of the run's internal process while it runs, read from the store or server
once it is finished; an offline run, a timeout and a dead internal process each answered at once
or within the bound, saying where the artifact is. Local runs, and online runs against a real
`nbtrack server` (SQLite and a folder; PostgreSQL and S3)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.store.artifact_rows import ArtifactsError
from tests import serving
from tests.serving import ServerProcess

server = serving.server  # the fixture


def dataset(folder: Path, text: str) -> nbtrack.Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text(text)
    art = nbtrack.Artifact("ds", type="dataset")
    art.add_dir(folder)
    return art


def test_wait_in_a_local_run_learns_each_version_and_a_finished_run_answers_from_its_store(
    root: Path, tmp_path: Path
) -> None:
    first = dataset(tmp_path / "one", "first\n")
    with pytest.raises(UsageError, match=r"'ds'.*call run\.log_artifact\(\) first"):
        first.wait()
    with nbtrack.init(project="p", dir=root, id="maker") as run:
        assert run.log_artifact(first) is first and first.version is None  # not asked yet
        assert first.wait(timeout=60) is first and first.version == "v0"
        second = run.log_artifact(dataset(tmp_path / "two", "second\n"))
        assert second.wait().version == "v1"
        again = run.log_artifact(dataset(tmp_path / "three", "first\n"))  # v0's files again
        late = run.log_artifact(dataset(tmp_path / "four", "fourth\n"))
    assert again.wait().version == "v0"
    assert late.wait(timeout=0).version == "v2"  # the run is finished: its store answers at once
    stored = nbtrack.Api(dir=root).artifact("p/ds:latest")
    assert stored.version == "v2" and stored.digest == late.digest


def test_wait_in_an_offline_run_says_at_once_that_sync_stores_it(root: Path, tmp_path: Path) -> None:
    with nbtrack.init(project="p", dir=root, id="off", mode="offline") as run:
        art = run.log_artifact(dataset(tmp_path / "d", "x\n"))
        said = r"offline run's artifacts are stored by `nbtrack sync .*off"
        with pytest.raises(ArtifactsError, match=said):
            art.wait(timeout=600)
    assert art.version is None


def test_wait_outlives_a_killed_internal_process_whose_successor_delivers_the_artifact(
    root: Path, tmp_path: Path
) -> None:
    with nbtrack.init(project="p", dir=root, id="killed") as run:
        art = run.log_artifact(dataset(tmp_path / "d", "x\n"))
        process = run._connection.process
        assert process is not None and process.pid is not None
        os.kill(process.pid, signal.SIGKILL)  # the replacement recovers the log and delivers it
        assert art.wait(timeout=120).version == "v0"
        assert run.restarts == 1


def test_wait_for_a_run_whose_internal_process_is_gone_for_good_answers_at_once_from_the_store(
    root: Path, tmp_path: Path
) -> None:
    from nbtrack.transport.restart import MAX_RESTARTS

    run = nbtrack.init(project="p", dir=root, id="gone")
    art = run.log_artifact(dataset(tmp_path / "d", "x\n"))
    run._connection.restarts = MAX_RESTARTS  # the budget is spent: this death is final
    assert run._connection.process is not None
    run._connection.process.kill()
    try:
        version = art.wait(timeout=600).version  # stored before the kill
    except ArtifactsError as exc:  # killed before it was stored: where it is, at once
        assert f"transaction log {run._settings.log_path} keeps it" in str(exc)
        assert "nbtrack sync" in str(exc)
        version = None
    finally:
        run.finish()
    stored = nbtrack.Api(dir=root).find_artifact("local", "p", "ds", "latest")
    assert version == (None if stored is None else stored.version)


@pytest.fixture(params=["sqlite-folder", "postgresql-s3"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    if request.param == "sqlite-folder":
        server = serving.start_server(tmp_path)
    else:
        if not serving.POSTGRES_URL:
            pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the server tests on PostgreSQL")
        server = serving.start_server(tmp_path, db_url=serving.POSTGRES_URL, files=serving.files_on("s3"))
    yield server
    server.stop()


def test_wait_in_an_online_run_learns_the_version_the_server_gave(
    served: ServerProcess, root: Path, tmp_path: Path
) -> None:
    entity = serving.unique_name("wait")
    key = serving.create_key(served, entity)
    with nbtrack.init(project="p", dir=root, id="maker", base_url=served.url, api_key=key) as run:
        art = run.log_artifact(dataset(tmp_path / "one", "first\n"), aliases=["best"])
        assert art.wait(timeout=120).version == "v0"
        run.log({"x": 1})
        late = run.log_artifact(dataset(tmp_path / "two", "second\n"))
    assert late.wait(timeout=0).version == "v1"  # finished: the server answers
    api = nbtrack.Api(base_url=served.url, api_key=key)
    assert [a.version for a in api.run(f"{entity}/p/maker").logged_artifacts()] == ["v0", "v1"]


def test_wait_past_its_timeout_while_the_server_is_down_says_the_log_keeps_it(
    root: Path, tmp_path: Path, server: ServerProcess
) -> None:
    entity = serving.unique_name("wait")
    key = serving.create_key(server, entity)
    run = nbtrack.init(project="p", dir=root, id="waits", base_url=server.url, api_key=key)
    try:
        server.stop()
        art = run.log_artifact(dataset(tmp_path / "d", "x\n"))
        said = r"not stored yet after 1 s.*transaction log .*waits.* keeps it"
        with pytest.raises(ArtifactsError, match=said):
            art.wait(timeout=1)
        assert art.version is None
    finally:
        run.finish(timeout=1)


def test_wait_in_a_disabled_run_says_nothing_is_stored(root: Path, tmp_path: Path) -> None:
    with nbtrack.init(project="p", dir=root, mode="disabled") as run:
        art = run.log_artifact(dataset(tmp_path / "d", "x\n"))
        with pytest.raises(UsageError, match="a disabled run stores no artifacts"):
            art.wait()
    assert art.version is None


def test_wait_for_an_artifact_the_store_refused_says_why_at_once(root: Path, tmp_path: Path) -> None:
    with nbtrack.init(project="p", dir=root, id="refused") as run:
        assert run.log_artifact(dataset(tmp_path / "one", "x\n")).wait().version == "v0"
        model = nbtrack.Artifact("ds", type="model")  # "ds" is a dataset collection already
        (tmp_path / "m.txt").write_text("weights\n")
        model.add_file(tmp_path / "m.txt")
        run.log_artifact(model)
        said = r"was not stored: .*of type 'dataset', not 'model'.*transaction log .*refused.* keeps it"
        with pytest.raises(ArtifactsError, match=said):
            model.wait(timeout=600)  # the refusal is answered as soon as it is known
    assert model.version is None
    with pytest.raises(ArtifactsError, match=r"finished without storing it"):
        model.wait(timeout=0)  # and from the store once the run is finished
