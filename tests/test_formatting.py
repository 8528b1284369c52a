"""Summaries kept by define_metric read as "max 0.9894", in Python as in the web UI.

The cases are tests/js/format_cases.json, which node's tests (tests/js/format.test.mjs) check
against ui/format.js too: one list, two twins.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from nbtrack import jsonutil
from nbtrack.formatting import format_summary, summary_value

CASES: list[list[Any]] = jsonutil.loads(
    (Path(__file__).resolve().parent / "js" / "format_cases.json").read_bytes()
)["summaries"]


@pytest.mark.parametrize(("value", "text", "sort_value"), CASES, ids=[str(case[1]) for case in CASES])
def test_a_summary_reads_as_the_web_ui_reads_it(value: Any, text: str | None, sort_value: Any) -> None:
    assert format_summary(value) == text
    got = summary_value(value)
    if isinstance(sort_value, float) and math.isnan(sort_value):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert got == sort_value and type(got) is type(sort_value)


def test_the_summary_kinds_are_the_ones_define_metric_accepts() -> None:
    from nbtrack.internal.summary import parse_summary_kinds

    # Every kind that keeps a value is read; "none" keeps nothing.
    for kind in ("last", "min", "max", "mean"):
        assert parse_summary_kinds(kind) == (kind,)
        assert format_summary({kind: 0.5}) == f"{kind} 0.5"
