"""The first pass of `nbtrack sync` over a transaction log: what the log holds and where each of its
history rows belongs in the run, before anything is delivered.

A history row's line number is the count of history rows before it in the run (plus the lines of
earlier segments). A damaged range of the log may have swallowed rows, so after one the count
alone would put every later row too early, on top of rows the store may already hold. How many
rows a range can have held is bounded by what the intact records around it say:

- `Record.num` numbers every record the writer appended: the records lost between two intact
  ones (some of them rows);
- `_step` goes up by at least one per row within an attempt: rows lost between two rows of one
  attempt are fewer than their steps' difference;
- `HistoryRecord.seq` is the number of the last log() call in the row, and every row has its own.

The rows after a damaged range are placed after the fewest rows these bounds allow it to have
held at most, i.e. as if every step in between had its row: exact whenever the run counted its
own steps (no `step=` jumps inside the damaged range). A bound of zero is exact by construction.
A range no bound covers (a log without record numbers whose numbering restarted there) leaves the
rows after it without a place: they are counted, not guessed.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nbtrack import jsonutil
from nbtrack.proto import nbtrack_pb2 as pb
from nbtrack.txlog import Corruption, iter_records
from nbtrack.vocabulary import exit_state

__all__ = ["Base", "LogScan", "run_id_of", "scan_log", "segment_folder"]

_ATTEMPT = b'"_attempt"'
# A run folder: run-<date>_<time>[_<ms>]-<run id>; the milliseconds mark a resumed segment.
_FOLDER = re.compile(r"run-\d{8}_\d{6}(?P<ms>_\d{3})?-(?P<id>.+)")
_LOG_NAME = re.compile(r"run-(?P<id>.+)\.nbt")


@dataclass(frozen=True)
class Base:
    """Where a segment's lines and steps start (what its run record says, when it survives)."""

    history_offset: int = 0
    starting_step: int = 0
    output_offset: int = 0
    events_offset: int = 0


@dataclass
class _Row:
    """The last history row placed (or the segment's start, before its first row)."""

    line: int
    step: int
    attempt: int
    seq: int
    start: bool = False


@dataclass
class LogScan:
    path: Path
    run: pb.RunRecord | None = None  # None: the run record is damaged
    base: Base | None = None  # None: unknown (the run record is lost and nothing else says)
    rows: int = 0  # intact history rows
    # (index of an intact history row, its line): each row after such a row follows on from it.
    jumps: list[tuple[int, int]] = field(default_factory=list)
    unplaced_from: int | None = None  # rows from this index on have no known line
    estimated_from: int | None = None  # rows from this index on are placed by a bound, not known
    rows_lost: int = 0  # history rows the damaged ranges held (the bound the placement assumes)
    damaged_ranges: int = 0  # ranges that held rows
    end_line: int = 0  # the line after the last row placed
    tail_rows_max: int | None = 0  # rows a damaged tail (after the last row) may have held; None: any
    last_step: int | None = None
    runtime: float = 0.0  # the exit record's, else the last row's
    origin: float | None = None  # the run's start minus its earlier runtime, read off a row
    exit: pb.ExitRecord | None = None
    console_lines: int = 0
    stats: int = 0
    # Rows follow the last summary record: the summary the log states lacks them (the handler
    # writes it at most once a second, and always before the exit record).
    summary_stale: bool = False
    files: set[str] = field(default_factory=set)  # run files the log's records announce
    artifacts: int = 0  # artifact records (logged and used versions)
    corruption: list[Corruption] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.exit is not None

    @property
    def state(self) -> str:
        """How the log says the run ended: its exit record's state, else crashed."""
        return exit_state(self.exit.exit_code, self.exit.state) if self.exit is not None else "crashed"

    @property
    def exact(self) -> bool:
        """Every row has a line and none was placed by a bound."""
        return self.base is not None and self.unplaced_from is None and self.estimated_from is None

    @property
    def end_line_max(self) -> int | None:
        """The most lines the run can have had when the log ended (None: no bound)."""
        return None if self.tail_rows_max is None else self.end_line + self.tail_rows_max

    def is_exact(self, index: int) -> bool:
        """Whether the index-th intact row's line is known, not placed by a bound."""
        return self.estimated_from is None or index < self.estimated_from

    def placed(self) -> list[tuple[int, int]]:
        """The line ranges [start, stop) the log's rows were placed at."""
        if not self.jumps:
            return []
        end = self.rows if self.unplaced_from is None else self.unplaced_from
        bounds = [index for index, _ in self.jumps[1:]] + [end]
        return [(line, line + stop - index) for (index, line), stop in zip(self.jumps, bounds, strict=True)]

    def line_of(self, index: int) -> int | None:
        """The line of the index-th intact history row, or None if it has none."""
        if self.unplaced_from is not None and index >= self.unplaced_from:
            return None
        at = bisect_right(self.jumps, (index, float("inf"))) - 1
        first, line = self.jumps[at]
        return line + index - first

    def next_base(self) -> Base | None:
        """Where a segment resumed after this one starts, if this log says so exactly."""
        if not self.exact or self.tail_rows_max != 0 or self.base is None:
            return None
        next_step = self.base.starting_step if self.last_step is None else self.last_step + 1
        return Base(
            self.end_line,
            next_step,
            self.base.output_offset + self.console_lines,
            self.base.events_offset + self.stats,
        )


def run_id_of(log: Path) -> str | None:
    """The run id a log's file name (run-<id>.nbt) or folder (run-<stamp>-<id>) carries."""
    named = _LOG_NAME.fullmatch(log.name)
    if named:
        return named["id"]
    folder = _FOLDER.fullmatch(log.parent.name)
    return folder["id"] if folder else None


def segment_folder(log: Path) -> tuple[str, bool] | None:
    """(run id, resumed) if log lies in a run folder named as nbtrack names them, else None."""
    folder = _FOLDER.fullmatch(log.parent.name)
    return (folder["id"], folder["ms"] is not None) if folder else None


def scan_log(path: Path, base_if_lost: Callable[[], Base | None]) -> LogScan:
    """Read the log once; base_if_lost is asked where the segment starts if its run record is lost."""
    scan = LogScan(path)
    placer = _Placer(scan, base_if_lost)
    for record in iter_records(path, on_corruption=scan.corruption.append):
        placer.account(record)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            placer.place(record.history)
            scan.summary_stale = True
        elif kind == "summary":
            scan.summary_stale = False
        elif kind == "run":
            scan.run = record.run
            run = record.run
            scan.base = Base(run.history_offset, run.starting_step, run.output_offset, run.events_offset)
        elif kind == "header":
            placer.header_seen = True
        elif kind == "exit":
            scan.exit = record.exit
            placer.exit_seq = record.control.seq
        elif kind == "console":
            scan.console_lines += len(record.console.lines)
        elif kind == "stats":
            scan.stats += 1
        elif kind == "files":
            scan.files.update(file.path for file in record.files.files)
        elif kind in ("artifact", "use_artifact"):
            scan.artifacts += 1
    placer.finish()
    return scan


class _Placer:
    """Counts the records each damaged range swallowed and places the history rows after it."""

    def __init__(self, scan: LogScan, base_if_lost: Callable[[], Base | None]) -> None:
        self.scan = scan
        self.base_if_lost = base_if_lost
        self.prev_num = 0
        self.reported = 0  # corruption reports seen so far
        self.lost: int | None = 0  # records lost since the last row; None: unknown
        self.header_seen = False
        self.exit_seq = 0
        self.last: _Row | None = None

    def account(self, record: pb.Record) -> None:
        """Add the records lost just before this one."""
        damaged = len(self.scan.corruption) > self.reported
        self.reported = len(self.scan.corruption)
        num = record.num
        if num > self.prev_num:
            gap: int | None = num - self.prev_num - 1
        else:
            # No numbers, or numbering that restarted (a crashed process's log reopened after
            # damage): nothing is lost unless the reader reported damage right here.
            gap = None if damaged else 0
        if num:
            self.prev_num = num
        self.lost = None if self.lost is None or gap is None else self.lost + gap

    def place(self, history: pb.HistoryRecord) -> None:
        scan = self.scan
        index = scan.rows
        scan.rows += 1
        attempt = _attempt(history.data_json)
        scan.last_step = history.step if scan.last_step is None else max(scan.last_step, history.step)
        scan.runtime = history.runtime
        if scan.origin is None:
            scan.origin = history.timestamp - history.runtime
        if self.last is None:
            self.last = self._start()
            if self.last is None:
                scan.unplaced_from = 0
        if scan.unplaced_from is not None:
            self.lost = 0
            return
        last = self.last
        assert last is not None
        held = self._rows_held(last, history, attempt)
        if held is None:
            scan.unplaced_from = index
            self.lost = 0
            return
        line = last.line + 1 + held
        if held or not scan.jumps:
            scan.jumps.append((index, line))
        if held:
            scan.rows_lost += held
            scan.damaged_ranges += 1
            if scan.estimated_from is None:
                scan.estimated_from = index
        self.last = _Row(line, history.step, attempt, history.seq)
        scan.end_line = line + 1
        self.lost = 0

    def finish(self) -> None:
        """What a damaged range after the last row may have held."""
        scan = self.scan
        if scan.base is None and scan.run is None and self.last is None:
            scan.base = self.base_if_lost()  # a log without rows still tells where the next starts
        if scan.base is not None and self.last is None:
            scan.end_line = scan.base.history_offset
        if scan.exit is not None and scan.exit.runtime:
            scan.runtime = scan.exit.runtime
        tail_damaged = len(scan.corruption) > self.reported
        if tail_damaged and scan.exit is None:
            scan.tail_rows_max = None  # the end of the log is lost: so is any bound on what it held
            return
        bounds = [] if self.lost is None else [self.lost]
        if self.exit_seq and self.last is not None and self.last.seq:
            bounds.append(max(0, self.exit_seq - self.last.seq - 1))
        scan.tail_rows_max = min(bounds) if bounds else None

    def _start(self) -> _Row | None:
        """The segment's start as a row before its first: from its run record, or from elsewhere."""
        scan = self.scan
        if scan.run is None:
            scan.base = self.base_if_lost()
        if scan.base is None:
            return None
        base = scan.base
        # Records that surely precede every row (the header, the run record) are not rows.
        known = (0 if self.header_seen else 1) + (0 if scan.run is not None else 1)
        if self.lost is not None:
            self.lost = max(0, self.lost - known)
        return _Row(base.history_offset - 1, base.starting_step - 1, attempt=0, seq=0, start=True)

    def _rows_held(self, last: _Row, history: pb.HistoryRecord, attempt: int) -> int | None:
        """The most rows the records lost since `last` can have been (None: no bound)."""
        if self.lost == 0:
            return 0
        bounds = [] if self.lost is None else [self.lost]
        if attempt == last.attempt and history.step > last.step:
            bounds.append(history.step - last.step - 1)
        # Rows of a replayed log carry no seq (0); the segment's first rows follow seq 0.
        if history.seq and (last.seq or last.start) and history.seq > last.seq:
            bounds.append(history.seq - last.seq - 1)
        return min(bounds) if bounds else None


def _attempt(data_json: bytes) -> int:
    """The row's _attempt (a notebook's re-run cell), 0 without one; parsed only when present."""
    if _ATTEMPT not in data_json:
        return 0
    value = jsonutil.loads(data_json).get("_attempt", 0)
    return value if isinstance(value, int) else 0
