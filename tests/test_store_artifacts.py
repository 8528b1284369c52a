"""The artifact tables (store/artifacts.py) on SQLite and PostgreSQL: versions numbered once each
even when two stores (two server replicas) commit at once, aliases that move, lineage that
outlives a deleted run, and the checks that refuse a clash."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nbtrack.store import Store
from nbtrack.store.artifacts import ArtifactsError
from tests.pg_database import fresh_database

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database of the test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nbtrack.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the store tests on PostgreSQL")
    with fresh_database(POSTGRES_URL, "nbtrack_art") as own:
        yield own


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    with Store(url) as opened:
        opened.upsert_run_inserted("me", "p", "maker", by_writer=True)
        opened.upsert_run_inserted("me", "p", "user", by_writer=True)
        yield opened


def _commit(store: Store, digest: str, aliases: tuple[str, ...] = ()) -> str:
    row = store.create_artifact_version("me", "p", "dataset", "ds", digest, run_id="maker", aliases=aliases)
    committed = store.commit_artifact_version(row.id, '{"contents": {}}', 0, 0)
    assert committed.version is not None
    return committed.version


def test_two_stores_committing_at_once_number_every_version_once(url: str, store: Store) -> None:
    """Two replicas (two Stores on one database), 4 threads, 24 versions: v0..v23, no gap, no twice."""
    with Store(url) as other:
        versions: list[str] = []
        failures: list[BaseException] = []
        lock = threading.Lock()

        def commit_many(target: Store, worker: int) -> None:
            try:
                for i in range(6):
                    made = _commit(target, f"w{worker}x{i}")
                    with lock:
                        versions.append(made)
            except BaseException as exc:  # reported below, with the test's failure
                failures.append(exc)

        threads = [
            threading.Thread(target=commit_many, args=(s, n)) for n, s in enumerate([store, other] * 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(24)]
    listed = store.list_artifact_versions("me", "p", "ds")
    assert [row.version for row in listed] == [f"v{i}" for i in reversed(range(24))]


def test_latest_and_user_aliases_move_and_name_one_version(store: Store) -> None:
    assert _commit(store, "a", ("best",)) == "v0"
    assert _commit(store, "b") == "v1"
    assert store.find_artifact_version("me", "p", "ds", "latest").version == "v1"  # type: ignore[union-attr]
    assert store.find_artifact_version("me", "p", "ds", "best").version == "v0"  # type: ignore[union-attr]
    assert _commit(store, "c", ("best",)) == "v2"
    by_version = {row.version: row.aliases for row in store.list_artifact_versions("me", "p", "ds")}
    assert by_version == {"v2": ("best", "latest"), "v1": (), "v0": ()}
    v0 = store.find_artifact_version("me", "p", "ds", "v0")
    assert v0 is not None
    store.set_artifact_alias(v0.id, "best")  # moved back by hand
    assert store.find_artifact_version("me", "p", "ds", "best").version == "v0"  # type: ignore[union-attr]
    assert store.remove_artifact_alias("me", "p", "ds", "best")
    assert store.find_artifact_version("me", "p", "ds", "best") is None
    assert store.find_artifact_version("me", "p", "ds", "v9") is None


def test_the_same_digest_again_is_the_committed_version_and_a_commit_is_final(store: Store) -> None:
    assert _commit(store, "same") == "v0"
    again = store.create_artifact_version("me", "p", "dataset", "ds", "same")
    assert again.version == "v0" and again.state == "COMMITTED"
    fresh = store.create_artifact_version("me", "p", "dataset", "ds", "same", reuse_same_digest=False)
    assert fresh.state == "PENDING" and fresh.version is None
    done = store.commit_artifact_version(fresh.id, '{"contents": {}}', 0, 0)
    assert done.version == "v1"
    retried = store.commit_artifact_version(fresh.id, '{"contents": {"other": {}}}', 9, 9)
    assert retried.version == "v1" and retried.manifest == '{"contents": {}}'  # unchanged


def test_lineage_and_a_deleted_run(store: Store) -> None:
    _commit(store, "a")
    row = store.find_artifact_version("me", "p", "ds", "latest")
    assert row is not None and row.run_id == "maker"
    store.use_artifact_version(row.id, "me", "p", "user")
    store.use_artifact_version(row.id, "me", "p", "user")  # said twice, recorded once
    assert [run.run_id for run in store.artifact_users(row.id)] == ["user"]
    assert [a.version for a in store.run_logged_artifacts("me", "p", "maker")] == ["v0"]
    assert [a.version for a in store.run_used_artifacts("me", "p", "user")] == ["v0"]
    store.delete_run("me", "p", "maker")
    kept = store.find_artifact_version("me", "p", "ds", "v0")
    assert kept is not None and kept.run_id is None  # the version outlives the run that logged it
    store.delete_run("me", "p", "user")
    assert store.artifact_users(row.id) == []


def test_clashes_are_refused_naming_the_culprit(store: Store) -> None:
    _commit(store, "a")
    with pytest.raises(ArtifactsError, match="'ds' of me/p is of type 'dataset', not 'model'"):
        store.create_artifact_version("me", "p", "model", "ds", "b")
    with pytest.raises(ArtifactsError, match="run me/p/ghost does not exist"):
        store.create_artifact_version("me", "p", "dataset", "ds", "b", run_id="ghost")
    row = store.find_artifact_version("me", "p", "ds", "v0")
    assert row is not None
    with pytest.raises(ArtifactsError, match="run me/p/ghost does not exist"):
        store.use_artifact_version(row.id, "me", "p", "ghost")


def test_blobs_are_per_entity(store: Store) -> None:
    store.record_blob("me", "0" * 32, 5)
    store.record_blob("me", "0" * 32, 5)  # a second upload of the same bytes
    assert store.known_blobs("me", ["0" * 32, "1" * 32]) == {"0" * 32}
    assert store.known_blobs("someone-else", ["0" * 32]) == set()


def test_types_and_collections_are_listed(store: Store) -> None:
    _commit(store, "a")
    store.create_artifact_version("me", "p", "model", "net", "m1")  # pending: its collection exists
    assert store.list_artifact_types("me", "p") == ["dataset", "model"]
    assert [c.name for c in store.list_artifact_collections("me", "p")] == ["net", "ds"]
    [ds] = store.list_artifact_collections("me", "p", "dataset")
    assert ds.type_name == "dataset" and ds.updated_at >= ds.created_at
    assert store.list_artifact_collections("me", "other") == []
