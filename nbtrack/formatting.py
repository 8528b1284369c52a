"""How numbers, durations, sizes and kept summaries read, everywhere (the panel's snapshots, the
CLI's tables), and the min/max downsampler: Python twins of nbtrack/web/shared/chart.js (numbers,
durations, sizes, the downsampler) and of nbtrack/web/ui/format.js (summaries), same rules, so the
panel, the web UI and the terminal say "4 min 05 s" and "max 0.9894" alike.

tests/test_panel.py runs chart.js in node and checks both give the same results; the summary
rules are checked on both sides against one list of cases (tests/js/format_cases.json).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nbtrack.vocabulary import SUMMARY_KINDS

__all__ = [
    "downsample_min_max",
    "format_bytes",
    "format_duration",
    "format_number",
    "format_summary",
    "summary_value",
]

# The kinds a kept summary object holds, in the order they are read ("none" keeps nothing).
_KEPT_KINDS = tuple(kind for kind in SUMMARY_KINDS if kind != "none")


def _trim_zeros(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_number(value: object) -> str:
    """A short label for a metric value, as chart.js's formatNumber writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and abs(value) < 10**15:
        return str(value)
    if not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    size = abs(v)
    if size >= 1e5 or size < 1e-3:
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{_trim_zeros(mantissa)}e{int(exponent):+d}"
    decimals = min(6, max(0, 3 - math.floor(math.log10(size))))
    return _trim_zeros(f"{v:.{decimals}f}")


def _kept_summary(value: object) -> list[tuple[str, float]] | None:
    """A summary kept by define_metric ({"max": 0.98}, {"min": .., "max": ..}) as (kind, number)
    pairs in reading order, or None when value is not one (a number, a string, any other object)."""
    if not isinstance(value, dict) or not value:
        return None
    for kind, number in value.items():
        if kind not in _KEPT_KINDS or isinstance(number, bool) or not isinstance(number, (int, float)):
            return None
    return [(kind, value[kind]) for kind in _KEPT_KINDS if kind in value]


def format_summary(value: object) -> str | None:
    """A kept summary as text, "max 0.9894" or "min 0.1 · max 0.9" (numbers as format_number),
    or None when value is not one (the caller shows it as it shows any value)."""
    kept = _kept_summary(value)
    return None if kept is None else " · ".join(f"{kind} {format_number(number)}" for kind, number in kept)


def summary_value(value: object) -> object:
    """The value a summary sorts by: a kept summary's first number in reading order (its last,
    else min, max, mean: the first one format_summary shows), any other value as it is."""
    kept = _kept_summary(value)
    return value if kept is None else kept[0][1]


def format_duration(seconds: float) -> str:
    """ "12.3 s", "4 min 05 s", "2 h 03 min", as chart.js's formatDuration."""
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = math.floor(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def format_bytes(n: float) -> str:
    """ "512 B", "3.4 kB", "12 MB", as chart.js's formatBytes."""
    if not math.isfinite(n) or n < 0:
        return ""
    units = ("B", "kB", "MB", "GB", "TB")
    value, unit = float(n), 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    if unit == 0:
        return f"{math.floor(value + 0.5)} B"  # Math.round, not banker's rounding
    return f"{_trim_zeros(f'{value:.1f}') if value < 10 else math.floor(value + 0.5)} {units[unit]}"


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def downsample_min_max(
    steps: Sequence[float], values: Sequence[Any], max_points: int
) -> tuple[list[Any], list[Any]]:
    """At most max_points points: the first and last finite points plus each bucket's min and max.

    The points between the first and last are cut into floor((max_points - 2) / 2) equal buckets;
    each contributes its minimum and maximum (first occurrence, in step order), so the global
    extremes always survive. Non-finite or non-numeric values are dropped. Same rule as
    chart.js's downsampleMinMax.
    """
    try:
        clean = math.isfinite(sum(values))  # C speed; a None, str, NaN or inf anywhere fails it
    except (TypeError, OverflowError):
        clean = False
    if clean:
        count = min(len(steps), len(values))
        xs, ys = list(steps[:count]), list(values[:count])
    else:
        kept = [(s, f) for s, v in zip(steps, values, strict=False) if (f := _finite(v)) is not None]
        xs, ys = [s for s, _ in kept], [v for _, v in kept]
    n = len(ys)
    if n <= max_points:
        return xs, ys
    if max_points < 2:
        return (xs[-1:], ys[-1:]) if max_points == 1 else ([], [])
    buckets = (max_points - 2) // 2
    inner = n - 2
    out_x, out_y = [xs[0]], [ys[0]]
    for b in range(buckets):
        start = 1 + b * inner // buckets
        end = 1 + (b + 1) * inner // buckets
        if start >= end:
            continue
        chunk = ys[start:end]
        lo = start + chunk.index(min(chunk))
        hi = start + chunk.index(max(chunk))
        for i in (lo,) if lo == hi else sorted((lo, hi)):
            out_x.append(xs[i])
            out_y.append(ys[i])
    out_x.append(xs[-1])
    out_y.append(ys[-1])
    return out_x, out_y
