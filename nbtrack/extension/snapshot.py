"""The live panel's static snapshots: a text/plain summary and a text/html one (inline styles, an
SVG sparkline per charted metric, the newest image and histogram), for front-ends that cannot
show a widget and for the final display that replaces the panel when its run finishes.

They read only the panel's state, already capped (panel_limits.py), and escape every user string.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nbtrack.formatting import format_bytes, format_duration, format_number

__all__ = ["PanelState", "artifact_words", "html_summary", "lines_svg", "step_words", "text_summary"]


class PanelState(Protocol):
    """What a snapshot reads of a panel (RunPanel's traits, see panel.py)."""

    @property
    def header(self) -> Mapping[str, Any]: ...
    @property
    def state(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def rows(self) -> int: ...
    @property
    def runtime(self) -> float: ...
    @property
    def metrics(self) -> Mapping[str, Any]: ...
    @property
    def metrics_omitted(self) -> int: ...
    @property
    def series(self) -> Mapping[str, Any]: ...
    @property
    def pending(self) -> Mapping[str, int]: ...
    @property
    def notices(self) -> Sequence[str]: ...
    @property
    def alerts(self) -> Sequence[Mapping[str, str]]: ...
    @property
    def artifacts(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def artifacts_omitted(self) -> int: ...
    @property
    def media(self) -> Mapping[str, Any]: ...
    @property
    def deterministic(self) -> bool: ...


def step_words(step: int, rows: int) -> list[str]:
    """The step as the web UI's run page means it, the last step logged, then the rows logged:
    ["step 599", "600 rows"] after steps 0-599; ["no rows yet"] before the first (step -1)."""
    if step < 0:
        return ["no rows yet"]
    if rows <= 0:  # a resumed run's earlier rows are not counted here
        return [f"step {step}"]
    return [f"step {step}", f"{rows} row" + ("" if rows == 1 else "s")]


def _title_id(header: Mapping[str, Any]) -> str:
    """The run's id beside its name, unless the name is the id (shown once, then)."""
    run_id = str(header.get("id", ""))
    return "" if run_id == str(header.get("name", "")) else run_id


def _status(panel: PanelState) -> str:
    parts = [panel.state, *step_words(panel.step, panel.rows)]
    if not panel.deterministic:
        parts.append(format_duration(panel.runtime))
    return ", ".join(parts)


def _pending_text(panel: PanelState) -> str | None:
    # Pending counts depend on timing, so a deterministic snapshot leaves them out.
    rows, size = int(panel.pending.get("rows", 0)), int(panel.pending.get("bytes", 0))
    if panel.deterministic or panel.state != "finishing" or not (rows or size):
        return None
    return f"pending upload: {rows} rows, {format_bytes(size)}"


def text_summary(panel: PanelState) -> str:
    """A plain-text snapshot: a status line, then one line per metric, pending, notices, link."""
    h = panel.header
    shown_id = _title_id(h)
    run_id = (
        "" if panel.deterministic or not shown_id else f" ({shown_id})"
    )  # ids are random: not in test output
    lines = [f"run {h.get('name', '')}{run_id} project {h.get('project', '')} — {_status(panel)}"]
    width = max((len(k) for k in panel.metrics), default=0)
    lines += [f"  {k.ljust(width)}  {format_number(v)}" for k, v in panel.metrics.items()]
    if panel.metrics_omitted:
        lines.append(f"  (+{panel.metrics_omitted} more)")
    pending = _pending_text(panel)
    if pending:
        lines.append(f"  {pending}")
    lines += [f"  ! {n}" for n in panel.notices]
    lines += [
        f"  {a['level']} alert: {a['title']}" + (f" — {a['text']}" if a["text"] else "") for a in panel.alerts
    ]
    lines += [f"  {artifact_words(a)}" for a in panel.artifacts]
    if panel.artifacts_omitted:
        lines.append(f"  (+{panel.artifacts_omitted} more artifacts)")
    if h.get("url"):
        lines.append(f"  {h['url']}")
    return "\n".join(lines)


def html_summary(panel: PanelState) -> str:
    """A static HTML snapshot (inline styles, an SVG sparkline per charted metric)."""
    h, esc = panel.header, html.escape
    color = _STATE_COLORS.get(panel.state, "#8b949e")
    shown_id = _title_id(h)
    run_id = (
        "" if panel.deterministic or not shown_id else f' <code style="opacity:.7">{esc(shown_id)}</code>'
    )
    title = f"<b>{esc(h.get('name', ''))}</b>{run_id}"
    title += f' <span style="opacity:.7">{esc(_project_label(h))}</span>'
    if h.get("url"):
        title += f' <a href="{esc(h["url"])}" target="_blank" rel="noopener noreferrer">open run ↗</a>'
    badge = (
        f'<span style="border:1px solid {color};color:{color};border-radius:9px;padding:0 7px">'
        f"{esc(panel.state)}</span>"
    )
    words = step_words(panel.step, panel.rows)
    if not panel.deterministic:
        words.append(format_duration(panel.runtime))
    status = esc(" · ".join(words))
    rows = []
    for key, value in panel.metrics.items():
        points = panel.series.get(key)
        spark = _sparkline_svg(points["steps"], points["values"]) if points else ""
        rows.append(
            f'<tr><td style="padding:1px 8px 1px 0;opacity:.75">{esc(key)}</td>'
            '<td style="padding:1px 8px;font-family:monospace;text-align:right">'
            f"{esc(format_number(value))}</td><td>{spark}</td></tr>"
        )
    extra = [_media_html(panel.media)] if any(panel.media.values()) else []
    if panel.metrics_omitted:
        extra.append(f"<div style='opacity:.7'>+{panel.metrics_omitted} more</div>")
    pending = _pending_text(panel)
    if pending:
        extra.append(f"<div>{esc(pending)}</div>")
    extra += [f"<div>⚠ {esc(n)}</div>" for n in panel.notices]
    extra += [_alert_html(a) for a in panel.alerts]
    extra += [f"<div>{esc(artifact_words(a))}</div>" for a in panel.artifacts]
    if panel.artifacts_omitted:
        extra.append(f"<div style='opacity:.7'>+{panel.artifacts_omitted} more artifacts</div>")
    return (
        '<div class="nbtrack-run-snapshot" style="font-family:var(--jp-ui-font-family,sans-serif);'
        "font-size:13px;border:1px solid rgba(127,127,127,.35);border-radius:6px;padding:8px 10px;"
        'max-width:640px">'
        f'<div style="margin-bottom:4px">{title}</div>'
        f'<div style="margin-bottom:6px">{badge} {status}</div>'
        f'<table style="border-collapse:collapse">{"".join(rows)}</table>{"".join(extra)}</div>'
    )


_STATE_COLORS = {
    "starting": "#8b949e",
    "running": "#3b82f6",
    "finishing": "#d69e2e",
    "finished": "#22a06b",
    "failed": "#e5484d",
    "crashed": "#e5484d",
    "offline": "#d69e2e",
}


_ALERT_COLORS = {"INFO": "#3b82f6", "WARN": "#d69e2e", "ERROR": "#e5484d"}


def artifact_words(artifact: Mapping[str, Any]) -> str:
    """One artifact of the run in words: "logged dataset mnist:v1 · 3 files, 12.0 MB" ("not
    stored yet" in place of the version until the store has numbered it)."""
    name = (
        f"{artifact['name']}:{artifact['version']}"
        if artifact["version"]
        else f"{artifact['name']} (not stored yet)"
    )
    files = f"{artifact['files']} file" + ("" if artifact["files"] == 1 else "s")
    return f"{artifact['role']} {artifact['type']} {name} · {files}, {format_bytes(artifact['bytes'])}"


def _alert_html(alert: Mapping[str, str]) -> str:
    esc, color = html.escape, _ALERT_COLORS.get(alert["level"], "#8b949e")
    text = f" — {esc(alert['text'])}" if alert["text"] else ""
    return (
        f'<div style="border-left:3px solid {color};padding-left:6px;margin-top:4px">'
        f'<b style="color:{color}">{esc(alert["level"])}</b> {esc(alert["title"])}{text}</div>'
    )


def _project_label(header: Mapping[str, Any]) -> str:
    entity, project = header.get("entity") or "", header.get("project") or ""
    return f"{entity}/{project}" if entity else str(project)


def _media_html(media: Mapping[str, Any]) -> str:
    """The newest image (its inline thumbnail) and histogram (SVG bars) of a static snapshot."""
    esc, parts = html.escape, []
    image, histogram = media.get("image"), media.get("histogram")
    if image:
        caption = esc(image["key"]) + (f" — {esc(image['caption'])}" if image.get("caption") else "")
        parts.append(
            f'<figure style="margin:0"><img src="{esc(image["src"])}" alt="{esc(image["key"])}" '
            'style="height:64px;image-rendering:pixelated">'
            f'<figcaption style="opacity:.75">{caption}</figcaption></figure>'
        )
    if histogram:
        counts = histogram["values"]
        top = max(counts) or 1.0
        width = 120 / len(counts)
        bars = "".join(
            f'<rect x="{i * width:.1f}" y="{48 - c / top * 48:.1f}" width="{max(width - 1, 0.5):.1f}" '
            f'height="{c / top * 48:.1f}" fill="#3b82f6"/>'
            for i, c in enumerate(counts)
        )
        parts.append(
            f'<figure style="margin:0"><svg width="120" height="48" viewBox="0 0 120 48">{bars}</svg>'
            f'<figcaption style="opacity:.75">{esc(histogram["key"])}</figcaption></figure>'
        )
    return f'<div style="display:flex;gap:12px;margin-top:6px">{"".join(parts)}</div>'


def _sparkline_svg(
    steps: Sequence[float], values: Sequence[float], width: int = 120, height: int = 24
) -> str:
    """A polyline of the (already downsampled) series; empty for fewer than two points."""
    if len(values) < 2:
        return ""
    return lines_svg([(steps, values, "#3b82f6")], width, height)


def lines_svg(lines: Sequence[tuple[Sequence[float], Sequence[float], str]], width: int, height: int) -> str:
    """An SVG of polylines (steps, values, colour) on shared scales; a line of one point is a dot.

    The panel's sparklines and the explorer's comparison charts (explorer_snapshot.py) are drawn
    by it: a static picture of what chart_svg.js draws live."""
    xs = [s for steps, _values, _color in lines for s in steps]
    ys = [v for _steps, values, _color in lines for v in values]
    if not xs or not ys:
        return ""
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def sx(s: float) -> float:
        return width / 2 if x1 == x0 else (s - x0) / (x1 - x0) * width

    def sy(v: float) -> float:
        return height / 2 if y1 == y0 else height - 1 - (v - y0) / (y1 - y0) * (height - 2)

    shapes = []
    for steps, values, color in lines:
        points = [(sx(s), sy(v)) for s, v in zip(steps, values, strict=True)]
        if len(points) == 1:
            shapes.append(f'<circle cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2" fill="{color}"/>')
        elif points:
            text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            shapes.append(f'<polyline points="{text}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    return f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(shapes)}</svg>'
