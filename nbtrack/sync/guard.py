"""What a replay by `nbtrack sync` may change at its destination: never a step backwards.

The store (or server) may already hold more of the run than the log: a truncated copy of a
finished run's log, an earlier segment of a resumed run, a log synced before. `plan()` compares
what the destination holds (state, history lines, runtime) with what the log holds (its rows,
whether it has its exit record, its runtime) and decides what the replay delivers;
`GuardedBackend` wraps the sender's backend and keeps to that plan:

- history, console and system-metrics lines the destination holds are never rewritten: only
  lines after them are delivered (a replay of the same log adds nothing, a longer one the rest);
- the run's state only moves forward: running -> crashed -> finished | failed. A log without its
  exit record marks `crashed` only a run that is `running` (no live process: `live.py` checked);
  a finished or failed run keeps its state unless a complete log holds more of it;
- summary, config and metric definitions come from the log only if it is at least as far along.

It also puts each history row at the line the scan placed it (`scan.py`): after a damaged range
the sender's count of rows would put them too early.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbtrack.internal.backend import Backend
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.sync.scan import LogScan

if TYPE_CHECKING:
    from nbtrack.store.schema import RunRow

__all__ = ["GuardedBackend", "Held", "Plan", "plan"]

# Rows a queueing backend (a server's) may hold before the guard waits for it: well under what it
# keeps in memory before reading rows back from the log by their count, which placed rows defeat.
MAX_BACKLOG = 50_000
_TERMINAL = ("finished", "failed")
_RANK = {"running": 0, "crashed": 1, "finished": 2, "failed": 2}


@dataclass(frozen=True)
class Plan:
    """What one replay delivers."""

    deliver: bool  # False: the destination already holds everything this log can give
    # The destination's history: its line count, and the ranges below it that hold nothing (None:
    # not known, a server's). Lines it holds are kept as they are.
    history_count: int = 0
    gaps: tuple[tuple[int, int], ...] | None = ()
    output_from: int = 0  # console and system-metrics lines below these are the destination's
    events_from: int = 0
    run_fields: bool = True  # summary, config and metric definitions
    state: str = "crashed"  # the run's state when the replay ends
    exit_code: int | None = None
    keep_runtime: bool = False  # the state is the destination's own: so is its runtime
    reason: str = ""  # why nothing (or not everything) is delivered, for the report


@dataclass(frozen=True)
class Held:
    """What the destination holds of the run."""

    run: RunRow
    gaps: list[tuple[int, int]] | None  # ranges of lines below its count that hold nothing; None: unknown
    output_lines: int
    event_lines: int


def plan(scan: LogScan, held: Held | None) -> Plan:
    """Decide what the log may change at a destination holding `held` (None: not the run)."""
    exit_code = scan.exit.exit_code if scan.exit is not None else -1
    if held is None:
        return Plan(True, state=scan.state, exit_code=exit_code)
    stored = held.run
    has = f"{stored.history_line_count} history lines, {stored.state}"
    lines_only = Plan(
        True,
        history_count=stored.history_line_count,
        gaps=None if held.gaps is None else tuple(held.gaps),
        output_from=held.output_lines,
        events_from=held.event_lines,
        run_fields=False,
        state=stored.state,
        exit_code=stored.exit_code,
        keep_runtime=True,
    )
    order = _compare(scan, stored)
    terminal = stored.state in _TERMINAL
    if order < 0 or (order == 0 and (terminal or _RANK[scan.state] <= _RANK[stored.state])):
        what = "more of this run" if order < 0 else "everything in this log"
        if _lacks(scan, stored.history_line_count, held.gaps):
            return replace(lines_only, reason=f"the destination holds {what} ({has}) but lines it lacked")
        if order < 0:
            log_has = f"{scan.rows} rows" + ("" if scan.complete else ", no exit record")
            what += f" ({has}) than this log ({log_has})"
        else:
            what += f" ({has})"
        return Plan(False, reason=f"the destination already holds {what}")
    if terminal and scan.state == "crashed":
        # More lines than the finished run has stored, but no exit that ends it (none, or a crash):
        # the lines are new, the way the run ended is not.
        return replace(
            lines_only,
            reason=f"the run is {stored.state} and this log does not say it finished: "
            "only the lines the destination lacked were delivered",
        )
    return replace(lines_only, run_fields=True, state=scan.state, exit_code=exit_code, keep_runtime=False)


def _lacks(scan: LogScan, count: int, gaps: list[tuple[int, int]] | None) -> bool:
    """Whether the log places a row at a line the destination does not hold."""
    for start, stop in scan.placed():
        if stop > count or any(start < gap_stop and gap_start < stop for gap_start, gap_stop in gaps or ()):
            return True
    return False


def _compare(scan: LogScan, stored: RunRow) -> int:
    """-1: the destination is further along than the log; 1: the log is; 0: they are level.

    Lines first (a damaged range leaves the log's count a range); level counts are told apart by
    the runtime (an exit record's runtime is the run's at its end; a resumed segment's goes on
    from the earlier ones').
    """
    lines = stored.history_line_count
    end_max = scan.end_line_max
    if end_max is not None and lines > end_max:
        return -1
    if scan.end_line > lines:
        return 1
    if scan.runtime > stored.runtime:
        return 1
    if scan.runtime < stored.runtime:
        return -1
    return 0


class GuardedBackend:
    """A Backend that delivers what `plan` allows, each history row at the line the scan gave it."""

    def __init__(self, inner: Backend, scan: LogScan, plan: Plan, history_offset: int) -> None:
        self._inner = inner
        self._scan = scan
        self._plan = plan
        self._sender_base = history_offset  # where the sender counts the log's rows from
        self._next_line: int | None = None  # the line the inner backend expects next
        # Console and system-metrics lines go after those of earlier segments; with the run
        # record lost and no earlier segment to count them, where is unknown: they are not sent.
        self._lines_placed = scan.base is not None
        self.rows_kept = 0  # rows the destination had already

    # The sender reads these off its backend (settable, as the Backend protocol has them).
    @property
    def rows_delivered(self) -> int:
        return self._inner.rows_delivered + self.rows_kept

    @rows_delivered.setter
    def rows_delivered(self, rows: int) -> None:
        self._inner.rows_delivered = rows - self.rows_kept

    @property
    def history_lines_stored(self) -> int:
        return self._inner.history_lines_stored

    @history_lines_stored.setter
    def history_lines_stored(self, lines: int) -> None:
        self._inner.history_lines_stored = lines

    @property
    def retrying(self) -> bool:
        return self._inner.retrying

    @retrying.setter
    def retrying(self, retrying: bool) -> None:
        self._inner.retrying = retrying

    @property
    def failure(self) -> str | None:
        return self._inner.failure

    @failure.setter
    def failure(self, failure: str | None) -> None:
        self._inner.failure = failure

    def upsert_run(self, run: pb.RunRecord, config: dict[str, Any]) -> tuple[str, str | None]:
        return self._inner.upsert_run(run, config)

    def write_history(self, offset: int, lines: list[str], steps: list[int]) -> None:
        chunk_start: int | None = None
        chunk: list[str] = []
        chunk_steps: list[int] = []
        for i, (text, step) in enumerate(zip(lines, steps, strict=True)):
            index = offset - self._sender_base + i
            line = self._scan.line_of(index)
            if line is None:
                continue  # after a damaged range nothing bounds: counted by the scan, never guessed
            if self._held(line, self._scan.is_exact(index)):
                self.rows_kept += 1
                continue
            if chunk_start is None or line != chunk_start + len(chunk):
                self._write_history(chunk_start, chunk, chunk_steps)
                chunk_start, chunk, chunk_steps = line, [], []
            chunk.append(text)
            chunk_steps.append(step)
        self._write_history(chunk_start, chunk, chunk_steps)

    def write_output(self, offset: int, lines: list[str]) -> None:
        offset, lines = _from(offset, lines, self._plan.output_from)
        if lines and self._lines_placed:
            self._inner.write_output(offset, lines)

    def write_events(self, offset: int, lines: list[str]) -> None:
        offset, lines = _from(offset, lines, self._plan.events_from)
        if lines and self._lines_placed:
            self._inner.write_events(offset, lines)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self._plan.run_fields:
            self._inner.write_summary(summary)

    def update_config(self, update: dict[str, Any], remove: list[str]) -> None:
        if self._plan.run_fields:
            self._inner.update_config(update, remove)

    def set_metrics(self, metrics: list[dict[str, str]]) -> None:
        if self._plan.run_fields:
            self._inner.set_metrics(metrics)

    def save_file(self, name: str, path: Path) -> None:
        self._inner.save_file(name, path)

    def add_alert(self, alert: pb.AlertRecord) -> None:
        self._inner.add_alert(alert)  # stored once per key: a second sync adds nothing

    def log_artifact(self, artifact: pb.ArtifactRecord, staged: Path) -> str:
        return self._inner.log_artifact(artifact, staged)  # the same digest is the same version: stored once

    def use_artifact(self, use: pb.UseArtifactRecord) -> None:
        self._inner.use_artifact(use)  # a use is kept once per run and version

    def keep_alive(self) -> None:
        """A replay is no live run: its sender never calls this."""

    def finish_run(self, state: str, exit_code: int | None, runtime: float | None) -> None:
        """End the replay in the planned state, whatever the log's (synthesized) exit says."""
        plan = self._plan
        self._inner.finish_run(plan.state, plan.exit_code, None if plan.keep_runtime else runtime)

    def pending(self) -> tuple[int, int]:
        return self._inner.pending()

    def abort(self) -> None:
        self._inner.abort()

    def close(self) -> None:
        self._inner.close()

    def _held(self, line: int, exact: bool) -> bool:
        """Whether the destination holds line, which is then kept as it is."""
        plan = self._plan
        if line >= plan.history_count:
            return False
        if plan.gaps is None:
            # A server does not say which lines it lacks. A line placed exactly is the one it
            # holds, so sending it again changes nothing and fills the line if it was missing;
            # one placed by a bound might land on another row's line, so it is never sent.
            return not exact
        at = bisect_right(plan.gaps, (line, float("inf"))) - 1
        return not (at >= 0 and plan.gaps[at][0] <= line < plan.gaps[at][1])

    def _write_history(self, start: int | None, lines: list[str], steps: list[int]) -> None:
        if start is None or not lines:
            return
        # A queueing backend takes lines that follow on from its queue, or any once it is empty;
        # it is also kept from spilling (see MAX_BACKLOG).
        if self._next_line is not None and start != self._next_line:
            self._wait_for_backlog(0)
        self._wait_for_backlog(MAX_BACKLOG)
        self._inner.write_history(start, lines, steps)
        self._next_line = start + len(lines)

    def _wait_for_backlog(self, rows: int) -> None:
        while self._inner.pending()[0] > rows and self._inner.failure is None:
            time.sleep(0.02)


def _from(offset: int, lines: list[str], first: int) -> tuple[int, list[str]]:
    """The lines at offset.. from line `first` on."""
    skip = max(0, first - offset)
    return offset + skip, lines[skip:]
