"""A bounded, evenly spaced sample of each metric's history, for live charts.

Each series keeps at most `capacity` points whatever the run's length: when full, every other
point is dropped and only every 2**k-th value is kept from then on, so the points stay evenly
spread over the whole run. The newest value is always kept too, so a chart ends where the run is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SampledHistory", "Series"]

DEFAULT_CAPACITY = 512


class Series:
    __slots__ = ("capacity", "last", "seen", "steps", "stride", "values")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.steps: list[int] = []
        self.values: list[float] = []
        self.stride = 1
        self.seen = 0
        self.last: tuple[int, float] | None = None

    def add(self, step: int, value: float) -> None:
        self.last = (step, value)
        seen = self.seen
        self.seen = seen + 1
        if seen % self.stride:
            return
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) >= self.capacity:
            del self.steps[1::2], self.values[1::2]
            self.stride *= 2

    def points(self) -> tuple[list[int], list[float]]:
        steps, values = list(self.steps), list(self.values)
        if self.last is not None and (not steps or steps[-1] != self.last[0]):
            steps.append(self.last[0])
            values.append(self.last[1])
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
            if kind is float or kind is int:
                found = series.get(key)
                if found is None:
                    found = series[key] = Series(self.capacity)
                found.add(step, value)
