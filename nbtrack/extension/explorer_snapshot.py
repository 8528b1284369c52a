"""The explorer's static snapshots (text/plain and text/html), for nbconvert, nbval, GitHub and any
front end that cannot show a widget: the runs table as a table, a comparison as its table of
config and summary (differences marked) and an inline SVG chart per metric, a line per run.

They read only the view explorer_data.py made (every value already text) and escape every user
string. Nothing in them depends on the clock or on the order a kernel ran cells in.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from nbtrack.extension.snapshot import lines_svg
from nbtrack.tables import render_table
from nbtrack.vocabulary import SERIES_COLORS

__all__ = ["DIFFERS_MARK", "html_snapshot", "text_snapshot"]

DIFFERS_MARK = "≠"  # beside a config or summary key whose values are not the same in every run
_CHART_WIDTH, _CHART_HEIGHT = 240, 80
_BOX = (
    "font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;border:1px solid "
    "rgba(127,127,127,.35);border-radius:6px;padding:8px 10px;max-width:960px;overflow-x:auto"
)
_CELL = "padding:1px 8px;text-align:left;white-space:nowrap"


def text_snapshot(view: Mapping[str, Any]) -> str:
    """The view as plain text: a title line, then a table (and the charts' names)."""
    if view["kind"] == "runs":
        title = f"project {view['title']} — {_count(len(view['rows']) + view['omitted'], 'run')}"
        if view["message"]:
            return f"{title}: {view['message']}"
        headers = [_column_label(c) for c in view["columns"]]
        table = render_table(headers, [row["cells"] for row in view["rows"]])
        return f"{title}\n{table}" + (f"\n(+{view['omitted']} older runs)" if view["omitted"] else "")
    runs = view["runs"]
    lines = ["compare " + " vs ".join(run["name"] for run in runs)]
    if view["fields"]:
        headers = ["", "key", *(run["name"] for run in runs)]
        rows = [
            [DIFFERS_MARK if f["differs"] else "", f"{f['section']}.{f['key']}", *f["values"]]
            for f in view["fields"]
        ]
        lines.append(render_table(headers, rows))
    lines.append(_charts_line(view))
    return "\n".join(lines)


def html_snapshot(view: Mapping[str, Any]) -> str:
    """The view as static HTML (inline styles, inline SVG charts)."""
    esc = html.escape
    if view["kind"] == "runs":
        count = _count(len(view["rows"]) + view["omitted"], "run")
        title = f"<b>{esc(view['title'])}</b> <span style='opacity:.7'>{count}</span>"
        if view["message"]:
            return _box(title, f"<div>{esc(view['message'])}</div>")
        head = "".join(f'<th style="{_CELL}">{esc(_column_label(c))}</th>' for c in view["columns"])
        body = "".join(
            "<tr>" + "".join(f'<td style="{_CELL}">{esc(cell)}</td>' for cell in row["cells"]) + "</tr>"
            for row in view["rows"]
        )
        more = f"<div style='opacity:.7'>+{view['omitted']} older runs</div>" if view["omitted"] else ""
        return _box(title, f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>{more}')
    runs = view["runs"]
    legend = " ".join(_swatch(i) + f"<b>{esc(run['name'])}</b>" for i, run in enumerate(runs))
    head = f'<th style="{_CELL}"></th>' + "".join(f'<th style="{_CELL}">{esc(r["name"])}</th>' for r in runs)
    body = "".join(_field_row(field) for field in view["fields"])
    charts = "".join(_chart_html(chart) for chart in view["charts"])
    parts = [f'<table style="border-collapse:collapse"><tr>{head}</tr>{body}</table>'] if body else []
    parts.append(f'<div style="display:flex;flex-wrap:wrap;gap:10px;margin-top:8px">{charts}</div>')
    parts.append(f"<div style='opacity:.7'>{esc(_charts_line(view))}</div>")
    return _box(f"compare {legend}", "".join(parts))


def _box(title: str, content: str) -> str:
    return (
        f'<div class="nbtrack-explorer-snapshot" style="{_BOX}">'
        f'<div style="margin-bottom:6px">{title}</div>{content}</div>'
    )


def _column_label(column: Mapping[str, str]) -> str:
    return column["key"] if not column["group"] else f"{column['group']}.{column['key']}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _swatch(index: int) -> str:
    color = SERIES_COLORS[index % len(SERIES_COLORS)]
    style = f"display:inline-block;width:10px;height:10px;background:{color};margin:0 4px"
    return f'<span style="{style}"></span>'


def _field_row(field: Mapping[str, Any]) -> str:
    esc = html.escape
    mark = f' <b title="differs">{DIFFERS_MARK}</b>' if field["differs"] else ""
    style = _CELL + (";background:rgba(214,158,46,.15)" if field["differs"] else "")
    cells = "".join(f'<td style="{style}">{esc(value)}</td>' for value in field["values"])
    key = f"{esc(field['section'])}.{esc(field['key'])}{mark}"
    return f'<tr><td style="{style};opacity:.8">{key}</td>{cells}</tr>'


def _chart_html(chart: Mapping[str, Any]) -> str:
    lines: list[tuple[Sequence[float], Sequence[float], str]] = []
    for index, series in enumerate(chart["series"]):
        # Each point's min then its max, so a downsampled bucket's spike stays in the picture.
        xs = [x for x, lo, hi in zip(series["xs"], series["lo"], series["hi"], strict=True) for _ in (lo, hi)]
        ys = [y for lo, hi in zip(series["lo"], series["hi"], strict=True) for y in (lo, hi)]
        lines.append((xs, ys, SERIES_COLORS[index % len(SERIES_COLORS)]))
    svg = lines_svg(lines, _CHART_WIDTH, _CHART_HEIGHT)
    return (
        f'<figure style="margin:0"><figcaption style="opacity:.8">{html.escape(chart["key"])}</figcaption>'
        f"{svg}</figure>"
    )


def _charts_line(view: Mapping[str, Any]) -> str:
    keys = [chart["key"] for chart in view["charts"]]
    if not keys:
        return "no metric is charted in every run"
    more = f" (+{view['charts_omitted']} more)" if view["charts_omitted"] else ""
    return f"charts ({len(view['runs'])} lines each): {', '.join(keys)}{more}"
