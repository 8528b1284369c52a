"""The rollup and the downsampling, pure: checked against the obvious computation over every row."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbtrack.store.downsample import KeyValues, group_width, raw_points
from nbtrack.store.rollup import BUCKET_LINES, finite, summarize
from tests.chart_reference import number, reference_chart

# Values a row may hold: the numbers a chart shows, and everything it must leave out.
ODD_VALUES = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    1e308,
    -1e-300,
    2**70,
    10**400,
    True,
    False,
    None,
    "1",
    [1.0],
]
ODD_KEYS = ["loss", "acc", "lr", "_runtime", "_timestamp"]


@st.composite
def histories(draw: st.DrawFn, max_lines: int = 700) -> dict[int, dict[str, Any]]:
    """Rows by line: ascending steps, often gaps in the lines, any mix of values.

    Drawn from a seed (hypothesis drawing row by row is slow), with the odd values' rate drawn too.
    """
    count, seed = draw(st.integers(0, max_lines)), draw(st.integers(0, 2**32))
    odd_rate, gap_rate = draw(st.sampled_from([0.0, 0.05, 0.5])), draw(st.sampled_from([0.0, 0.1]))
    chosen = random.Random(seed)
    line, rows = chosen.randrange(250), {}
    for step in range(count):
        row: dict[str, Any] = {"_step": step * chosen.choice([1, 3])}
        if chosen.random() > odd_rate:  # most rows: plain finite metrics, as a training loop logs
            row |= {"_runtime": step / 10, "_timestamp": 1.7e9 + step, "loss": chosen.uniform(-1, 1)}
            row |= {"acc": step % 7} if step % 3 else {}
        while chosen.random() < odd_rate:
            row[chosen.choice(ODD_KEYS)] = chosen.choice([*ODD_VALUES, chosen.uniform(-5, 5)])
        rows[line] = row
        line += chosen.choice([2, 40]) if chosen.random() < gap_rate else 1
    return rows


def brute_rollup(rows: dict[int, dict[str, Any]]) -> set[tuple[Any, ...]]:
    """summarize()'s rows, computed key by key and bucket by bucket."""
    out = set()
    chunks: dict[int, list[dict[str, Any]]] = {}
    for line in sorted(rows):
        chunks.setdefault(line // BUCKET_LINES, []).append(rows[line])
    for bucket, chunk in chunks.items():
        for key in {key for row in chunk for key in row}:
            numeric = [row for row in chunk if type(row.get(key)) in (int, float)]
            kept = [row for row in numeric if number(row[key]) is not None]
            if not numeric:
                continue
            if not kept:
                out.add((key, bucket, 0, None, None, None, None, None, None, None, None))
                continue
            ranges: list[Any] = [min(r["_step"] for r in kept), max(r["_step"] for r in kept)]
            for x in ("_runtime", "_timestamp"):
                xs = [number(r.get(x)) for r in kept]
                ranges += [None, None] if None in xs else [min(xs), max(xs)]  # type: ignore[type-var]
            ys = [number(r[key]) for r in kept]
            out.add((key, bucket, len(kept), *ranges, min(ys), max(ys)))  # type: ignore[type-var]
    return out


@settings(max_examples=150, deadline=None)
@given(rows=histories())
def test_summarize_matches_a_bucket_by_bucket_reading(rows: dict[int, dict[str, Any]]) -> None:
    lines = sorted(rows)
    got = summarize(lines, [rows[n]["_step"] for n in lines], [rows[n] for n in lines])
    assert set(got) == brute_rollup(rows) and len(got) == len(set(got))


def test_a_key_with_only_non_finite_values_is_kept_without_extremes() -> None:
    rows = [{"_step": 0, "x": math.nan}, {"_step": 1, "x": math.inf, "flag": True}]
    assert sorted(summarize([0, 1], [0, 1], rows)) == [
        ("_step", 0, 2, 0, 1, None, None, None, None, 0.0, 1.0),
        ("x", 0, 0, None, None, None, None, None, None, None, None),
    ]


def test_finite_takes_ints_and_floats_only() -> None:
    assert finite(3) == 3.0 and type(finite(3)) is float and finite(-0.5) == -0.5
    for value in (math.nan, math.inf, -math.inf, True, None, "1", 10**400, [1]):
        assert finite(value) is None


@pytest.mark.parametrize(
    ("first", "last", "points", "coarse", "width"),
    [
        (0, 9, 10, False, 1),
        (0, 10, 10, False, 2),
        (5, 24, 10, False, 5),
        (0, 99, 1, False, 100),
        (0, 999_999, 1000, True, 1000),
        (0, 999_999, 1000, False, 1000),
        (0, 50_000, 1000, True, 100),
        (150, 250, 1, True, 500),
        (0, 10**9, 3, True, 500_000_000),
    ],
)
def test_group_width_is_the_smallest_that_fits(
    first: int, last: int, points: int, coarse: bool, width: int
) -> None:
    assert group_width(first, last, points, coarse=coarse) == width
    assert last // width - first // width + 1 <= points


@settings(max_examples=150, deadline=None)
@given(
    rows=histories(),
    x=st.sampled_from(["_step", "_runtime", "_timestamp"]),
    bounds=st.tuples(st.none() | st.floats(-10, 800), st.none() | st.floats(-10, 800)),
    points=st.integers(1, 60),
)
def test_series_from_lines_match_the_reference(
    rows: dict[int, dict[str, Any]], x: str, bounds: tuple[float | None, float | None], points: int
) -> None:
    lo, hi = bounds
    if x == "_timestamp":
        lo, hi = (None if b is None else 1.7e9 + b for b in bounds)
    lines = sorted(rows)
    found = raw_points(lines, [rows[n] for n in lines], x, lo, hi, None)
    for fine in (True, False):
        expected = reference_chart(rows, x=x, lo=lo, hi=hi, points=points, raw_limit=10**9 if fine else -1)
        series = {
            key: KeyValues(found.points.get(key, [])).series(points, fine) for key in sorted(found.keys)
        }
        assert series == expected["series"]


@settings(max_examples=150, deadline=None)
@given(rows=histories(), points=st.integers(1, 12), seed=st.integers(0, 2**32))
def test_series_from_rollup_buckets_match_the_reference(
    rows: dict[int, dict[str, Any]], points: int, seed: int
) -> None:
    """Some buckets from the rollup, the others as lines: the coarse answer is the same."""
    lines = sorted(rows)
    rollup = summarize(lines, [rows[n]["_step"] for n in lines], [rows[n] for n in lines])
    chosen = random.Random(seed)
    as_lines = {bucket for bucket in {n // BUCKET_LINES for n in lines} if chosen.random() < 0.5}
    expected = reference_chart(rows, points=points, raw_limit=-1)["series"]
    for key, want in expected.items():
        values = KeyValues()
        for line in lines:
            y = finite(rows[line].get(key))
            if line // BUCKET_LINES in as_lines and y is not None:
                values.points.append((line, rows[line]["_step"], y))
        for row in rollup:
            if row[0] == key and row[1] not in as_lines and row[2] > 0:
                values.summaries.append((row[1], row[2], row[3], row[9], row[10]))  # type: ignore[arg-type]
        if values.count() <= points and any(s[1] > 1 for s in values.summaries):
            with pytest.raises(ValueError, match="only its extremes"):
                values.series(points, False)  # the store reads those buckets' lines instead
            continue
        assert values.series(points, False) == want, key
