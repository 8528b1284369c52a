"""Managing a stored run: what a rename, notes and tags may be, and what deleting a run removes
besides its rows (store/run_edits.py): its files and, in an nbtrack folder, its transaction logs.

Shared by the read API (local folder), the tracking server (deleteRun) and the CLI, so every way
of deleting a run refuses the same runs with the same words:

- a run still "running" is refused unless forced: its client may still be sending, and a run
  deleted under it must not come back with half of its rows (a forced delete leaves the run's
  name in the store's deleted_runs, and the server refuses that client by name);
- in a folder, a run whose internal process is alive (it holds its log's lock, run_lock.py) is
  refused even when forced: that process would write the run again.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from nbtrack import run_lock
from nbtrack.errors import UsageError

if TYPE_CHECKING:
    from nbtrack.store import RunRow, Store

__all__ = [
    "EXPORTS_FOLDER",
    "LocalRunEditor",
    "check_edits",
    "live_log",
    "remove_run_files",
    "run_logs",
    "running_refusal",
]

EXPORTS_FOLDER = "~history"  # the server's parquet exports, beside the run files (history_export.py)
NAME_MAX = 1000  # characters of a run's name: a line of a table, not a document
TAG_MAX = 255  # the server's limit on a tag (upsertBucket)
# Records read from the front of a log to find its run record (a header, then the run, come first).
_RUN_RECORD_WITHIN = 20


def check_edits(
    name: str | None, notes: str | None, tags: Sequence[str] | None
) -> tuple[str | None, str | None, list[str] | None]:
    """The edits as stored (name stripped, tags stripped and each kept once, in order); UsageError
    naming the value that cannot be a name, notes or a tag. None: that field does not change."""
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"a run's name must be a non-empty string, not {name!r:.60}")
        name = name.strip()
        if len(name) > NAME_MAX or "\0" in name:
            raise UsageError(f"run name {name!r:.60} is longer than {NAME_MAX} characters or holds a NUL")
    if notes is not None and (not isinstance(notes, str) or "\0" in notes):
        raise UsageError(f"a run's notes must be a string without NUL characters, not {notes!r:.60}")
    kept: list[str] | None = None
    if tags is not None:
        if isinstance(tags, str):
            raise UsageError(f"tags must be a list of strings, not the string {tags!r:.60}")
        kept = []
        for tag in tags:
            if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > TAG_MAX or "\0" in tag:
                raise UsageError(
                    f"tag {tag!r:.60} must be a non-empty string of at most {TAG_MAX} characters"
                )
            if tag.strip() not in kept:
                kept.append(tag.strip())
    return name, notes, kept


def running_refusal(path: str, force: bool) -> str | None:
    """Why a run whose state is "running" cannot be deleted now (None when force says to)."""
    if force:
        return None
    return (
        f"run {path} is still running: finish it first, or delete it with force "
        "(--force, force=True) if its process is gone; a client still sending to it is then refused"
    )


def remove_run_files(files_root: Path, entity: str, project: str, run_id: str) -> None:
    """Remove the run's files (<files_root>/entity/project/run_id) and its history exports."""
    for folder in (
        files_root / entity / project / run_id,
        files_root / EXPORTS_FOLDER / entity / project / run_id,
    ):
        if folder.is_dir():
            shutil.rmtree(folder)


def run_logs(root: Path, entity: str, project: str, run_id: str) -> list[Path]:
    """The transaction logs of the run's segments in the folder root (root/runs/run-*-<id>/), those
    whose run record names this entity and project (a run id may be reused in another project)."""
    from nbtrack.sync.scan import run_id_of, segment_folder

    found = []
    for log in sorted((root / "runs").glob(f"run-*-{run_id}/run-{run_id}.nbt")):
        if segment_folder(log) is None or run_id_of(log) != run_id:
            continue
        if _owner(log) == (entity, project):
            found.append(log)
    return found


def live_log(logs: Sequence[Path]) -> Path | None:
    """The first of logs whose internal process is still alive (it holds the log's lock)."""
    for log in logs:
        if not run_lock.wait_until_released(log, 0.0):
            return log
    return None


class LocalRunEditor:
    """Run edits and deletes in an nbtrack folder: its store, its files and its logs."""

    def __init__(self, store: Store, root: Path) -> None:
        self._store = store
        self._root = root

    def edit_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        name: str | None,
        notes: str | None,
        tags: Sequence[str] | None,
    ) -> RunRow:
        if self._store.get_run(entity, project, run_id) is None:  # an edit never creates a run
            raise LookupError(f"run {entity}/{project}/{run_id} is no longer there")
        return self._store.upsert_run(entity, project, run_id, display_name=name, notes=notes, tags=tags)

    def delete_run(self, entity: str, project: str, run_id: str, *, force: bool) -> None:
        path = f"{entity}/{project}/{run_id}"
        run = self._store.get_run(entity, project, run_id)
        if run is None:
            raise LookupError(f"run {path} is no longer there")
        logs = run_logs(self._root, entity, project, run_id)
        live = live_log(logs)
        if live is not None:
            from nbtrack.sync.live import lock_holder

            raise UsageError(
                f"run {path} is still being written by {lock_holder(live) or 'a live process'} "
                f"(it holds {live}): finish the run or end that process, then delete it"
            )
        if run.state == "running":
            refusal = running_refusal(path, force)
            if refusal is not None:
                raise UsageError(refusal)
        self._store.delete_run(entity, project, run_id, mark=run.state == "running")
        # Rows first: files or logs left by a failure below are only bytes, never half a run.
        remove_run_files(self._root / "files", entity, project, run_id)
        for log in logs:  # the logs too, or `nbtrack sync` would bring the run back
            shutil.rmtree(log.parent)


def _owner(log: Path) -> tuple[str, str] | None:
    """(entity, project) of the log's run record, if one is near its start."""
    from nbtrack.txlog import iter_records

    try:
        for count, record in enumerate(iter_records(log)):
            if record.WhichOneof("record_type") == "run":
                return record.run.entity, record.run.project
            if count >= _RUN_RECORD_WITHIN:
                return None
    except OSError:
        return None
    return None
