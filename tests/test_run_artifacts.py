"""nbtrack's own run.log_artifact / run.use_artifact, through the run's records: staged files, the
transaction log, the sender and the store (a real internal process, a real SQLite store; the
delivery's store side on PostgreSQL too), offline runs delivered by `nbtrack sync`, and an
internal process killed with the artifact in its log but not yet stored."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbtrack
from nbtrack.errors import UsageError
from nbtrack.internal.artifact_delivery import store_artifact
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sdk.run_artifacts import STAGED, artifact_record
from nbtrack.settings import store_url
from nbtrack.store import Store
from nbtrack.sync import sync_log
from nbtrack.txlog import iter_records
from tests.pg_database import fresh_database

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")


def make_files(folder: Path) -> Path:
    """A folder of three files: two small, one of 3 MB (more than one hashing chunk)."""
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha\n")
    (folder / "sub" / "b.txt").write_text("beta\n")
    (folder / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    return folder


def dataset(folder: Path, **kwargs: object) -> nbtrack.Artifact:
    art = nbtrack.Artifact("ds", type="dataset", metadata={"rows": 3}, **kwargs)  # type: ignore[arg-type]
    art.add_dir(folder)
    return art


def blobs_on_disk(root: Path, entity: str = "local") -> set[str]:
    folder = root / "files" / "~artifacts" / entity
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.is_dir() else set()


def versions(root: Path, collection: str = "ds", project: str = "p") -> list[tuple[str, tuple[str, ...]]]:
    with Store(store_url(root)) as store:
        rows = store.list_artifact_versions("local", project, collection)
        return sorted(
            (row.version or "", tuple(sorted(row.aliases))) for row in rows if row.state == "COMMITTED"
        )


def same_files(a: Path, b: Path) -> bool:
    names_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    names_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    return names_a == names_b and all((a / n).read_bytes() == (b / n).read_bytes() for n in names_a)


def test_a_logged_artifact_downloads_byte_identical_with_its_metadata_and_aliases(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="maker") as run:
        returned = run.log_artifact(dataset(files, description="three files"), aliases=["best"])
        assert isinstance(returned, nbtrack.Artifact)
    got = nbtrack.Api(dir=root).artifact("p/ds:best")
    assert (got.name, got.type, got.logged_by().id) == ("ds:v0", "dataset", "maker")
    assert sorted(got.aliases) == ["best", "latest"]
    assert got.metadata == {"rows": 3} and got.description == "three files"
    assert got.files() == ["a.txt", "big.bin", "sub/b.txt"]
    assert same_files(files, got.download(tmp_path / "out"))
    # The user's files may change now: the run's folder kept what was logged.
    (files / "a.txt").write_text("changed later\n")
    assert (got.download(tmp_path / "again") / "a.txt").read_text() == "alpha\n"


def test_a_second_version_with_one_file_changed_stores_one_new_blob_and_moves_latest(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="one") as run:
        run.log_artifact(dataset(files), aliases=["best"])
    first = blobs_on_disk(root)
    assert len(first) == 3
    (files / "a.txt").write_text("alpha, second edition\n")
    with nbtrack.init(project="p", dir=root, id="two") as run:
        run.log_artifact(dataset(files), aliases=["candidate"])
        run.log_artifact(dataset(files))  # the same files again: the same version
    assert len(blobs_on_disk(root) - first) == 1 and first <= blobs_on_disk(root)
    assert versions(root) == [("v0", ("best",)), ("v1", ("candidate", "latest"))]
    api = nbtrack.Api(dir=root)
    assert api.artifact("p/ds:latest").logged_by().id == "two"
    assert (api.artifact("p/ds:v0").download(tmp_path / "v0") / "a.txt").read_text() == "alpha\n"


def test_a_stored_blob_is_the_staged_file_itself_not_a_second_copy(root: Path, tmp_path: Path) -> None:
    # The run's folder and the store's files are on one filesystem here: each blob is a hard link
    # of its staged file (checked first), so a 1 GB artifact takes 1 GB of disk, not 2.
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="linked") as run:
        run.log_artifact(dataset(files))
        staged = run.dir / STAGED
    blobs = root / "files" / "~artifacts" / "local"
    for name in blobs_on_disk(root):
        assert os.path.samefile(blobs / name, staged / name)
    assert same_files(files, nbtrack.Api(dir=root).artifact("p/ds:v0").download(tmp_path / "back"))


def test_use_artifact_resolves_a_version_and_records_the_lineage(root: Path, tmp_path: Path) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="maker") as run:
        run.log_artifact(dataset(files), aliases=["best"])
    with nbtrack.init(project="q", dir=root, id="user") as run:
        used = run.use_artifact("p/ds:best", type="dataset")
        assert used.name == "ds:v0" and used.metadata == {"rows": 3}
        assert same_files(files, used.download(tmp_path / "used"))
        with pytest.raises(UsageError, match=r"ds:v0 is of type 'dataset', not 'model'"):
            run.use_artifact("p/ds", type="model")
    with Store(store_url(root)) as store:
        row = store.find_artifact_version("local", "p", "ds", "v0")
        assert row is not None and row.run_id == "maker"
        assert [r.run_id for r in store.artifact_users(row.id)] == ["user"]
        assert [(r.collection, r.version) for r in store.run_used_artifacts("local", "q", "user")] == [
            ("ds", "v0")
        ]
    # The use names the version by its number in the log, never the moving alias.
    log = next((root / "runs").glob("run-*-user/run-user.nbt"))
    uses = [r.use_artifact for r in iter_records(log) if r.WhichOneof("record_type") == "use_artifact"]
    assert [(u.project, u.collection, u.version) for u in uses] == [("p", "ds", "v0")]


def test_the_api_leads_from_an_artifact_to_its_runs_and_from_a_run_to_its_artifacts(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="maker", name="make data") as run:
        run.log_artifact(dataset(files), aliases=["best"])
    with nbtrack.init(project="q", dir=root, id="user", name="train") as run:
        run.use_artifact("p/ds:best")
    api = nbtrack.Api(dir=root)
    art = api.artifact("p/ds:v0")
    logger = art.logged_by()
    assert logger is not None and (logger.path, logger.name, logger.state) == (
        "local/p/maker",
        "make data",
        "finished",
    )
    assert [(r.path, r.name) for r in art.used_by()] == [("local/q/user", "train")]  # another project's run
    maker, user = api.run("p/maker"), api.run("q/user")
    assert [a.name for a in maker.logged_artifacts()] == ["ds:v0"] and maker.used_artifacts() == []
    assert [a.name for a in user.used_artifacts()] == ["ds:v0"] and user.logged_artifacts() == []
    assert same_files(files, user.used_artifacts()[0].download(tmp_path / "out"))
    # A run read back from the artifact leads on to its own artifacts.
    assert [a.name for a in art.used_by()[0].used_artifacts()] == ["ds:v0"]
    maker.delete()  # the version stays; who logged it is no longer known
    assert api.artifact("p/ds:v0").logged_by() is None


def test_a_source_changed_after_add_file_is_refused_and_nothing_is_logged(root: Path, tmp_path: Path) -> None:
    files = make_files(tmp_path / "data")
    art = dataset(files)
    (files / "sub" / "b.txt").write_text("BETA\n")  # same size, other bytes
    with nbtrack.init(project="p", dir=root, id="changed") as run:
        with pytest.raises(ValueError, match=r"b\.txt.*changed since it was added.*Nothing was logged"):
            run.log_artifact(art)
        (files / "big.bin").unlink()
        with pytest.raises(ValueError, match=r"big\.bin.*is gone since it was added"):
            run.log_artifact(art)
        staged = run.dir / STAGED
        assert not staged.exists() or not [p for p in staged.iterdir() if p.is_file()]
        run.log({"after": 1})  # the run goes on
    kinds = [r.WhichOneof("record_type") for r in iter_records(run.dir / "run-changed.nbt")]
    assert "artifact" not in kinds and kinds.count("history") == 1
    assert versions(root) == []


def test_bad_arguments_are_refused_naming_the_culprit(root: Path, tmp_path: Path) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="bad") as run:
        run.log_artifact(dataset(files))
        with pytest.raises(TypeError, match=r"takes an nbtrack\.Artifact, not str"):
            run.log_artifact("ds")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"alias 'a:b' must have 1 to 128 characters"):
            run.log_artifact(dataset(files), aliases=["a:b"])
        with pytest.raises(UsageError, match=r"'e/p/ds/x' is not an artifact name"):
            run.use_artifact("e/p/ds/x")
        with pytest.raises(UsageError, match=r"no artifact local/p/nope:latest in the store"):
            run.use_artifact("nope")
        with pytest.raises(UsageError, match=r"no artifact local/p/ds:v7 in the store"):
            run.use_artifact("ds:v7")
    assert versions(root) == [("v0", ("latest",))]  # what was logged is unharmed
    with pytest.raises(UsageError, match=r"log_artifact\(\): run bad is finished"):
        run.log_artifact(dataset(files))


def test_an_offline_run_s_artifact_arrives_with_sync_once(root: Path, tmp_path: Path) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="off", mode="offline") as run:
        run.log_artifact(dataset(files), aliases=["best"])
        with pytest.raises(UsageError, match=r"offline run uses only artifacts already in the store"):
            run.use_artifact("ds:best")
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):  # a second sync adds nothing
        assert sync_log(log, store_url(root)).error is None
        assert versions(root) == [("v0", ("best", "latest"))]
        assert len(blobs_on_disk(root)) == 3
    got = nbtrack.Api(dir=root).artifact("p/ds:best")
    assert got.logged_by().id == "off"
    assert same_files(files, got.download(tmp_path / "out"))
    # Once it is in the store, an offline run can use it.
    with nbtrack.init(project="p", dir=root, id="off2", mode="offline") as run:
        assert run.use_artifact("ds:best").name == "ds:v0"
    assert sync_log(next(run.dir.glob("*.nbt")), store_url(root)).error is None
    with Store(store_url(root)) as store:
        assert [(r.collection, r.version) for r in store.run_used_artifacts("local", "p", "off2")] == [
            ("ds", "v0")
        ]


def _log_has_artifact(log: Path) -> bool:
    try:
        return any(
            r.WhichOneof("record_type") == "artifact" for r in iter_records(log, on_corruption=lambda c: None)
        )
    except OSError:
        return False


def test_a_process_killed_before_delivering_its_artifact_delivers_it_once_after_recovery(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    run = nbtrack.init(project="p", dir=root, id="killed")
    pid = run._connection.process.pid if run._connection is not None else None
    assert pid is not None
    # Hold the store's write lock: the sender cannot store the artifact (it retries meanwhile).
    lock = sqlite3.connect(root / "nbtrack.db", timeout=30, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    try:
        run.log_artifact(dataset(files), aliases=["best"])
        log = run.dir / "run-killed.nbt"
        deadline = time.monotonic() + 30
        while not _log_has_artifact(log):
            assert time.monotonic() < deadline, "the artifact record never reached the log"
            time.sleep(0.02)
        os.kill(pid, signal.SIGKILL)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert versions(root) == []  # not delivered before the kill
    run.log({"after": 1})
    run.finish()
    assert run.restarts >= 1 and run.state == "finished"
    assert versions(root) == [("v0", ("best", "latest"))]
    assert len(blobs_on_disk(root)) == 3
    assert sync_log(log, store_url(root)).error is None  # and a sync of the log adds nothing
    assert versions(root) == [("v0", ("best", "latest"))]
    assert same_files(files, nbtrack.Api(dir=root).artifact("p/ds:v0").download(tmp_path / "out"))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store(f"sqlite:///{tmp_path / 'nbtrack.db'}") as store:
            yield store
        return
    if not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    with fresh_database(POSTGRES_URL, "nbtrack_runart") as url, Store(url) as store:
        yield store


def test_delivering_a_record_again_stores_its_version_once_on_either_database(
    any_store: Store, tmp_path: Path
) -> None:
    """The delivery's store side (what a recovery or a second sync repeats), on SQLite and PostgreSQL."""
    files = make_files(tmp_path / "data")
    run_dir = tmp_path / "run"
    files_root = tmp_path / "files"
    any_store.upsert_run_inserted("me", "p", "r1", by_writer=True)
    key = ("me", "p", "r1")
    first = artifact_record(dataset(files), ["best"], run_dir)
    for _ in range(3):
        row = store_artifact(any_store, files_root, key, first, run_dir / STAGED)
        assert (row.version, row.state) == ("v0", "COMMITTED")
    (files / "a.txt").write_text("alpha 2\n")
    second = artifact_record(dataset(files), [], run_dir)
    for _ in range(2):
        assert store_artifact(any_store, files_root, key, second, run_dir / STAGED).version == "v1"
    committed = [r for r in any_store.list_artifact_versions("me", "p", "ds") if r.state == "COMMITTED"]
    assert sorted(r.version or "" for r in committed) == ["v0", "v1"]
    assert len(list((files_root / "~artifacts" / "me").iterdir())) == 4  # 3 + the one changed file
    latest = any_store.find_artifact_version("me", "p", "ds", "latest")
    assert latest is not None and latest.version == "v1"
    # A staged file that is not what the manifest says is refused, naming it; nothing is stored.
    (files / "a.txt").write_text("alpha 3\n")
    third = artifact_record(dataset(files), [], run_dir)
    bad = next(p for p in (run_dir / STAGED).iterdir() if p.read_bytes() == b"alpha 3\n")
    bad.write_bytes(b"tampered\n")
    with pytest.raises(Exception, match=r"artifact ds: its staged file .* changed"):
        store_artifact(any_store, files_root, key, third, run_dir / STAGED)
    assert sorted(
        r.version or "" for r in any_store.list_artifact_versions("me", "p", "ds") if r.state == "COMMITTED"
    ) == ["v0", "v1"]
    assert isinstance(third, pb.ArtifactRecord)


def test_sync_of_a_delivered_run_still_delivers_an_artifact_the_store_lacks(
    root: Path, tmp_path: Path
) -> None:
    files = make_files(tmp_path / "data")
    with nbtrack.init(project="p", dir=root, id="lost") as run:
        run.log({"x": 1})
        run.log_artifact(dataset(files))
    with Store(store_url(root)) as store:  # the version is gone from the store (deleted, a restore)
        row = store.find_artifact_version("local", "p", "ds", "v0")
        assert row is not None
        store.delete_artifact_version(row.id, delete_aliases=True)
    assert versions(root) == []
    log = next(run.dir.glob("*.nbt"))
    for _ in range(2):  # the rows are all there; the artifact is delivered, once
        report = sync_log(log, store_url(root))
        assert report.error is None and not report.delivered
        assert versions(root) == [("v1", ("latest",))]
    assert same_files(files, nbtrack.Api(dir=root).artifact("p/ds:latest").download(tmp_path / "out"))
