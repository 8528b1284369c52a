"""Where a run's rows go and where they wait, in the words the user hears.

The sender delivers to the store or to a server (the setup says which). Rows it could not deliver
are in the transaction log, which `nbtrack sync` delivers, unless the log could not keep them
either (the writer's `LogProgress` says). The sender's notices and its exit result name these
places the same way (`Whereabouts`).
"""

from __future__ import annotations

from nbtrack.internal.progress import LogProgress, StepRanges
from nbtrack.proto import nbtrack_pb2 as pb

__all__ = ["Whereabouts"]


class Whereabouts:
    """setup: where the run goes (None until a live run's first record says); log: the writer's
    progress (None when replaying a log: it has everything)."""

    def __init__(self, setup: pb.SetupRequest | None, log: LogProgress | None) -> None:
        self.setup = setup
        self.log = log

    def destination(self) -> str:
        if self.setup is not None and self.setup.mode == "online":
            return f"the server {self.setup.base_url}"
        return "the store"

    def where(self) -> str:
        """The log and the command that delivers it."""
        setup = self.setup
        path = setup.log_path if setup is not None and setup.log_path else "the transaction log"
        to = f" --base-url {setup.base_url}" if setup is not None and setup.mode == "online" else ""
        return f"{path}: deliver them with `nbtrack sync {path}{to}`"

    def log_trouble(self) -> str:
        log = self.log
        if log is None:
            return "no log"
        return log.lost or log.failing or "it was not written"

    def log_is_written(self) -> bool:
        """The transaction log is being written: rows the store lacks wait there meanwhile."""
        log = self.log
        return log is not None and log.lost is None and log.failing is None

    def log_may_recover(self) -> bool:
        """The transaction log is failing for now (a full disk) and may still take what it lacks."""
        log = self.log
        return log is not None and log.lost is None and bool(log.failing)

    def advice(self) -> str:
        """What a delivery failure means for the user's data: where it is, or that it is lost."""
        log = self.log
        if log is None or (log.lost is None and log.failing is None):
            return f"the transaction log has it: {self.where()}"
        if log.lost is None:
            return (
                f"the transaction log cannot be written right now either ({log.failing}): "
                "what the store lacks is kept in memory until it can"
            )
        return f"the transaction log could not be kept either ({log.lost}), so what the store lacks is lost"

    def split_by_log(self, rows: StepRanges) -> tuple[StepRanges, StepRanges]:
        """rows (by line of this log) as (those the transaction log holds, those it does not)."""
        log = self.log
        if log is None:
            return rows, StepRanges()  # replaying a log: it holds them all
        kept = 0 if log.lost is not None else log.lines_logged
        return rows.select(0, kept), rows.select(kept)
