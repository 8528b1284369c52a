"""A bounded sample of each metric's history for live charts that never loses a spike.

Each series is cut into buckets of `width` consecutive values; a bucket keeps its smallest and
its largest value, each at its own step. When a series holds `capacity` buckets, neighbours are
merged in pairs (min of the mins, max of the maxes) and `width` doubles, so a series stays
bounded whatever the run's length and its extremes always survive: the same min/max rule as the
store's rollup and the server's charts. `points(n)` merges further down to n points for the
panel, which draws what it gets. The first and the newest values are kept too, so a chart
starts where the run started and ends where it is.

`add_row` runs once per logged row in the handler, so its per-key work is inlined: one dict
lookup, one count check, two comparisons. Non-finite values are left out (a chart has no place
for them; the summary and the store keep them).
"""

from __future__ import annotations

from typing import Any

__all__ = ["LIVE_POINTS", "LIVE_SERIES", "SampledHistory", "Series"]

DEFAULT_CAPACITY = 256  # buckets per series
LIVE_POINTS = 100  # points per series in a LiveResult: what the panel draws
LIVE_SERIES = 12  # series in a LiveResult: the panel's charts
_INF = float("inf")

# A bucket: [min step, min value, max step, max value]
Bucket = list[Any]


class Series:
    __slots__ = ("buckets", "count", "first", "last_step", "last_value", "width")

    def __init__(self) -> None:
        self.buckets: list[Bucket] = []  # the last one is being filled
        self.count = 0  # values in the last bucket
        self.width = 1  # values per bucket
        self.first: tuple[int, float] | None = None
        self.last_step = 0
        self.last_value = 0.0

    def points(self, limit: int | None = None) -> tuple[list[int], list[float]]:
        """The first point, each bucket's min and max in step order, and the newest point; with
        a limit, buckets are merged in runs until the points fit (the extremes stay)."""
        if self.first is None:
            return [], []
        buckets = self.buckets
        if limit is not None:
            groups = max(1, (limit - 2) // 2)  # two points per bucket, plus the first and newest
            if len(buckets) > groups:
                size = -(-len(buckets) // groups)  # ceil
                buckets = [_merge(buckets[i : i + size]) for i in range(0, len(buckets), size)]
        steps, values = [self.first[0]], [self.first[1]]
        for lo_step, lo, hi_step, hi in buckets:
            pair = ((lo_step, lo), (hi_step, hi)) if lo_step <= hi_step else ((hi_step, hi), (lo_step, lo))
            for step, value in pair:
                if step != steps[-1]:
                    steps.append(step)
                    values.append(value)
        if steps[-1] != self.last_step:
            steps.append(self.last_step)
            values.append(self.last_value)
        return steps, values


def _merge(buckets: list[Bucket]) -> Bucket:
    lo = min(buckets, key=lambda b: b[1])
    hi = max(buckets, key=lambda b: b[3])
    return [lo[0], lo[1], hi[2], hi[3]]


class SampledHistory:
    """One Series per numeric key."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.series: dict[str, Series] = {}

    def add_row(self, step: int, row: dict[str, Any]) -> None:
        series = self.series
        for key, value in row.items():
            kind = type(value)
            if (kind is not float and kind is not int) or not -_INF < value < _INF:
                continue
            found = series.get(key)
            if found is None:
                found = series[key] = Series()
                found.first = (step, value)
                found.buckets.append([step, value, step, value])
                found.count = 1
                found.last_step, found.last_value = step, value
                continue
            found.last_step = step
            found.last_value = value
            count = found.count
            if count < found.width:
                found.count = count + 1
                bucket = found.buckets[-1]
                if value < bucket[1]:
                    bucket[0], bucket[1] = step, value
                elif value > bucket[3]:
                    bucket[2], bucket[3] = step, value
                continue
            buckets = found.buckets
            if len(buckets) >= self.capacity:  # halve: merge neighbours, buckets twice as wide
                found.buckets = buckets = [_merge(buckets[i : i + 2]) for i in range(0, len(buckets), 2)]
                found.width *= 2  # the capacity is even: every merged bucket is full
            buckets.append([step, value, step, value])
            found.count = 1
