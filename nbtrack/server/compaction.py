"""Compaction: a finished run's history moved from the database's rows into one parquet file of
the server's files (`nbtrack server compact`; docs/scaling.md says when and why).

For each run that ended (finished, failed or crashed) and was last written before a cutoff, and
that has lines in the history table:

1. claim it (store/compactions.py: one compaction of a run at a time, across replicas);
2. remove what an earlier compaction of it left behind (a crash before its commit): every file in
   its archive folder but the one its record names, safe since only the claim's holder writes there;
3. write its history, read page by page in line order (its archive's lines and its table's,
   merged), as one parquet file (history_export.write_history, strict: every value reads back as
   logged, NaN, infinities, nested values, and ints apart from floats), locally, counting the
   rows and the gaps between their lines;
4. put the file in the files backend under a name of its own, and verify it there: its size, and
   its SHA-256 read back from the object store, against the local file's, whose row count the
   parquet footer gives;
5. commit in one database transaction: the archive recorded (key, line range, gaps, rows,
   checksum) and the run's history rows deleted, if the run is as it was at step 1
   (store/compactions.py checks); else the file is deleted and the rows stay.

Until the commit, the rows are the truth: a crash, a failing object store or a full disk at any
step before leaves them as they were, and at most a file the next compaction of the run removes
(step 2). After it, the archive is the truth; the old archive of a run compacted again (resumed
and finished again) is deleted after the commit. Run deletion removes the archive folder with the
run's exports (both are under ~history/<entity>/<project>/<run>/).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbtrack import jsonutil
from nbtrack.errors import StoreError
from nbtrack.run_manage import EXPORTS_FOLDER
from nbtrack.server.file_backend import FileBackend
from nbtrack.server.folder_backend import FolderBackend
from nbtrack.server.history_export import PAGE_BYTES, PAGE_ROWS, write_history
from nbtrack.store import Store
from nbtrack.store.archive import ArchiveRecord
from nbtrack.store.compactions import CompactionCandidate

__all__ = ["ARCHIVE_FOLDER", "LEASE", "BackendArchive", "Compactor", "Outcome", "parse_duration"]

ARCHIVE_FOLDER = "compacted"  # under ~history/<entity>/<project>/<run>/
LEASE = 3600.0  # seconds a claim holds before another compaction may take the run over
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BackendArchive:
    """The store's ArchiveFiles over the server's files backend (store/archive.py)."""

    def __init__(self, backend: FileBackend) -> None:
        self.backend = backend
        self.location = backend.location

    def read_table(self, key: str) -> Any:
        import pyarrow.parquet as pq

        if isinstance(self.backend, FolderBackend):
            return _read_table(pq, self.backend.root / key, key)
        temp = self.backend.temp_path()
        try:
            opened = self.backend.open(key)
            if opened is None:
                raise StoreError(f"the compacted history {key} is missing from {self.location}")
            with temp.open("wb") as out:
                for chunk in opened.chunks:
                    out.write(chunk)
            return _read_table(pq, temp, key)
        except OSError as exc:
            raise StoreError(
                f"could not read the compacted history {key} from {self.location}: {exc}"
            ) from exc
        finally:
            temp.unlink(missing_ok=True)


def _read_table(pq: Any, path: Path, key: str) -> Any:
    try:
        return pq.read_table(path)
    except OSError as exc:
        raise StoreError(f"could not read the compacted history {key}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one run: compacted, would compact (a dry run), skipped or failed."""

    path: str
    result: str
    detail: str = ""
    rows: int = 0
    size: int = 0
    seconds: float = 0.0


class _Unverified(Exception):
    """The file in the object store is not the file written."""


class _Pages:
    """The run's history in pages of row objects, in line order; each pass also notes the lines
    read, as a count and the gaps between them (below `below`)."""

    def __init__(self, store: Store, run: CompactionCandidate) -> None:
        self.store, self.run = store, run
        self.rows = 0
        self.gaps: list[tuple[int, int]] = []

    def __call__(self) -> Iterator[list[dict[str, Any]]]:
        run = self.run
        self.rows, self.gaps = 0, []
        after, below = -1, run.line_count
        while True:
            page = self.store.history_page(
                run.entity, run.project, run.run_id, after, below, PAGE_ROWS, PAGE_BYTES
            )
            if not page:
                if after + 1 < below:
                    self.gaps.append((after + 1, below))
                return
            for line, _ in page:
                if line > after + 1:
                    self.gaps.append((after + 1, line))
                after = line
            self.rows += len(page)
            yield [jsonutil.loads(data) for _, data in page]


class Compactor:
    """Compacts runs' histories into the files backend (the module's docstring)."""

    def __init__(self, store: Store, backend: FileBackend, *, lease: float = LEASE) -> None:
        self.store = store
        self.backend = backend
        self.lease = lease
        self.owner = uuid.uuid4().hex
        store.attach_archive(BackendArchive(backend))  # a run compacted before is read from its archive

    def compact(self, ended_before: float, *, dry_run: bool = False) -> list[Outcome]:
        """Compact every run that ended and was last written before ended_before (unix seconds)."""
        outcomes = []
        for run in self.store.compaction_candidates(ended_before):
            if dry_run:
                outcomes.append(Outcome(run.path, "would compact", rows=run.table_rows))
            else:
                outcomes.append(self.compact_run(run))
        return outcomes

    def compact_run(self, found: CompactionCandidate) -> Outcome:
        """Compact the run now (unless another compaction is compacting it)."""
        if not self.store.claim_compaction(found.pk, self.owner, self.lease):
            return Outcome(found.path, "skipped", "another compaction is compacting it")
        try:
            run = self.store.compaction_candidate(found.pk)  # as it is now that the claim is ours
            if run is None:
                return Outcome(found.path, "skipped", "it was deleted")
            return self._compact(run)
        finally:
            self.store.release_compaction(found.pk, self.owner)

    def _compact(self, run: CompactionCandidate) -> Outcome:
        began = time.monotonic()
        if run.table_rows == 0:
            return Outcome(run.path, "skipped", "no history rows to compact")
        if run.archive is None and self.store.rollup_count(run.pk) != run.table_rows:
            return Outcome(run.path, "skipped", "its chart rollup does not cover every line (an older run)")
        folder = f"{EXPORTS_FOLDER}/{run.entity}/{run.project}/{run.run_id}/{ARCHIVE_FOLDER}"
        self._remove_leftovers(folder, run.archive)
        key = f"{folder}/{uuid.uuid4().hex}.parquet"
        put = False
        try:
            record = self._write(run, key)
            put = True
            self._verify(record)
            refusal = self.store.commit_compaction(run, self.owner, record)
        except (OSError, StoreError, _Unverified) as exc:
            if put:
                self._delete_quietly(key)
            return Outcome(run.path, "failed", f"{_reason(exc)}; its rows are kept")
        if refusal is not None:
            self._delete_quietly(key)
            return Outcome(run.path, "skipped", refusal)
        if run.archive is not None:
            self._delete_quietly(run.archive.key)
        return Outcome(
            run.path, "compacted", rows=record.rows, size=record.size, seconds=time.monotonic() - began
        )

    def _write(self, run: CompactionCandidate, key: str) -> ArchiveRecord:
        """The run's history written as a parquet file and put at key; its record."""
        import pyarrow.parquet as pq

        pages = _Pages(self.store, run)
        temp = self.backend.temp_path()
        try:
            write_history(pages, str(temp), strict=True)
            rows = pq.read_metadata(temp).num_rows
            if rows != pages.rows:
                raise _Unverified(f"the file written holds {rows} rows, not the {pages.rows} read")
            digest, size = _sha256(temp.open("rb")), temp.stat().st_size
            self.backend.put_file(key, temp)
        finally:
            temp.unlink(missing_ok=True)
        return ArchiveRecord(key, run.line_count, rows, tuple(pages.gaps), digest, size)

    def _verify(self, record: ArchiveRecord) -> None:
        """The object at record.key has the size and SHA-256 of the file written."""
        found = self.backend.stat(record.key)
        if found is None or found.size != record.size:
            raise _Unverified(f"{record.key} is not in {self.backend.location} as written")
        opened = self.backend.open(record.key)
        if opened is None:
            raise _Unverified(f"{record.key} is not in {self.backend.location}")
        digest = hashlib.sha256()
        for chunk in opened.chunks:
            digest.update(chunk)
        if digest.hexdigest() != record.sha256:
            raise _Unverified(f"{record.key} in {self.backend.location} does not read back as written")

    def _remove_leftovers(self, folder: str, archive: ArchiveRecord | None) -> None:
        keep = None if archive is None else archive.key.rsplit("/", 1)[1]
        for found in self.backend.list(folder):
            if found.key != keep:
                self.backend.delete(f"{folder}/{found.key}")

    def _delete_quietly(self, key: str) -> None:
        """Remove a file nothing refers to; one left (the store failing too) is removed next time."""
        with contextlib.suppress(Exception):  # only bytes: the next compaction of the run removes them
            self.backend.delete(key)


def _sha256(file: Any) -> str:
    digest = hashlib.sha256()
    with file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc) or type(exc).__name__


def parse_duration(text: str) -> float:
    """Seconds of "90", "90s", "30m", "12h" or "7d"; ValueError naming text otherwise."""
    value = text.strip().lower()
    scale = _UNITS.get(value[-1:], 0)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 30m, 12h, 7d)") from None
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 30m, 12h, 7d)")
    return seconds
