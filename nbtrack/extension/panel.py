"""The live run panel: an anywidget whose synced state stays small however long the run.

The front-end is `js/panel.js` plus `js/chart.js` and `js/chart_svg.js` (the chart drawing the
web UI uses too), bundled into one module by `esm.py`. `_esm` is a string, so anywidget's file
watching does not apply; after editing `js/`, restart the kernel.

Size invariant: `set_state` sends one comm message holding only the traits whose value changed,
and every part of it is capped (keys, strings, metric count, series count, points per series,
digits per point), so that message never exceeds `MAX_UPDATE_BYTES` of UTF-8 JSON.
"""

from __future__ import annotations

import html
import math
import re
import threading
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from nbtrack import jsonutil
from nbtrack.extension.esm import panel_esm
from nbtrack.extension.formatting import (
    downsample_min_max,
    format_bytes,
    format_duration,
    format_number,
)
from nbtrack.internal.sampler import LIVE_POINTS, LIVE_SERIES
from nbtrack.settings import RUN_FILES

__all__ = [
    "MAX_HISTOGRAM_BARS",
    "MAX_IMAGE_SRC_CHARS",
    "MAX_METRICS",
    "MAX_NOTICES",
    "MAX_POINTS",
    "MAX_SERIES",
    "MAX_UPDATE_BYTES",
    "STATES",
    "RunPanel",
    "media_preview",
]

STATES = ("starting", "running", "finishing", "finished", "failed", "crashed", "offline")

MAX_POINTS = LIVE_POINTS  # per series: the first and newest points plus 49 min/max buckets
MAX_SERIES = LIVE_SERIES  # charts per panel (what the handler sends); further series are only counted
MAX_METRICS = 50  # latest values per panel; further keys are only counted
MAX_NOTICES = 5
MAX_DETAILS = 2  # lines under the status: where the steps came from, the machine's load
MAX_KEY_CHARS = 40
MAX_TEXT_CHARS = 64  # a string metric value
MAX_NOTICE_CHARS = 160
MAX_HEADER_CHARS = 200
MAX_STATE_CHARS = 16
SERIES_DIGITS = 6  # significant digits of a charted value: plenty for a 40-pixel-high line
MAX_IMAGE_SRC_CHARS = 12_000  # the newest image, as a data: URL of a thumbnail of at most this length
THUMBNAIL_SIDES = (64, 32, 16)  # the largest that fits MAX_IMAGE_SRC_CHARS is sent
MAX_HISTOGRAM_BARS = 32  # the newest histogram, its bins merged down to at most this many
_SAFE_INT = 2**53  # beyond this JavaScript numbers are not exact; steps past it are dropped


def _json_str(chars: int) -> int:
    # Quotes plus at most 4 UTF-8 bytes per character: control characters are replaced before
    # sending, so the only escapes left are \" and \\ (2 bytes). Jupyter encodes messages with
    # ensure_ascii=False (jupyter_client.session.json_packer), which this counts.
    return 2 + 4 * chars


_JSON_INT = len(str(-(2**63)))  # 20: an int64, the longest integer we send
_JSON_STEP = len(str(-_SAFE_INT))  # 17
_JSON_FLOAT = len(repr(-2.2250738585072014e-308))  # 24: the longest float repr
_JSON_SERIES_VALUE = len(repr(-1.23457e-308))  # 13: a float rounded to SERIES_DIGITS
_JSON_VALUE = max(_JSON_FLOAT, _json_str(MAX_TEXT_CHARS), len("false"))
_SERIES_ENTRY = (
    _json_str(MAX_KEY_CHARS)
    + len(': {"steps": [], "values": []}, ')
    + MAX_POINTS * (_JSON_STEP + 2)
    + MAX_POINTS * (_JSON_SERIES_VALUE + 2)
)
MAX_UPDATE_BYTES = (
    256  # {"method": "update", "state": {...}, "buffer_paths": []} and the ten trait names
    + _json_str(MAX_STATE_CHARS)
    + _JSON_INT  # step
    + _JSON_FLOAT  # runtime
    + 2 + MAX_METRICS * (_json_str(MAX_KEY_CHARS) + 2 + _JSON_VALUE + 2)
    + 2 + MAX_SERIES * _SERIES_ENTRY
    + len('{"rows": , "bytes": }') + 2 * _JSON_INT
    + 2 + MAX_NOTICES * (_json_str(MAX_NOTICE_CHARS) + 2)
    + 2 + MAX_DETAILS * (_json_str(MAX_NOTICE_CHARS) + 2)
    + 2 * _JSON_INT  # metrics_omitted, series_omitted
    + len('{"image": {"key": , "caption": , "src": , "width": , "height": }, "histogram": '
          '{"key": , "bins": [], "values": []}}')
    + 2 * _json_str(MAX_KEY_CHARS) + _json_str(MAX_TEXT_CHARS) + MAX_IMAGE_SRC_CHARS + 2 + 2 * _JSON_INT
    + (2 * MAX_HISTOGRAM_BARS + 1) * (_JSON_SERIES_VALUE + 2)
)  # fmt: skip


# -- capping user values ----------------------------------------------------------------------

_CONTROL = {i: " " for i in (*range(32), 127)}


def _clean_text(value: str, limit: int) -> str:
    """At most `limit` characters, no control characters, encodable as UTF-8."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.translate(_CONTROL)
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    return value


def _clean_value(value: object) -> float | int | str | bool | None:
    """A metric's latest value as the panel shows it: a JSON scalar of bounded length."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Integral):
        number = int(value)
        if abs(number) <= _SAFE_INT:
            return number
        try:
            return float(number)  # what JavaScript would make of it anyway
        except OverflowError:
            return "inf" if number > 0 else "-inf"
    if isinstance(value, Real):
        f = float(value)
        return f if math.isfinite(f) else format_number(f)
    if isinstance(value, str):
        return _clean_text(value, MAX_TEXT_CHARS)
    if isinstance(value, Mapping):
        return f"{{{len(value)} keys}}"
    if isinstance(value, (list, tuple)):
        return f"[{len(value)} items]"
    return _clean_text(f"<{type(value).__name__}>", MAX_TEXT_CHARS)


def _is_media(value: object) -> bool:
    """A media reference (an image, histogram or table that log() stored): not a metric card."""
    return isinstance(value, Mapping) and value.get("_type") in ("image-file", "histogram", "table-file")


def _shown(key: object) -> bool:
    # Keys starting with "_" are reserved for the tracker itself (_step, _runtime, _timestamp).
    return isinstance(key, str) and bool(key) and not key.startswith("_")


def _series_points(raw: object) -> tuple[Sequence[Any], Sequence[Any]]:
    if isinstance(raw, Mapping):
        return raw.get("steps") or (), raw.get("values") or ()
    if isinstance(raw, (tuple, list)) and len(raw) == 2:
        return raw[0], raw[1]
    return (), ()


def _clean_series(raw: object) -> dict[str, list[Any]]:
    steps, values = _series_points(raw)
    xs, ys = downsample_min_max(steps, values, MAX_POINTS)
    out_steps: list[int] = []
    out_values: list[float] = []
    for s, v in zip(xs, ys, strict=True):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            continue
        step = int(s)
        if abs(step) <= _SAFE_INT:
            out_steps.append(step)
            out_values.append(float(f"{v:.{SERIES_DIGITS}g}"))
    return {"steps": out_steps, "values": out_values}


def _safe_url(url: str | None) -> str | None:
    if not url or not re.match(r"https?://", url, re.I):
        return None  # never a javascript: or data: link
    return _clean_text(url, 2000)


# -- media ------------------------------------------------------------------------------------

_IMAGE_SRC = re.compile(r"data:image/(png|jpeg);base64,[A-Za-z0-9+/]*={0,2}")


def _clean_image(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("src"), str):
        return None
    src = raw["src"]
    if len(src) > MAX_IMAGE_SRC_CHARS or not _IMAGE_SRC.fullmatch(src):
        return None  # only a small inline PNG or JPEG: never a link the front-end would follow
    caption = raw.get("caption")
    return {
        "key": _clean_text(str(raw.get("key", "")), MAX_KEY_CHARS),
        "caption": _clean_text(caption, MAX_TEXT_CHARS) if isinstance(caption, str) else None,
        "src": src,
        "width": _clean_size(raw.get("width")),
        "height": _clean_size(raw.get("height")),
    }


def _clean_size(value: object) -> int:
    return max(0, min(2**31, int(value))) if isinstance(value, Integral) else 0


def _clean_histogram(raw: object) -> dict[str, Any] | None:
    """The histogram's bins merged to at most MAX_HISTOGRAM_BARS; None unless its shape is right."""
    if not isinstance(raw, Mapping):
        return None
    edges, counts = raw.get("bins"), raw.get("values")
    if not isinstance(edges, Sequence) or not isinstance(counts, Sequence) or len(edges) != len(counts) + 1:
        return None
    if not counts or not all(isinstance(v, Real) and math.isfinite(v) for v in (*edges, *counts)):
        return None
    group = math.ceil(len(counts) / MAX_HISTOGRAM_BARS)
    merged = [float(sum(counts[i : i + group])) for i in range(0, len(counts), group)]
    kept_edges = [float(edges[i]) for i in range(0, len(counts), group)] + [float(edges[-1])]
    return {
        "key": _clean_text(str(raw.get("key", "")), MAX_KEY_CHARS),
        "bins": [float(f"{e:.{SERIES_DIGITS}g}") for e in kept_edges],
        "values": [float(f"{c:.{SERIES_DIGITS}g}") for c in merged],
    }


def panel_details(live: Any) -> list[str]:
    """The lines under a panel's status, from a LiveResult: which cells the newest steps came
    from ("steps 200-340 from cell [12]", attempts named), and the machine's load."""
    lines = []
    spans = list(live.cells)[-3:]
    if spans:
        parts = []
        for span in spans:
            steps = (
                f"step {span.first_step}"
                if span.first_step == span.last_step
                else f"steps {span.first_step}-{span.last_step}"
            )
            attempt = f" (attempt {span.attempt + 1})" if span.attempt else ""
            parts.append(f"{steps} from cell [{span.execution_count}]{attempt}")
        lines.append("; ".join(parts))
    if live.system_json:
        system = jsonutil.loads(live.system_json)
        load = [f"CPU {system.get('system.cpu', 0):.0f}%", f"memory {system.get('system.memory', 0):.0f}%"]
        if "system.proc.cpu" in system:
            rss = system.get("system.proc.memory.rss_mb", 0.0) * 1e6  # MB as system_metrics.py counts them
            load.append(f"this kernel {system['system.proc.cpu']:.0f}% CPU, {format_bytes(rss)}")
        lines.append(" · ".join(load))
    return lines


def media_preview(run: Any, latest: Mapping[str, Any]) -> dict[str, Any]:
    """What the panel shows of a run's media: its newest image (a thumbnail of the pixels the run
    kept, as `run.last_image`) and a histogram, from the latest values. For set_state(media=...)."""
    image_key = histogram = None
    last_image = getattr(run, "last_image", None)
    for key, value in latest.items():
        if not _is_media(value):
            continue
        if value["_type"] == "image-file" and (
            image_key is None or (last_image is not None and value.get("path") == last_image[0])
        ):
            image_key = key
        elif value["_type"] == "histogram":
            histogram = {**value, "key": key}
    image = None
    if image_key is not None:
        reference = latest[image_key]
        if last_image is not None and reference.get("path") == last_image[0]:
            src: str | None = _thumbnail_src(last_image[0], last_image[1])
        else:  # logged from a PNG or JPEG file: shown as it is when it is small enough
            src = _small_file_src(run, reference)
        if src is not None:
            image = {
                "key": image_key,
                "caption": reference.get("caption"),
                "src": src,
                "width": reference.get("width"),
                "height": reference.get("height"),
            }
    return {"image": image, "histogram": histogram}


def _small_file_src(run: Any, reference: Mapping[str, Any]) -> str | None:
    """A data: URL of the run's image file, if it is written already and small enough; else None."""
    import base64

    from nbtrack.values import check_file_name

    kind = {"png": "png", "jpeg": "jpeg"}.get(str(reference.get("format")))
    try:
        path = Path(run.dir) / RUN_FILES / check_file_name(reference.get("path"))
        if kind is None or path.stat().st_size * 4 // 3 + 30 > MAX_IMAGE_SRC_CHARS:
            return None
        return f"data:image/{kind};base64," + base64.b64encode(path.read_bytes()).decode()
    except (OSError, ValueError, TypeError):
        return None  # not written yet (the media thread writes it soon), or not a file name


_thumbnails: dict[str, str] = {}  # the newest file name -> its data: URL (encoded once)


def _thumbnail_src(name: str, pixels: Any) -> str:
    import base64

    from nbtrack.media import encode_png, thumbnail

    if name in _thumbnails:
        return _thumbnails[name]
    src = ""
    for side in THUMBNAIL_SIDES:
        src = "data:image/png;base64," + base64.b64encode(encode_png(thumbnail(pixels, side), 9)).decode()
        if len(src) <= MAX_IMAGE_SRC_CHARS:
            break
    _thumbnails.clear()
    _thumbnails[name] = src
    return src


_NO_MEDIA: dict[str, Any] = {"image": None, "histogram": None}


# -- the widget -------------------------------------------------------------------------------


class RunPanel(anywidget.AnyWidget):
    """The live panel of one run; fed by `set_state`, snapshotted by `text_summary`/`html_summary`."""

    _esm = panel_esm()

    header = traitlets.Dict().tag(sync=True)  # name, id, project, entity, url (http(s) or None)
    state = traitlets.Unicode("starting").tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)
    runtime = traitlets.Float(0.0).tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)  # key -> latest value, at most MAX_METRICS keys
    metrics_omitted = traitlets.Int(0).tag(sync=True)
    series = traitlets.Dict().tag(sync=True)  # key -> {"steps": [...], "values": [...]}
    series_omitted = traitlets.Int(0).tag(sync=True)
    pending = traitlets.Dict({"rows": 0, "bytes": 0}).tag(sync=True)
    notices = traitlets.List(traitlets.Unicode()).tag(sync=True)
    details = traitlets.List(traitlets.Unicode()).tag(sync=True)  # see panel_details()
    # The newest image {key, caption, src (a PNG data: URL), width, height} and histogram
    # {key, bins, values}, each None until one is logged (see media_preview).
    media = traitlets.Dict(_NO_MEDIA).tag(sync=True)

    def __init__(
        self,
        *,
        name: str,
        run_id: str,
        project: str,
        entity: str,
        url: str | None = None,
        deterministic: bool = False,
    ) -> None:
        header = {
            "name": _clean_text(str(name), MAX_HEADER_CHARS),
            "id": _clean_text(str(run_id), MAX_HEADER_CHARS),
            "project": _clean_text(str(project), MAX_HEADER_CHARS),
            "entity": _clean_text(str(entity), MAX_HEADER_CHARS),
            "url": _safe_url(url),
        }
        super().__init__(header=header)
        self.deterministic = deterministic
        self._update_lock = threading.Lock()  # set_state runs on the kernel's results thread

    def set_state(
        self,
        *,
        state: str | None = None,
        step: int | None = None,
        runtime: float | None = None,
        metrics: Mapping[str, Any] | None = None,
        series: Mapping[str, Any] | None = None,
        pending: Mapping[str, int] | None = None,
        notices: Sequence[str] | None = None,
        media: Mapping[str, Any] | None = None,
        details: Sequence[str] | None = None,
    ) -> None:
        """Update the panel in one comm message holding only the traits whose value changed.

        None leaves a trait as it is. Values are capped as the module docstring says; a series is
        {"steps": [...], "values": [...]} (or a (steps, values) pair) of any length.
        """
        with self._update_lock, self.hold_sync():
            if state:
                self.state = _clean_text(str(state).lower(), MAX_STATE_CHARS)
            if step is not None:
                self.step = max(-(2**63), min(2**63 - 1, int(step)))
            if runtime is not None and math.isfinite(runtime):
                self.runtime = float(runtime)
            if metrics is not None:
                keys = [k for k in metrics if _shown(k) and not _is_media(metrics[k])]
                self.metrics = {
                    _clean_text(k, MAX_KEY_CHARS): _clean_value(metrics[k]) for k in keys[:MAX_METRICS]
                }
                self.metrics_omitted = max(0, len(keys) - MAX_METRICS)
            if series is not None:
                self._set_series(series)
            if pending is not None:
                self.pending = {
                    "rows": max(0, min(2**63 - 1, int(pending.get("rows", 0)))),
                    "bytes": max(0, min(2**63 - 1, int(pending.get("bytes", 0)))),
                }
            if notices is not None:
                self.notices = [_clean_text(str(n), MAX_NOTICE_CHARS) for n in list(notices)[-MAX_NOTICES:]]
            if details is not None:
                self.details = [_clean_text(str(d), MAX_NOTICE_CHARS) for d in list(details)[:MAX_DETAILS]]
            if media is not None:
                self.media = {
                    "image": _clean_image(media.get("image")),
                    "histogram": _clean_histogram(media.get("histogram")),
                }

    def _set_series(self, series: Mapping[str, Any]) -> None:
        by_key = {_clean_text(k, MAX_KEY_CHARS): k for k in series if _shown(k)}
        # Charts follow the order of the metrics shown, then any other series.
        order = [k for k in self.metrics if k in by_key] + [k for k in by_key if k not in self.metrics]
        self.series = {k: _clean_series(series[by_key[k]]) for k in order[:MAX_SERIES]}
        # The handler sends MAX_SERIES series at most: the other numeric metrics are the omitted.
        numeric = sum(1 for v in self.metrics.values() if type(v) in (int, float))
        self.series_omitted = max(0, len(order) - MAX_SERIES, numeric - len(self.series))

    # -- static snapshots ----------------------------------------------------------------------

    def _status(self) -> str:
        parts = [self.state, f"step {self.step}"]
        if not self.deterministic:
            parts.append(format_duration(self.runtime))
        return ", ".join(parts)

    def _pending_text(self) -> str | None:
        # Pending counts depend on timing, so a deterministic snapshot leaves them out.
        rows, size = int(self.pending.get("rows", 0)), int(self.pending.get("bytes", 0))
        if self.deterministic or self.state != "finishing" or not (rows or size):
            return None
        return f"pending upload: {rows} rows, {format_bytes(size)}"

    def text_summary(self) -> str:
        """A plain-text snapshot: a status line, then one line per metric, pending, notices, link."""
        h = self.header
        run_id = "" if self.deterministic else f" ({h.get('id', '')})"  # ids are random: not in test output
        lines = [f"run {h.get('name', '')}{run_id} project {h.get('project', '')} — {self._status()}"]
        width = max((len(k) for k in self.metrics), default=0)
        lines += [f"  {k.ljust(width)}  {format_number(v)}" for k, v in self.metrics.items()]
        if self.metrics_omitted:
            lines.append(f"  (+{self.metrics_omitted} more)")
        pending = self._pending_text()
        if pending:
            lines.append(f"  {pending}")
        lines += [f"  ! {n}" for n in self.notices]
        if h.get("url"):
            lines.append(f"  {h['url']}")
        return "\n".join(lines)

    def html_summary(self) -> str:
        """A static HTML snapshot (inline styles, an SVG sparkline per charted metric)."""
        h, esc = self.header, html.escape
        color = _STATE_COLORS.get(self.state, "#8b949e")
        run_id = "" if self.deterministic else f' <code style="opacity:.7">{esc(h.get("id", ""))}</code>'
        title = f"<b>{esc(h.get('name', ''))}</b>{run_id}"
        title += f' <span style="opacity:.7">{esc(_project_label(h))}</span>'
        if h.get("url"):
            title += f' <a href="{esc(h["url"])}" target="_blank" rel="noopener noreferrer">open run ↗</a>'
        badge = (
            f'<span style="border:1px solid {color};color:{color};border-radius:9px;padding:0 7px">'
            f"{esc(self.state)}</span>"
        )
        status = f"step {self.step}" + (
            "" if self.deterministic else f" · {esc(format_duration(self.runtime))}"
        )
        rows = []
        for key, value in self.metrics.items():
            points = self.series.get(key)
            spark = _sparkline_svg(points["steps"], points["values"]) if points else ""
            rows.append(
                f'<tr><td style="padding:1px 8px 1px 0;opacity:.75">{esc(key)}</td>'
                '<td style="padding:1px 8px;font-family:monospace;text-align:right">'
                f"{esc(format_number(value))}</td><td>{spark}</td></tr>"
            )
        extra = [_media_html(self.media)] if any(self.media.values()) else []
        if self.metrics_omitted:
            extra.append(f"<div style='opacity:.7'>+{self.metrics_omitted} more</div>")
        pending = self._pending_text()
        if pending:
            extra.append(f"<div>{esc(pending)}</div>")
        extra += [f"<div>⚠ {esc(n)}</div>" for n in self.notices]
        return (
            '<div class="nbtrack-run-snapshot" style="font-family:var(--jp-ui-font-family,sans-serif);'
            "font-size:13px;border:1px solid rgba(127,127,127,.35);border-radius:6px;padding:8px 10px;"
            'max-width:640px">'
            f'<div style="margin-bottom:4px">{title}</div>'
            f'<div style="margin-bottom:6px">{badge} {status}</div>'
            f'<table style="border-collapse:collapse">{"".join(rows)}</table>{"".join(extra)}</div>'
        )

    # -- display -------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget view plus text/plain and text/html snapshots for non-widget front-ends."""
        bundle: Any = super()._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle or {}, {})
        data = {**data, "text/plain": self.text_summary(), "text/html": self.html_summary()}
        return data, metadata

    # ipywidgets' close() sets _repr_mimebundle_ to None on the instance; IPython then falls back
    # to these, so a closed panel still displays as its snapshot.
    def _repr_html_(self) -> str:
        return self.html_summary()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text_summary())


_STATE_COLORS = {
    "starting": "#8b949e",
    "running": "#3b82f6",
    "finishing": "#d69e2e",
    "finished": "#22a06b",
    "failed": "#e5484d",
    "crashed": "#e5484d",
    "offline": "#d69e2e",
}


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
    x0, x1, y0, y1 = min(steps), max(steps), min(values), max(values)

    def sx(s: float) -> float:
        return width / 2 if x1 == x0 else (s - x0) / (x1 - x0) * width

    def sy(v: float) -> float:
        return height / 2 if y1 == y0 else height - 1 - (v - y0) / (y1 - y0) * (height - 2)

    points = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in zip(steps, values, strict=True))
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline points="{points}" fill="none" stroke="#3b82f6" stroke-width="1.5"/></svg>'
    )
