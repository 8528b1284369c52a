"""Where the sender delivers a run: the seam between the sender and a store or a server.

The methods mirror the wire protocol's file stream (history and output are lines addressed by
offset, so delivering the same lines again replaces them and a retry never duplicates), which
lets the embedded store (local mode, `nbtrack sync`) and an HTTP client for a tracking server
(online mode, `nbtrack.online.backend.HttpBackend`) be interchangeable. The store's calls are
done when they return; the HTTP backend's only queue, so progress is counted by the backend
(`rows_delivered`, `pending()`) rather than by its caller.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.settings import DEFAULT_ENTITY
from nbtrack.vocabulary import RUN_ALIVE_SECONDS

__all__ = ["Backend", "StoreBackend", "copy_whole", "open_backend", "run_files_dir", "store_files_root"]

logger = logging.getLogger("nbtrack")


class Backend(Protocol):
    rows_delivered: int  # history rows the store/server has acknowledged
    # Lines of the run's history the store/server held when upsert_run() answered: a recovered
    # run's sender need not deliver those again.
    history_lines_stored: int
    retrying: bool  # the server is unreachable for now and the backend is retrying
    failure: str | None  # the first thing the server refused (already reported as a notice)

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> tuple[str, str | None]:
        """Create or update the run; return its entity and its URL (None without a server)."""

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None: ...

    def write_output(self, offset: int, lines: list[str]) -> None: ...

    def write_events(self, offset: int, lines: list[str]) -> None:
        """System-metrics lines (JSON objects), addressed like history lines."""

    def write_summary(self, summary: dict[str, Any]) -> None: ...

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None: ...

    def set_metrics(self, metrics: list[dict[str, str]]) -> None: ...

    def save_file(self, name: str, path: Path) -> None:
        """Keep a copy of the file at path as the run's file `name` (a relative path)."""

    def add_alert(self, alert: pb.AlertRecord) -> None:
        """Keep an alert of the run (once per key; the same title not again within its wait)."""

    def log_artifact(self, artifact: pb.ArtifactRecord, staged: Path) -> str:
        """Store the artifact the run logged as a version (its files are in the folder staged,
        each named by its hex MD5); return the version it is ("v3"). Delivered again, it makes no
        second version."""

    def use_artifact(self, use: pb.UseArtifactRecord) -> None:
        """Record that the run used the artifact version (once, however often it is said)."""

    def keep_alive(self) -> None:
        """The run is live: called whenever its sender is idle. Tells the store/server so at least
        every RUN_ALIVE_SECONDS (store/liveness.py), even when the run logs nothing."""

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        """Mark the run ended; returns once everything before it is delivered (or abort())."""

    def pending(self) -> tuple[int, int]:
        """History rows and their bytes handed over but not yet acknowledged."""

    def abort(self) -> None:
        """Give up delivering (the user stopped waiting); the transaction log keeps the rest."""

    def close(self) -> None: ...


class StoreBackend:
    """Delivers one run into the embedded store (SQLite under the nbtrack root)."""

    retrying: bool = False  # a local database either answers or fails
    failure: str | None = None  # failures raise, and the sender reports them

    def __init__(
        self,
        store_url: str,
        run: pb.RunRecord,
        *,
        start_state: str | None = "running",
        alive_interval: float = RUN_ALIVE_SECONDS,
    ) -> None:
        """start_state: what upsert_run makes the run's state; None keeps the stored one (a replay of
        an older log by `nbtrack sync` must not make a finished run "running" again).
        alive_interval: seconds between keep_alive()'s heartbeats."""
        from nbtrack.store import Store  # SQLAlchemy is the slowest import: only where it is used

        self._store = Store(store_url)
        self._start_state = start_state
        # A run logged for a server without naming an entity is "the key's own": here, the default.
        self._key = (run.entity or DEFAULT_ENTITY, run.project, run.run_id)
        self._files = run_files_dir(store_url, *self._key)
        self._files_root = store_files_root(store_url)
        self.rows_delivered = 0
        self.history_lines_stored = 0
        self._alive_interval = alive_interval
        self._alive_said = time.monotonic()  # upsert_run() says it first

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> tuple[str, str | None]:
        self._store.upsert_run(
            *self._key,
            display_name=run.display_name or None,
            notes=run.notes or None,
            tags=list(run.tags),
            group=run.group or None,
            job_type=run.job_type or None,
            host=run.host or None,
            program=run.program or None,
            config=config,
            state=self._start_state,
            created_at=None if run.resumed else run.start_time or None,
        )
        stored = self._store.get_run(*self._key)
        self.history_lines_stored = stored.history_line_count if stored is not None else 0
        return self._key[0], None

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None:
        self._store.write_history(*self._key, offset, lines, steps=steps)
        self.rows_delivered += len(lines)

    def write_output(self, offset: int, lines: list[str]) -> None:
        self._store.write_output(*self._key, offset, lines)

    def write_events(self, offset: int, lines: list[str]) -> None:
        self._store.write_events(*self._key, offset, lines)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._store.write_summary(*self._key, summary)

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None:
        self._store.update_config(*self._key, update, remove)

    def set_metrics(self, metrics: list[dict[str, str]]) -> None:
        self._store.set_metrics(*self._key, metrics)

    def save_file(self, name: str, path: Path) -> None:
        if self._files is None:
            raise ValueError("run files are kept beside a SQLite store only")
        copy_whole(path, self._files / name)

    def add_alert(self, alert: pb.AlertRecord) -> None:
        outcome = self._store.add_alert(
            *self._key,
            title=alert.title,
            text=alert.text,
            level=alert.level,
            created_at=alert.timestamp or None,
            wait_seconds=alert.wait_seconds,
            alert_key=alert.key or None,
        )
        if outcome == "full":
            logger.warning(
                "nbtrack: run %s keeps as many alerts as it may; %r is not stored", self._key[2], alert.title
            )

    def log_artifact(self, artifact: pb.ArtifactRecord, staged: Path) -> str:
        from nbtrack.internal.artifact_delivery import store_artifact

        if self._files_root is None:
            raise ValueError("artifact files are kept beside a SQLite store only")
        row = store_artifact(self._store, self._files_root, self._key, artifact, staged)
        assert row.version is not None  # a committed version has its number
        return row.version

    def use_artifact(self, use: pb.UseArtifactRecord) -> None:
        from nbtrack.internal.artifact_delivery import store_artifact_use

        store_artifact_use(self._store, self._key, use)

    def keep_alive(self) -> None:
        # One tiny UPDATE every RUN_ALIVE_SECONDS, whether or not rows were written meanwhile.
        if time.monotonic() - self._alive_said >= self._alive_interval:
            self._store.touch_run(*self._key)
            self._alive_said = time.monotonic()

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        self._store.finish_run(*self._key, state=state, exit_code=exit_code, runtime=runtime)

    def pending(self) -> tuple[int, int]:
        return 0, 0

    def abort(self) -> None:
        """Nothing to give up: every call is done when it returns."""

    def close(self) -> None:
        self._store.close()


def copy_whole(source: Path, target: Path) -> None:
    """Copy source to target under a `.partial` name, then rename: a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    partial.replace(target)


def run_files_dir(store_url: str, entity: str, project: str, run_id: str) -> Path | None:
    """Where a SQLite store's runs keep their files: <root>/files/<entity>/<project>/<run_id>
    (the layout `nbtrack server --dir <root>` serves)."""
    root = store_files_root(store_url)
    return None if root is None else root / entity / project / run_id


def store_files_root(store_url: str) -> Path | None:
    """The files folder beside a SQLite store (<root>/files: run files, artifact blobs); None for
    another database, whose files are a server's (--files)."""
    from sqlalchemy.engine import make_url

    url = make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).parent / "files"


def open_backend(setup: pb.SetupRequest, run: pb.RunRecord, notice: Callable[[str], None]) -> Backend | None:
    """The backend for this run's mode; None in offline mode (the transaction log is all)."""
    alive_interval = setup.alive_interval or RUN_ALIVE_SECONDS
    if setup.mode == "local":
        return StoreBackend(setup.store_url, run, alive_interval=alive_interval)
    if setup.mode == "online":
        from nbtrack.online.backend import HttpBackend

        log_path = Path(setup.log_path) if setup.log_path else None
        return HttpBackend(
            setup.base_url, setup.api_key or None, run, notice, log_path, alive_interval=alive_interval
        )
    if setup.mode == "offline":
        return None
    raise ValueError(f"mode {setup.mode!r} has no backend")
