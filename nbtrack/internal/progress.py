"""What the writer and the sender publish about their progress, for the other threads to read.

Each object is written by its own stage's thread only, one plain attribute at a time (an
attribute assignment is atomic in CPython), and read by anyone: the handler answers poll_exit,
artifact_version and live updates from them, and the sender asks the writer's whether the log
holds a row. Nothing else passes between stages outside records and results.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nbtrack.proto import nbtrack_pb2 as pb

if TYPE_CHECKING:
    from nbtrack.internal.backend import Backend

SLOW_CALL_SECONDS = 2.0  # a store call waiting this long counts as retrying

__all__ = ["DeliveryProgress", "LogProgress", "StepRanges", "lost_rows"]


@dataclass
class LogProgress:
    """The writer's: how much of the run is in the transaction log."""

    path: str = ""
    # History rows of this log (a recovered log's included) handed to the OS: they survive this
    # process. Rows are numbered in log order, so "the first lines_logged rows".
    lines_logged: int = 0
    bytes_unsynced: int = 0  # written to the OS, not yet fsynced
    failing: str | None = None  # why the log is not being written right now (e.g. the disk is full)
    lost: str | None = None  # why there is no log at all (it could not be created)


class DeliveryProgress:
    """The sender's: how much of the run the store (or server) has."""

    def __init__(self) -> None:
        self.backend: Backend | None = None  # None until the run record opened one (or offline)
        self.rows_skipped = 0  # recovering: rows the store had before this process
        # Rows of this log (numbered from 0) given to the backend, in order: stored, or dropped
        # after a failure retrying could not fix (`dropped`). A server acknowledges them later.
        self.lines_handed = 0
        self.dropped = StepRanges()
        self.retrying_store = False  # a backend call failed and is being retried
        self.call_started = 0.0  # monotonic time the backend call in progress began (0: none)
        self.exit_result: pb.ExitResult | None = None  # set once the exit record is delivered
        # The version each logged artifact became, by run_artifact_list.logged_key: the live
        # panel names it once the store or server has it. Only the sender adds to it.
        self.artifact_versions: dict[str, str] = {}
        # Why the delivery of a logged artifact was given up, by the same key (Artifact.wait()
        # says so at once rather than wait for a version that cannot come).
        self.artifact_failures: dict[str, str] = {}
        # The run's artifact records (logged versions and uses) stored, or refused for good (said
        # then): in log order, so the handler's records past this count are not in the store.
        self.artifacts_done = 0

    @property
    def rows_stored(self) -> int:
        """History rows the store or server acknowledged (a recovered run's earlier ones included)."""
        backend = self.backend
        return 0 if backend is None else backend.rows_delivered + self.rows_skipped

    @property
    def stored_end(self) -> int:
        """Every row of this log below this line is stored, but those in `dropped`."""
        backend = self.backend
        return 0 if backend is None else self.lines_handed - backend.pending()[0]

    @property
    def bytes_pending(self) -> int:
        """Bytes of history on their way to a server (0 for the embedded store)."""
        backend = self.backend
        return 0 if backend is None else backend.pending()[1]

    @property
    def retrying(self) -> bool:
        """Delivery is being retried, or one call has been waiting for long (a locked database
        waits out its busy timeout before it fails): either way, not progressing now."""
        backend = self.backend
        started = self.call_started
        slow = started > 0.0 and time.monotonic() - started > SLOW_CALL_SECONDS
        return self.retrying_store or slow or (backend is not None and backend.retrying)


class StepRanges:
    """Rows as (first line, first step, count) runs of consecutive lines and steps: a million rows
    logged without step= are one run, so knowing every row's step costs next to nothing."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []  # [first line, first step, count]

    def add(self, line: int, step: int, count: int = 1) -> None:
        """Rows line.. at steps step.. (consecutive)."""
        runs = self.runs
        if runs:
            last = runs[-1]
            if last[0] + last[2] == line and last[1] + last[2] == step:
                last[2] += count
                return
        runs.append([line, step, count])

    def lines(self) -> int:
        return sum(run[2] for run in self.runs)

    def select(self, first: int, end: int | None = None) -> StepRanges:
        """The rows whose lines are in [first, end)."""
        out = StepRanges()
        for line, step, count in self.runs:
            lo, hi = max(line, first), line + count if end is None else min(line + count, end)
            if lo < hi:
                out.add(lo, step + lo - line, hi - lo)
        return out

    def merged(self, other: StepRanges) -> StepRanges:
        out = StepRanges()
        for line, step, count in sorted(self.runs + other.runs):
            out.add(line, step, count)
        return out

    def steps_text(self) -> str:
        """The rows' steps as ranges in line order: "120-340, 500"."""
        spans: list[list[int]] = []
        for _line, step, count in self.runs:
            if spans and spans[-1][1] + 1 == step:
                spans[-1][1] = step + count - 1
            else:
                spans.append([step, step + count - 1])
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def lost_rows(rows: StepRanges, log: LogProgress, delivery: DeliveryProgress) -> StepRanges:
    """The rows (of all this log's rows, `rows`) neither the log nor the store has: what a process
    ending now loses. The log holds its first lines_logged rows (none if it was lost); the store
    the rows below stored_end but the dropped ones."""
    logged = 0 if log.lost is not None else log.lines_logged
    stored_end = max(delivery.stored_end, logged)
    return rows.select(stored_end).merged(delivery.dropped.select(logged))
