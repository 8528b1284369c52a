"""Where the sender delivers a run: the seam between the sender and a store or a server.

The methods mirror the wire protocol's file stream (history and output are lines addressed by
offset, so delivering the same lines again replaces them and a retry never duplicates), which
lets the embedded store (local mode, `nbtrack sync`) and an HTTP client for a tracking server
(online mode) be interchangeable.
"""

from __future__ import annotations

from typing import Any, Protocol

from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["Backend", "StoreBackend", "open_backend"]


class Backend(Protocol):
    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> str | None:
        """Create or update the run; return its URL if it has one."""

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None: ...

    def write_output(self, offset: int, lines: list[str]) -> None: ...

    def write_summary(self, summary: dict[str, Any]) -> None: ...

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None: ...

    def set_metrics(self, metrics: list[dict[str, str]]) -> None: ...

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None: ...

    def close(self) -> None: ...


class StoreBackend:
    """Delivers one run into the embedded store (SQLite under the nbtrack root)."""

    def __init__(self, store_url: str, run: pb.RunRecord) -> None:
        from nbtrack.store import Store  # SQLAlchemy is the slowest import: only where it is used

        self._store = Store(store_url)
        self._key = (run.entity, run.project, run.run_id)

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> str | None:
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
            state="running",
            created_at=run.start_time or None,
        )
        return None

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None:
        self._store.write_history(*self._key, offset, lines, steps=steps)

    def write_output(self, offset: int, lines: list[str]) -> None:
        self._store.write_output(*self._key, offset, lines)

    def write_summary(self, summary: dict[str, Any]) -> None:
        self._store.write_summary(*self._key, summary)

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None:
        self._store.update_config(*self._key, update, remove)

    def set_metrics(self, metrics: list[dict[str, str]]) -> None:
        self._store.set_metrics(*self._key, metrics)

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        self._store.finish_run(*self._key, state=state, exit_code=exit_code, runtime=runtime)

    def close(self) -> None:
        self._store.close()


def open_backend(setup: pb.SetupRequest, run: pb.RunRecord) -> Backend | None:
    """The backend for this run's mode; None in offline mode (the transaction log is all)."""
    if setup.mode == "local":
        return StoreBackend(setup.store_url, run)
    if setup.mode == "offline":
        return None
    raise ValueError(f"mode {setup.mode!r} has no backend in this version")
