"""Resuming a run (`init(id=..., resume="allow" | "must")`): where its next segment starts.

A resumed run gets a new folder and transaction log (a segment); its RunRecord says where the
segment's lines go (after those already stored), which step comes next and what the run's
runtime and summary were, so the internal process, the sender and `nbtrack sync` all continue
the stored run instead of overwriting it.

The truth is where the run's data goes: the embedded store, or the tracking server. Before
reading it, resume waits until no internal process of an earlier segment on this machine is
still delivering (each holds a lock on its log until it exits), and replays any earlier log
whose process died before it finished the run, so nothing logged before is skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from nbtrack import run_lock
from nbtrack.errors import UsageError
from nbtrack.settings import Settings

if TYPE_CHECKING:  # the store's module imports SQLAlchemy: only resuming needs it
    from nbtrack.store.schema import RunRow

__all__ = ["ResumePoint", "RunSource", "find_resume_point", "segment_logs"]

logger = logging.getLogger("nbtrack")

# How long resume waits for the process of an earlier segment to finish delivering its rows.
PREVIOUS_PROCESS_TIMEOUT = 120.0


@dataclass(frozen=True)
class ResumePoint:
    """What a run had when its last segment stopped."""

    next_step: int
    history_offset: int  # lines already stored
    output_offset: int
    events_offset: int
    runtime: float
    config: dict[str, Any]
    summary: dict[str, Any]
    display_name: str | None = None  # the stored run's name: a resumed run without one keeps it


class RunSource(Protocol):
    """What reading a stored run needs of its store: the store itself, or a server's reader."""

    def get_run(self, entity: str | None, project: str, run_id: str) -> RunRow | None: ...
    def read_output(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]: ...
    def read_events(
        self, entity: str, project: str, run_id: str, offset: int = 0, limit: int | None = None
    ) -> list[str]: ...
    def close(self) -> None: ...


def segment_logs(settings: Settings) -> list[Path]:
    """The transaction logs of this run's segments under the root, oldest first."""
    folder = re.compile(rf"run-\d{{8}}_\d{{6}}(_\d{{3}})?-{re.escape(settings.run_id)}")
    found = (settings.root / "runs").glob(f"run-*-{settings.run_id}/run-{settings.run_id}.nbt")
    return sorted(log for log in found if folder.fullmatch(log.parent.name))


def find_resume_point(settings: Settings) -> ResumePoint | None:
    """The stored state of settings.run_id, or None if no such run is stored; waits for (and
    replays) earlier segments on this machine first. UsageError for a run that cannot resume."""
    if settings.mode == "offline":
        raise UsageError(
            "resume needs the run's store or server, and mode='offline' has neither: resume in "
            "mode='local' or 'online' (after `nbtrack sync` of the offline logs)"
        )
    logs = segment_logs(settings)
    for log in logs:
        _wait_until_released(log)
    source = _open_source(settings)
    try:
        entity = settings.entity or None
        row = source.get_run(entity, settings.project, settings.run_id)
        if row is not None and row.state == "running" and logs:
            # The process of the last segment died without ending the run: what its log holds
            # may not all be stored yet. A replay is idempotent (lines keep their numbers).
            _replay(settings, logs)
            row = source.get_run(entity, settings.project, settings.run_id)
        if row is None:
            return None
        output = len(source.read_output(row.entity, row.project, row.run_id))
        events = len(source.read_events(row.entity, row.project, row.run_id))
    finally:
        source.close()
    return ResumePoint(
        next_step=0 if row.last_step is None else row.last_step + 1,
        history_offset=row.history_line_count,
        output_offset=output,
        events_offset=events,
        runtime=row.runtime,
        config=dict(row.config),
        summary=dict(row.summary),
        display_name=row.display_name,
    )


def _wait_until_released(log: Path) -> None:
    """Return once no process holds log's lock: an earlier segment's process may still deliver."""

    def say_waiting() -> None:
        logger.warning("nbtrack: waiting for the earlier process of %s to deliver its rows", log.parent)

    if not run_lock.wait_until_released(log, PREVIOUS_PROCESS_TIMEOUT, say_waiting):
        raise UsageError(
            f"run {log.parent.name} is still live in another process (its log {log} is in use): "
            "finish it there first"
        )


def _open_source(settings: Settings) -> RunSource:
    if settings.mode == "online" and settings.base_url is not None:
        from nbtrack.online.reader import ServerReader

        return ServerReader(settings.base_url, settings.api_key)
    from nbtrack.store import Store

    return Store(settings.store_url)


def _replay(settings: Settings, logs: Sequence[Path]) -> None:
    from nbtrack.sync import sync_log

    for log in logs:
        if settings.mode == "online":
            report = sync_log(log, base_url=settings.base_url, api_key=settings.api_key)
        else:
            report = sync_log(log, settings.store_url)
        if report.error:
            raise UsageError(f"cannot resume: replaying the earlier log {log} failed: {report.error}")
