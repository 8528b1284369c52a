"""How the store reads a chart and a run's metric keys: from the rollup where it can, lines where it must.

The plan, for a run of more than `raw_limit` lines:

1. Coverage: the rollup's "_step" rows say how many lines each bucket had when it was summarized.
   If they add up to the run's line count, the rollup covers every line; otherwise the buckets
   whose count differs from their lines' (a run stored before the rollup existed, or lines that
   skipped ahead) are summarized here from their lines, in memory, a slice at a time.
2. Each bucket is inside the x range (every line's x within it), outside, or partial (some lines
   in, or a line without that x). Partial buckets are read as lines: at the range's two ends, so
   a few hundred lines.
3. If at most `raw_limit` lines are in range after all, they are read and charted exactly as a
   small run is; otherwise the buckets inside come from the rollup, and a key with at most
   `points` values (a sparse one) has its buckets of several values read as lines.

A chart against a metric of the run (a step metric declared with define_metric(step_metric=...),
as Lightning's "trainer/global_step") has no x ranges in the rollup: its lines are read, a slice
at a time, whatever the run's length, and each key's values kept in bounded memory (metric_x.py).

downsample.py defines the answer; this module only decides where each value comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from nbtrack.store.archive import merged_lines
from nbtrack.store.downsample import Chart, KeyValues, raw_points
from nbtrack.store.metric_x import MetricXSeries
from nbtrack.store.rollup import BOOKKEEPING_KEYS, BUCKET_LINES, X_KEYS, RollupRow, summarize
from nbtrack.store.schema import history, history_rollup

__all__ = ["RAW_LINES", "ChartRequest", "HistoryLines", "read_chart", "read_history_keys", "read_lines"]

# Up to this many lines in range, a chart is read from the lines themselves (finer than a bucket).
RAW_LINES = 20_000
_RANGES_PER_QUERY = 100  # line ranges OR'ed in one statement
_LINES_PER_READ = 10_000  # lines parsed at a time when summarizing what the rollup lacks
# x -> the columns of the rollup holding its per-bucket min and max
_X_COLUMNS = {
    "_step": ("step_min", "step_max"),
    "_runtime": ("runtime_min", "runtime_max"),
    "_timestamp": ("ts_min", "ts_max"),
}
_INSIDE, _PARTIAL, _OUTSIDE = range(3)


@dataclass(frozen=True, slots=True)
class ChartRequest:
    keys: tuple[str, ...] | None  # None: every metric key of the run
    x: str  # one of X_KEYS, or a metric key of the run (a declared step metric)
    lo: float | None
    hi: float | None
    points: int
    raw_limit: int = RAW_LINES
    attempt: int | None = None  # only the rows of this attempt of a notebook's run (provenance.py)


@dataclass(slots=True)
class HistoryLines:
    lines: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def read_lines(conn: Connection, pk: int, ranges: Sequence[tuple[int, int]]) -> HistoryLines:
    """The run's lines in the given [start, stop) ranges (ascending, disjoint), parsed, in line
    order: from its history table, and from its archive if it was compacted (archive.py)."""
    return HistoryLines(*merged_lines(conn, pk, ranges))


def read_history_keys(conn: Connection, pk: int, line_count: int) -> list[str]:
    """The run's metric keys: those with a numeric value in some line, bookkeeping aside; sorted."""
    coverage = _Coverage.read(conn, pk, line_count)
    keys = _rollup_keys(conn, pk) | coverage.healed_keys()
    return sorted(keys.difference(BOOKKEEPING_KEYS))


def read_attempts(conn: Connection, pk: int) -> int:
    """How many attempts the run's rows make: 1 + their largest _attempt (rows without one are
    attempt 0). Read from the rollup, which every run with attempts has (they came with it)."""
    rollup = history_rollup.c
    largest = conn.scalar(select(func.max(rollup.y_max)).where(rollup.run_pk == pk, rollup.key == "_attempt"))
    return 1 + int(largest or 0)


def read_chart(conn: Connection, pk: int, line_count: int, request: ChartRequest) -> Chart:
    """The chart request asks for, of the run whose pk and line count are given (one snapshot)."""
    if request.x not in X_KEYS:
        return _chart_against_a_metric(conn, pk, line_count, request)
    if line_count <= request.raw_limit or request.attempt is not None:
        # One attempt's rows are picked from every line: the rollup does not separate attempts
        # (runs with attempts are notebook runs, rarely large).
        return _chart_of_every_line(conn, pk, line_count, request)
    coverage = _Coverage.read(conn, pk, line_count)
    status = coverage.classify(request.x, request.lo, request.hi)
    inside = sorted(b for b, s in status.items() if s == _INSIDE)
    partial = sorted(b for b, s in status.items() if s == _PARTIAL)
    edges = _read_buckets(conn, pk, partial)
    found = raw_points(edges.lines, edges.rows, request.x, request.lo, request.hi, request.keys)
    keys = request.keys
    if keys is None:
        keys = tuple(sorted((_rollup_keys(conn, pk) | coverage.healed_keys()).difference(BOOKKEEPING_KEYS)))
    in_range = found.in_range + sum(coverage.counts[b] for b in inside)
    if in_range <= request.raw_limit:
        rest = _read_buckets(conn, pk, inside)
        more = raw_points(rest.lines, rest.rows, request.x, request.lo, request.hi, keys)
        values = {key: KeyValues(found.points.get(key, []) + more.points.get(key, [])) for key in keys}
        return _assemble(request, line_count, values, True)
    values = {key: KeyValues(found.points.get(key, [])) for key in keys}
    for key, summary in coverage.summaries(conn, pk, keys, request.x, inside):
        values[key].summaries.append(summary)
    _expand_sparse_keys(conn, pk, request, values)
    return _assemble(request, line_count, values, False)


def _chart_of_every_line(conn: Connection, pk: int, line_count: int, request: ChartRequest) -> Chart:
    every = read_lines(conn, pk, [(0, line_count)])
    if request.attempt is not None:
        picked = [i for i, row in enumerate(every.rows) if row.get("_attempt", 0) == request.attempt]
        every = HistoryLines(
            [every.lines[i] for i in picked],
            [every.steps[i] for i in picked],
            [every.rows[i] for i in picked],
        )
    found = raw_points(every.lines, every.rows, request.x, request.lo, request.hi, request.keys)
    keys = request.keys if request.keys is not None else sorted(found.keys)
    return _assemble(request, line_count, {key: KeyValues(found.points.get(key, [])) for key in keys}, True)


def _chart_against_a_metric(conn: Connection, pk: int, line_count: int, request: ChartRequest) -> Chart:
    """The chart whose x is a metric key: every line read, a slice at a time, each key's values
    kept in bounded memory (metric_x.py), grouped as the contract says for the rows in range."""
    in_range = 0
    series: dict[str, MetricXSeries] = {}
    keys: set[str] = set()
    for start in range(0, line_count, _LINES_PER_READ):
        part = read_lines(conn, pk, [(start, start + _LINES_PER_READ)])
        found = raw_points(part.lines, part.rows, request.x, request.lo, request.hi, request.keys)
        in_range += found.in_range
        keys |= found.keys
        for key, points in found.points.items():
            kept = series.get(key)
            if kept is None:
                kept = series[key] = MetricXSeries(request.points)
            for point in points:
                kept.add(*point)
    chosen = request.keys if request.keys is not None else sorted(keys)
    fine = in_range <= request.raw_limit
    out = {key: series[key].series(fine) if key in series else [] for key in chosen}
    exact = all(series[key].count <= request.points for key in chosen if key in series)
    return Chart(request.x, line_count, exact, out)


def _assemble(request: ChartRequest, line_count: int, values: dict[str, KeyValues], fine: bool) -> Chart:
    series = {key: found.series(request.points, fine) for key, found in values.items()}
    exact = all(found.count() <= request.points for found in values.values())
    return Chart(request.x, line_count, exact, series)


def _expand_sparse_keys(
    conn: Connection, pk: int, request: ChartRequest, values: dict[str, KeyValues]
) -> None:
    """Keys with at most `points` values get each of them: their buckets of several values as lines."""
    sparse = {
        key
        for key, found in values.items()
        if found.count() <= request.points and any(summary[1] > 1 for summary in found.summaries)
    }
    if not sparse:
        return
    buckets = sorted({s[0] for key in sparse for s in values[key].summaries if s[1] > 1})
    wanted = set(buckets)
    lines = _read_buckets(conn, pk, buckets)
    found = raw_points(lines.lines, lines.rows, request.x, request.lo, request.hi, tuple(sparse))
    for key in sparse:
        kept = values[key]
        kept.summaries = [s for s in kept.summaries if s[0] not in wanted]
        kept.points.extend(found.points.get(key, []))


def _read_buckets(conn: Connection, pk: int, buckets: Sequence[int]) -> HistoryLines:
    return read_lines(conn, pk, _line_ranges(buckets))


def _line_ranges(buckets: Iterable[int]) -> list[tuple[int, int]]:
    """The line ranges of ascending buckets, runs of consecutive buckets merged."""
    ranges: list[tuple[int, int]] = []
    for bucket in buckets:
        start, stop = bucket * BUCKET_LINES, (bucket + 1) * BUCKET_LINES
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], stop)
        else:
            ranges.append((start, stop))
    return ranges


def _rollup_keys(conn: Connection, pk: int) -> set[str]:
    """The distinct keys of the run's rollup rows, one index probe per key (a loose index scan)."""
    rollup = history_rollup.c
    found = select(func.min(rollup.key).label("key")).where(rollup.run_pk == pk).cte("keys", recursive=True)
    following = (
        select(func.min(rollup.key)).where(rollup.run_pk == pk, rollup.key > found.c.key).scalar_subquery()
    )
    found = found.union_all(select(following).where(found.c.key.is_not(None)))
    return set(conn.scalars(select(found.c.key).where(found.c.key.is_not(None))))


@dataclass(slots=True)
class _Coverage:
    """Per bucket of the run: line count and x ranges, from the rollup or summarized here."""

    counts: dict[int, int]
    ranges: dict[int, tuple[Any, ...]]  # bucket -> (step_min, step_max, runtime_min, ..., ts_max)
    healed: dict[str, list[RollupRow]]  # key -> rollup rows summarized here (of buckets the rollup lacks)
    healed_buckets: set[int] = field(default_factory=set)  # their stored rollup rows are stale or absent

    @classmethod
    def read(cls, conn: Connection, pk: int, line_count: int) -> _Coverage:
        rollup = history_rollup.c
        stmt = select(
            rollup.bucket,
            rollup.count,
            rollup.step_min,
            rollup.step_max,
            rollup.runtime_min,
            rollup.runtime_max,
            rollup.ts_min,
            rollup.ts_max,
        ).where(rollup.run_pk == pk, rollup.key == "_step")
        counts: dict[int, int] = {}
        ranges: dict[int, tuple[Any, ...]] = {}
        for bucket, count, *x_ranges in conn.execute(stmt):
            counts[bucket] = count
            ranges[bucket] = tuple(x_ranges)
        coverage = cls(counts, ranges, {})
        # A bucket's rollup counts lines that exist, so equal totals mean every line is covered.
        if sum(counts.values()) != line_count:
            coverage._heal(conn, pk)
        return coverage

    def _heal(self, conn: Connection, pk: int) -> None:
        """Summarize the buckets whose rollup misses lines (or is missing), from their lines."""
        bucket_of = history.c.line // BUCKET_LINES
        stmt = (
            select(bucket_of, func.count())
            .where(history.c.run_pk == pk)
            .group_by(bucket_of)
            .order_by(bucket_of)
        )
        lacking = [bucket for bucket, count in conn.execute(stmt) if self.counts.get(bucket) != count]
        self.healed_buckets.update(lacking)
        per_read = _LINES_PER_READ // BUCKET_LINES
        for i in range(0, len(lacking), per_read):
            lines = _read_buckets(conn, pk, lacking[i : i + per_read])
            for row in summarize(lines.lines, lines.steps, lines.rows):
                key, bucket, count = row[0], row[1], row[2]
                if key == "_step":
                    self.counts[bucket] = count
                    self.ranges[bucket] = row[3:9]
                else:
                    self.healed.setdefault(key, []).append(row)

    def healed_keys(self) -> set[str]:
        return set(self.healed)

    def classify(self, x: str, lo: float | None, hi: float | None) -> dict[int, int]:
        """Each bucket's place with respect to the range: _INSIDE, _PARTIAL or _OUTSIDE."""
        low_at, high_at = (0, 1) if x == "_step" else (2, 3) if x == "_runtime" else (4, 5)
        low = float("-inf") if lo is None else lo
        high = float("inf") if hi is None else hi
        status: dict[int, int] = {}
        for bucket, ranges in self.ranges.items():
            first, last = ranges[low_at], ranges[high_at]
            if first is None:  # a line of the bucket lacks this x: only its lines can tell
                status[bucket] = _PARTIAL
            elif last < low or first > high:
                status[bucket] = _OUTSIDE
            elif low <= first and last <= high:
                status[bucket] = _INSIDE
            else:
                status[bucket] = _PARTIAL
        return status

    def summaries(
        self, conn: Connection, pk: int, keys: Sequence[str], x: str, inside: Sequence[int]
    ) -> Iterable[tuple[str, tuple[int, int, float, float, float]]]:
        """(key, (bucket, count, x_min, y_min, y_max)) of the keys' values in the buckets inside."""
        if not inside or not keys:
            return
        rollup = history_rollup.c
        x_min = rollup[_X_COLUMNS[x][0]]
        wanted = set(inside)
        contiguous = inside[-1] - inside[0] + 1 == len(inside)
        x_at = {"_step": 3, "_runtime": 5, "_timestamp": 7}[x]
        for i in range(0, len(keys), _RANGES_PER_QUERY):
            part = keys[i : i + _RANGES_PER_QUERY]
            stmt = select(rollup.key, rollup.bucket, rollup.count, x_min, rollup.y_min, rollup.y_max).where(
                rollup.run_pk == pk,
                rollup.key.in_(part),
                rollup.bucket.between(inside[0], inside[-1]),
                rollup.count > 0,
            )
            for key, bucket, count, x_value, y_min, y_max in conn.execute(stmt):
                if (contiguous or bucket in wanted) and bucket not in self.healed_buckets:
                    yield key, (bucket, count, x_value, y_min, y_max)
            for key in part:
                for row in self.healed.get(key, ()):
                    if row[1] in wanted and row[2] > 0:
                        yield key, (row[1], row[2], row[x_at], row[9], row[10])  # type: ignore[misc]
