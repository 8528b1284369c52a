"""Artifact garbage collection (server/artifact_gc.py, store/artifact_gc.py) on SQLite + a files
folder and PostgreSQL + S3: the grace age for PENDING versions and for blobs, orphans, the dry
run, and the races it must survive: a version committing between gc's mark and its sweep, a commit
after the sweep, and two gc passes at once. The races are forced through gc's before_sweep hook
(threads with a barrier, or a commit run there), never with sleeps."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nbtrack import jsonutil
from nbtrack.server.artifact_gc import ArtifactGc, GcReport
from nbtrack.server.file_backend import FileBackend, open_file_backend
from nbtrack.store import Store
from nbtrack.store.artifact_gc import EntityMarks
from nbtrack.store.artifacts import ArtifactRow, ArtifactsError
from tests import serving
from tests.pg_database import fresh_database

POSTGRES_URL = os.environ.get("NBTRACK_TEST_POSTGRES_URL")


@dataclass
class Setup:
    store: Store
    backend: FileBackend
    url: str

    def upload(self, data: bytes) -> str:
        """Store a blob as the server does once its bytes are checked: object, then record."""
        md5_hex = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self.backend.create(f"~artifacts/me/{md5_hex}", data)
        assert self.store.record_blob("me", md5_hex, len(data))
        return md5_hex

    def pending(self, digest: str, *blobs: bytes) -> tuple[ArtifactRow, str, list[str]]:
        """A PENDING version whose client uploaded blobs and its manifest (not yet committed)."""
        row = self.store.create_artifact_version("me", "p", "dataset", "ds", digest)
        hexes = [self.upload(data) for data in blobs]
        manifest = jsonutil.dumps_str(
            {
                "version": 1,
                "contents": {
                    f"f{i}": {"digest": base64.b64encode(bytes.fromhex(h)).decode(), "size": len(data)}
                    for i, (h, data) in enumerate(zip(hexes, blobs, strict=True))
                },
            }
        )
        self.backend.create(f"~artifacts/me/manifests/{row.id}", manifest.encode())
        return row, manifest, hexes

    def commit(self, digest: str, *blobs: bytes) -> ArtifactRow:
        row, manifest, hexes = self.pending(digest, *blobs)
        committed = self.store.commit_artifact_version(row.id, manifest, 0, len(blobs), hexes)
        self.backend.delete(f"~artifacts/me/manifests/{row.id}")  # the store keeps it (as the server does)
        return committed

    def blobs(self) -> set[str]:
        return {s.key for s in self.backend.list("~artifacts/me") if "/" not in s.key}

    def gc(
        self,
        cutoff: float | None = None,
        dry_run: bool = False,
        hook: Callable[[EntityMarks], object] | None = None,
    ) -> GcReport:
        gc = ArtifactGc(self.store, self.backend, hook)
        return gc.run(time.time() + 1 if cutoff is None else cutoff, dry_run=dry_run)


@pytest.fixture(params=["sqlite-folder", "postgresql-s3"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    if request.param == "sqlite-folder":
        with Store(f"sqlite:///{tmp_path / 'nbtrack.db'}") as store:
            yield Setup(store, open_file_backend(tmp_path / "files"), str(tmp_path / "nbtrack.db"))
        return
    if not POSTGRES_URL:
        pytest.skip("set NBTRACK_TEST_POSTGRES_URL to run the gc tests on PostgreSQL")
    files = serving.files_on("s3")
    assert files is not None
    with fresh_database(POSTGRES_URL, "nbtrack_gc") as url, Store(url) as store:
        yield Setup(store, open_file_backend(files), url)


A, B, C = b"a" * 1000, b"b" * 2000, b"c" * 3000


def test_a_deleted_version_frees_its_own_blobs_and_the_dry_run_reports_the_same(setup: Setup) -> None:
    kept = setup.commit("d0", A, B)
    gone = setup.commit("d1", A, C)
    setup.store.delete_artifact_version(gone.id, delete_aliases=True)
    before = setup.blobs()
    dry = setup.gc(dry_run=True)
    assert setup.blobs() == before  # nothing changed
    done = setup.gc()
    assert (dry.blobs, dry.blob_bytes) == (done.blobs, done.blob_bytes) == (1, len(C))
    assert setup.blobs() == before - {hashlib.md5(C, usedforsecurity=False).hexdigest()}
    assert setup.gc().objects == 0  # and nothing more next time
    assert setup.store.get_artifact_version(kept.id) is not None


def test_an_old_pending_version_is_cleaned_and_a_young_one_kept(setup: Setup) -> None:
    old, _, _ = setup.pending("old", A)
    cutoff = time.time()
    while time.time() <= cutoff:  # the clock's resolution: what follows is strictly younger
        pass
    young, _, _ = setup.pending("young", B)
    dry = setup.gc(cutoff, dry_run=True)
    done = setup.gc(cutoff)
    assert (dry.pending, dry.blobs, dry.blob_bytes) == (done.pending, done.blobs, done.blob_bytes)
    assert (done.pending, done.blobs, done.blob_bytes) == (1, 1, len(A))
    assert setup.store.get_artifact_version(old.id) is None
    assert setup.backend.stat(f"~artifacts/me/manifests/{old.id}") is None  # its manifest too
    assert setup.store.get_artifact_version(young.id) is not None
    assert setup.blobs() == {hashlib.md5(B, usedforsecurity=False).hexdigest()}


def test_a_blob_claimed_by_a_new_version_within_the_grace_age_is_kept(setup: Setup) -> None:
    old, _, (a_hex,) = setup.pending("gone", A)
    setup.store.delete_artifact_version(old.id)  # A is now unreferenced, and old
    cutoff = time.time()
    while time.time() <= cutoff:
        pass
    # A new version's client is told A is stored (createArtifactFiles): it will not upload it.
    assert setup.store.claim_blobs("me", [a_hex]) == {a_hex}
    assert setup.gc(cutoff).blobs == 0
    assert a_hex in setup.blobs()


def test_a_version_committing_between_mark_and_sweep_keeps_its_blob(setup: Setup) -> None:
    row, manifest, hexes = setup.pending("racing", A)
    committed: list[ArtifactRow] = []

    def commit_now(_marks: EntityMarks) -> None:  # gc has marked A (old, unreferenced)
        committed.append(setup.store.commit_artifact_version(row.id, manifest, len(A), 1, hexes))

    report = setup.gc(hook=commit_now)  # a cutoff after everything: only the re-check saves A
    assert committed and committed[0].state == "COMMITTED"
    assert (report.blobs, report.pending) == (0, 0)
    assert setup.blobs() == set(hexes)
    assert setup.store.get_artifact_version(row.id) is not None


def test_a_commit_after_the_sweep_is_refused_not_left_missing_a_file(setup: Setup) -> None:
    row, manifest, hexes = setup.pending("late", A)
    setup.store.delete_artifact_version(row.id)
    cutoff = time.time()
    while time.time() <= cutoff:
        pass
    again = setup.store.create_artifact_version("me", "p", "dataset", "ds", "late")  # young: kept
    assert setup.gc(cutoff).blobs == 1  # A: unreferenced and old
    with pytest.raises(ArtifactsError, match="not stored"):
        setup.store.commit_artifact_version(again.id, manifest, len(A), 1, hexes)


def test_two_gc_passes_at_once_free_each_blob_once(setup: Setup) -> None:
    setup.commit("d0", A)
    gone = setup.commit("d1", B, C)
    setup.store.delete_artifact_version(gone.id, delete_aliases=True)
    both_marked = threading.Barrier(2, timeout=30)
    reports: list[GcReport] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            reports.append(setup.gc(hook=lambda _marks: both_marked.wait()))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(reports) == 2
    assert sorted(r.blobs for r in reports) == [0, 2]  # one pass freed both, the other found none
    assert sum(r.blob_bytes for r in reports) == len(B) + len(C)
    assert setup.blobs() == {hashlib.md5(A, usedforsecurity=False).hexdigest()}


def test_orphan_objects_without_a_record_are_freed_once_old(setup: Setup) -> None:
    setup.commit("d0", A)
    orphan = hashlib.md5(B, usedforsecurity=False).hexdigest()
    setup.backend.create(f"~artifacts/gone-entity/{orphan}", B)  # an entity's files left behind
    setup.backend.create("~artifacts/me/manifests/999999", b"{}")  # a manifest of no version
    assert setup.gc(time.time() - 3600).orphans == 0  # younger than the grace age
    dry = setup.gc(dry_run=True)
    done = setup.gc()
    assert (dry.orphans, dry.orphan_bytes) == (done.orphans, done.orphan_bytes) == (2, len(B) + 2)
    assert [s.key for s in setup.backend.list("~artifacts")] == [
        f"me/{hashlib.md5(A, usedforsecurity=False).hexdigest()}"
    ]
