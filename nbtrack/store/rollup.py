"""The history rollup: what a chart of a long run is drawn from, kept as the lines arrive.

A run's lines are cut into buckets of BUCKET_LINES lines (bucket = line // BUCKET_LINES). For every
bucket and every key holding a number there, one rollup row says how many of the bucket's rows hold
a finite value of the key, the x ranges of those rows (step, runtime, wall time) and the extremes of
the values. A chart of a million lines then reads ten thousand rows per key instead of parsing a
million JSON texts, and min/max per bucket keeps every spike visible.

Pure: rows in, rollup rows out. The store writes them in the transaction that writes the lines
(writes.py) and the chart reader merges them (chart_read.py, downsample.py).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import repeat
from typing import Any

from nbtrack.vocabulary import RESERVED_KEYS

__all__ = ["BOOKKEEPING_KEYS", "BUCKET_LINES", "X_KEYS", "RollupRow", "finite", "is_number", "summarize"]

BUCKET_LINES = 100
# The keys a chart may use as its x axis; every history row has them (the handler stamps them).
X_KEYS = ("_step", "_runtime", "_timestamp")
# Numbers a row carries that are not metrics: the keys nbtrack stamps itself (the x keys, and the
# notebook cell and attempt a row came from). Charts and historyKeys leave them out.
BOOKKEEPING_KEYS = RESERVED_KEYS

# (key, bucket, count, step_min, step_max, runtime_min, runtime_max, ts_min, ts_max, y_min, y_max):
# the columns of schema.history_rollup after run_pk, in their order.
RollupRow = tuple[
    str,
    int,
    int,
    int | None,
    int | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
    float | None,
]
_XRanges = tuple[int | None, int | None, float | None, float | None, float | None, float | None]
_NO_RANGES: _XRanges = (None, None, None, None, None, None)
_NUMBER_TYPES = frozenset({int, float})  # bool is no number here: True is not a metric value


def is_number(value: Any) -> bool:
    """True for an int or float (NaN and infinities included), False for a bool or anything else."""
    return type(value) in _NUMBER_TYPES


def finite(value: Any) -> float | None:
    """value as a float if it is a finite number, else None."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float: no point on a chart
            return None
    return None


def summarize(lines: Sequence[int], steps: Sequence[int], rows: Sequence[dict[str, Any]]) -> list[RollupRow]:
    """The rollup rows of the buckets that lines (ascending) fall in, each bucket's lines all given."""
    out: list[RollupRow] = []
    start = 0
    while start < len(lines):
        bucket = lines[start] // BUCKET_LINES
        end = bisect_left(lines, (bucket + 1) * BUCKET_LINES, start)
        out.extend(_bucket_rows(bucket, steps[start:end], rows[start:end]))
        start = end
    return out


def _bucket_rows(bucket: int, steps: Sequence[int], chunk: Sequence[dict[str, Any]]) -> list[RollupRow]:
    # map(dict.get, ...): the one loop per key that ingest pays for, kept in C.
    runtimes = list(map(dict.get, chunk, repeat("_runtime")))
    stamps = list(map(dict.get, chunk, repeat("_timestamp")))
    every_row = _x_ranges(steps, runtimes, stamps)
    # Every line has a step, so the "_step" row counts the bucket's lines: what tells a reader
    # which lines the rollup covers. The x keys' rows come free from the ranges when every row
    # has that x (the handler stamps all three on every row).
    first, last = float(min(steps)), float(max(steps))
    out: list[RollupRow] = [("_step", bucket, len(steps), *every_row, first, last)]
    keys = set().union(*chunk)
    keys.discard("_step")
    for key, at in (("_runtime", 2), ("_timestamp", 4)):
        low, high = every_row[at], every_row[at + 1]
        if low is not None and high is not None:
            out.append((key, bucket, len(steps), *every_row, float(low), float(high)))
            keys.discard(key)
    for key in keys:
        values: list[Any] = list(map(dict.get, chunk, repeat(key)))
        if _all_finite(values):
            # The common case, a key logged on every row: one pass of C-level min and max.
            out.append((key, bucket, len(values), *every_row, float(min(values)), float(max(values))))
            continue
        kept = [i for i, value in enumerate(values) if finite(value) is not None]
        if kept:
            ys = [float(values[i]) for i in kept]
            ranges = _x_ranges(
                [steps[i] for i in kept], [runtimes[i] for i in kept], [stamps[i] for i in kept]
            )
            out.append((key, bucket, len(kept), *ranges, min(ys), max(ys)))
        elif any(is_number(value) for value in values):
            # Only NaN or infinities: the key is still a metric of the run (historyKeys lists it).
            out.append((key, bucket, 0, *_NO_RANGES, None, None))
    return out


def _x_ranges(steps: Sequence[int], runtimes: list[Any], stamps: list[Any]) -> _XRanges:
    """min and max of each x over some rows; None for an x that one of them lacks (or is not finite)."""
    runtime = (float(min(runtimes)), float(max(runtimes))) if _all_finite(runtimes) else (None, None)
    stamp = (float(min(stamps)), float(max(stamps))) if _all_finite(stamps) else (None, None)
    return (min(steps), max(steps), *runtime, *stamp)


def _all_finite(values: list[Any]) -> bool:
    """True when values is not empty and every value is a finite int or float."""
    if not values or not set(map(type, values)) <= _NUMBER_TYPES:
        return False
    try:
        # One C-level pass: NaN or an infinity makes the sum non-finite. A sum that overflows
        # (huge values) proves nothing, so then each value is checked.
        if math.isfinite(sum(values)):
            return True
    except OverflowError:
        pass
    return all(finite(value) is not None for value in values)
