"""Plain-text tables for the terminal: aligned columns, long cells cut with an ellipsis."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from nbtrack import jsonutil
from nbtrack.api import StoredRun
from nbtrack.formatting import format_duration, format_number, format_summary, summary_value
from nbtrack.store import RunRow

__all__ = [
    "common_summary_keys",
    "cut_text",
    "format_cell",
    "format_time",
    "render_table",
    "runs_table",
    "summary_cell",
]

MAX_CELL_WIDTH = 32
COLUMN_GAP = "  "
ELLIPSIS = "…"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = MAX_CELL_WIDTH
) -> str:
    """Headers, a rule and rows as aligned text; numeric columns are right-aligned, cells cut at max_width."""
    cells = [[cut_text(format_cell(value), max_width) for value in row] for row in rows]
    heads = [cut_text(str(header), max_width) for header in headers]
    widths = [len(head) for head in heads]
    for row in cells:
        if len(row) != len(heads):
            raise ValueError(f"a row has {len(row)} cells for {len(heads)} headers: {row!r}")
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    numeric = [
        any(_is_number(row[i]) for row in rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
        for i in range(len(heads))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        )
        return COLUMN_GAP.join(padded).rstrip()

    rule = COLUMN_GAP.join("-" * width for width in widths)
    return "\n".join([line(heads), rule, *(line(row) for row in cells)])


def runs_table(
    runs: Sequence[StoredRun | RunRow], summary_keys: Sequence[str] | None = None, max_keys: int = 3
) -> str:
    """A table of runs: id, name, state, created (local time), runtime, rows and a few summary keys.

    README's "The command line" shows what it looks like (tests/test_cli_polish.py holds them equal).
    """
    rows = [run.row if isinstance(run, StoredRun) else run for run in runs]
    keys = list(summary_keys) if summary_keys is not None else common_summary_keys(rows, max_keys)
    # "rows", not "steps": a run's steps may jump (log(step=...)), its count of history rows does not.
    headers = ["id", "name", "state", "created", "runtime", "rows", *keys]
    body = [
        [
            row.run_id,
            row.display_name or "",
            row.state,
            format_time(row.created_at),
            format_duration(row.runtime) if row.runtime else "",  # not started: blank, not "0.0 s"
            row.history_line_count,
            *(summary_cell(row.summary.get(key)) for key in keys),
        ]
        for row in rows
    ]
    return render_table(headers, body)


def format_time(timestamp: float | None) -> str:
    """A moment as tables show it: local time to the minute ("-" for none)."""
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def format_cell(value: object) -> str:
    """One value as table text: numbers as everywhere else (formatting.format_number), None as
    blank, JSON for containers."""
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, dict | list | tuple):
        return jsonutil.dumps_str(value)
    # Tabs and newlines would break the grid.
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


def common_summary_keys(rows: Sequence[RunRow], limit: int) -> list[str]:
    """The summary keys with scalar values that most runs share (first seen first among equals)."""
    counts: Counter[str] = Counter()
    for row in rows:
        counts.update(
            key
            for key, value in row.summary.items()
            if not key.startswith("_") and isinstance(summary_value(value), int | float | str | bool)
        )
    # Counter.most_common keeps insertion order among equal counts.
    return [key for key, _ in counts.most_common(limit)]


def summary_cell(value: object) -> object:
    """A summary value as the web UI shows it: a kept one as "max 0.9894" (formatting.py)."""
    kept = format_summary(value)
    return value if kept is None else kept


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def cut_text(text: str, width: int) -> str:
    """text, or its first width - 1 characters and an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS
