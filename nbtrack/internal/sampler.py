"""A bounded, evenly spaced sample of each metric's history, for live charts.

Each series keeps at most `capacity` points whatever the run's length: when full, every other
point is dropped and only every 2**k-th value is kept from then on, so the points stay evenly
spread over the whole run. The newest value is always kept too, so a chart ends where the run is.
`add_row` runs once per logged row in the handler, so its per-key work is inlined: one dict
lookup and a few slot updates.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SampledHistory", "Series"]

DEFAULT_CAPACITY = 512


class Series:
    __slots__ = ("last_step", "last_value", "mask", "seen", "steps", "values")

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: list[float] = []
        self.mask = 0  # stride - 1; the stride is a power of two
        self.seen = 0
        self.last_step = 0
        self.last_value = 0.0

    def points(self) -> tuple[list[int], list[float]]:
        steps, values = list(self.steps), list(self.values)
        if self.seen and (not steps or steps[-1] != self.last_step):
            steps.append(self.last_step)
            values.append(self.last_value)
        return steps, values


class SampledHistory:
    """One Series per numeric key."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.series: dict[str, Series] = {}

    def add_row(self, step: int, row: dict[str, Any]) -> None:
        series = self.series
        for key, value in row.items():
            kind = type(value)
            if kind is not float and kind is not int:
                continue
            found = series.get(key)
            if found is None:
                found = series[key] = Series()
            seen = found.seen
            found.seen = seen + 1
            found.last_step = step
            found.last_value = value
            if seen & found.mask:
                continue
            steps = found.steps
            steps.append(step)
            found.values.append(value)
            if len(steps) >= self.capacity:
                del steps[1::2], found.values[1::2]
                found.mask = found.mask * 2 + 1
