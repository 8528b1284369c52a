"""Artifact garbage collection (`nbtrack server gc`): frees the server's file storage that no
artifact version needs any more.

What goes, once older than the grace age (--older-than):
- blobs (`~artifacts/<entity>/<hex>`) that no committed version's manifest lists: those only a
  deleted version referenced, and those of uploads never committed;
- PENDING versions never committed, with the manifest their client uploaded
  (`~artifacts/<entity>/manifests/<id>`);
- orphan objects: a blob object without its record (an upload cut between write and record, the
  files of an entity no longer in the database), a manifest object whose version is gone, and
  the temporary file of a blob copy whose process was killed (`.<hex>.<random>.partial`, left by
  manifest.copy_checked when a local run's internal process died mid-copy).

The grace age is what keeps a version being logged right now safe: the blobs it relies on were
claimed (or written) within it, its PENDING row is younger. The order of the checks and removals,
which is what makes a version committing during gc, or two gc processes at once, safe, is the
store's (store/artifact_gc.py). A dry run does the same reads and reports the same figures, and
changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from nbtrack.server.file_backend import FileBackend, StoredObject
from nbtrack.store import Store
from nbtrack.store.artifact_gc import EntityMarks
from nbtrack.vocabulary import ARTIFACT_BLOBS

__all__ = ["ArtifactGc", "GcError", "GcReport"]

_PREFIX = ARTIFACT_BLOBS
_BLOB = re.compile(r"([^/]+)/([0-9a-f]{32})")
_MANIFEST = re.compile(r"([^/]+)/manifests/([0-9]{1,18})")
_PARTIAL = re.compile(r"[^/]+/\.[0-9a-f]{32}\.[^/]+\.partial")  # a killed copy's temporary file


class GcError(Exception):
    """gc refused to run (its message says why); nothing was changed."""


@dataclass(slots=True)
class GcReport:
    """What gc freed (or, dry, would free)."""

    blobs: int = 0
    blob_bytes: int = 0
    pending: int = 0  # PENDING versions removed
    orphans: int = 0  # objects without a record: blobs and manifests
    orphan_bytes: int = 0
    missing: int = 0  # records whose object was gone, dropped

    @property
    def objects(self) -> int:
        return self.blobs + self.orphans

    @property
    def freed_bytes(self) -> int:
        return self.blob_bytes + self.orphan_bytes


class ArtifactGc:
    """One gc pass over every entity's artifacts. before_sweep: called with each entity's marks
    between the mark and the sweep (tests inject a concurrent commit there)."""

    def __init__(
        self,
        store: Store,
        backend: FileBackend,
        before_sweep: Callable[[EntityMarks], object] | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.before_sweep = before_sweep

    def run(self, cutoff: float, *, dry_run: bool) -> GcReport:
        report = GcReport()
        listed = {stored.key: stored for stored in self.backend.list(_PREFIX)}
        marks = self.store.artifact_gc_marks(cutoff)
        if any(entity.recorded for entity in marks) and not listed:
            # Every file recorded and none found: the wrong files, not files all lost.
            raise GcError(
                f"the store records artifact files but {self.backend.location} holds none under "
                f"{_PREFIX}/: is it the server's --files? nothing changed"
            )
        for entity in marks:
            if self.before_sweep is not None:
                self.before_sweep(entity)
            self._missing(entity, listed, report, dry_run)
            swept = self.store.sweep_artifacts(
                entity, cutoff, None if dry_run else self._remover(entity.entity)
            )
            report.blobs += len(swept.blobs)
            report.blob_bytes += sum(swept.blobs.values())
            report.pending += len(swept.pending)
            for version in swept.pending:
                listed.pop(f"{entity.entity}/manifests/{version}", None)
        self._orphans(listed, {entity.entity: entity for entity in marks}, cutoff, report, dry_run)
        return report

    def _remover(self, entity: str) -> Callable[[list[int], list[str]], None]:
        def remove(pending: list[int], blobs: list[str]) -> None:
            for version in pending:
                self.backend.delete(f"{_PREFIX}/{entity}/manifests/{version}")
            for md5_hex in blobs:
                self.backend.delete(f"{_PREFIX}/{entity}/{md5_hex}")

        return remove

    def _missing(
        self, entity: EntityMarks, listed: dict[str, StoredObject], report: GcReport, dry_run: bool
    ) -> None:
        """Records whose object is gone (a gc that died between removing and committing): dropped,
        unless a committed version lists them."""
        gone = [md5 for md5 in entity.recorded if f"{entity.entity}/{md5}" not in listed]
        gone = [md5 for md5 in gone if self.backend.stat(f"{_PREFIX}/{entity.entity}/{md5}") is None]
        if gone and not dry_run:
            report.missing += len(self.store.forget_missing_blobs(entity.entity_id, gone))

    def _orphans(
        self,
        listed: dict[str, StoredObject],
        marks: dict[str, EntityMarks],
        cutoff: float,
        report: GcReport,
        dry_run: bool,
    ) -> None:
        by_entity: dict[str, list[str]] = {}
        for key, stored in listed.items():
            if stored.updated_at >= cutoff:
                continue
            if blob := _BLOB.fullmatch(key):
                entity, md5_hex = blob.groups()
                known = marks.get(entity)
                if known is None or md5_hex not in known.recorded:
                    by_entity.setdefault(entity, []).append(md5_hex)
            elif _PARTIAL.fullmatch(key):
                now = self.backend.stat(f"{_PREFIX}/{key}")  # a copy still writing keeps it fresh
                if now is not None and now.updated_at < cutoff:
                    report.orphans += 1
                    report.orphan_bytes += now.size
                    if not dry_run:
                        self.backend.delete(f"{_PREFIX}/{key}")
            elif manifest := _MANIFEST.fullmatch(key):
                found = self.store.get_artifact_version(int(manifest.group(2)))
                if found is None or found.state != "PENDING":
                    report.orphans += 1
                    report.orphan_bytes += stored.size
                    if not dry_run:
                        self.backend.delete(f"{_PREFIX}/{key}")
        for entity, hexes in sorted(by_entity.items()):

            def remove(candidates: list[str], entity: str = entity) -> list[str]:
                removed = []
                for md5_hex in candidates:
                    key = f"{_PREFIX}/{entity}/{md5_hex}"
                    now = self.backend.stat(key)  # written again since the listing: an upload's
                    if now is None or now.updated_at >= cutoff:
                        continue
                    if not dry_run:
                        self.backend.delete(key)
                    removed.append(md5_hex)
                    report.orphans += 1
                    report.orphan_bytes += now.size
                return removed

            if dry_run:
                recorded = self.store.known_blobs(entity, hexes)
                remove([md5 for md5 in hexes if md5 not in recorded])
            else:
                self.store.remove_unrecorded(entity, hexes, remove)
